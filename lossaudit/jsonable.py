"""One JSON policy for every document lossaudit writes (report, baseline, log diagnosis).

JSON has no NaN or infinity, and a loss that returns them is exactly what an audit must show,
so non-finite numbers are written as the strings ``"nan"``, ``"inf"`` and ``"-inf"`` and read
back by :func:`number`. Numpy scalars and arrays become plain numbers and lists; enums their
value; anything else unknown its ``repr``.
"""

from __future__ import annotations

import enum
import math
import re
from typing import Any

__all__ = ["NONFINITE", "as_float", "encodable", "jsonable", "number", "printable"]

#: How non-finite numbers are spelt in JSON.
NONFINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def jsonable(value: Any) -> Any:
    """``value`` made JSON-safe under the policy above (recursively through dicts and lists).

    Example:
        >>> jsonable({"a": float("nan"), "b": (1.5, float("-inf"))})
        {'a': 'nan', 'b': [1.5, '-inf']}
    """
    if isinstance(value, enum.Enum):
        return jsonable(value.value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if hasattr(value, "tolist"):
        return jsonable(value.tolist())
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return value
    if isinstance(value, bool | int | str) or value is None:
        return value
    return repr(value)


def number(value: Any) -> float | None:
    """A number read back from JSON: non-finite spellings become floats again; ``None`` stays.

    Raises ``ValueError`` for anything else, so a damaged document is noticed.

    Example:
        >>> number("inf"), number(2), number(None)
        (inf, 2.0, None)
    """
    if value is None:
        return None
    if isinstance(value, str) and value in NONFINITE:
        return NONFINITE[value]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"expected a number or one of {', '.join(NONFINITE)}; received {value!r}")
    return float(value)


def as_float(value: Any) -> float:
    """A number read back from a document that may be damaged: NaN for anything that is not
    one (``"nan"``, ``"inf"`` and ``"-inf"`` read as themselves).

    Example:
        >>> as_float("inf"), as_float(None), as_float("x")
        (inf, nan, nan)
    """
    if isinstance(value, bool) or value is None:
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


#: Terminal escape sequences (colours, cursor moves) and the other control characters a
#: message may carry; newlines and tabs stay.
_ESCAPES = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])")
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_SURROGATES = re.compile(r"[\ud800-\udfff]")


def encodable(text: str) -> str:
    """``text`` with lone surrogates (which no UTF-8 file or terminal can take) as U+FFFD."""
    return _SURROGATES.sub("\ufffd", text)


def printable(text: str) -> str:
    """``text`` fit for any report format: terminal escape sequences and control characters
    removed (JUnit's XML cannot carry them), lone surrogates replaced by U+FFFD.

    Example:
        >>> printable("\\x1b[31mred\\x1b[0m\\x07 \\ud800")
        'red \ufffd'
    """
    return encodable(_CONTROLS.sub("", _ESCAPES.sub("", text)))
