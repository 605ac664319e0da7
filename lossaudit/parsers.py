"""Parsers of loss-option values: each takes the command line's text or a TOML/Python value
and returns the option's value, or raises :class:`Rejected` with what it expected (the caller,
:mod:`lossaudit.options`, words the message for the front end the value came from)."""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Callable, Mapping
from numbers import Integral, Real
from typing import Any

from lossaudit.components import check_mapping
from lossaudit.errors import did_you_mean
from lossaudit.layouts import BUILT_IN, Layout, get_layout
from lossaudit.references import is_reference


class Rejected(Exception):
    """A parser's verdict on one value; the caller words it for the front end it came from."""

    def __init__(self, expected: str, received: Any, hint: str = ""):
        super().__init__(expected)
        self.expected, self.received, self.hint = expected, received, hint


# -- parsers: command-line text or a TOML/Python value -> the option's value ------------------
def integer(value: Any) -> int | None:
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return None
    if isinstance(value, Integral) and not isinstance(value, bool):
        return int(value)
    return None


def grid(value: Any, name: str) -> tuple[int, int]:
    if isinstance(value, str):
        parts: list[Any] = value.lower().replace("*", "x").split("x")
    elif isinstance(value, list | tuple):
        parts = list(value)
    else:
        parts = [value]
    sizes = [integer(p) for p in parts]
    if len(sizes) not in (1, 2) or any(s is None or s < 1 for s in sizes):
        raise Rejected("H or HxW with positive integers (e.g. 13 or 13x9)", value)
    return (sizes[0], sizes[-1])  # type: ignore[return-value]


def positive(value: Any, name: str) -> int:
    number = integer(value)
    if number is None or number < 1:
        raise Rejected("a positive integer", value)
    return number


def switch(value: Any, name: str) -> bool:
    """An on/off option: ``true`` or ``false`` in TOML and Python; the command line gives
    ``True`` for a flag that is present."""
    if not isinstance(value, bool):
        raise Rejected("true or false", value)
    return value


def choice(choices: tuple[str, ...]) -> Callable[[Any, str], str]:
    def parse(value: Any, name: str) -> str:
        if value not in choices:
            raise Rejected(" | ".join(choices), value, did_you_mean(str(value), choices))
        return value

    return parse


def pair(item: Any) -> tuple[float, float] | None:
    try:
        if isinstance(item, str):
            pair = tuple(float(v) for v in item.split(","))
        elif isinstance(item, list | tuple) and all(
            isinstance(v, Real) and not isinstance(v, bool) for v in item
        ):
            pair = tuple(float(v) for v in item)
        else:
            return None
    except ValueError:
        return None
    if len(pair) != 2 or not all(math.isfinite(v) and v > 0 for v in pair):
        return None
    return pair  # type: ignore[return-value]


def anchor_sizes(value: Any, name: str) -> tuple[tuple[float, float], ...]:
    expected = (
        "positive W,H pairs, one per anchor, in the layout's unit (image fractions for "
        "canonical, e.g. 0.2,0.3)"
    )
    if not isinstance(value, list | tuple):
        raise Rejected(expected, value)
    sizes = []
    for item in value:
        size = pair(item)
        if size is None:
            raise Rejected(expected, item)
        sizes.append(size)
    return tuple(sizes)


def anchors_file(value: Any, name: str) -> tuple[tuple[float, float], ...]:
    """The anchors in a text file as YAD2K and keras-yolo3 ship them (``model_data/*.txt``):
    numbers separated by commas, spaces or new lines, read as W,H pairs."""
    from pathlib import Path

    if not isinstance(value, str) or not value:
        raise Rejected("the path of a text file of W,H anchor pairs", value)
    try:
        text = Path(value).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise Rejected(
            "a readable text file of W,H anchor pairs",
            value,
            f" ({exc.strerror or type(exc).__name__})" if isinstance(exc, OSError) else "",
        ) from None
    words = [w for w in re.split(r"[\s,]+", text.strip()) if w]
    try:
        numbers = [float(w) for w in words]
    except ValueError:
        raise Rejected("numbers only (W,H pairs, e.g. 10,13, 16,30)", value) from None
    if not numbers or len(numbers) % 2 or not all(math.isfinite(v) and v > 0 for v in numbers):
        raise Rejected("an even count of positive numbers (W,H pairs)", value)
    return tuple((numbers[k], numbers[k + 1]) for k in range(0, len(numbers), 2))


def layout(value: Any, name: str) -> Layout:
    if isinstance(value, Layout):
        return value
    if not isinstance(value, str) or not (value in BUILT_IN or is_reference(value)):
        raise Rejected(
            f"a built-in layout ({' | '.join(BUILT_IN)}) or module:name of a Layout",
            value,
            did_you_mean(str(value), BUILT_IN),
        )
    found = get_layout(value)
    # A user-defined layout is written back as the reference that found it.
    return found if value in BUILT_IN else dataclasses.replace(found, name=value)


def scales(value: Any, name: str) -> tuple[tuple[int, int], ...]:
    items = value.split(",") if isinstance(value, str) else value
    if isinstance(items, int) or not isinstance(items, list | tuple) or not items:
        raise Rejected("grids separated by commas, H or HxW each (e.g. 13,26,52)", value)
    try:
        return tuple(grid(item, name) for item in items)
    except Rejected:
        raise Rejected("grids separated by commas, H or HxW each (e.g. 13,26,52)", value) from None


def scale_index(value: Any, name: str) -> int:
    number = integer(value)
    if number is None or number < 0:
        raise Rejected("a scale's index, 0 for the first in --scales", value)
    return number


def input_size(value: Any, name: str) -> tuple[int, int]:
    try:
        return grid(value, name)
    except Rejected:
        raise Rejected("the input size in pixels, H or HxW (e.g. 416)", value) from None


def keyword_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def loss_args(value: Any, name: str) -> dict[str, Any]:
    expected = "NAME=VALUE (VALUE read as JSON, else text), e.g. rescore_confidence=true"
    if isinstance(value, Mapping):
        pairs = list(value.items())
    elif isinstance(value, list | tuple) and all(isinstance(v, str) and "=" in v for v in value):
        pairs = [(k, keyword_value(v)) for k, v in (item.split("=", 1) for item in value)]
    else:
        raise Rejected(expected, value)
    for key, _ in pairs:
        if not isinstance(key, str) or not key.isidentifier():
            raise Rejected(expected, key)
    return dict(pairs)


def names(value: Any, name: str) -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(v, str) for v in items):
        raise Rejected("names separated by commas, e.g. giou,conf,prob", value)
    names = tuple(v.strip() for v in items)
    if not names or not all(names) or len(set(names)) != len(names):
        raise Rejected("distinct, non-empty names, e.g. giou,conf,prob", value)
    return names


def components(value: Any, name: str) -> dict[str, str]:
    return check_mapping(value, source=name)


def text(value: Any) -> list[str]:
    return [str(value)]
