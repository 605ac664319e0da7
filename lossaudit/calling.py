"""Calling a user's loss: TensorFlow imported quietly, the loss's errors described with the
line of user code they came from, the scalars it logs with ``tf.summary`` captured, and what it
returned read as named values.

Shared by the adapter (audits), the training harness and ``lossaudit.keras`` (metrics), so all
three read a loss the same way. TensorFlow is imported lazily, inside functions.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import sys
import threading
import traceback
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from lossaudit.components import RETURNED
from lossaudit.errors import InvalidArgument, LossError, invalid
from lossaudit.jsonable import printable

__all__ = [
    "as_traced",
    "capture_summaries",
    "component_tensor",
    "describe_exception",
    "import_tensorflow",
    "own_function",
    "printed_values",
    "reported",
    "unwrap_loss",
]


@contextlib.contextmanager
def _silenced_fd2() -> Iterator[None]:
    """Silence the C++ side's stderr: TensorFlow's start-up logging ignores every setting."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "w") as devnull:
            sys.stderr.flush()
            os.dup2(devnull.fileno(), 2)
            try:
                yield
            finally:
                os.dup2(saved, 2)
    finally:
        os.close(saved)


def _tf() -> Any:
    """TensorFlow, imported (and its devices initialised) once, quietly."""
    tf = sys.modules.get("tensorflow")
    if tf is None or not getattr(_tf, "ready", False):
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        with _silenced_fd2():
            import tensorflow as tf

            tf.constant(0.0) + 1.0  # device discovery logs here, so do it while silenced
        _tf.ready = True  # type: ignore[attr-defined]
    return tf


def import_tensorflow() -> Any:
    """Import TensorFlow without its start-up noise on the terminal; returns the module."""
    return _tf()


def _autograph() -> Callable[[Callable[..., Any], tuple[Any, ...], dict[str, Any]], Any] | None:
    """``call(fn, args, kwargs)``: ``fn`` called as ``tf.function`` calls what its traced code
    calls, converted by AutoGraph (recursively, its allowlist applied: Keras and TensorFlow run
    as written; no optional features). None where this TensorFlow lacks the pieces (then
    lossaudit's own functions are converted too, as before)."""
    if not hasattr(_autograph, "call"):
        try:
            from tensorflow.python.autograph.core import ag_ctx, converter
            from tensorflow.python.autograph.impl import api

            enabled = ag_ctx.ControlStatusCtx(status=ag_ctx.Status.ENABLED)
            options = converter.ConversionOptions(
                recursive=True, user_requested=False, optional_features=None
            )

            def call(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
                with enabled:
                    return api.converted_call(fn, args, kwargs, options=options)

            _autograph.call = call  # type: ignore[attr-defined]
        except Exception:  # an older or newer TensorFlow: fall back
            _autograph.call = None  # type: ignore[attr-defined]
    return _autograph.call  # type: ignore[attr-defined]


def own_function(fn: Callable[..., Any], **kw: Any) -> Any:
    """``tf.function(fn, **kw)`` for lossaudit's own code around a user's loss: AutoGraph does
    not convert ``fn`` (our bookkeeping needs no conversion, and converting it cost up to a
    second of tracing per audit), and the user's loss, called through :func:`as_traced`, is
    converted as ``tf.function`` would convert it."""
    tf = _tf()
    if _autograph() is None:
        return tf.function(fn, **kw)

    @functools.wraps(fn)
    def traced(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            # As tf.function's own AutoGraph entry does, once, at the top: an error raised in
            # converted code is re-raised naming the user's line ("in user code: ...").
            if hasattr(exc, "ag_error_metadata"):
                raise exc.ag_error_metadata.to_exception(exc) from exc
            raise

    return tf.function(traced, autograph=False, **kw)


def as_traced(loss: Callable[..., Any]) -> Callable[..., Any]:
    """The user's ``loss`` (or a user's layout's ``call``) as a ``tf.function`` would call it:
    converted by AutoGraph (its Python ``if`` and ``for`` on tensors become graph ops) while a
    function is being traced, and as written when run eagerly (the eager reference
    ``total.graph_parity`` compares with)."""
    tf = _tf()
    if _autograph() is None or not tf.inside_function():
        return loss
    return _Converted(loss)


class _Converted:
    """Calls the loss converted. Every attribute is the loss's own, so a layout still reads
    ``__self__`` (a method's object) or ``__globals__`` (its module) off what it is handed, and
    ``inspect.signature`` the loss's parameters (``__wrapped__``)."""

    def __init__(self, loss: Callable[..., Any]) -> None:
        self._loss = loss
        self.__wrapped__ = loss

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        call = _autograph()
        assert call is not None
        return call(self._loss, args, kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loss, name)


_SKIP_FRAMES = (
    f"{os.sep}tensorflow{os.sep}",
    f"{os.sep}keras{os.sep}",
    f"{os.sep}hypothesis{os.sep}",
    os.path.dirname(os.path.abspath(__file__)) + os.sep,  # lossaudit itself
    "__autograph_generated",
    "<frozen ",
)


def _where_in_user_code(exc: BaseException) -> str:
    """``file:line`` of the innermost frame outside TensorFlow, Keras and lossaudit."""
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if not any(s in frame.filename for s in _SKIP_FRAMES):
            return f" (at {frame.filename}:{frame.lineno})"
    return ""


_TF_FRAME = re.compile(r'File "([^"]+)", line (\d+), in (\S+)')


def describe_exception(exc: BaseException, limit: int = 400) -> str:
    """The exception's type and message, bounded, plus where in the user's code it arose.

    TensorFlow's graph errors ("in user code: File ...") are reduced to their last line, the
    real error, and the innermost user frame they list.
    """
    # The loss's own words, minus what no report format can carry (colour codes, surrogates).
    text = printable(str(exc)).strip()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    where = _where_in_user_code(exc)
    frames = [m for m in (_TF_FRAME.search(ln) for ln in lines) if m]
    user = [
        m
        for m in frames
        if not any(s in m.group(1) for s in _SKIP_FRAMES) and "<frozen" not in m.group(1)
    ]
    if user:
        where = f" (at {user[-1].group(1)}:{user[-1].group(2)})"
    if lines and lines[0].startswith("in user code:"):
        text = lines[-1]
    elif lines and lines[0].startswith("{{function_node"):
        # An op error from inside a graph: drop TensorFlow's node prefix, keep the message.
        text = re.sub(r"^\{\{function_node [^}]*\}\}\s*", "", " ".join(lines[:2]))
    elif frames:
        # A graph execution error: the frames it lists, then the op's own message.
        rest = []
        for ln in lines:
            if _TF_FRAME.search(ln):
                continue
            if ln.startswith(("Graph execution error", "Detected at node", "[[{{node", "[[")):
                continue
            rest.append(ln)
        text = " ".join(rest[:2])
    else:
        text = " ".join(lines[:3])
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    name = type(exc).__name__
    if text.startswith(name + ":"):
        return f"{text}{where}"
    return f"{name}: {text}{where}"


#: The capture store of the current thread, if any (see :func:`capture_summaries`).
_CAPTURE = threading.local()


def _install_summary_hook(tf: Any) -> None:
    """Route ``tf.summary.scalar`` through a dispatcher, once per process.

    The dispatcher records into the calling thread's capture store when one is active and calls
    TensorFlow's own function otherwise. Capturing is thus per thread: an audit running in its
    worker thread never changes what the user's other threads write, and a worker abandoned
    inside a hung loss cannot leave ``tf.summary.scalar`` patched for the rest of the process.
    """
    modules = [tf.summary]
    compat = getattr(getattr(tf.compat, "v2", None), "summary", None)
    if compat is not None and compat is not tf.summary:
        modules.append(compat)
    for module in modules:
        current = module.scalar
        if getattr(current, "_lossaudit_dispatch", False):
            continue

        def make(original: Any) -> Any:
            @functools.wraps(original)
            @tf.autograph.experimental.do_not_convert
            def scalar(name: Any, data: Any = None, step: Any = None, *args: Any, **kw: Any) -> Any:
                store = getattr(_CAPTURE, "store", None)
                if store is None:
                    return original(name, data, step, *args, **kw)
                store[str(name)] = data
                return tf.constant(True)

            scalar._lossaudit_dispatch = True  # type: ignore[attr-defined]
            return scalar

        module.scalar = make(current)


def printed_values(inputs: tuple[Any, ...], names: tuple[str, ...] = ()) -> list[tuple[str, Any]]:
    """``(name, value)`` pairs a print call names: one leading message listing the names of
    the values after it (``"yolo_loss, conf_loss, class_loss:", t, c, p``), or a label before
    each value (``"conf:", c, "cls:", p``). Values that are not scalars or per-sample vectors
    (a whole tensor printed to debug) are left out. ``names`` (a layout's) name the values of
    a print whose message does not, when the counts agree."""
    strings = [x for x in inputs if isinstance(x, str)]
    values = [x for x in inputs if not isinstance(x, str)]
    pairs: list[tuple[str, Any]] = []
    if names and len(names) == len(values) and len(strings) <= 1:
        pairs = list(zip(names, values, strict=True))
    elif len(strings) == 1 and inputs and inputs[0] is strings[0]:
        names = [n.strip() for n in strings[0].strip().rstrip(":=").split(",") if n.strip()]
        if len(names) == len(values):
            pairs = list(zip(names, values, strict=True))
    if not pairs:
        label = ""
        for x in inputs:
            if isinstance(x, str):
                label = x.strip().rstrip(":=").strip()
            elif label:
                pairs.append((label, x))
                label = ""
    return [(n, v) for n, v in pairs if n and len(getattr(v, "shape", ())) <= 1]


def _print_names() -> tuple[str, ...]:
    return getattr(_CAPTURE, "print_names", ())


def _record_printed(store: dict[str, Any], printed: list[tuple[str, Any]]) -> None:
    """Printed values into the capture store; a name printed again (once per scale, in a
    loop) adds up."""
    for name, value in printed:
        key = f"{PRINTED}{name}"
        store[key] = store[key] + value if key in store else value


def _install_print_hook(tf: Any) -> None:
    """Route ``tf.print`` and TF1's ``tf.compat.v1.Print`` through a dispatcher: inside a
    capture (see :func:`capture_summaries`) the named values they print are recorded and
    nothing is printed; elsewhere TensorFlow's own function runs. Each is checked on every
    capture, since ``tf.compat.v1`` is loaded lazily and may be a new module object later."""
    if not getattr(tf.print, "_lossaudit_dispatch", False):
        original_print = tf.print

        @functools.wraps(original_print)
        @tf.autograph.experimental.do_not_convert
        def print_(*inputs: Any, **kw: Any) -> Any:
            store = getattr(_CAPTURE, "store", None)
            if store is None:
                return original_print(*inputs, **kw)
            _record_printed(store, printed_values(inputs, _print_names()))
            return tf.no_op()

        print_._lossaudit_dispatch = True  # type: ignore[attr-defined]
        tf.print = print_
    compat = getattr(tf.compat, "v1", None)
    original_v1 = getattr(compat, "Print", None)
    if original_v1 is None or getattr(original_v1, "_lossaudit_dispatch", False):
        return

    @functools.wraps(original_v1)
    @tf.autograph.experimental.do_not_convert
    def print_v1(input_: Any, data: Any, message: Any = None, *args: Any, **kw: Any) -> Any:
        store = getattr(_CAPTURE, "store", None)
        if store is None:
            return original_v1(input_, data, message, *args, **kw)
        printed = printed_values((str(message or ""), *list(data)), _print_names())
        _record_printed(store, printed)
        return input_

    print_v1._lossaudit_dispatch = True  # type: ignore[attr-defined]
    compat.Print = print_v1


#: Prefix of printed values in a capture store (dropped by :func:`reported`).
PRINTED = "\x00printed:"


@contextlib.contextmanager
def capture_summaries(store: dict[str, Any], print_names: tuple[str, ...] = ()) -> Iterator[None]:
    """Record every ``tf.summary.scalar(name, data)`` the loss makes in this thread into
    ``store``, and the named scalars it prints with ``tf.print`` or TF1's ``tf.Print`` (see
    :func:`printed_values`). Nothing is written or printed while captured, so no summary
    writer or step is needed.
    """
    _install_summary_hook(_tf())
    _install_print_hook(_tf())
    outer = getattr(_CAPTURE, "store", None), _print_names()
    _CAPTURE.store, _CAPTURE.print_names = store, tuple(print_names)
    try:
        yield
    finally:
        _CAPTURE.store, _CAPTURE.print_names = outer


def unwrap_loss(loss: Any) -> Callable[[Any, Any], Any]:
    """A Keras ``Loss`` is called through ``call`` so per-sample and dict outputs survive."""
    for klass in type(loss).__mro__:
        if klass.__name__ == "Loss" and klass.__module__.startswith(("keras", "tf_keras")):
            return loss.call
    if not callable(loss):
        raise invalid(
            "the loss is not callable",
            "a function loss(y_true, y_pred), a Keras Loss instance or a Loss class",
            f"{type(loss).__name__}",
            "Pass the loss function itself, e.g. lossaudit.audit(my_loss, spec).",
            cls=InvalidArgument,
        )
    return loss


def component_tensor(name: str, value: Any) -> Any:
    """A reported component as a float32 tensor, or a :class:`LossError` saying why not."""
    tf = _tf()
    try:
        t = tf.convert_to_tensor(value)
    except (TypeError, ValueError) as exc:
        raise LossError(
            f"component {name!r} is a {type(value).__name__}, not a number or tensor: "
            "expected a scalar or a per-sample vector (batch,)"
        ) from exc
    if not t.dtype.is_floating and not t.dtype.is_integer:
        raise LossError(f"component {name!r} has dtype {t.dtype.name}: expected a float tensor")
    return tf.cast(t, tf.float32)


def reported(out: Any, captured: Mapping[str, Any], names: tuple[str, ...] = ()) -> dict[str, Any]:
    """``{name: value}`` of everything a loss reported: a returned mapping's entries (or a
    returned tuple's values under ``names``), then the scalars it logged (a returned entry wins
    over a logged one of the same name), and a returned single value under :data:`RETURNED`.
    Raises :class:`LossError` for a return value that can be none of these."""
    named: dict[str, Any] = {}
    if isinstance(out, list | tuple) and names:
        if len(out) != len(names):
            raise LossError(
                f"the loss returned {len(out)} values but {len(names)} names were given "
                f"({', '.join(names)}): give one name per returned value "
                "(--component-names a,b,c)"
            )
        out = dict(zip(names, out, strict=True))
    if isinstance(out, Mapping):
        if not out:
            raise LossError("the loss returned an empty mapping: expected component values")
        named.update({str(k): v for k, v in out.items()})
    elif out is None:
        raise LossError(
            "the loss returned None: expected a scalar, a per-sample vector (batch,), or a "
            "mapping of component name to value (a missing return statement?)"
        )
    elif isinstance(out, list | tuple):
        raise LossError(
            f"the loss returned a {type(out).__name__} of {len(out)} values: expected a "
            "scalar, a per-sample vector (batch,), or a mapping of component name to value; "
            "name a tuple's values with --component-names (e.g. --component-names giou,conf,prob)"
        )
    for name, value in captured.items():
        named.setdefault(name.removeprefix(PRINTED), value)
    if not isinstance(out, Mapping):
        named[RETURNED] = out
    return named
