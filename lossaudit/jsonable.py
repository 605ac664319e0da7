"""One JSON policy for every document lossaudit writes (report, baseline, log diagnosis).

JSON has no NaN or infinity, and a loss that returns them is exactly what an audit must show,
so non-finite numbers are written as the strings ``"nan"``, ``"inf"`` and ``"-inf"`` and read
back by :func:`number`. Numpy scalars and arrays become plain numbers and lists; enums their
value; anything else unknown its ``repr``.
"""

from __future__ import annotations

import enum
import math
from typing import Any

__all__ = ["NONFINITE", "as_float", "jsonable", "number"]

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
