"""The gate's output (``lossaudit check``): every loss's report, then the drift from the
baseline, in text or markdown. The HTML page (:func:`lossaudit.render.html.render_html_check`)
draws the same rows with the same cells.

Drifts arrive as plain rows (``target, component, scene, baseline, current, absolute,
relative``), so rendering needs nothing from the gate itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lossaudit.jsonable import encodable
from lossaudit.render.markdown import render_markdown
from lossaudit.render.text import render_text
from lossaudit.report import Report

__all__ = ["DRIFT_HEADER", "SPEC_DRIFT", "drift_cells", "render_check"]

DRIFT_HEADER = ("loss", "component", "scene", "baseline", "current", "abs diff", "rel diff")
#: Text column widths (a negative width right-aligns).
_WIDTHS = (30, 15, 14, -12, -12, -10, -9)
#: The component of a drift that says the baseline was recorded for another spec or codec.
SPEC_DRIFT = "(spec)"
ACCEPT = (
    "If the change is intended, accept it with `lossaudit baseline --update` and commit the file."
)


def _num(v: Any) -> str:
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def drift_cells(row: Mapping[str, Any]) -> tuple[str, ...]:
    """One drift as the cells of :data:`DRIFT_HEADER`."""
    return (
        str(row["target"]),
        str(row["component"]),
        str(row["scene"]),
        _num(row["baseline"]),
        _num(row["current"]),
        f"{row['absolute']:.3g}",
        f"{row['relative']:.2%}",
    )


def _drift_table(rows: Sequence[Mapping[str, Any]], markdown: bool) -> str:
    if markdown:
        lines = ["| " + " | ".join(DRIFT_HEADER) + " |", "|" + "---|" * len(DRIFT_HEADER)]
        for row in rows:
            loss, *rest = drift_cells(row)
            lines.append("| " + " | ".join([f"`{loss}`", *rest]) + " |")
        return "\n".join(lines)

    def fit(cells: Sequence[str]) -> str:
        loss, *rest = cells
        return " ".join(
            [loss[-_WIDTHS[0] :].ljust(_WIDTHS[0])]
            + [c.ljust(w) if w > 0 else c.rjust(-w) for c, w in zip(rest, _WIDTHS[1:], strict=True)]
        )

    return "\n".join([fit(DRIFT_HEADER), *(fit(drift_cells(r)) for r in rows)])


def render_check(
    reports: Sequence[Report],
    drifts: Sequence[Mapping[str, Any]],
    *,
    baseline: str,
    compared: bool,
    markdown: bool = False,
    hint: str = "",
) -> str:
    """The gate's output: each report, then the drift from ``baseline`` (its file name), or
    that there is none, or (``compared`` false) that there was no baseline to compare with;
    ``hint`` is the command that creates one."""
    parts = [render_markdown(r) if markdown else render_text(r) for r in reports]
    if not compared:
        parts.append(
            f"No baseline at {baseline}: values were not compared. Create one with {hint}, "
            "review it, and commit it.\n"
        )
    elif drifts:
        head = f"{len(drifts)} component value(s) drifted from {baseline}:"
        head = f"### ❌ {head}" if markdown else head
        other = sorted({str(r["target"]) for r in drifts if r["component"] == SPEC_DRIFT})
        if other:
            head += (
                f"\n\nThe baseline of {', '.join(other)} was recorded for another grid spec or "
                "codec than the one configured now, so its values were not compared."
            )
        parts.append(f"{head}\n\n{_drift_table(drifts, markdown)}\n\n{ACCEPT}\n")
    else:
        parts.append(f"No drift from {baseline} (every component on every canonical scene).\n")
    return encodable("\n".join(parts))
