"""experiencor/keras-yolo2's convention: the ``YOLO.custom_loss(y_true, y_pred)`` method.

The loss is a method that reads its configuration from its object:

- ``y_pred``: the raw output, 5-D ``(batch, H, W, nb_box, 4 + 1 + C)``;
- ``y_true``: the same shape, in grid units: x, y the box centre in absolute grid units
  (cell index + offset), w, h the size in grid cells, conf 1 on the responsible anchor, then
  the one-hot classes (what the repository's ``BatchGenerator`` writes);
- ``self.true_boxes``: the model's second input, ``(batch, 1, 1, 1, T, 4)``: each image's true
  boxes as centre x, y and size w, h in grid units, zero rows after the last;
- ``self.grid_h``, ``self.grid_w``, ``self.nb_box``, ``self.nb_class``, ``self.batch_size``;
  ``self.anchors`` a flat list ``[w0, h0, w1, h1, ...]`` in grid cells; ``self.class_wt`` one
  weight per class; ``self.object_scale``, ``self.no_object_scale``, ``self.coord_scale``,
  ``self.class_scale``, ``self.warmup_bs`` and ``self.debug`` from ``train()``.

It applies sigmoid to x, y (plus the cell offset), ``exp(w, h) * anchor``, sigmoid to the
confidence with an IoU-rescored target and sparse softmax cross entropy to the classes, divides
each term by its count of positive anchors and returns one scalar; with ``debug`` it prints its
terms (``Loss XY``, ``Loss WH``, ``Loss Conf``, ``Loss Class``), which become the components.

**Pointing lossaudit at the loss.** The target is the method on its class,
``frontend.py:YOLO.custom_loss``: lossaudit makes an object of that class *without* running its
constructor (which builds the network) and sets the attributes above from the options: the
grid, anchors (``--anchor-sizes`` in grid cells), classes and batch from the spec, the
``true_boxes`` tensor from the scene on every call, ``debug = True`` so the terms are read, and
the scales (defaults 5, 1, 1, 1 as in the repository's ``config.json``) and ``warmup_bs = 0``
unless the class sets them. ``--loss-arg NAME=VALUE`` sets any attribute
(``--loss-arg warmup_bs=3``). A bound method (``module:yolo.custom_loss`` of an object you
built) is used with its object, the same attributes set on it. Example::

    lossaudit report frontend.py:YOLO.custom_loss --layout keras-yolo2 --grid 13 \\
        --anchor-sizes 0.57,0.68 1.87,2.06 3.34,5.47 7.88,3.53 9.77,9.17 --classes 20

The repository's own ``custom_loss`` builds its cell grid by transposing, which assumes a
square grid: on an H != W grid it fails with a shape error, and the message says to use a
square ``--grid``.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from lossaudit.errors import LossError, TargetError
from lossaudit.layouts.base import Frame, Layout, box_list
from lossaudit.layouts.yad2k import true_box_slots
from lossaudit.spec import Scene

__all__ = ["KERAS_YOLO2"]

#: What ``train()`` sets, as the repository's ``config.json`` gives it; kept when the class
#: defines its own.
DEFAULTS: dict[str, Any] = {
    "object_scale": 5.0,
    "no_object_scale": 1.0,
    "coord_scale": 1.0,
    "class_scale": 1.0,
    "warmup_bs": 0,
}


def _encode(scene: Scene, frame: Frame) -> dict[str, np.ndarray]:
    spec = scene.spec
    y_true = np.zeros(spec.shape, dtype=np.float32)
    for o in scene.objects:
        y_true[o.slot][:5] = (o.j + o.x, o.i + o.y, o.w * spec.W, o.h * spec.H, 1.0)
        y_true[o.slot][5 + o.cls] = 1.0
    boxes = box_list(scene, true_box_slots(scene), scale=(spec.W, spec.H))[..., :4]
    return {"y_true": y_true, "true_boxes": boxes[:, None, None, None, :, :]}


def _owner_class(method: Any) -> type | None:
    """The class an unbound method is defined on (``YOLO`` for ``YOLO.custom_loss``)."""
    parts = getattr(method, "__qualname__", "").split(".")
    if len(parts) < 2 or "<locals>" in parts:
        return None
    found: Any = sys.modules.get(getattr(method, "__module__", "") or "")
    found = getattr(found, parts[0], None) or getattr(method, "__globals__", {}).get(parts[0])
    for part in parts[1:-1]:
        found = getattr(found, part, None)
    return found if isinstance(found, type) else None


def _build(target: Any, frame: Frame) -> Any:
    owner = getattr(target, "__self__", None)
    if owner is None or inspect.ismodule(owner) or isinstance(owner, type):
        klass = _owner_class(target) if inspect.isfunction(target) else None
        if klass is None:
            raise TargetError(
                "layout 'keras-yolo2' calls a custom_loss method: expected the method on its "
                "class (frontend.py:YOLO.custom_loss) or on an object; received "
                f"{getattr(target, '__qualname__', type(target).__name__)!r}. Point at "
                "Class.custom_loss."
            )
        owner = klass.__new__(klass)  # no __init__: it builds the whole network
        target = getattr(owner, target.__name__)
    for name, value in DEFAULTS.items():
        if not hasattr(owner, name):
            setattr(owner, name, value)
    owner.debug = True
    for name, value in frame.keywords.items():
        setattr(owner, name, value)
    return target


def _call(loss: Callable[..., Any], truth: Mapping[str, Any], y_pred: Any, frame: Frame) -> Any:
    spec = frame.spec
    owner: Any = getattr(loss, "__self__", None)
    owner.grid_h, owner.grid_w = spec.H, spec.W
    owner.nb_box, owner.nb_class = spec.anchors, spec.classes
    owner.batch_size = spec.batch
    owner.anchors = [float(v) for v in frame.anchors("grid").reshape(-1)]
    weights = getattr(owner, "class_wt", None)
    if weights is None or np.size(weights) != spec.classes:
        owner.class_wt = np.ones(spec.classes, dtype=np.float32)
    owner.true_boxes = truth["true_boxes"]
    try:
        return loss(truth["y_true"], y_pred)
    except (ValueError, TypeError) as exc:
        if spec.H == spec.W or "shape" not in str(exc).lower():
            raise
        raise LossError(
            f"custom_loss assumes a square grid and failed on {spec.H}x{spec.W} (keras-yolo2's "
            "own loss builds its cell grid by transposing): audit it with a square --grid "
            f"(e.g. --grid {max(spec.H, spec.W)}), or build cell_y from range(grid_h) to allow "
            f"H != W. {type(exc).__name__}: {exc}"
        ) from exc


KERAS_YOLO2 = Layout(
    "keras-yolo2",
    _encode,
    _call,
    components={
        "Loss XY": "coordinates",
        "Loss WH": "coordinates",
        "Loss Conf": "confidence",
        "Loss Class": "classification",
        "Total Loss": "ignore",  # printed beside its terms: the returned total itself
        "Current Recall": "ignore",
        "Average Recall": "ignore",
    },
    anchor_unit="grid",
    codec={"xy": "sigmoid", "wh": "exp", "obj": "sigmoid", "cls": "softmax"},
    hands_anchors=True,  # set on the object from the frame on every call
    build=_build,
    summary="YOLO.custom_loss(y_true, y_pred) reading grid, anchors (grid cells), scales and "
    "a true_boxes input (N, 1, 1, 1, T, 4) from its object; y_true (N, H, W, B, 5+C) in grid "
    "units; terms read from debug prints; the target is Class.custom_loss",
)
