"""Pieces several renderers share: the balance table as formatted cells."""

from __future__ import annotations

import math
from typing import Any

from lossaudit.report import Report

BALANCE_HEADER = ("component", "value", "weight", "share", "x2 weight")
#: What the balance table's columns mean, said once under it.
BALANCE_LEGEND = (
    "share: of the total's gradient on {on}; x2 weight: its share with its weight doubled"
)


def as_float(v: Any) -> float:
    """A number from the report, NaN for anything else (JSON writes NaN as ``"nan"``)."""
    if isinstance(v, bool) or v is None:
        return math.nan
    if isinstance(v, int | float):
        return float(v)
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


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
    balance = report.analysis.get("balance")
    if not isinstance(balance, dict) or not balance.get("rows"):
        return None
    rows: list[tuple[str, ...]] = []
    for row in balance["rows"]:
        no_gradient = row.get("weight") is None
        missing = "nan gradient" if row.get("finite") is False else "no gradient"
        rows.append(
            (
                str(row.get("component", "?")),
                _num(row.get("value")),
                missing if no_gradient else _num(row["weight"]),
                "-" if no_gradient else _pct(row.get("share")),
                "-" if no_gradient else _pct(row.get("share_if_doubled")),
            )
        )
    weights = (
        "weights fitted to the total's gradient"
        if balance.get("weights_fitted")
        else ("the total is lossaudit's sum of the components")
    )
    legend = BALANCE_LEGEND.format(on=balance.get("on", "the outputs"))
    caption = f"Balance at {balance.get('at', '?')} ({weights}; {legend})"
    return caption, rows, balance.get("note", "")


LOGS_HEADER = ("component", "role", "status", "first -> last", "why")


def logs_table(report: Report) -> tuple[str, list[tuple[str, ...]]] | None:
    """``(caption, rows)`` for TensorBoard logs diagnosed with the report, or None."""
    logs = report.analysis.get("logs")
    if not isinstance(logs, dict) or not logs.get("components"):
        return None
    rows: list[tuple[str, ...]] = []
    for c in logs["components"]:
        label = c["name"] if c.get("run") in (".", None) else f"{c['run']}/{c['name']}"
        rows.append(
            (
                label,
                c.get("component") or "-",
                c["status"],
                f"{_num(c.get('first'))} -> {_num(c.get('last'))}",
                c.get("reason", ""),
            )
        )
    return f"TensorBoard logs in {logs.get('logdir', '?')}", rows
