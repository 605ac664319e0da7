"""The canonical layout: ``loss(y_true, y_pred)`` on the grid lossaudit generates.

``y_true`` is :meth:`~lossaudit.spec.Scene.truth` (cell-offset x, y; image-fraction w, h; obj;
one-hot classes) and ``y_pred`` the raw predictions, both ``(batch, H, W, anchors, 5 + C)``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from lossaudit.layouts.base import Frame, Layout
from lossaudit.spec import Scene

__all__ = ["CANONICAL"]


def _encode(scene: Scene, frame: Frame) -> dict[str, np.ndarray]:
    return {"y_true": scene.truth()}


def _call(loss: Callable[..., Any], truth: Mapping[str, Any], y_pred: Any, frame: Frame) -> Any:
    return loss(truth["y_true"], y_pred)


CANONICAL = Layout(
    "canonical",
    _encode,
    _call,
    summary="loss(y_true, y_pred), both (batch, H, W, B, 5 + C); cell-offset x, y, "
    "image-fraction w, h, obj, one-hot classes",
)
