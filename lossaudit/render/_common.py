"""Pieces several renderers share: the balance table as formatted cells (the logs' table is
:mod:`lossaudit.render.logs`'s)."""

from __future__ import annotations

import math
from typing import Any

from lossaudit.jsonable import as_float
from lossaudit.report import Report

BALANCE_HEADER = ("component", "value", "weight", "share", "x2 weight")
#: What the balance table's columns mean, said once under it.
BALANCE_LEGEND = (
    "share: of the total's gradient on {on}; x2 weight: its share with its weight doubled"
)


def _num(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    if v == 0:
        return "0"
    return f"{v:.4g}"


def _pct(v: Any) -> str:
    f = as_float(v)
    return f"{100 * f:.2g}%" if math.isfinite(f) else "-"


def balance_table(report: Report) -> tuple[str, list[tuple[str, ...]], str] | None:
    """``(caption, rows, note)`` of the report's balance table, or None when not measured."""
    balance = report.analysis.balance
    if balance is None or not balance.rows:
        return None
    rows: list[tuple[str, ...]] = []
    for row in balance.rows:
        no_gradient = row.weight is None
        missing = "no gradient" if row.finite else "nan gradient"
        rows.append(
            (
                row.component,
                _num(row.value),
                missing if no_gradient else _num(row.weight),
                "-" if no_gradient else _pct(row.share),
                "-" if no_gradient else _pct(row.share_if_doubled),
            )
        )
    weights = (
        "weights fitted to the total's gradient"
        if balance.weights_fitted
        else ("the total is lossaudit's sum of the components")
    )
    legend = BALANCE_LEGEND.format(on=balance.on)
    caption = f"Balance at {balance.at} ({weights}; {legend})"
    return caption, rows, balance.note
