"""Import the object a reference string names: ``path/to/file.py:name`` or ``package.module:name``.

Shared by targets (the loss to audit) and layouts (a user-defined layout), so both accept the
same two forms with the same messages. Every failure raises the caller's error class with what
was wrong, what was expected, what was received and how to fix it, with close matches for a
misspelt name.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

from lossaudit.errors import LossAuditError, did_you_mean

__all__ = ["FORM", "as_imported", "is_reference", "resolve"]

#: The two forms, as messages spell them.
FORM = "path/to/file.py:name or package.module:name"


def is_reference(text: str) -> bool:
    """True when ``text`` has a ``where:name`` shape (a Windows drive letter does not count)."""
    where, sep, name = text.rpartition(":")
    return bool(sep and where and name and not (len(where) == 1 and where.isalpha()))


@contextlib.contextmanager
def as_imported(
    subject: str, error: type[LossAuditError], verb: str = "imported"
) -> Iterator[None]:
    """Run user code (an import, a constructor) as a library, not as lossaudit's command line.

    ``sys.argv`` holds just the module's name, as ``python -c "import m"`` would give it, so a
    module that parses arguments at import does not read lossaudit's flags; ``sys.exit`` is
    the caller's ``error`` (exit 2 with a message), never lossaudit exiting silently with the
    user's exit code and nothing audited.
    """
    saved = sys.argv
    sys.argv = [subject.strip("'")]
    try:
        yield
    except SystemExit as exc:
        raise error(
            f"{subject} called sys.exit({exc.code!r}) when lossaudit {verb} it: expected a module "
            "that defines what lossaudit needs and runs nothing when imported. Put the script "
            'part under `if __name__ == "__main__":` (or build it without exiting).'
        ) from None
    finally:
        sys.argv = saved


def _split(ref: str, error: type[LossAuditError], what: str) -> tuple[str, str]:
    if not is_reference(ref):
        raise error(
            f"the {what} has no ':name' part: expected {FORM}; received {ref!r}. "
            f"Name the object after a colon, e.g. {ref}:name."
        )
    where, _, name = ref.rpartition(":")
    return where, name


class Shims(Protocol):
    """How a caller helps old code import (:mod:`lossaudit.legacy` for targets): a context
    around each attempt, whether to try again after an ``ImportError``, and a last step on the
    imported module."""

    def context(self) -> contextlib.AbstractContextManager[Any]: ...

    def retry(self, exc: ImportError) -> bool: ...

    def loaded(self, module: Any) -> None: ...


#: Stand-ins one import may need before it gives up (one per missing old name).
_MAX_ATTEMPTS = 20


def _attempts(shims: Shims | None, load: Callable[[], Any], forget: Callable[[], None]) -> Any:
    """``load()``, retried while ``shims`` can mend the ``ImportError`` it raised."""
    attempt = 0
    while True:
        attempt += 1
        try:
            if shims is None:
                return load()
            with shims.context():
                module = load()
            shims.loaded(module)
            return module
        except ImportError as exc:
            forget()
            if shims is None or attempt >= _MAX_ATTEMPTS or not shims.retry(exc):
                raise


def _import_file(path: Path, error: type[LossAuditError], shims: Shims | None = None) -> Any:
    if not path.exists():
        siblings = [p.name for p in path.parent.glob("*.py")] if path.parent.is_dir() else []
        hint = "Check the path" + (
            "" if path.is_absolute() else " relative to the current directory"
        )
        raise error(
            f"no such file: expected an existing Python file ({FORM}); received {str(path)!r}. "
            f"{hint}." + did_you_mean(path.name, siblings)
        )
    if path.suffix != ".py":
        raise error(
            f"not a Python file: expected a .py file; received {str(path)!r}. "
            "Point at the .py file that defines it."
        )
    module_name = "lossaudit_target_" + "".join(
        c if c.isalnum() else "_" for c in str(path.resolve())
    )
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise error(f"cannot load {str(path)!r} as a Python module. Check that it is readable.")
    for extra in (str(path.resolve().parent), os.getcwd()):
        if extra not in sys.path:
            sys.path.insert(0, extra)

    def load() -> Any:
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
        return module

    try:
        with as_imported(repr(str(path)), error):
            module = _attempts(shims, load, lambda: sys.modules.pop(module_name, None))
    except LossAuditError:
        sys.modules.pop(module_name, None)
        raise
    except Exception as exc:
        sys.modules.pop(module_name, None)
        raise error(
            f"importing {str(path)!r} raised {type(exc).__name__}: {exc}. "
            "Fix the error in that file (run `python path/to/file.py` to see it)."
        ) from exc
    return module


def _import_module(name: str, error: type[LossAuditError], shims: Shims | None = None) -> Any:
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        with as_imported(repr(name), error):
            return _attempts(
                shims, lambda: importlib.import_module(name), lambda: sys.modules.pop(name, None)
            )
    except LossAuditError:
        raise
    except ModuleNotFoundError as exc:
        if exc.name and name.startswith(exc.name):
            raise error(
                f"no module named {exc.name!r}: expected an importable module or a .py file "
                f"({FORM}); received {name!r}. Install the package, run from its directory, "
                "or give the path to the .py file."
            ) from exc
        raise error(
            f"importing {name!r} raised ModuleNotFoundError: {exc}. Install what it needs."
        ) from exc
    except Exception as exc:
        raise error(
            f"importing {name!r} raised {type(exc).__name__}: {exc}. Fix the error in that module."
        ) from exc


def resolve(
    ref: str,
    *,
    error: type[LossAuditError],
    what: str,
    expected: str,
    shims: Shims | None = None,
) -> Any:
    """The object ``ref`` names; ``what`` names it in messages ("target", "layout") and
    ``expected`` says what the name should be ("a loss function", "a Layout"). ``shims`` help
    old code import (see :class:`Shims`)."""
    where, name = _split(ref, error, what)
    looks_like_file = where.endswith(".py") or os.sep in where or "/" in where
    module = (
        _import_file(Path(where), error, shims)
        if looks_like_file
        else _import_module(where, error, shims)
    )
    obj: Any = module
    for part in name.split("."):
        if not hasattr(obj, part):
            public = [n for n in dir(obj) if not n.startswith("_")]
            raise error(
                f"{where!r} has no attribute {part!r}: expected the name of {expected}; "
                f"received {ref!r}."
                + (did_you_mean(part, public) or f" It defines: {', '.join(public[:12])}.")
            )
        obj = getattr(obj, part)
    return obj
