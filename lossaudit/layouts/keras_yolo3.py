"""qqwweee/keras-yolo3's convention: three scales (two for tiny YOLOv3) in one call.

``yolo_loss(args, anchors, num_classes, ignore_thresh=.5, print_loss=False)`` with
``args = [*yolo_outputs, *y_true]``, coarse to fine (13, 26, 52 for a 416-pixel input):

- ``yolo_outputs[l]``: raw conv output ``(batch, H_l, W_l, 3 * (5 + C))``;
- ``y_true[l]``: ``(batch, H_l, W_l, 3, 5 + C)``: image-relative centre x, y and size w, h,
  confidence 1, one-hot classes, on the anchor each box was assigned to;
- ``anchors``: every anchor ``(9, 2)`` (``(6, 2)`` for tiny) in input pixels, smallest first;
  scale ``l`` uses ``anchor_mask[l]``: ``[6, 7, 8], [3, 4, 5], [0, 1, 2]`` (tiny:
  ``[3, 4, 5], [1, 2, 3]``); the input size is 32 times the first grid.

The loss returns one scalar (every term summed over the batch and divided by its size, summed
over scales); with ``print_loss`` it prints ``loss, xy_loss, wh_loss, confidence_loss,
class_loss, ignore_mask_sum`` once per scale, which lossaudit reads (summed over scales).

lossaudit audits one scale at a time: the scene's objects sit on the audited scale, every other
scale has no objects and confident "no object" predictions (constants), so each scale's
properties hold on their own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from lossaudit.errors import invalid
from lossaudit.layouts.base import Frame, Layout, accepts, flat
from lossaudit.spec import CLS0, Scene

__all__ = ["KERAS_YOLO3"]

#: Which anchors each scale uses, by anchor count, coarse scale first (the repository's masks).
MASKS = {
    (9, 3): ((6, 7, 8), (3, 4, 5), (0, 1, 2)),
    (6, 2): ((3, 4, 5), (1, 2, 3)),
}


def _groups(anchors: int, scales: int) -> tuple[tuple[int, ...], ...]:
    if (anchors, scales) not in MASKS:
        raise invalid(
            "keras-yolo3 takes 9 anchors for 3 scales or 6 for 2 (tiny)",
            "9 anchors with --scales 13,26,52, or 6 with --scales 13,26",
            f"{anchors} anchors for {scales} scales",
            "Give the model's anchors file (--anchors-file model_data/yolo_anchors.txt).",
        )
    return MASKS[(anchors, scales)]


def _y_true(scene: Scene) -> np.ndarray:
    spec = scene.spec
    y = np.zeros(spec.shape, dtype=np.float32)
    for o in scene.objects:
        y[o.slot][:5] = ((o.j + o.x) / spec.W, (o.i + o.y) / spec.H, o.w, o.h, 1.0)
        y[(*o.slot, CLS0 + o.cls)] = 1.0
    return y


def _encode(scene: Scene, frame: Frame) -> dict[str, np.ndarray]:
    out = {}
    for k in range(len(frame.scales)):
        if k == frame.scale:
            out[f"y_true_{k}"] = _y_true(scene)
        else:
            out[f"y_true_{k}"] = np.zeros(frame.spec_of(k).shape, dtype=np.float32)
    return out


def _call(loss: Callable[..., Any], truth: Mapping[str, Any], y_pred: Any, frame: Frame) -> Any:
    import tensorflow as tf

    outputs = []
    for k in range(len(frame.scales)):
        if k == frame.scale:
            outputs.append(flat(y_pred))
        else:
            outputs.append(flat(tf.constant(frame.empty_outputs(k))))
    args = [*outputs, *(truth[f"y_true_{k}"] for k in range(len(frame.scales)))]
    keywords = dict(frame.keywords)
    if accepts(loss, "print_loss"):
        keywords.setdefault("print_loss", True)
    return loss(args, frame.all_anchors("pixels"), frame.spec.classes, **keywords)


KERAS_YOLO3 = Layout(
    "keras-yolo3",
    _encode,
    _call,
    components={
        "loss": "ignore",  # printed running total
        "xy_loss": "coordinates",
        "wh_loss": "coordinates",
        "confidence_loss": "confidence",
        "class_loss": "classification",
        "ignore_mask_sum": "ignore",
    },
    hands_anchors=True,
    anchor_unit="pixels",
    codec={"xy": "sigmoid", "wh": "exp", "obj": "sigmoid", "cls": "sigmoid"},
    summary="yolo_loss(args, anchors, num_classes), args = [*outputs (N, H, W, 3*(5+C)), "
    "*y_true (N, H, W, 3, 5+C) image-relative]; 3 scales (2 tiny), anchors in pixels; terms "
    "read from print_loss",
    anchor_groups=_groups,
    scales=(2, 3),
    print_names=("loss", "xy_loss", "wh_loss", "confidence_loss", "class_loss", "ignore_mask_sum"),
)
