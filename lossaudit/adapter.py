"""Calls the user's loss: the only place lossaudit's core touches TensorFlow.

The adapter turns a loss into numbers the properties can reason about: per-component values,
per-sample values where the loss gives them, and the gradient of every component with respect
to the raw predictions ``(batch, H, W, anchors, 5 + C)``. It

- accepts a plain function ``loss(y_true, y_pred)``, a Keras ``Loss`` instance, or anything
  callable the same way;
- reads components from a returned mapping, or captures the ones the loss logs with
  ``tf.summary.scalar`` (the seed write-up's style) without changing the loss;
- traces the loss once per input shape under ``tf.function`` (and under XLA on request) and
  falls back to eager execution when tracing fails, keeping the tracing error for the
  ``total.graph_parity`` property;
- turns anything the loss raises into :class:`~lossaudit.errors.LossError` with the loss's own
  message and the line of the user's code it came from.

TensorFlow is imported lazily, inside functions, so ``import lossaudit`` stays cheap.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import re
import sys
import threading
import traceback
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lossaudit.components import (
    COMPONENTS,
    RETURNED,
    base_roles,
    check_mapping,
    group,
)
from lossaudit.errors import InvalidArgument, LossError, invalid
from lossaudit.scenarios import Case

__all__ = [
    "Adapter",
    "Evaluation",
    "Training",
    "train",
]

@dataclass(frozen=True)
class Evaluation:
    """One loss evaluation on one case.

    ``values[role]`` is the component's scalar (per-sample vectors reduced by their mean, as
    Keras does); ``per_sample[role]`` the ``(batch,)`` vector where the loss gave one;
    ``grads[role]`` the gradient of ``values[role]`` with respect to ``y_pred``, shape
    ``(batch, H, W, anchors, 5 + C)``; ``connected[role]`` False where TensorFlow found no path
    from the predictions to the component at all.
    """

    values: dict[str, float]
    per_sample: dict[str, np.ndarray]
    grads: dict[str, np.ndarray]
    connected: dict[str, bool]
    total_given: bool
    names: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def roles(self) -> tuple[str, ...]:
        return tuple(r for r in COMPONENTS if r in self.values)


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
    text = str(exc).strip()
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


@contextlib.contextmanager
def capture_summaries(store: dict[str, Any]) -> Iterator[None]:
    """Record every ``tf.summary.scalar(name, data)`` the loss makes in this thread into
    ``store``. The call writes nothing while captured, so no summary writer or step is needed.
    """
    _install_summary_hook(_tf())
    outer = getattr(_CAPTURE, "store", None)
    _CAPTURE.store = store
    try:
        yield
    finally:
        _CAPTURE.store = outer


def _unwrap_loss(loss: Any) -> Callable[[Any, Any], Any]:
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


def reported(out: Any, captured: Mapping[str, Any]) -> dict[str, Any]:
    """``{name: value}`` of everything a loss reported: a returned mapping's entries, then the
    scalars it logged (a returned entry wins over a logged one of the same name), and a returned
    non-mapping value under :data:`RETURNED`. Raises :class:`LossError` for a return value that
    can be none of these."""
    named: dict[str, Any] = {}
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
            "scalar, a per-sample vector (batch,), or a mapping of component name to value"
        )
    for name, value in captured.items():
        named.setdefault(name, value)
    if not isinstance(out, Mapping):
        named[RETURNED] = out
    return named


class Adapter:
    """Evaluates one loss on cases, eagerly, under ``tf.function`` or under XLA.

    ``components`` maps names the loss reports to roles (see :func:`role_for_name`), overriding
    the heuristic. Results are cached by input bytes, so properties that revisit the same case
    pay for it once.
    """

    def __init__(
        self, loss: Any, *, components: Mapping[str, str] | None = None, cache_size: int = 256
    ):
        self.loss = loss
        self._fn = _unwrap_loss(loss)
        self.components = check_mapping(components)
        self._compiled: dict[str, Any] = {}
        self._trace_info: dict[tuple[str, tuple[int, ...]], dict[str, Any]] = {}
        self._trace_errors: dict[tuple[str, tuple[int, ...]], Exception] = {}
        self._cache: OrderedDict[tuple[str, bytes], Evaluation] = OrderedDict()
        self._cache_size = cache_size
        self.graph_error: str | None = None
        #: One forward pass per component's gradient, for losses whose ops allow one gradient
        #: per pass (tf.py_function); switched on when a shared pass fails that way.
        self.separate_passes = False
        self.unmapped: set[str] = set()
        self.calls = 0

    # -- building the computation --------------------------------------------------------------
    def _normalise(
        self, out: Any, captured: dict[str, Any], batch: int
    ) -> tuple[dict[str, Any], bool, dict[str, tuple[str, ...]]]:
        """Map the loss's output and captured summaries to ``{role: tensor}``."""
        tf = _tf()
        named = reported(out, captured)
        grouped = group(named, self.components)
        self.unmapped.update(grouped.unmapped)
        comps: dict[str, Any] = {}
        for role, reported_parts in grouped.parts.items():
            parts = []
            for name, v in reported_parts:
                t = component_tensor(name, v)
                shape = tuple(t.shape)
                if shape not in ((), (batch,)):
                    raise LossError(
                        f"component {name!r} has shape {shape}: expected a scalar () or a "
                        f"per-sample vector ({batch},); reduce the other axes inside the loss"
                    )
                parts.append(t)
            if any(p.shape.rank == 1 for p in parts):
                # A scalar beside per-sample vectors is already a batch mean: broadcast it, so
                # the mean of the sum is the sum of the means.
                parts = [p if p.shape.rank == 1 else tf.fill([batch], p) for p in parts]
            comps[role] = tf.add_n(parts) if len(parts) > 1 else parts[0]
        if not comps:
            raise LossError(
                "the loss reported no component lossaudit recognises: got "
                f"{sorted(named) or 'nothing'}; map names with components={{name: role}} "
                "(--component NAME=ROLE)"
            )
        total_given = grouped.total_given
        if not total_given:
            shaped = [comps[r] for r in base_roles(comps)]
            if any(p.shape.rank == 1 for p in shaped):
                shaped = [p if p.shape.rank == 1 else tf.fill([batch], p) for p in shaped]
            comps["total"] = tf.add_n(shaped) if len(shaped) > 1 else shaped[0]
        return comps, total_given, grouped.names

    def _forward(self) -> Callable[[Any, Any], Any]:
        """``forward(y_true, y_pred) -> (comps, scalars, total_given, names)`` on tensors."""
        tf = _tf()
        # Autograph converts the user's loss (it may branch on tensors), not lossaudit's own
        # bookkeeping around it.
        normalise = tf.autograph.experimental.do_not_convert(self._normalise)
        loss_fn = self._fn

        def forward(y_true: Any, y_pred: Any) -> Any:
            batch = int(y_pred.shape[0])
            captured: dict[str, Any] = {}
            with capture_summaries(captured):
                out = loss_fn(y_true, y_pred)
            comps, total_given, names = normalise(out, captured, batch)
            scalars = {r: (tf.reduce_mean(v) if v.shape.rank == 1 else v) for r, v in comps.items()}
            return comps, scalars, total_given, names

        return forward

    def _computation(self, mode: str) -> Callable[..., Any]:
        tf = _tf()
        forward = self._forward()

        def run(y_true: Any, y_pred: Any) -> Any:
            grads, connected = {}, {}
            with tf.GradientTape(persistent=not self.separate_passes) as tape:
                tape.watch(y_pred)
                comps, scalars, total_given, names = forward(y_true, y_pred)
            for role in scalars:
                if self.separate_passes:
                    # One forward and backward pass per component: some ops (tf.py_function)
                    # allow only one gradient computation per forward pass.
                    with tf.GradientTape() as tape:
                        tape.watch(y_pred)
                        target = forward(y_true, y_pred)[1][role]
                else:
                    target = scalars[role]
                g = tape.gradient(
                    target, y_pred, unconnected_gradients=tf.UnconnectedGradients.NONE
                )
                connected[role] = g is not None
                grads[role] = g if g is not None else tf.zeros_like(y_pred)
            del tape
            per_sample = {r: v for r, v in comps.items() if v.shape.rank == 1}
            self._trace_info[(mode, tuple(y_pred.shape))] = {
                "connected": connected,
                "total_given": total_given,
                "names": names,
            }
            return scalars, per_sample, grads

        if mode == "eager":
            return run
        return tf.function(run, jit_compile=(mode == "xla"))

    def _runner(self, mode: str) -> Callable[..., Any]:
        if mode not in self._compiled:
            self._compiled[mode] = self._computation(mode)
        return self._compiled[mode]

    # -- public ------------------------------------------------------------------------------
    @property
    def default_mode(self) -> str:
        """``graph`` unless tracing the loss failed, then ``eager``."""
        return "eager" if self.graph_error else "graph"

    def evaluate(self, case: Case, mode: str | None = None) -> Evaluation:
        """Evaluate the loss and every component's gradient on ``case``.

        Raises :class:`LossError` when the loss raises or returns something unusable.
        """
        mode = mode or self.default_mode
        y_true = case.y_true()
        y_pred = np.ascontiguousarray(case.y_pred, dtype=np.float32)
        digest = hashlib.blake2b(digest_size=16)
        digest.update(str(y_pred.shape).encode())
        digest.update(y_true.tobytes())
        digest.update(y_pred.tobytes())
        key = (mode, digest.digest())
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        try:
            result = self._call(mode, y_true, y_pred)
        except LossError as exc:
            raise LossError(describe_exception(exc).removeprefix("LossError: ")) from None
        except Exception as exc:
            if mode == "graph" and self.graph_error is None and not self._trace_info:
                # Tracing failed before any graph ran: record why, then run eagerly.
                try:
                    result = self._call("eager", y_true, y_pred)
                except LossError as lexc:
                    raise LossError(describe_exception(lexc).removeprefix("LossError: ")) from None
                except Exception as eager_exc:
                    raise LossError(describe_exception(eager_exc)) from eager_exc
                self.graph_error = describe_exception(exc)
            else:
                raise LossError(describe_exception(exc)) from exc
        self._cache[key] = result
        # Bounded by count and by the gradients' bytes (large grids carry big gradients).
        while len(self._cache) > 1 and (
            len(self._cache) > self._cache_size or self._cache_bytes() > 256 * 2**20
        ):
            self._cache.popitem(last=False)
        return result

    def _cache_bytes(self) -> int:
        per_entry = next(iter(self._cache.values()))
        size = sum(g.nbytes for g in per_entry.grads.values())
        return size * len(self._cache)

    def _call(self, mode: str, y_true: np.ndarray, y_pred: np.ndarray) -> Evaluation:
        tf = _tf()
        self.calls += 1
        key = (mode, tuple(y_pred.shape))
        if key in self._trace_errors:
            # Tracing this shape failed before; tracing again would fail the same way, slowly.
            raise self._trace_errors[key]
        runner = self._runner(mode)
        try:
            scalars, per_sample, grads = runner(tf.constant(y_true), tf.constant(y_pred))
        except tf.errors.OpError as exc:
            if not self.separate_passes and "pyfunc" in str(exc):
                self.separate_passes = True
                self._compiled.clear()
                self._trace_info.clear()
                self.calls -= 1
                return self._call(mode, y_true, y_pred)
            raise  # raised while running: may depend on the values, so never cached
        except Exception as exc:
            if mode != "eager" and key not in self._trace_info:
                self._trace_errors[key] = exc
            raise
        info = self._trace_info[key]
        return Evaluation(
            values={r: float(v.numpy()) for r, v in scalars.items()},
            per_sample={r: v.numpy().astype(np.float64) for r, v in per_sample.items()},
            grads={r: g.numpy() for r, g in grads.items()},
            connected=dict(info["connected"]),
            total_given=bool(info["total_given"]),
            names=dict(info["names"]),
        )

    def try_mode(self, case: Case, mode: str) -> tuple[Evaluation | None, str | None]:
        """Evaluate in ``mode`` without fallback; return ``(evaluation, None)`` or ``(None, error)``."""
        y_true = case.y_true()
        y_pred = np.ascontiguousarray(case.y_pred, dtype=np.float32)
        try:
            return self._call(mode, y_true, y_pred), None
        except Exception as exc:
            return None, describe_exception(exc)


@dataclass(frozen=True)
class Training:
    """What a short optimisation of a loss's total did to each component.

    ``values[role]`` holds the component at every step (``steps + 1`` values, the start first);
    ``param_grads[role]`` the gradient of each component with respect to the trained parameters
    at the start, flattened (the free predictions, or the head's weights); ``final`` the raw
    predictions after the last step. ``error`` is the loss's own error when a step raised.
    """

    model: str
    values: dict[str, np.ndarray]
    param_grads: dict[str, np.ndarray]
    final: np.ndarray
    error: str | None = None


def _head(spec_shape: tuple[int, ...], channels_in: int, seed: int) -> Any:
    """A tiny convolutional head: images ``(batch, 4H, 4W, c)`` -> raw ``(batch, H, W, A, 5 + C)``."""
    import keras

    _, h, w, anchors, depth = spec_shape

    def init(k: int) -> Any:
        # Seeded initialisers, not keras.utils.set_random_seed: the caller's global seeds stay.
        return keras.initializers.GlorotUniform(seed=seed * 10 + k)

    return keras.Sequential(
        [
            keras.Input((4 * h, 4 * w, channels_in)),
            keras.layers.Conv2D(
                16, 3, padding="same", activation="relu", kernel_initializer=init(0)
            ),
            keras.layers.AveragePooling2D(4),
            keras.layers.Conv2D(
                32, 3, padding="same", activation="relu", kernel_initializer=init(1)
            ),
            keras.layers.Conv2D(anchors * depth, 1, kernel_initializer=init(2)),
            keras.layers.Reshape((h, w, anchors, depth)),
        ]
    )


def _train(
    adapter: Adapter,
    y_true: np.ndarray,
    start: np.ndarray | None,
    images: np.ndarray | None,
    *,
    steps: int,
    learning_rate: float,
    seed: int,
) -> Training:
    tf = _tf()
    import keras

    forward = adapter._forward()
    eager = adapter.graph_error is not None
    y_true_t = tf.constant(y_true, tf.float32)
    if images is None:
        assert start is not None
        model = "free"
        var = tf.Variable(start.astype(np.float32))
        params = [var]

        def predict() -> Any:
            return tf.identity(var)
    else:
        model = "conv head"
        net = _head(y_true.shape, images.shape[-1], seed)
        images_t = tf.constant(images, tf.float32)
        params = list(net.trainable_variables)

        def predict() -> Any:
            return net(images_t, training=True)

    optimizer = keras.optimizers.Adam(learning_rate)

    def grads_of_components() -> Any:
        per_role = {}
        with tf.GradientTape(persistent=not adapter.separate_passes) as tape:
            scalars = forward(y_true_t, predict())[1]
        for role in scalars:
            if adapter.separate_passes:
                with tf.GradientTape() as tape:
                    target = forward(y_true_t, predict())[1][role]
            else:
                target = scalars[role]
            gs = tape.gradient(target, params)
            per_role[role] = tf.concat(
                [
                    tf.reshape(g, [-1]) if g is not None else tf.zeros([int(np.prod(p.shape))])
                    for g, p in zip(gs, params, strict=True)
                ],
                0,
            )
        del tape
        return scalars, per_role

    def step() -> Any:
        with tf.GradientTape() as tape:
            scalars = forward(y_true_t, predict())[1]
        gs = tape.gradient(scalars["total"], params)
        optimizer.apply_gradients(
            [(g, p) for g, p in zip(gs, params, strict=True) if g is not None]
        )
        return scalars

    if not eager:
        grads_of_components = tf.function(grads_of_components)
        step = tf.function(step)
    history: dict[str, list[float]] = {}
    param_grads: dict[str, np.ndarray] = {}
    error = None
    final = np.zeros(y_true.shape, dtype=np.float32)
    try:
        scalars, per_role = grads_of_components()
        param_grads = {r: g.numpy().astype(np.float64) for r, g in per_role.items()}
        for r, v in scalars.items():
            history[r] = [float(v.numpy())]
        final = predict().numpy()
        for k in range(steps + 1):
            # A step returns the values it started from, so step k gives the values after k - 1
            # updates; one extra step reads the values after the last (one trace, not two).
            if k == steps:
                final = predict().numpy()
            before = step()
            if k > 0:
                for r, v in before.items():
                    history[r].append(float(v.numpy()))
    except Exception as exc:  # the loss's error during training: reported, never raised
        error = describe_exception(exc)
    return Training(
        model=model,
        values={r: np.asarray(v, dtype=np.float64) for r, v in history.items()},
        param_grads=param_grads,
        final=final,
        error=error,
    )


def train(
    adapter: Adapter,
    y_true: np.ndarray,
    *,
    start: np.ndarray | None = None,
    images: np.ndarray | None = None,
    steps: int = 60,
    learning_rate: float = 0.05,
    seed: int = 0,
) -> Training:
    """Minimise the loss's total with Adam for ``steps`` steps and record every component.

    With ``start`` the predictions themselves are the variables (free predictions); with
    ``images`` a tiny convolutional head (:func:`_head`) maps them to predictions, so gradients
    pass through real layers with shared weights. Traced once per call with ``tf.function``
    unless the loss cannot be traced (then eagerly).
    """
    if (start is None) == (images is None):
        raise ValueError("train() needs exactly one of start= (free predictions) or images=")
    import keras

    if keras.config.backend() != "tensorflow":
        raise LossError(
            f"training diagnostics need Keras's TensorFlow backend; KERAS_BACKEND is "
            f"{keras.config.backend()!r}"
        )
    return _train(
        adapter, y_true, start, images, steps=steps, learning_rate=learning_rate, seed=seed
    )
