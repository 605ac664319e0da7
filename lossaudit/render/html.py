"""One self-contained HTML page per report: verdicts, pictures of each failure's minimal scene,
response curves, the gradient view, the balance table and the training curves.

Figures are drawn with matplotlib (``Figure`` objects, no pyplot state) and inlined as SVG, so
the page fetches nothing. The renderer is a pure function of the report: no clock, no
environment; SVG ids are salted with a constant so the same report gives the same page.
"""

from __future__ import annotations

import contextlib
import html
import io
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from lossaudit.findings import Curve, GradientView, TrainingRun
from lossaudit.logs import LogStatus
from lossaudit.render._common import BALANCE_HEADER, as_float, balance_table
from lossaudit.render.check import DRIFT_HEADER, drift_cells
from lossaudit.render.logs import (
    LOGS_HEADER,
    curve_runs,
    draw_log_curves,
    report_logs,
    table_rows,
)
from lossaudit.report import Report, Result
from lossaudit.status import Status

__all__ = ["render_html", "render_html_check"]

_STATUS_CLASS = {"error": "bad", "fail": "bad", "warn": "warn", "pass": "ok", "skip": "skip"}
_LABEL = {"error": "error", "fail": "fail", "warn": "warn", "pass": "pass", "skip": "n/a"}
_COLOURS = {
    "coordinates": "#1f77b4",
    "objects": "#8c564b",
    "no_objects": "#9467bd",
    "classification": "#2ca02c",
    "confidence": "#ff7f0e",
    "total": "#333333",
}

_CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto;
       max-width: 1100px; color: #1b1b1b; padding: 0 1em; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; } h2 { margin-top: 2em; border-bottom: 1px solid #ddd; }
code, pre { font: 12px/1.4 ui-monospace, "SFMono-Regular", Menlo, monospace; }
pre { background: #f6f8fa; padding: 0.6em; overflow-x: auto; white-space: pre-wrap; }
table { border-collapse: collapse; margin: 0.6em 0; } th, td { border: 1px solid #ddd;
       padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.badge { font-weight: 600; padding: 0.05em 0.5em; border-radius: 0.6em; }
.ok { color: #116329; background: #dafbe1; } .bad { color: #a40e26; background: #ffebe9; }
.warn { color: #7d4e00; background: #fff8c5; } .skip { color: #57606a; background: #eee; }
.failure { border: 1px solid #e5c1c1; border-radius: 6px; padding: 0.4em 1em; margin: 1em 0; }
.failure.warn-box { border-color: #e8d68a; }
.figure svg { max-width: 100%; height: auto; }
.mismatch { color: #a40e26; font-weight: 600; }
.meta { color: #57606a; }
"""


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _badge(status: str) -> str:
    return f'<span class="badge {_STATUS_CLASS[status]}">{_LABEL[status]}</span>'


def _svg(fig: Any) -> str:
    """A matplotlib figure as inline SVG markup (no XML prologue, stable ids)."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None}, bbox_inches="tight")
    text = buf.getvalue()
    return text[text.index("<svg") :]


def _table_html(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A table with ``header`` (text) over ``rows`` of ready ``<td>`` cells."""
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join(f"<tr>{''.join(cells)}</tr>" for cells in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=72)


# -- scenes ---------------------------------------------------------------------------------------


def _scene_svg(r: Result) -> str:
    """The failing scene: grid, truth boxes, predicted boxes, offending cells shaded."""
    from matplotlib.patches import Rectangle

    cx = r.counterexample
    assert cx is not None
    spec = cx.spec
    H, W = spec["H"], spec["W"]
    images = sorted(
        {o["b"] for o in cx.scene} | {c[0] for c in r.cells} | {p["b"] for p in cx.predicted}
    ) or [0]
    images = images[:4]
    fig = _figure(3.0 * len(images), 3.0 * H / max(W, 1) + 0.6)
    axes = fig.subplots(1, len(images), squeeze=False)[0]
    for ax, b in zip(axes, images, strict=True):
        ax.set_xlim(0, W)
        ax.set_ylim(H, 0)
        ax.set_aspect("equal")
        ax.set_xticks(range(W + 1))
        ax.set_yticks(range(H + 1))
        ax.grid(True, color="#bbbbbb", linewidth=0.6)
        ax.tick_params(labelsize=7)
        ax.set_title(f"image b={b}", fontsize=9)
        for c in r.cells:
            if c[0] == b:
                ax.add_patch(Rectangle((c[2], c[1]), 1, 1, color="#ffb3b3", alpha=0.6, zorder=0))
        for o in cx.scene:
            if o["b"] != b:
                continue
            x, y = o["j"] + o["x"], o["i"] + o["y"]
            w, h = o["w"] * W, o["h"] * H
            ax.add_patch(
                Rectangle((x - w / 2, y - h / 2), w, h, fill=False, color="#1a7f37", linewidth=2)
            )
            ax.plot([x], [y], marker="+", color="#1a7f37")
        for p in cx.predicted:
            px, py, pw, ph = (as_float(p.get(k)) for k in ("x", "y", "w", "h"))
            if p.get("b") != b or not all(math.isfinite(v) for v in (px, py, pw, ph)):
                continue
            x, y = p["j"] + px, p["i"] + py
            w, h = min(max(pw, 0.0), 4.0) * W, min(max(ph, 0.0), 4.0) * H
            colour = "#cf222e" if p.get("kind") == "object" else "#bc4c00"
            ax.add_patch(
                Rectangle(
                    (x - w / 2, y - h / 2),
                    w,
                    h,
                    fill=False,
                    color=colour,
                    linestyle="--",
                    linewidth=1.5,
                )
            )
    fig.legend(
        handles=[
            Rectangle((0, 0), 1, 1, fill=False, color="#1a7f37", linewidth=2, label="truth"),
            Rectangle((0, 0), 1, 1, fill=False, color="#cf222e", linestyle="--", label="predicted"),
            Rectangle((0, 0), 1, 1, color="#ffb3b3", label="offending cell"),
        ],
        loc="lower center",
        ncol=3,
        fontsize=8,
        frameon=False,
    )
    return _svg(fig)


def _failure(r: Result, anchor: str = "") -> str:
    box = "failure warn-box" if r.status is Status.WARN else "failure"
    parts = [f'<div class="{box}" id="{_e(anchor + r.property)}">']
    parts.append(f"<h3>{_badge(r.status)} <code>{_e(r.property)}</code></h3>")
    if r.status is Status.ERROR:
        parts.append(f"<p><b>Error:</b> {_e(r.message)}</p>")
    if r.expected:
        parts.append(f"<p><b>Expected:</b> {_e(r.expected)}.</p>")
    if r.observed:
        parts.append(f"<p><b>Observed:</b> {_e(r.observed)}</p>")
    if r.bugs:
        parts.append(
            f'<p class="meta">Exposes bug classes {", ".join(f"#{b}" for b in r.bugs)} '
            "(see lossaudit's docs/BUG-CLASSES.md).</p>"
        )
    if r.cells:
        count = max(r.cells_count, len(r.cells))
        shown = ", ".join(f"[b={c[0]}, i={c[1]}, j={c[2]}, a={c[3]}]" for c in r.cells[:6])
        parts.append(
            f"<p><b>Offending cells:</b> {count} / {r.cells_of or count} {_e(r.cells_what)}: "
            f"<code>{_e(shown)}</code></p>"
        )
    cx = r.counterexample
    if cx is not None:
        if cx.scene or cx.predicted:
            caption = f"predictions: {cx.case}" if cx.case else "the minimal scene"
            parts.append(
                f'<div class="figure">{_scene_svg(r)}</div><p class="meta">{_e(caption)}</p>'
            )
        parts.append(f"<p>Minimal counterexample:</p><pre>{_e(cx.code)}</pre>")
    if r.reproduce:
        parts.append(f"<p>Reproduce:</p><pre>{_e(r.reproduce)}</pre>")
    parts.append("</div>")
    return "\n".join(parts)


# -- curves ---------------------------------------------------------------------------------------


def _curves_html(curves: tuple[Curve, ...]) -> str:
    paths: dict[str, list[Curve]] = {}
    for c in curves:
        paths.setdefault(c.path, []).append(c)
    out = []
    for path, items in paths.items():
        fig = _figure(2.3 * len(items), 2.3)
        axes = fig.subplots(1, len(items), squeeze=False)[0]
        for ax, c in zip(axes, items, strict=True):
            xs, ys = list(c.x), list(c.y)
            if xs and len(xs) == len(ys):
                ax.plot(xs, ys, marker="o", markersize=3, color=_COLOURS.get(c.component, "k"))
                ax.axvline(xs[-1], color="#1a7f37", linewidth=0.8, linestyle=":")
            bad = c.expected and c.expected != c.observed
            ax.ticklabel_format(axis="y", useOffset=False)
            if c.observed == "flat" and xs and len(xs) == len(ys):
                mid = ys[0] if math.isfinite(ys[0]) else 0.0
                pad = max(abs(mid) * 0.1, 1e-3)
                ax.set_ylim(mid - pad, mid + pad)
            ax.set_title(
                f"{c.component}\nexpected {c.expected or 'any'}, {c.observed}",
                fontsize=8,
                color="#a40e26" if bad else "#1b1b1b",
            )
            ax.tick_params(labelsize=7)
        fig.supxlabel(f"{items[0].x_label} (truth at the dotted line)", fontsize=8, y=-0.08)
        rows = "".join(
            f"<tr><td>{_e(c.component)}</td><td>{_e(c.expected or 'any')}</td>"
            f"<td{' class=mismatch' if c.expected and c.expected != c.observed else ''}>"
            f"{_e(c.observed)}</td></tr>"
            for c in items
        )
        out.append(
            f"<h3>{_e(path)}</h3><div class='figure'>{_svg(fig)}</div>"
            "<table><tr><th>component</th><th>expected</th><th>observed</th></tr>"
            f"{rows}</table>"
        )
    return "\n".join(out)


def _gradients_html(view: GradientView) -> str:
    cols = view.columns
    norms = [as_float(v) for row in view.rows for v in row.norms.values()]
    peak = max((v for v in norms if math.isfinite(v)), default=0.0) or 1.0
    head = "".join(f"<th>{_e(c)}</th>" for c in cols)
    body = []
    for row in view.rows:
        cells = []
        for c in cols:
            v = as_float(row.norms.get(c))
            if not math.isfinite(v):
                cells.append("<td class='num bad'>nan</td>")
                continue
            level = 0.0 if v <= 0 else max(0.08, 1 + math.log10(max(v / peak, 1e-12)) / 6)
            shade = f"background: rgba(31, 119, 180, {min(level, 1.0):.2f})"
            cells.append(
                f"<td class='num' style='{shade}'>{v:.3g}</td>" if v else "<td class='num'>0</td>"
            )
        body.append(f"<tr><th>{_e(row.component)}</th>{''.join(cells)}</tr>")
    return (
        f"<p class='meta'>Gradient norm of each component at {_e(view.at)}. A component should "
        "reach the channels it governs (coordinates: x, y, w, h at object anchors; objects: obj "
        "at object anchors; no_objects: obj at empty anchors; classification: classes at object "
        "anchors) and nothing else.</p>"
        f"<table><tr><th></th>{head}</tr>{''.join(body)}</table>"
    )


def _balance_html(report: Report) -> str:
    table = balance_table(report)
    if table is None:
        return ""
    caption, rows, note = table
    cells = [
        [f"<td>{_e(r[0])}</td>", *(f"<td class='num'>{_e(c)}</td>" for c in r[1:])] for r in rows
    ]
    extra = f"<p>{_e(note)}.</p>" if note else ""
    return (
        f"<h2>Balance</h2><p class='meta'>{_e(caption)}</p>"
        f"{_table_html(BALANCE_HEADER, cells)}{extra}"
    )


def _training_html(training: dict[str, TrainingRun]) -> str:
    runs = [(name, run) for name, run in training.items() if run.values]
    if not runs:
        return ""
    fig = _figure(4.2 * len(runs), 3.0)
    axes = fig.subplots(1, len(runs), squeeze=False)[0]
    for ax, (name, run) in zip(axes, runs, strict=True):
        for role, values in run.values.items():
            ys = list(values)
            start = ys[0] if ys and ys[0] != 0.0 and math.isfinite(ys[0]) else 1.0
            ax.plot(
                [y / start for y in ys],
                label=role,
                color=_COLOURS.get(role, "k"),
                linewidth=2 if role == "total" else 1.2,
            )
        ax.set_yscale("symlog", linthresh=1e-3)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("optimizer step", fontsize=8)
        ax.set_ylabel("value / value at step 0", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0].legend(fontsize=7)
    return (
        "<h2>Training response</h2><p class='meta'>Each component while Adam minimises the total, "
        "on free predictions and through a tiny convolutional head (see the <code>*.trains</code> "
        f"results). Flat lines do not train.</p><div class='figure'>{_svg(fig)}</div>"
    )


def _logs_html(report: Report) -> str:
    diagnosis = report_logs(report)
    if diagnosis is None:
        return ""
    caption, rows = table_rows(diagnosis)
    figure = ""
    runs = curve_runs(diagnosis)
    if runs:
        fig = _figure(7.5, 2.8 * len(runs))
        draw_log_curves(fig, diagnosis, fontsize=7, colours=_COLOURS)
        figure = f"<div class='figure'>{_svg(fig)}</div>"
    cells = [
        [
            f"<td><code>{_e(r[0])}</code></td>",
            f"<td>{_e(r[1])}</td>",
            f"<td>{_badge('pass' if r[2] == LogStatus.RESPONDING else 'fail')} {_e(r[2])}</td>",
            f"<td class='num'>{_e(r[3])}</td>",
            f"<td>{_e(r[4])}</td>",
        ]
        for r in rows
    ]
    return f"<h2>{_e(caption)}</h2>{figure}{_table_html(LOGS_HEADER, cells)}"


# -- page -----------------------------------------------------------------------------------------


def _page(title: str, body: list[str]) -> str:
    head = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>",
    ]
    return "\n".join(p for p in [*head, *body, "</body></html>"] if p) + "\n"


def _report_body(report: Report, level: int = 1, anchor: str = "") -> list[str]:
    """The page body for one report; ``anchor`` prefixes its ids (several reports, one page)."""
    spec, codec = report.spec, report.codec
    s = report.summary
    verdict = "every property holds" if report.ok else "a property failed or the loss errored"
    h, h2 = f"h{level}", f"h{level + 1}"
    parts = [
        f"<{h}>lossaudit: <code>{_e(report.target)}</code></{h}>",
        f"<p>{_badge('pass' if report.ok else 'fail')} {verdict}: {s['pass']} passed, "
        f"{s['fail']} failed, {s['error']} errors, {s['warn']} warnings, {s['skip']} not applicable.</p>",
        f"<p class='meta'>grid batch {spec['batch']}, {spec['H']}x{spec['W']}, {spec['anchors']} "
        f"anchors, {spec['classes']} {'class' if spec['classes'] == 1 else 'classes'}; codec xy={_e(codec['xy'])} wh={_e(codec['wh'])} "
        f"obj={_e(codec['obj'])} cls={_e(codec['cls'])}; profile "
        f"{_e(report.settings.get('profile', '?'))}</p>",
        f"<{h2}>Verdict per component</{h2}>",
        "<table><tr><th>component</th><th>verdict</th><th>passed</th><th>failed</th>"
        "<th>warnings</th><th>reported as</th><th>problems</th></tr>",
    ]
    for comp, status in report.verdicts().items():
        if status is Status.SKIP:
            continue
        mine = [r for r in report.results if r.component == comp]
        n = {k: sum(r.status == k for r in mine) for k in ("pass", "fail", "error", "warn")}
        names = ", ".join(report.components.get(comp, []))
        links = ", ".join(
            f"<a href='#{_e(anchor + r.property)}'>{_e(r.property.split('.', 1)[1])}</a>"
            for r in mine
            if r.status in (Status.FAIL, Status.ERROR, Status.WARN)
        )
        parts.append(
            f"<tr><td>{_e(comp)}</td><td>{_badge(status)}</td><td class='num'>{n['pass']}</td>"
            f"<td class='num'>{n['fail'] + n['error']}</td><td class='num'>{n['warn']}</td>"
            f"<td><code>{_e(names)}</code></td><td>{links}</td></tr>"
        )
    parts.append("</table>")
    problems = [r for r in report.results if r.status in (Status.ERROR, Status.FAIL, Status.WARN)]
    if problems:
        parts.append(f"<{h2}>Failures and warnings</{h2}>")
        parts += [_failure(r, anchor) for r in problems]
    analysis = report.analysis
    parts.append(_balance_html(report))
    curves = analysis.curves
    if curves:
        parts.append(
            f"<{h2}>Response curves</{h2}><p class='meta'>Each component along four paths that "
            "end at the true predictions, on a fixed scene. Expected: what a correct loss does; "
            "a red title marks a component that does otherwise.</p>"
        )
        parts.append(_curves_html(curves))
    gradients = analysis.gradients
    if gradients is not None and gradients.rows:
        parts.append(f"<{h2}>Gradients per component</{h2}>")
        parts.append(_gradients_html(gradients))
    if analysis.training is not None:
        parts.append(_training_html(analysis.training))
    parts.append(_logs_html(report))
    if analysis.error:
        parts.append(f"<p class='bad'>analysis not measured: {_e(analysis.error)}</p>")
    for key, error in analysis.errors.items():
        parts.append(f"<p class='bad'>{_e(key)} not measured: {_e(error)}</p>")
    if report.notes:
        parts.append(f"<{h2}>Notes</{h2}><ul>")
        parts += [f"<li>{_e(n)}</li>" for n in report.notes]
        parts.append("</ul>")
    if report.stats:
        st = report.stats
        parts.append(
            f"<p class='meta'>{st.get('examples', 0)} examples, {st.get('loss_evaluations', 0)} "
            f"loss evaluations, {st.get('seconds', 0)} s.</p>"
        )
    return parts


@contextlib.contextmanager
def _style() -> Iterator[None]:
    """matplotlib's own defaults, whatever the user's matplotlibrc says (no TeX, no mathtext
    in labels, stable SVG ids): the same report always gives the same page."""
    import matplotlib
    import matplotlib.style

    with (
        matplotlib.style.context("default"),
        matplotlib.rc_context(
            {"svg.hashsalt": "lossaudit", "svg.fonttype": "none", "text.parse_math": False}
        ),
    ):
        yield


def render_html(report: Report, **_: object) -> str:
    """``report`` as one self-contained HTML page (inline CSS and SVG, no scripts, no fetches)."""
    with _style():
        return _page(f"lossaudit: {report.target}", _report_body(report))


def render_html_check(
    reports: Sequence[Report], drifts: Sequence[Mapping[str, Any]], baseline: str
) -> str:
    """The gate's page: the drift table against the baseline, then every loss's report.

    ``drifts`` are plain rows with ``target, component, scene, baseline, current, absolute,
    relative``; ``baseline`` says what was compared (or why nothing was).
    """
    ok = all(r.ok for r in reports) and not drifts
    body = [
        "<h1>lossaudit check</h1>",
        f"<p>{_badge('pass' if ok else 'fail')} {len(reports)} loss(es); "
        f"{sum(not r.ok for r in reports)} with failing properties; {len(drifts)} drifted value(s).</p>",
        f"<p class='meta'>{_e(baseline)}</p>",
    ]
    if drifts:
        head = "".join(f"<th>{h}</th>" for h in DRIFT_HEADER)
        rows = "".join(
            f"<tr><td><code>{_e(loss)}</code></td>"
            + "".join(f"<td>{_e(c)}</td>" for c in (component, scene))
            + "".join(f"<td class='num'>{_e(c)}</td>" for c in numbers)
            + "</tr>"
            for loss, component, scene, *numbers in map(drift_cells, drifts)
        )
        body += [
            "<h2>Drift from the baseline</h2>",
            f"<table><tr>{head}</tr>{rows}</table>",
            "<p>If the change is intended, accept it with <code>lossaudit baseline --update</code> "
            "and commit the file.</p>",
        ]
    with _style():
        for k, report in enumerate(reports):
            body.append("<hr>")
            body += _report_body(report, level=2, anchor=f"loss{k}-")
    return _page("lossaudit check", body)
