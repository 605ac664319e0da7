"""Resolve a target string (``path/to/file.py:name`` or ``package.module:name``) to a loss.

Every failure is a :class:`~lossaudit.errors.TargetError` that says what was wrong, what was
expected, what was received and how to fix it, with close matches for misspelt names.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lossaudit.errors import TargetError, did_you_mean

__all__ = ["DEFAULT_TARGET", "load_target"]

#: What ``lossaudit report`` audits when given no target: the seed write-up's loss.
DEFAULT_TARGET = "lossaudit.examples.seed:seed_loss"

_FORM = "path/to/file.py:name or package.module:name"


def _split(target: str) -> tuple[str, str]:
    where, sep, name = target.rpartition(":")
    # A Windows drive letter ("C:\\x.py") is not a separator; neither is an empty side.
    if not sep or not where or not name or (len(where) == 1 and where.isalpha()):
        raise TargetError(
            f"the target has no ':name' part: expected {_FORM}; received {target!r}. "
            f"Name the loss after a colon, e.g. {target}:yolo_loss."
        )
    return where, name


@contextlib.contextmanager
def _as_imported(subject: str, verb: str = "imported") -> Iterator[None]:
    """Run user code (an import, a constructor) as a library, not as lossaudit's command line.

    ``sys.argv`` holds just the module's name, as ``python -c "import m"`` would give it, so a
    module that parses arguments at import does not read lossaudit's flags; ``sys.exit`` is
    the target's error (exit 2 with a message), never lossaudit exiting silently with the
    user's exit code and nothing audited.
    """
    saved = sys.argv
    sys.argv = [subject.strip("'")]
    try:
        yield
    except SystemExit as exc:
        raise TargetError(
            f"{subject} called sys.exit({exc.code!r}) when lossaudit {verb} it: expected a module "
            "that defines the loss and runs nothing when imported. Put the script part under "
            '`if __name__ == "__main__":` (or build the loss without exiting).'
        ) from None
    finally:
        sys.argv = saved


def _import_file(path: Path) -> Any:
    if not path.exists():
        siblings = [p.name for p in path.parent.glob("*.py")] if path.parent.is_dir() else []
        hint = "Check the path" + (
            "" if path.is_absolute() else " relative to the current directory"
        )
        raise TargetError(
            f"no such file: expected an existing Python file ({_FORM}); received {str(path)!r}. "
            f"{hint}." + did_you_mean(path.name, siblings)
        )
    if path.suffix != ".py":
        raise TargetError(
            f"the target file is not a Python file: expected a .py file; received {str(path)!r}. "
            "Point at the .py file that defines the loss."
        )
    module_name = "lossaudit_target_" + "".join(
        c if c.isalnum() else "_" for c in str(path.resolve())
    )
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise TargetError(
            f"cannot load {str(path)!r} as a Python module. Check that it is a readable .py file."
        )
    module = importlib.util.module_from_spec(spec)
    for extra in (str(path.resolve().parent), os.getcwd()):
        if extra not in sys.path:
            sys.path.insert(0, extra)
    sys.modules[module_name] = module
    try:
        with _as_imported(repr(str(path))):
            spec.loader.exec_module(module)
    except TargetError:
        sys.modules.pop(module_name, None)
        raise
    except Exception as exc:
        sys.modules.pop(module_name, None)
        raise TargetError(
            f"importing {str(path)!r} raised {type(exc).__name__}: {exc}. "
            "Fix the error in that file (run `python path/to/file.py` to see it)."
        ) from exc
    return module


def _import_module(name: str) -> Any:
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        with _as_imported(repr(name)):
            return importlib.import_module(name)
    except TargetError:
        raise
    except ModuleNotFoundError as exc:
        if exc.name and name.startswith(exc.name):
            raise TargetError(
                f"no module named {exc.name!r}: expected an importable module or a .py file "
                f"({_FORM}); received {name!r}. Install the package, run from its directory, "
                "or give the path to the .py file."
            ) from exc
        raise TargetError(
            f"importing {name!r} raised ModuleNotFoundError: {exc}. Install what it needs."
        ) from exc
    except Exception as exc:
        raise TargetError(
            f"importing {name!r} raised {type(exc).__name__}: {exc}. Fix the error in that module."
        ) from exc


def load_target(target: str | None) -> tuple[Any, str]:
    """Load the loss a target names; returns ``(loss, canonical_target_string)``.

    A class is instantiated with no arguments (a Keras ``Loss`` subclass, say).

    Example:
        >>> loss, name = load_target(None)  # doctest: +SKIP
        >>> name
        'lossaudit.examples.seed:seed_loss'
    """
    target = target or DEFAULT_TARGET
    where, name = _split(target)
    from lossaudit.adapter import import_tensorflow

    # Quietly, before the user's module imports it with all its start-up logging.
    import_tensorflow()
    looks_like_file = where.endswith(".py") or os.sep in where or "/" in where
    module = _import_file(Path(where)) if looks_like_file else _import_module(where)
    obj: Any = module
    for part in name.split("."):
        if not hasattr(obj, part):
            public = [n for n in dir(obj) if not n.startswith("_")]
            raise TargetError(
                f"{where!r} has no attribute {part!r}: expected the name of a loss function, "
                f"a Keras Loss instance or a Loss class; received {target!r}."
                + (did_you_mean(part, public) or f" It defines: {', '.join(public[:12])}.")
            )
        obj = getattr(obj, part)
    if isinstance(obj, type):
        try:
            with _as_imported(repr(target), "built"):
                obj = obj()
        except TargetError:
            raise
        except Exception as exc:
            raise TargetError(
                f"{target!r} is a class that cannot be built without arguments: {type(exc).__name__}: {exc}. "
                "Point at an instance instead (e.g. a module-level `loss = MyLoss(anchors)`)."
            ) from exc
    if not callable(obj):
        raise TargetError(
            f"{target!r} is a {type(obj).__name__}, not a loss: expected a function "
            "loss(y_true, y_pred), a Keras Loss instance or a Loss class. Point at the loss itself."
        )
    return obj, target
