"""YunYang1994's TensorFlow 2 YOLOv3 convention: ``compute_loss(pred, conv, label, bboxes, i)``.

One call per scale ``i`` (0 is the finest grid, stride 8; 1 stride 16; 2 stride 32):

- ``conv``: the raw conv output ``(batch, g, g, 3 * (5 + C))``;
- ``pred``: ``conv`` decoded by the model (``decode``): centre ``(sigmoid(t) + cell) * stride``
  and size ``exp(t) * anchor * stride`` in input pixels (``t`` clipped to +-20 first, so
  lossaudit's extreme probes do not overflow the model's part), sigmoid confidence and classes;
- ``label``: ``(batch, g, g, 3, 5 + C)``: centre and size in input pixels, confidence 1 and
  label-smoothed classes (``onehot * 0.99 + 0.01 / C``, the repository's dataset);
- ``bboxes``: ``(batch, 150, 4)``: the boxes of each image, centre and size in pixels.

The loss reads ``NUM_CLASS``, ``STRIDES``, ``ANCHORS`` (per scale, in that scale's grid cells)
and ``IOU_LOSS_THRESH`` from its module; lossaudit sets the first three to the audited spec for
the duration of each call (and restores them), so anchors and classes are declared once, in
lossaudit's options. It returns ``(giou_loss, conf_loss, prob_loss)``, each a batch mean. The
grid is square (the loss reads one ``output_size``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from lossaudit.layouts.base import Frame, Layout, box_list, flat
from lossaudit.spec import CLS0, Scene

__all__ = ["YUNYANG"]

#: Label smoothing of the repository's dataset.
SMOOTHING = 0.01
#: Rows of the per-image box list (the repository's ``max_bbox_per_scale``).
MAX_BOXES = 150
#: Raw w, h are clipped to this before ``exp`` in the decode (see :func:`_decode`).
WH_CLIP = 20.0


def _label(scene: Scene, frame: Frame) -> np.ndarray:
    spec = scene.spec
    down, across = frame.stride
    height, width = frame.input_size
    label = np.zeros(spec.shape, dtype=np.float32)
    uniform = SMOOTHING / spec.classes
    for o in scene.objects:
        centre = ((o.j + o.x) * across, (o.i + o.y) * down)
        label[o.slot][:5] = (*centre, o.w * width, o.h * height, 1.0)
        label[o.slot][CLS0:] = uniform
        label[(*o.slot, CLS0 + o.cls)] += 1.0 - SMOOTHING
    return label


def _encode(scene: Scene, frame: Frame) -> dict[str, np.ndarray]:
    height, width = frame.input_size
    boxes = box_list(scene, MAX_BOXES, scale=(width, height))[..., :4]
    return {"label": _label(scene, frame), "bboxes": np.ascontiguousarray(boxes)}


def _decode(y_pred: Any, frame: Frame) -> Any:
    """The model's ``decode``: canonical raw predictions to pixel boxes and probabilities."""
    import tensorflow as tf

    spec = frame.spec
    down, across = frame.stride
    cols = tf.reshape(tf.range(spec.W, dtype=tf.float32), [1, 1, spec.W, 1, 1])
    rows = tf.reshape(tf.range(spec.H, dtype=tf.float32), [1, spec.H, 1, 1, 1])
    cell = tf.concat([cols + 0 * rows, rows + 0 * cols], axis=-1)
    stride = tf.constant([across, down], tf.float32)
    anchors = tf.constant(frame.anchors("pixels").reshape(1, 1, 1, spec.anchors, 2))
    xy = (tf.sigmoid(y_pred[..., 0:2]) + cell) * stride
    # Clipped before exp: lossaudit probes raw sizes of +-100, where the model's own decode
    # overflows; that would be the model's inf, not the loss's.
    wh = tf.exp(tf.clip_by_value(y_pred[..., 2:4], -WH_CLIP, WH_CLIP)) * anchors
    return tf.concat([xy, wh, tf.sigmoid(y_pred[..., 4:])], axis=-1)


def _call(loss: Callable[..., Any], truth: Mapping[str, Any], y_pred: Any, frame: Frame) -> Any:
    module = getattr(loss, "__globals__", {})
    grids = frame.scales
    strides = [frame.input_size[1] / w for _, w in grids]
    anchors = [frame.anchors_of(k, "grid") for k in range(len(grids))]
    settings = {
        "NUM_CLASS": frame.spec.classes,
        "STRIDES": np.array(strides, dtype=np.float32),
        "ANCHORS": np.array(anchors, dtype=np.float32),
    }
    saved = {name: module[name] for name in settings if name in module}
    module.update(settings)
    try:
        return loss(
            _decode(y_pred, frame),
            flat(y_pred),
            truth["label"],
            truth["bboxes"],
            frame.scale,
            **dict(frame.keywords),
        )
    finally:
        for name in settings:
            if name in saved:
                module[name] = saved[name]
            else:
                module.pop(name, None)


YUNYANG = Layout(
    "yunyang",
    _encode,
    _call,
    returns=("giou_loss", "conf_loss", "prob_loss"),
    hands_anchors=True,
    anchor_unit="grid",
    codec={"xy": "sigmoid", "wh": "exp", "obj": "sigmoid", "cls": "sigmoid"},
    square=True,
    summary="compute_loss(pred, conv, label, bboxes, i) per scale (finest first); label and "
    "boxes in input pixels, label-smoothed classes; anchors in each scale's grid cells; "
    "returns (giou, conf, prob)",
    scales=(1, 2, 3),
)
