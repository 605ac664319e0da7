"""A bridge for TF1 / Keras 2 era loss code, so a public loss file is audited as it is.

Many YOLO losses in the wild were written for TensorFlow 1 and Keras 2: ``tf.to_float``,
``tf.Print``, ``tf.log``, ``K.shape``, ``K.sigmoid``, ``K.control_flow_ops.while_loop``,
``from keras.layers import merge``, ``tf.compat.v1.disable_v2_behavior()`` at import. With
TensorFlow 2 and Keras 3 each of those fails before the loss computes anything. Most of it has a
direct counterpart that runs eagerly and under ``tf.function``: ``tf.compat.v1`` for the TF1
names, Keras' legacy backend for the ``keras.backend`` functions. The bridge:

- while a target file is imported: ignores a call that would switch TF2 behaviour off for the
  whole process (``disable_v2_behavior``, ``disable_eager_execution``), and stands in for a
  Keras 2 name the module imports but Keras 3 no longer has (``merge``): the stand-in raises a
  clear error if the loss ever calls it;
- after the import: where the module's own ``tf`` or ``K`` is asked for a name TensorFlow 2 or
  Keras 3 lacks (read from the module's source), that global answers from the old API instead.

What it did is recorded per module and said in the report (:func:`notes`). A loss that needs
more (a ``Session``, placeholders, ``K.get_session()``) still fails on its first call, and the
error names the TF1 call and what to change.

TensorFlow is imported only inside the functions here (by the time a target is loaded it is).
"""

from __future__ import annotations

import ast
import contextlib
import sys
import types
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Bridged", "LegacyShims", "bridge_module", "notes"]

#: Module name -> what the bridge did for it.
_DONE: dict[str, Bridged] = {}


@dataclass
class Bridged:
    """What the bridge did for one module: names answered from the old API, imports stood in
    for, process-wide calls ignored."""

    module: str
    names: set[str] = field(default_factory=set)
    stand_ins: set[str] = field(default_factory=set)
    ignored: set[str] = field(default_factory=set)

    def note(self) -> str:
        parts = []
        if self.names:
            parts.append("answered " + ", ".join(sorted(self.names)) + " from the old API")
        if self.stand_ins:
            parts.append(
                "stood in for " + ", ".join(sorted(self.stand_ins)) + " (imported, never called)"
            )
        if self.ignored:
            parts.append("ignored " + ", ".join(sorted(self.ignored)) + " at import")
        return (
            "ran through the TF1 / Keras 2 bridge: " + "; ".join(parts) + ". The loss computes "
            "with TensorFlow 2's ops, eagerly and under tf.function; port these names to drop "
            "the bridge"
        )


def notes(loss: Any) -> tuple[str, ...]:
    """The report's note for a loss whose module went through the bridge (empty otherwise)."""
    fn = getattr(loss, "__func__", loss)
    module = fn.__module__ if isinstance(fn, types.FunctionType) else type(loss).__module__
    done = _DONE.get(module or "")
    if done is None or not (done.names or done.stand_ins or done.ignored):
        return ()
    return (done.note(),)


# -- at import ------------------------------------------------------------------------------


class _StandIn:
    """What ``from keras.layers import merge`` gets when Keras 3 has no ``merge``."""

    def __init__(self, name: str):
        self._name = name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(
            f"{self._name} is Keras 2 API that Keras 3 does not have; lossaudit stood in for it "
            "so the module could be imported for its loss. The loss calls it: port that line "
            "to Keras 3 or TensorFlow 2."
        )

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return _StandIn(f"{self._name}.{name}")


def _stand_in_module(qualified: str) -> types.ModuleType:
    """A stand-in for a Keras 2 submodule (``keras.layers.merge``): a name Keras 3 still has
    in the parent package (``concatenate``) is the real one, any other a :class:`_StandIn`."""
    parent = sys.modules.get(qualified.rpartition(".")[0])
    module = types.ModuleType(qualified)

    def lookup(attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        if parent is not None and hasattr(parent, attr):
            return getattr(parent, attr)
        return _StandIn(f"{qualified}.{attr}")

    module.__getattr__ = lookup  # type: ignore[method-assign]
    return module


def _missing_import(exc: ImportError) -> tuple[str, str, str] | None:
    """``(kind, module, name)`` of a Keras or TensorFlow name an import could not find; kind
    is ``"module"`` for a missing submodule, ``"name"`` for a missing attribute."""
    text = str(exc)
    if isinstance(exc, ModuleNotFoundError):
        missing = exc.name or ""
        parent, _, leaf = missing.rpartition(".")
        if parent.split(".")[0] in ("keras", "tensorflow") and leaf and parent in sys.modules:
            return "module", parent, leaf
        return None
    if text.startswith("cannot import name ") and " from '" in text:
        name = text.split("'")[1]
        module = text.split(" from '")[1].split("'")[0]
        if module.split(".")[0] in ("keras", "tensorflow") and module in sys.modules:
            return "name", module, name
    return None


@contextlib.contextmanager
def import_shims(record: Bridged, stand_ins: list[tuple[str, str, str]]) -> Iterator[None]:
    """While a target imports: calls that would switch TF2 behaviour off for the process are
    ignored (and recorded), and the ``stand_ins`` found so far are in place. Everything is put
    back afterwards: the module keeps what it imported, the process is unchanged."""
    import tensorflow as tf

    v1 = tf.compat.v1
    saved: dict[str, Any] = {}
    for name in ("disable_v2_behavior", "disable_eager_execution", "disable_tensor_equality"):
        if hasattr(v1, name):
            saved[name] = getattr(v1, name)

            def ignored(*_a: Any, _name: str = name, **_k: Any) -> None:
                record.ignored.add(f"tf.compat.v1.{_name}()")

            setattr(v1, name, ignored)
    installed: list[tuple[Any, str]] = []
    for kind, module_name, name in stand_ins:
        qualified = f"{module_name}.{name}"
        if kind == "module":
            if qualified not in sys.modules:
                sys.modules[qualified] = _stand_in_module(qualified)
                installed.append((sys.modules, qualified))
        elif not hasattr(sys.modules[module_name], name):
            setattr(sys.modules[module_name], name, _StandIn(qualified))
            installed.append((sys.modules[module_name], name))
    try:
        yield
    finally:
        for name, fn in saved.items():
            setattr(v1, name, fn)
        for where, name in installed:
            if where is sys.modules:
                sys.modules.pop(name, None)
            else:
                delattr(where, name)


# -- after import: the module's own tf and K ---------------------------------------------------------


#: How the bridge answers a name differently from the old API itself.
_AS = {"variable": " (as a constant)", "get_session": " (an error that says why)"}


class _OldApi(types.ModuleType):
    """A module's ``tf`` or ``K`` that answers from TensorFlow 2 / Keras 3 first, then from the
    old API, recording each name the old API answered."""

    def __init__(self, real: types.ModuleType, old: list[Any], record: Bridged, alias: str):
        super().__init__(real.__name__)
        self._real, self._old, self._record, self._alias = real, old, record, alias

    def __getattr__(self, name: str) -> Any:
        if hasattr(self._real, name):
            return getattr(self._real, name)
        for old in self._old:
            if hasattr(old, name):
                self._record.names.add(f"{self._alias}.{name}{_AS.get(name, '')}")
                return getattr(old, name)
        raise AttributeError(
            f"module {self._real.__name__!r} has no attribute {name!r}, in TensorFlow 2 / Keras 3 "
            "or in their compatibility APIs: port this call"
        )


def _print_tensor(x: Any, message: str = "") -> Any:
    import tensorflow as tf

    tf.print(message, x)
    return x


def _old_apis(real: types.ModuleType) -> list[Any] | None:
    """The old APIs that stand behind ``real`` (TensorFlow or ``keras.backend``), or None."""
    import tensorflow as tf

    if real is tf:
        return [tf.compat.v1, tf.compat.v1.math, tf.compat.v1.nn]
    name = getattr(real, "__name__", "")
    if name in ("keras.backend", "keras.api.backend", "tf_keras.backend") or name.endswith(
        "keras.backend"
    ):
        from keras.src.legacy import backend as legacy

        extra = types.SimpleNamespace(
            control_flow_ops=tf.compat.v1,
            print_tensor=_print_tensor,
            get_session=_no_session,
            variable=_constant,
        )
        return [extra, legacy, tf.compat.v1]
    return None


def _constant(value: Any, dtype: Any = None, name: Any = None, constraint: Any = None) -> Any:
    """Keras 2's ``K.variable`` inside a loss holds a constant (the anchors): created once per
    graph in TF1, it would be a new ``tf.Variable`` on every call in TF2, which ``tf.function``
    refuses. A constant gives the same values and gradients."""
    import numpy as np
    import tensorflow as tf

    return tf.constant(np.asarray(value), dtype=dtype or "float32", name=name)


def _no_session(*_a: Any, **_k: Any) -> Any:
    raise RuntimeError(
        "K.get_session() is TF1 graph API: there is no session in TensorFlow 2. The loss must "
        "compute with tensors only; drop the session call (variables need no initializer)."
    )


def _attributes(source: str, alias: str) -> set[str]:
    """Every ``alias.name`` the source reads."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == alias
        ):
            names.add(node.attr)
    return names


def bridge_module(module: types.ModuleType, record: Bridged | None = None) -> Bridged:
    """Point the module's ``tf`` / ``K`` globals at the old API where its source reads a name
    TensorFlow 2 or Keras 3 lacks; returns what was done (also kept for :func:`notes`)."""
    record = record or Bridged(module.__name__)
    path = getattr(module, "__file__", None)
    try:
        source = Path(path).read_text() if path else ""
        tree_ok = bool(source)
        if tree_ok:
            ast.parse(source)
    except (OSError, SyntaxError, ValueError):
        tree_ok = False
    if tree_ok:
        for alias, value in list(vars(module).items()):
            if not isinstance(value, types.ModuleType) or isinstance(value, _OldApi):
                continue
            old = _old_apis(value)
            if old is None:
                continue
            used = _attributes(source, alias)
            if any(not hasattr(value, n) and any(hasattr(o, n) for o in old) for n in used):
                setattr(module, alias, _OldApi(value, old, record, alias))
    _DONE[module.__name__] = record
    return record


class LegacyShims:
    """The bridge as :class:`lossaudit.references.Shims` for loading a target: one record for
    the target's module and the modules it imported from its own directory."""

    def __init__(self) -> None:
        self.record = Bridged("")
        self.stand_ins: list[tuple[str, str, str]] = []

    def context(self) -> contextlib.AbstractContextManager[Any]:
        return import_shims(self.record, self.stand_ins)

    def retry(self, exc: ImportError) -> bool:
        """Whether a stand-in for the Keras or TensorFlow name ``exc`` could not import can
        be tried (False when ``exc`` is about anything else, or was tried already)."""
        found = _missing_import(exc)
        if found is None or found in self.stand_ins:
            return False
        self.stand_ins.append(found)
        self.record.stand_ins.add(f"{found[1]}.{found[2]}")
        return True

    def loaded(self, module: types.ModuleType) -> None:
        self.record.module = module.__name__
        bridge_module(module, self.record)
        where = getattr(module, "__file__", None)
        if not where:
            return
        home = Path(where).resolve().parent
        for other in list(sys.modules.values()):
            path = getattr(other, "__file__", None)
            if (
                other is module
                or not path
                or other.__name__ in _DONE
                or other.__name__.split(".")[0] in ("lossaudit", "tests")
            ):
                continue
            try:
                inside = Path(path).resolve().is_relative_to(home)
            except (OSError, ValueError):
                continue
            if inside and "site-packages" not in Path(path).parts:
                bridge_module(other, self.record)
