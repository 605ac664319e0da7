"""Input layouts: the calling conventions lossaudit speaks, built in or user-defined.

A layout (:class:`Layout`) turns a generated scene and raw predictions into a loss's own
arguments and calls it; properties keep speaking scenes and roles. Built-in layouts are
selected by name (``--layout yad2k``); a user-defined one by reference
(``--layout my_pkg.layouts:mine`` or ``path/to/file.py:mine``) to a :class:`Layout` instance.
"""

from __future__ import annotations

from typing import Any

from lossaudit.errors import InvalidSpec, did_you_mean
from lossaudit.layouts.base import (
    ANCHOR_UNITS,
    Frame,
    Layout,
    accepts,
    box_list,
    consecutive_groups,
    detector_mask,
    flat,
    image_boxes,
    one_hot,
)
from lossaudit.layouts.canonical import CANONICAL
from lossaudit.layouts.keras_yolo2 import KERAS_YOLO2
from lossaudit.layouts.keras_yolo3 import KERAS_YOLO3
from lossaudit.layouts.yad2k import YAD2K
from lossaudit.layouts.yolov3_tf2 import YOLOV3_TF2
from lossaudit.layouts.yunyang import YUNYANG
from lossaudit.references import is_reference, resolve

__all__ = [
    "ANCHOR_UNITS",
    "BUILT_IN",
    "CANONICAL",
    "Frame",
    "Layout",
    "accepts",
    "box_list",
    "consecutive_groups",
    "detector_mask",
    "flat",
    "get_layout",
    "image_boxes",
    "one_hot",
]

#: Built-in layouts by name, in ``--help`` order.
BUILT_IN: dict[str, Layout] = {
    layout.name: layout
    for layout in (CANONICAL, YAD2K, KERAS_YOLO3, YUNYANG, YOLOV3_TF2, KERAS_YOLO2)
}


def get_layout(layout: str | Layout | None) -> Layout:
    """The layout ``layout`` names: a built-in name, a ``module:name`` / ``file.py:name``
    reference to a :class:`Layout`, or a :class:`Layout` itself (``None``: canonical).

    Raises :class:`~lossaudit.errors.InvalidSpec` with the built-in names for anything else.
    """
    if layout is None:
        return CANONICAL
    if isinstance(layout, Layout):
        return layout
    expected = f"a built-in layout ({', '.join(BUILT_IN)}) or module:name of a Layout"
    if not isinstance(layout, str):
        raise InvalidSpec(
            f"layout: expected {expected}; received {layout!r}. Pass e.g. layout='yad2k'."
        )
    if layout in BUILT_IN:
        return BUILT_IN[layout]
    if not is_reference(layout):
        raise InvalidSpec(
            f"layout: unknown layout {layout!r}: expected {expected}. "
            f"Pick a built-in one or point at your own.{did_you_mean(layout, BUILT_IN)}"
        )
    found: Any = resolve(layout, error=InvalidSpec, what="layout", expected="a Layout")
    if not isinstance(found, Layout):
        raise InvalidSpec(
            f"layout: {layout!r} is a {type(found).__name__}, not a Layout: expected an "
            "instance of lossaudit.layouts.Layout. Build one with "
            "Layout(name, encode, call) (see the README's 'Auditing a public loss')."
        )
    return found
