"""Renderers of a TensorBoard log diagnosis (:class:`~lossaudit.logs.LogDiagnosis`): text, JSON
and a PNG of the curves, plus the pieces the report's renderers use to show the logs diagnosed
with an audit (``Report.analysis.logs``), so both say the same thing the same way.

Pure functions of the diagnosis: no clock, terminal, environment or file. matplotlib is
imported inside the functions that draw.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from typing import Any

import numpy as np

from lossaudit.logs.data import ComponentDiagnosis, LogDiagnosis, LogStatus
from lossaudit.logs.rules import format_number
from lossaudit.report import Report

__all__ = [
    "HINTS",
    "LOGS_HEADER",
    "curve_runs",
    "draw_log_curves",
    "log_cells",
    "logs_table",
    "plot_logs_png",
    "render_logs_json",
    "render_logs_text",
    "report_logs",
    "table_rows",
]

#: What to check for each status but ``responding``.
HINTS = {
    LogStatus.FLAT: "check that the term depends on the predictions (a mask or target built from "
    "y_pred, a stop_gradient, a weight of 0); `lossaudit report` tests this directly.",
    LogStatus.ZERO: "a term that is 0 at every step trains nothing: a softmax over one class is "
    "always 1, so 1 - 1 = 0; use a sigmoid or drop the term.",
    LogStatus.DIVERGING: "lower the learning rate or the term's weight, and look for exp() of or "
    "division by unbounded predictions (box sizes).",
    LogStatus.NAN: "look for log(0), sqrt(0) gradients or a division by a zero box size near the "
    "step the reason names.",
    LogStatus.DROWNED: "the term is too small next to the total to steer training: raise its "
    "weight or normalise the terms (e.g. divide sums by the number of objects).",
}
#: The report's table of diagnosed logs: one row per component, from :func:`log_cells`.
LOGS_HEADER = ("component", "role", "status", "first -> last", "why")


def log_cells(c: ComponentDiagnosis) -> tuple[str, str, str, str]:
    """``(role, status, "first -> last", reason)`` as every table of logs shows them."""
    span = f"{format_number(c.first)} -> {format_number(c.last)}"
    return (c.component or "-", c.status.value, span, c.reason)


# -- text and JSON ------------------------------------------------------------------------------


def render_logs_json(diagnosis: LogDiagnosis) -> str:
    """The canonical form: ``schema_version``, ``logdir``, ``ok``, ``summary``, ``components``
    (one object per component), ``ignored_tags``, ``warnings``; non-finite numbers as the
    strings ``"nan"``, ``"inf"``, ``"-inf"`` (:mod:`lossaudit.jsonable`)."""
    return json.dumps(diagnosis.to_dict(), indent=2, allow_nan=False) + "\n"


def render_logs_text(diagnosis: LogDiagnosis) -> str:
    """A table (name, run, role, status, first -> last, reason), a summary and what to check."""
    n = len(diagnosis.components)
    lines = [
        f"lossaudit tensorboard: {diagnosis.logdir} "
        f"({len(diagnosis.runs)} run(s), {n} loss component(s))",
        "",
        *_table(diagnosis),
        "",
    ]
    counts = ", ".join(f"{v} {k}" for k, v in diagnosis.summary.items() if v)
    lines.append(f"{n} component(s): {counts}.")
    lines += _what_to_check(diagnosis)
    if diagnosis.ignored:
        shown = ", ".join(diagnosis.ignored[:8])
        more = f" and {len(diagnosis.ignored) - 8} more" if len(diagnosis.ignored) > 8 else ""
        lines.append(f"Not loss components (ignored): {shown}{more}.")
    lines += [f"Warning: {warning}." for warning in diagnosis.warnings]
    return "\n".join(lines) + "\n"


def _table(diagnosis: LogDiagnosis) -> list[str]:
    """Aligned columns; the reason, last, is left ragged."""
    rows = [("NAME", "RUN", "ROLE", "STATUS", "FIRST -> LAST", "REASON")]
    rows += [(c.name, c.run, *log_cells(c)) for c in diagnosis.components]
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row[:5], widths, strict=True)) + "  " + row[5]
        for row in rows
    ]


def _what_to_check(diagnosis: LogDiagnosis) -> list[str]:
    summary = diagnosis.summary
    present = [s for s in LogStatus if s is not LogStatus.RESPONDING and summary[s]]
    if not present:
        return ["Every loss component responds to training."]
    lines = ["What to check:"]
    for status in present:
        names = [c.label for c in diagnosis.components if c.status is status]
        shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        lines.append(f"  {status.value} ({shown}): {HINTS[status]}")
    return lines


# -- the report's view of the logs --------------------------------------------------------------


def report_logs(report: Report) -> LogDiagnosis | None:
    """The logs diagnosed with ``report`` (``Report.analysis.logs``), or None when there are none."""
    logs = report.analysis.logs
    if not isinstance(logs, dict) or not logs.get("components"):
        return None
    return LogDiagnosis.from_dict(logs)


def logs_table(report: Report) -> tuple[str, list[tuple[str, ...]]] | None:
    """``(caption, rows)`` for TensorBoard logs diagnosed with the report (columns
    :data:`LOGS_HEADER`), or None."""
    diagnosis = report_logs(report)
    return None if diagnosis is None else table_rows(diagnosis)


def table_rows(diagnosis: LogDiagnosis) -> tuple[str, list[tuple[str, ...]]]:
    """``(caption, rows)`` of ``diagnosis`` as the report shows it (columns :data:`LOGS_HEADER`)."""
    rows: list[tuple[str, ...]] = [(c.label, *log_cells(c)) for c in diagnosis.components]
    return f"TensorBoard logs in {diagnosis.logdir}", rows


# -- curves -------------------------------------------------------------------------------------


def _curves_by_run(diagnosis: LogDiagnosis) -> dict[str, list[ComponentDiagnosis]]:
    by_run: dict[str, list[ComponentDiagnosis]] = {}
    for c in diagnosis.components:
        if c.series is not None:
            by_run.setdefault(c.run, []).append(c)
    return by_run


def curve_runs(diagnosis: LogDiagnosis) -> tuple[str, ...]:
    """The runs :func:`draw_log_curves` gives a panel: those with a curve to draw."""
    return tuple(_curves_by_run(diagnosis))


def _y_scale(components: list[ComponentDiagnosis]) -> tuple[str, dict[str, float]]:
    """Log when every finite value is positive, symmetric log when some are 0, else linear."""
    finite = [
        c.series.values[np.isfinite(c.series.values)] for c in components if c.series is not None
    ]
    values = np.concatenate(finite) if finite else np.empty(0)
    if values.size and np.all(values > 0):
        return "log", {}
    if values.size and np.all(values >= 0):
        positive = values[values > 0]
        return "symlog", {"linthresh": float(positive.min()) if positive.size else 1.0}
    return "linear", {}


def draw_log_curves(
    fig: Any,
    diagnosis: LogDiagnosis,
    *,
    fontsize: float | None = None,
    colours: Mapping[str, str] | None = None,
) -> None:
    """One panel per run on the matplotlib ``fig``, a line per component with its role and
    status in the legend (``colours`` by role; matplotlib's cycle otherwise). ``fontsize`` is
    the legend's and the ticks' (titles and labels a point or two larger); matplotlib's own
    sizes when None."""
    by_run = _curves_by_run(diagnosis) or {".": []}
    size = {} if fontsize is None else {"fontsize": fontsize + 1}
    axes = fig.subplots(len(by_run), 1, squeeze=False)[:, 0]
    for ax, (run, components) in zip(axes, by_run.items(), strict=True):
        for c in components:
            assert c.series is not None
            ax.plot(
                c.series.steps,
                np.where(np.isfinite(c.series.values), c.series.values, np.nan),
                marker="o" if len(c.series) <= 30 else None,
                markersize=3,
                linewidth=1.2,
                color=(colours or {}).get(c.component or ""),
                label=f"{c.name} [{c.component or '?'}]: {c.status.value}",
            )
        scale, options = _y_scale(components)
        ax.set_yscale(scale, **options)
        ax.set_title(f"run {run}", **({} if fontsize is None else {"fontsize": fontsize + 2}))
        ax.set_xlabel("step", **size)
        ax.set_ylabel("value", **size)
        ax.grid(True, alpha=0.3)
        if fontsize is not None:
            ax.tick_params(labelsize=fontsize)
        ax.legend(fontsize="small" if fontsize is None else fontsize, loc="best")


def plot_logs_png(diagnosis: LogDiagnosis) -> bytes:
    """Every component's curve as a PNG (one panel per run, statuses in the legend): the bytes
    of the file, for the caller to write."""
    # A bare Figure on an Agg canvas: no pyplot, so no global backend switch in the caller's process.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    panels = len(curve_runs(diagnosis)) or 1
    fig = Figure(figsize=(10, 3.6 * panels), layout="constrained")
    FigureCanvasAgg(fig)
    draw_log_curves(fig, diagnosis)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()
