"""YAD2K's convention (the course's ``yolo_loss``, the seed write-up's loss).

``yolo_loss(args, anchors, num_classes, rescore_confidence=False, print_loss=False)`` with
``args = (yolo_output, true_boxes, detectors_mask, matching_true_boxes)``:

- ``yolo_output``: the raw conv output, ``(batch, H, W, B * (5 + C))``;
- ``true_boxes``: ``(batch, T, 5)``, image-relative centre x, y and size w, h, then the class
  index; zero rows pad each image's list (YAD2K pads to the busiest image);
- ``detectors_mask``: ``(batch, H, W, B, 1)``, 1 on the anchor responsible for a box;
- ``matching_true_boxes``: ``(batch, H, W, B, 5)``: the cell offset x, y,
  ``log(w * W / anchor_w)``, ``log(h * H / anchor_h)`` and the class index;
- ``anchors``: ``(B, 2)`` widths and heights in grid cells; ``num_classes``: C.

The loss applies sigmoid to x, y and the confidence, ``exp`` to w, h (times the anchor, over the
grid) and softmax to the classes, and returns one scalar. Its terms are read from what it
prints with ``print_loss=True`` (``tf.print`` or TF1's ``tf.Print``, message
``"yolo_loss, conf_loss, class_loss, box_coord_loss:"``), passed when its signature takes it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from lossaudit.layouts.base import Frame, Layout, accepts, box_list, detector_mask, flat
from lossaudit.spec import Scene

__all__ = ["YAD2K", "true_box_slots"]


def true_box_slots(scene: Scene) -> int:
    """Rows of the padded true-box list: room for the busiest image, at least
    ``min(20, H * W * B)`` so most scenes of one grid share one shape (one trace)."""
    spec = scene.spec
    busiest = max((sum(o.b == b for o in scene.objects) for b in range(spec.batch)), default=0)
    return max(busiest, min(20, spec.H * spec.W * spec.anchors))


def _encode(scene: Scene, frame: Frame) -> dict[str, np.ndarray]:
    spec = scene.spec
    anchors = frame.anchors("grid")
    matching = np.zeros((*spec.shape[:4], 5), dtype=np.float32)
    for o in scene.objects:
        aw, ah = anchors[o.a]
        matching[o.slot] = (
            o.x,
            o.y,
            np.log(max(o.w * spec.W, 1e-12) / aw),
            np.log(max(o.h * spec.H, 1e-12) / ah),
            o.cls,
        )
    return {
        "true_boxes": box_list(scene, true_box_slots(scene)),
        "detectors_mask": detector_mask(scene),
        "matching_true_boxes": matching,
    }


def _call(loss: Callable[..., Any], truth: Mapping[str, Any], y_pred: Any, frame: Frame) -> Any:
    args = [
        flat(y_pred),
        truth["true_boxes"],
        truth["detectors_mask"],
        truth["matching_true_boxes"],
    ]
    keywords = dict(frame.keywords)
    if accepts(loss, "print_loss"):
        keywords.setdefault("print_loss", True)
    return loss(args, frame.anchors("grid"), frame.spec.classes, **keywords)


YAD2K = Layout(
    "yad2k",
    _encode,
    _call,
    components={
        "yolo_loss": "ignore",  # printed beside its terms: the returned total itself
        "conf_loss": "confidence",
        "class_loss": "classification",
        "box_coord_loss": "coordinates",
    },
    hands_anchors=True,
    anchor_unit="grid",
    codec={"xy": "sigmoid", "wh": "exp", "obj": "sigmoid", "cls": "softmax"},
    summary="yolo_loss(args, anchors, num_classes), args = (conv output (N, H, W, B*(5+C)), "
    "true boxes (N, T, 5), detectors mask, matching boxes); anchors in grid cells; "
    "terms read from print_loss",
)
