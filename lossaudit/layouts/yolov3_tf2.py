"""zzh8829/yolov3-tf2's convention: ``YoloLoss(anchors, classes, ignore_thresh)`` per scale.

``YoloLoss(anchors, classes=80, ignore_thresh=0.5)`` is a factory: it returns
``yolo_loss(y_true, y_pred)`` for one scale, with

- ``y_pred``: the raw output of that scale, 5-D ``(batch, g, g, 3, 5 + C)``;
- ``y_true``: ``(batch, g, g, 3, 6)``: the image-relative corners x1, y1, x2, y2 of the box
  an anchor is responsible for, then obj (1 there, else 0) and the class index (what the
  repository's ``transform_targets`` writes);
- ``anchors``: ``(3, 2)`` widths and heights as image fractions (the repository divides its
  pixel anchors by 416);
- the return: the per-sample loss, a vector ``(batch,)`` (x, y, w, h, obj and class terms
  summed over the cells of each image; no components).

The loss applies sigmoid to x, y, binary cross entropy from logits to obj and sparse softmax
cross entropy to the classes (so with one class the class term is constant), compares w, h as
``log(w / anchor)``, weights
boxes by ``2 - w * h`` and ignores empty anchors whose best IoU with the image's true boxes
exceeds ``ignore_thresh``. It reads one grid size from its input's shape, so the convention
assumes square grids: an audit on an H != W grid is refused (``--grid 13``, not ``13x9``).

**Pointing lossaudit at the loss.** The target is the factory, as the repository defines it
(``models.py:YoloLoss``); lossaudit builds the loss once per audit as
``YoloLoss(anchors, classes, **loss_args)``, with the anchors from ``--anchor-sizes`` (image
fractions, one W,H per anchor) and ``classes`` from ``--classes``, so the anchors are
declared once. ``--loss-arg ignore_thresh=0.7`` reaches the factory. A target that already is
a ``loss(y_true, y_pred)`` (a module-level ``loss = YoloLoss(...)``) is called as it is; its
anchors must then agree with ``--anchor-sizes``. Example::

    lossaudit report yolov3_tf2/models.py:YoloLoss --layout yolov3-tf2 --grid 13 \\
        --anchor-sizes 0.0240,0.0312 0.0385,0.0721 0.0793,0.0553 --classes 80
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from lossaudit.errors import LossError, TargetError
from lossaudit.layouts.base import Frame, Layout
from lossaudit.spec import Scene

__all__ = ["YOLOV3_TF2"]


def _encode(scene: Scene, frame: Frame) -> dict[str, np.ndarray]:
    spec = scene.spec
    y_true = np.zeros((*spec.shape[:4], 6), dtype=np.float32)
    for o in scene.objects:
        x, y = (o.j + o.x) / spec.W, (o.i + o.y) / spec.H
        y_true[o.slot] = (x - o.w / 2, y - o.h / 2, x + o.w / 2, y + o.h / 2, 1.0, o.cls)
    return {"y_true": y_true}


def _takes_truth(target: Any) -> bool:
    """True when ``target`` already is ``loss(y_true, y_pred)`` (not the factory)."""
    if hasattr(target, "call") and not inspect.isfunction(target):
        return True  # a Keras Loss instance
    try:
        names = set(inspect.signature(target).parameters)
    except (TypeError, ValueError):
        return False
    return {"y_true", "y_pred"} <= names


def _build(target: Any, frame: Frame) -> Any:
    if _takes_truth(target):
        return target
    anchors, classes = frame.anchors("image"), frame.spec.classes
    how = (
        f"YoloLoss(anchors, {classes}{''.join(f', {k}={v!r}' for k, v in frame.keywords.items())})"
    )
    try:
        loss = target(anchors, classes, **frame.keywords)
    except Exception as exc:
        raise TargetError(
            f"layout 'yolov3-tf2' builds the loss as {how} with anchors {anchors.tolist()} "
            f"(image fractions): that raised {type(exc).__name__}: {exc}. Point at the factory "
            "YoloLoss(anchors, classes, ignore_thresh) (e.g. models.py:YoloLoss), and give "
            "--loss-arg only for its keyword arguments."
        ) from exc
    if not callable(loss):
        raise TargetError(
            f"layout 'yolov3-tf2' builds the loss as {how}: expected it to return "
            f"loss(y_true, y_pred); received a {type(loss).__name__}. Point at the factory "
            "YoloLoss (e.g. models.py:YoloLoss) or at a loss(y_true, y_pred) it returned."
        )
    return loss


def _call(loss: Callable[..., Any], truth: Mapping[str, Any], y_pred: Any, frame: Frame) -> Any:
    h, w = frame.spec.H, frame.spec.W
    if h != w:  # refused up front; a property asking for another grid must keep it square
        raise LossError(
            f"layout 'yolov3-tf2' assumes square grids; asked for {h}x{w}. Use a square --grid."
        )
    return loss(truth["y_true"], y_pred)


YOLOV3_TF2 = Layout(
    "yolov3-tf2",
    _encode,
    _call,
    anchor_unit="image",
    codec={"xy": "sigmoid", "wh": "exp", "obj": "sigmoid", "cls": "softmax"},
    square=True,
    build=_build,
    summary="YoloLoss(anchors, classes, ignore_thresh) -> loss(y_true, y_pred), one scale: "
    "y_pred (N, g, g, 3, 5+C) raw, y_true (N, g, g, 3, 6) image-relative corners, obj, class "
    "index; anchors as image fractions; per-sample return; square grids; the target is the "
    "factory",
)
