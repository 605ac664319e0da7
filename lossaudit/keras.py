"""Keras integration: a loss's components as Keras metrics, its total as a Keras loss.

The seed write-up logged each part of its YOLO loss with ``tf.summary.scalar`` from inside the
loss, with a writer and a step counter of its own. Keras can do all of that once the parts are
metrics: ``model.fit`` shows them in its progress bar and History, and the stock
``keras.callbacks.TensorBoard`` callback writes each as its own curve (``epoch_<name>``, with the
epoch as the step), for training and validation alike. No summary code in the loss, no step to
get wrong::

    import keras
    import lossaudit.keras

    model.compile(
        optimizer="adam",
        loss=lossaudit.keras.total_of(yolo_loss),
        metrics=lossaudit.keras.component_metrics(yolo_loss),
    )
    model.fit(x, y, epochs=20, callbacks=[keras.callbacks.TensorBoard("logs")])

Works with a loss that returns a mapping of components (``{"coordinates": ..., ...}``) and with
one that only logs them via ``tf.summary.scalar`` (the seed's style); names map to roles exactly
as in an audit (:func:`lossaudit.components.role_for_name`). Needs Keras 3 with the TensorFlow
backend, which is imported when these functions are first called, never by ``import lossaudit``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

from lossaudit.calling import (
    capture_summaries,
    component_tensor,
    describe_exception,
    import_tensorflow,
    reported,
    unwrap_loss,
)
from lossaudit.components import (
    BASE_ROLES,
    RETURNED,
    base_roles,
    check_mapping,
    group,
    role_for_name,
)
from lossaudit.errors import InvalidArgument, LossError, did_you_mean, invalid
from lossaudit.spec import GridSpec, Obj, Scene

__all__ = ["component_metrics", "total_of"]

#: Roles a metric can show, in the order metrics are listed (reported names that map to no role
#: follow, in the order the loss reports them; ``total`` comes last when asked for).
_METRIC_ROLES = (*BASE_ROLES, "confidence")
#: The canonical grid the loss is probed on when no ``shape`` or ``sample`` is given:
#: ``(2, 2, 2, 1, 6)``, two images so a per-sample vector can be told from a scalar.
_PROBE_SPEC = GridSpec(batch=2, H=2, W=2, anchors=1, classes=1)


# -- checking arguments ----------------------------------------------------------------------------


def _check_keras_backend() -> None:
    import_tensorflow()  # quietly, before Keras imports it with all its start-up logging
    import keras

    if keras.backend.backend() != "tensorflow":
        raise invalid(
            "lossaudit.keras needs Keras's TensorFlow backend",
            "KERAS_BACKEND=tensorflow",
            f"backend={keras.backend.backend()!r}",
            "Set KERAS_BACKEND=tensorflow before importing Keras.",
            cls=InvalidArgument,
        )


# -- reading what the loss reports -----------------------------------------------------------------


def _metric_key(name: str) -> str:
    """A reported name as a metric name: characters Keras and TensorBoard tags accept."""
    return re.sub(r"[^0-9A-Za-z_.-]+", "_", name).strip("_") or "component"


def _group(
    named: Mapping[str, Any], mapping: Mapping[str, str]
) -> dict[str, list[tuple[str, Any]]]:
    """Reported values grouped by metric key: the role a name maps to (as in an audit, by
    :func:`lossaudit.components.group`), else the name itself."""
    grouped = group(named, mapping)
    groups = dict(grouped.parts)
    for name, value in grouped.unmapped.items():
        groups.setdefault(_metric_key(name), []).append((name, value))
    return groups


def _as_float(name: str, value: Any) -> Any:
    """A component as a float32 tensor of rank 0 or 1, or a :class:`LossError` saying why not."""
    t = component_tensor(name, value)
    if t.shape.rank is None or t.shape.rank > 1:
        raise LossError(
            f"component {name!r} has shape {tuple(t.shape)}: expected a scalar () or a "
            "per-sample vector (batch,); reduce the other axes inside the loss"
        )
    return t


def _batch_values(groups: Mapping[str, list[tuple[str, Any]]]) -> dict[str, Any]:
    """One scalar per metric key for this batch: per-sample vectors reduced by their mean (as
    Keras reduces a loss), several names of one role summed, ``total`` derived from the base
    roles when the loss reports none."""
    tf = import_tensorflow()
    values: dict[str, Any] = {}
    for key, parts in groups.items():
        scalars = []
        for name, value in parts:
            t = _as_float(name, value)
            scalars.append(tf.reduce_mean(t) if t.shape.rank == 1 else t)
        values[key] = tf.add_n(scalars) if len(scalars) > 1 else scalars[0]
    if "total" not in values:
        base = base_roles(values)
        if base:
            values["total"] = tf.add_n([values[r] for r in base])
    return values


def _call_quietly(fn: Callable[[Any, Any], Any], y_true: Any, y_pred: Any) -> tuple[Any, dict]:
    """Call the loss with every summary it writes suppressed, its scalars captured.

    ``record_if(False)`` silences the summaries :func:`capture_summaries` does not replace
    (histograms, images, text), so nothing reaches a default writer, whatever its step.
    """
    tf = import_tensorflow()
    captured: dict[str, Any] = {}
    with tf.summary.record_if(False), capture_summaries(captured):
        out = fn(y_true, y_pred)
    return out, captured


# -- discovering the components --------------------------------------------------------------------


def _probe_batch(shape: tuple[int, ...] | None) -> tuple[np.ndarray, np.ndarray]:
    """A small batch to call the loss on once: a canonical truth with one object where the shape
    is canonical ``(H, W, anchors, 5 + C)``, zeros otherwise; zero raw predictions."""
    if shape is None:
        spec = _PROBE_SPEC
    elif len(shape) == 4 and shape[3] >= 6:
        spec = GridSpec(batch=2, H=shape[0], W=shape[1], anchors=shape[2], classes=shape[3] - 5)
    else:
        zeros = np.zeros((2, *shape), dtype=np.float32)
        return zeros, zeros.copy()
    truth = Scene(spec, (Obj(0, 0, 0, 0, 0.5, 0.5, 0.25, 0.25, 0),)).truth()
    return truth, np.zeros_like(truth)


def _check_shape(shape: Any, sample: Any = None) -> tuple[int, ...] | None:
    if shape is not None and sample is not None:
        raise invalid(
            "both shape and sample are given",
            "at most one of them",
            f"shape={shape!r} and a sample",
            "Pass sample=(y_true, y_pred) alone; it says the shape.",
            cls=InvalidArgument,
        )
    if shape is None:
        return None
    try:
        dims = tuple(shape)
    except TypeError:
        dims = None
    if (
        not dims
        or not all(isinstance(d, int | np.integer) and not isinstance(d, bool) for d in dims)
        or min(dims) < 1
    ):
        raise invalid(
            "shape is not the shape of one sample",
            "a tuple of positive ints without the batch axis, e.g. (13, 13, 5, 25)",
            f"shape={shape!r}",
            "Pass shape=model.output_shape[1:].",
            cls=InvalidArgument,
        )
    return tuple(int(d) for d in dims)


def _probe(
    fn: Callable[[Any, Any], Any],
    mapping: Mapping[str, str],
    shape: tuple[int, ...] | None,
    sample: Any,
) -> tuple[dict[str, Any], list[str]]:
    """Call the loss once, eagerly, to learn which components it reports.

    Returns the probe's value of every metric key and the names the loss reported (for
    ``only=`` by reported name).
    """
    tf = import_tensorflow()
    if sample is not None:
        if not isinstance(sample, list | tuple) or len(sample) != 2:
            raise invalid(
                "sample is not a pair",
                "(y_true, y_pred): a batch like the ones fit passes to the loss",
                f"sample of type {type(sample).__name__}",
                "Pass e.g. sample=(y_train[:2], model.predict(x_train[:2])).",
                cls=InvalidArgument,
            )
        y_true, y_pred = sample
        where = "the given sample"
    else:
        y_true, y_pred = _probe_batch(shape)
        where = f"a probe batch of shape {y_pred.shape}"
    try:
        with tf.init_scope():  # eagerly, even when called while a graph is being built
            y_true = tf.cast(tf.convert_to_tensor(y_true), tf.float32)
            y_pred = tf.cast(tf.convert_to_tensor(y_pred), tf.float32)
            out, captured = _call_quietly(fn, y_true, y_pred)
    except Exception as exc:
        raise invalid(
            f"calling the loss on {where} to learn its components raised",
            "a loss that accepts y_true and y_pred of that shape",
            describe_exception(exc),
            "Pass shape=model.output_shape[1:] (one sample's shape) or "
            "sample=(y_true, y_pred) with a batch like the ones fit passes to the loss.",
            cls=InvalidArgument,
        ) from exc
    named = reported(out, captured)
    groups = _group(named, mapping)
    values = _batch_values(groups)  # types and shapes, checked now, not in the first step
    return values, [n for n in named if n != RETURNED]


def _select(
    values: Mapping[str, Any], reported: list[str], mapping: Mapping[str, str], only: Any
) -> list[str]:
    """The metric keys to build, in display order, from the probe's ``values`` by key."""
    keys = [r for r in _METRIC_ROLES if r in values]
    keys += [k for k in values if k not in _METRIC_ROLES and k != "total"]
    available = [*keys, "total"] if "total" in values else keys
    if only is None:
        if not keys:
            raise invalid(
                "the loss reports no components",
                "a loss that returns a mapping {name: value} or logs its parts with "
                "tf.summary.scalar(name, value)",
                f"only {'a total' if 'total' in values else 'nothing'}",
                "Return or log the components, or pass only=['total'] to track the total alone.",
                cls=InvalidArgument,
            )
        return keys
    if isinstance(only, str) or not isinstance(only, Iterable):
        raise invalid(
            "only is not a list of names",
            "a list of component names, e.g. only=['coordinates', 'objects']",
            f"only={only!r}",
            f"Wrap a single name in a list: only=[{only!r}].",
            cls=InvalidArgument,
        )
    alias = {}
    for name in reported:
        role = role_for_name(name, mapping)
        if role != "ignore":
            alias[name] = role or _metric_key(name)
    chosen: list[str] = []
    for entry in only:
        key = entry if entry in available else alias.get(entry) if isinstance(entry, str) else None
        if key is None:
            raise invalid(
                f"only names a component the loss does not report ({entry!r})",
                "one of " + ", ".join(available),
                f"only={list(only)!r}",
                "Use a role or a name the loss reports."
                + (did_you_mean(entry, [*available, *alias]) if isinstance(entry, str) else ""),
                cls=InvalidArgument,
            )
        if key not in chosen:
            chosen.append(key)
    return chosen


# -- the metrics -----------------------------------------------------------------------------------


class _SharedBatch:
    """Evaluates the loss once per batch for every metric built by one ``component_metrics``.

    Keras calls each metric's ``update_state`` in turn with the same ``y_true`` and ``y_pred``
    objects (symbolic tensors while the train step is traced, eager tensors when run eagerly),
    so the first metric computes every component and the others reuse them. The last inputs are
    held, so their ids cannot be reused by other tensors while they are cached; a different
    input object simply computes again.
    """

    def __init__(self, fn: Callable[[Any, Any], Any], mapping: Mapping[str, str], keys: list[str]):
        self._fn = fn
        self._mapping = dict(mapping)
        self._keys = list(keys)
        self._last: tuple[Any, Any, dict[str, Any]] | None = None

    def forget(self) -> None:
        self._last = None

    def values(self, y_true: Any, y_pred: Any) -> dict[str, Any]:
        last = self._last
        if last is not None and last[0] is y_true and last[1] is y_pred:
            return last[2]
        tf = import_tensorflow()
        # The loss sees what Keras gives a compiled loss: both tensors cast to float32.
        out, captured = _call_quietly(
            self._fn, tf.cast(y_true, tf.float32), tf.cast(y_pred, tf.float32)
        )
        values = _batch_values(_group(reported(out, captured), self._mapping))
        missing = [k for k in self._keys if k not in values]
        if missing:
            raise LossError(
                f"the loss did not report {', '.join(map(repr, missing))} in this step, though "
                "it did when component_metrics probed it: report every component on every call"
            )
        self._last = (y_true, y_pred, values)
        return values


@functools.cache
def _metric_class() -> type:
    import keras

    class ComponentMean(keras.metrics.Metric):
        """The epoch mean of one component a loss reports, weighted by batch size like Keras's
        own ``loss``. Built by :func:`component_metrics`."""

        def __init__(self, shared: _SharedBatch, key: str, name: str, dtype: str = "float32"):
            super().__init__(name=name, dtype=dtype)
            self._shared = shared
            self.key = key
            self.total = self.add_variable(shape=(), initializer="zeros", name="total")
            self.count = self.add_variable(shape=(), initializer="zeros", name="count")

        def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
            # sample_weight is ignored: the value is the loss's own number for the batch.
            value = keras.ops.cast(self._shared.values(y_true, y_pred)[self.key], self.dtype)
            size = keras.ops.cast(keras.ops.shape(y_pred)[0], self.dtype)
            self.total.assign_add(value * size)
            self.count.assign_add(size)

        def result(self) -> Any:
            return keras.ops.divide_no_nan(self.total, self.count)

        def reset_state(self) -> None:
            super().reset_state()
            self._shared.forget()

    ComponentMean.__module__ = __name__
    ComponentMean.__qualname__ = "ComponentMean"
    return ComponentMean


def component_metrics(
    loss: Any,
    *,
    components: Mapping[str, str] | None = None,
    only: Iterable[str] | None = None,
    prefix: str = "",
    shape: tuple[int, ...] | None = None,
    sample: tuple[Any, Any] | None = None,
) -> list[Any]:
    """Keras metrics, one per component of ``loss``, for ``model.compile(metrics=...)``.

    ``model.fit`` then shows each component in its progress bar and History (``val_<name>``
    too, given validation data), and ``keras.callbacks.TensorBoard`` writes each as its own
    curve, ``epoch_<name>`` with the epoch as the step. The loss needs no summary code: its
    components are read from a returned mapping or captured from its ``tf.summary.scalar``
    calls, which write nothing (no summary inside the metrics reaches a writer).

    **Names.** A component is named by its role where its name maps to one (``coordinates``,
    ``objects``, ``no_objects``, ``classification``, ``confidence``; see
    :func:`lossaudit.components.role_for_name`), else by the name the loss reports. Names that map
    to one role are summed, as in an audit. By default every component except ``total`` gets a
    metric (Keras already shows the loss as ``loss``), roles first in that order.

    **Values.** Each batch, the loss is called once, with the same ``y_true`` and ``y_pred``
    Keras gives the compiled loss (the model's output, whatever its shape, cast to float32); a
    per-sample component ``(batch,)`` is reduced by its mean. A metric's epoch value is the mean
    over the epoch's batches of the component as the loss reports it, weighted by batch size
    exactly as Keras averages ``loss`` (with equal batches, the plain mean over batches), so
    components add up to ``loss`` the way the loss adds them. ``sample_weight`` is ignored.

    Args:
        loss: ``loss(y_true, y_pred)``, a Keras ``Loss`` instance (its ``call`` is used, so a
            returned mapping survives) or anything callable the same way. It is called on the
            tensors the model outputs, e.g. ``(batch, H, W, anchors, 5 + C)``; a model whose
            head outputs ``(batch, H, W, anchors * (5 + C))`` needs a loss that reshapes, or a
            ``Reshape`` layer at the end of the model.
        components: ``{reported_name: role}``, overriding the name heuristic; role ``ignore``
            drops a name. Same meaning as ``lossaudit.audit(components=...)``.
        only: names of the metrics to build: roles, names the loss reports, or ``total``.
        prefix: put before every metric name, e.g. ``"loss_"`` for ``loss_coordinates``
            (TensorBoard tag ``epoch_loss_coordinates``). Default none.
        shape: one sample's shape, without the batch axis (``model.output_shape[1:]``). The
            loss is called once, eagerly, when the metrics are built, to learn which components
            it reports; by default on a canonical ``(2, 2, 2, 1, 6)`` batch.
        sample: ``(y_true, y_pred)``, a batch to learn the components from instead, for a loss
            whose ``y_true`` and ``y_pred`` differ in shape.

    Returns:
        A list of ``keras.metrics.Metric``; combine with others as
        ``metrics=[*component_metrics(loss), "mae"]``.

    Raises:
        InvalidArgument: a wrong argument, a loss that reports no components, or a loss that
            raises on the probe batch (the message says which shape to pass).
        LossError: the loss returned something unusable (a component of rank 2, a string ...).

    Example:
        >>> from lossaudit.examples.seed import seed_loss  # doctest: +SKIP
        >>> [m.name for m in component_metrics(seed_loss)]  # doctest: +SKIP
        ['coordinates', 'objects', 'no_objects', 'classification', 'confidence']
        >>> model.compile("adam", loss=total_of(seed_loss), metrics=component_metrics(seed_loss))  # doctest: +SKIP
    """
    fn = unwrap_loss(loss)
    mapping = check_mapping(components)
    if not isinstance(prefix, str):
        raise invalid(
            "prefix is not a string",
            'a str such as "loss_"',
            f"prefix={prefix!r}",
            'Pass prefix="" for bare component names.',
            cls=InvalidArgument,
        )
    shape = _check_shape(shape, sample)
    _check_keras_backend()
    values, reported = _probe(fn, mapping, shape, sample)
    keys = _select(values, reported, mapping, only)
    shared = _SharedBatch(fn, mapping, keys)
    metric = _metric_class()
    return [metric(shared, key, name=f"{prefix}{key}") for key in keys]


def total_of(
    loss: Any, *, components: Mapping[str, str] | None = None
) -> Callable[[Any, Any], Any]:
    """The loss's total as a Keras loss, for ``model.compile(loss=...)``.

    Keras cannot train on a loss that returns a mapping; this returns ``loss(y_true, y_pred)``'s
    ``total`` entry (any name that maps to ``total``), or, when it has none, the sum of its
    components (a combined ``confidence`` counts unless ``objects`` and ``no_objects`` are both
    reported, as in an audit). Per-sample components stay per-sample ``(batch,)`` for Keras to
    reduce by its mean. A loss that returns a scalar or a vector is passed through unchanged.

    Either way every summary the loss writes itself is suppressed, so the seed's
    ``tf.summary.scalar`` calls with their broken step reach no writer; the values are still
    there to see through :func:`component_metrics`.

    Raises :class:`InvalidArgument`, when the loss is called, for a returned name that maps to
    no role (is it part of the total?): map it with ``components={name: role}``, ``ignore`` to
    leave it out.

    Example:
        >>> from fixtures.losses.references import mse_loss  # doctest: +SKIP
        >>> model.compile("adam", loss=total_of(mse_loss), metrics=component_metrics(mse_loss))  # doctest: +SKIP
    """
    fn = unwrap_loss(loss)
    mapping = check_mapping(components)

    def total(y_true: Any, y_pred: Any) -> Any:
        out, _captured = _call_quietly(fn, y_true, y_pred)
        if not isinstance(out, Mapping):
            reported(out, {})  # None or a tuple: say so plainly
            return out
        tf = import_tensorflow()
        grouped = group(reported(out, {}), mapping)
        summed = grouped.parts.get("total")
        if summed is None:
            if grouped.unmapped:
                raise invalid(
                    "total_of cannot tell whether a returned component belongs to the total",
                    "names that map to a role (" + ", ".join(_METRIC_ROLES) + ") or a total entry",
                    ", ".join(map(repr, grouped.unmapped)),
                    "Map each with components={name: role}, or {name: 'ignore'} to leave it out.",
                    cls=InvalidArgument,
                )
            keep = base_roles(grouped.parts)
            if not keep:
                raise LossError(
                    f"the loss returned no component to add up: got {sorted(map(str, out))}"
                )
            summed = [part for role in keep for part in grouped.parts[role]]
        parts = [_as_float(name, value) for name, value in summed]
        return functools.reduce(tf.add, parts)

    name = getattr(loss, "__name__", None) or getattr(loss, "name", None) or type(loss).__name__
    total.__name__ = total.__qualname__ = f"{name}_total"
    total.__doc__ = f"The total of {name}, for model.compile(loss=...)."
    return total
