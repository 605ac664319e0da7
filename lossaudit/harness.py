"""The training harness: short optimisations of a loss's total, every component recorded.

``*.trains``, ``*.not_drowned`` and the balance table ask what happens to each component when
the total is minimised. :func:`train` answers with Adam, either on the predictions themselves
(free predictions) or through a tiny convolutional head whose weights every term shares, as
in a real detector. It evaluates the loss through the adapter's forward pass and per-component
gradients (:meth:`lossaudit.adapter.Adapter.component_gradients`), so a training run reads the
same components an audit does. TensorFlow and Keras are imported inside the functions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from lossaudit.adapter import Adapter
from lossaudit.calling import describe_exception, import_tensorflow, own_function
from lossaudit.errors import InvalidArgument, LossError, invalid
from lossaudit.spec import Scene

__all__ = ["Training", "train"]


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


def _predictor(
    shape: tuple[int, ...], start: np.ndarray | None, images: np.ndarray | None, seed: int
) -> tuple[str, list[Any], Callable[[], Any]]:
    """``(model name, trained parameters, predict())``: the predictions themselves as variables
    (``start``), or a convolutional head over ``images``."""
    tf = import_tensorflow()
    if images is None:
        assert start is not None
        var = tf.Variable(start.astype(np.float32))
        return "free", [var], lambda: tf.identity(var)
    net = _head(shape, images.shape[-1], seed)
    images_t = tf.constant(images, tf.float32)
    return "conv head", list(net.trainable_variables), lambda: net(images_t, training=True)


def _train(
    adapter: Adapter,
    scene: Scene,
    start: np.ndarray | None,
    images: np.ndarray | None,
    *,
    steps: int,
    learning_rate: float,
    seed: int,
) -> Training:
    tf = import_tensorflow()
    import keras

    forward = adapter.forward()
    eager = adapter.graph_error is not None
    truth = {k: tf.constant(v) for k, v in adapter.inputs(scene).items()}
    model, params, predict = _predictor(scene.spec.shape, start, images, seed)
    optimizer = keras.optimizers.Adam(learning_rate)
    # Its slots made now, not inside the first traced step: a step that creates variables is
    # traced twice.
    optimizer.build(params)

    def grads_of_components() -> Any:
        (_, scalars, _, _), by_source = adapter.component_gradients(
            lambda: forward(truth, predict()), params
        )
        per_role = {
            role: tf.concat(
                [
                    tf.reshape(g, [-1]) if g is not None else tf.zeros([int(np.prod(p.shape))])
                    for g, p in zip(gs, params, strict=True)
                ],
                0,
            )
            for role, gs in by_source.items()
        }
        return scalars, per_role

    def step() -> Any:
        with tf.GradientTape() as tape:
            scalars = forward(truth, predict())[1]
        gs = tape.gradient(scalars["total"], params)
        pairs = [(g, p) for g, p in zip(gs, params, strict=True) if g is not None]
        if pairs:  # a total that does not depend on the predictions (a constant) moves nothing
            optimizer.apply_gradients(pairs)
        return scalars

    if not eager:
        # Only the step is traced: it runs hundreds of times. The components' gradients are
        # taken once per run, and one eager pass costs a fraction of tracing the loss again.
        step = own_function(step)
    history: dict[str, list[float]] = {}
    param_grads: dict[str, np.ndarray] = {}
    error = None
    final = np.zeros(scene.spec.shape, dtype=np.float32)
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
    scene: Scene,
    *,
    start: np.ndarray | None = None,
    images: np.ndarray | None = None,
    steps: int = 60,
    learning_rate: float = 0.05,
    seed: int = 0,
) -> Training:
    """Minimise the loss's total on ``scene`` with Adam for ``steps`` steps and record every
    component (the truth goes to the loss as its layout encodes it).

    With ``start`` the predictions themselves are the variables (free predictions); with
    ``images`` a tiny convolutional head (:func:`_head`) maps them to predictions, so gradients
    pass through real layers with shared weights. Traced once per call with ``tf.function``
    unless the loss cannot be traced (then eagerly); the components' gradients at the start,
    taken once, run eagerly.
    """
    if (start is None) == (images is None):
        raise invalid(
            "train() got both or neither of start= and images=",
            "exactly one: start= (free predictions) or images= (a convolutional head)",
            f"start={'given' if start is not None else None}, "
            f"images={'given' if images is not None else None}",
            "Pass one of them.",
            cls=InvalidArgument,
        )
    import keras

    if keras.config.backend() != "tensorflow":
        raise LossError(
            f"training diagnostics need Keras's TensorFlow backend; KERAS_BACKEND is "
            f"{keras.config.backend()!r}"
        )
    return _train(
        adapter, scene, start, images, steps=steps, learning_rate=learning_rate, seed=seed
    )
