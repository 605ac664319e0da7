"""Markdown for a pull-request comment: a verdict table per component, each failure folded in a
``<details>`` block with its counterexample and reproduce command."""

from __future__ import annotations

from lossaudit.render._common import BALANCE_HEADER, balance_table
from lossaudit.render.logs import LOGS_HEADER, logs_table
from lossaudit.report import Report, Result
from lossaudit.status import Status

_BADGE = {
    "error": "❌ error",
    "fail": "❌ fail",
    "warn": "⚠️ warn",
    "pass": "✅ pass",
    "skip": "➖ n/a",
}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _failure(r: Result) -> list[str]:
    lines = [
        "<details>",
        f"<summary><b>{r.status.upper()}</b> <code>{r.property}</code>: {_cell(r.message)}</summary>",
        "",
    ]
    if r.expected:
        lines.append(f"- **Expected:** {_cell(r.expected)}")
    if r.observed:
        lines.append(f"- **Observed:** {_cell(r.observed)}")
    if r.cells:
        count = max(r.cells_count, len(r.cells))
        shown = ", ".join(f"`[b={c[0]}, i={c[1]}, j={c[2]}, a={c[3]}]`" for c in r.cells[:3])
        lines.append(
            f"- **Offending cells:** {count} / {r.cells_of or count} {r.cells_what}: {shown}"
        )
    if r.counterexample is not None:
        lines += ["", "Minimal counterexample:", "", "```python", r.counterexample.code, "```"]
    if r.reproduce:
        lines += ["", "Reproduce:", "", "```bash", r.reproduce, "```"]
    lines += ["", "</details>", ""]
    return lines


def render_markdown(report: Report, **_: object) -> str:
    """``report`` as Markdown ready to paste into a pull-request comment."""
    s = report.summary
    verdict = "✅ every property holds" if report.ok else "❌ a property failed or the loss errored"
    lines = [
        f"### lossaudit: `{report.target}`",
        "",
        f"{verdict} ({s['pass']} passed, {s['fail']} failed, {s['error']} errors, {s['warn']} warnings, "
        f"{s['skip']} not applicable)",
        "",
        "| component | verdict | passed | failed | warnings | reported as |",
        "|---|---|---|---|---|---|",
    ]
    for comp, status in report.verdicts().items():
        mine = [r for r in report.results if r.component == comp]
        if status is Status.SKIP:
            continue
        counts = {k: sum(r.status == k for r in mine) for k in ("pass", "fail", "error", "warn")}
        names = ", ".join(f"`{n}`" for n in report.components.get(comp, []))
        lines.append(
            f"| {comp} | {_BADGE[status]} | {counts['pass']} | {counts['fail'] + counts['error']} | "
            f"{counts['warn']} | {names} |"
        )
    problems = [r for r in report.results if r.status in (Status.ERROR, Status.FAIL, Status.WARN)]
    if problems:
        lines += [""]
        for r in problems:
            lines += _failure(r)
    logs = logs_table(report)
    if logs is not None:
        caption, rows = logs
        lines += ["", f"**{_cell(caption)}**", "", "| " + " | ".join(LOGS_HEADER) + " |"]
        lines.append("|---|---|---|---|---|")
        lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    table = balance_table(report)
    if table is not None:
        caption, rows, note = table
        lines += ["", f"**{caption}**", "", "| " + " | ".join(BALANCE_HEADER) + " |"]
        lines.append("|---|---:|---:|---:|---:|")
        lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
        if note:
            lines += ["", _cell(note) + "."]
    if report.notes:
        lines += ["", "**Notes**", ""] + [f"- {_cell(n)}" for n in report.notes]
    spec = report.spec
    lines += [
        "",
        f"<sub>grid batch {spec['batch']}, {spec['H']}x{spec['W']}, {spec['anchors']} anchors, "
        f"{spec['classes']} {'class' if spec['classes'] == 1 else 'classes'}; profile {report.settings.get('profile', '?')}</sub>",
    ]
    return "\n".join(lines) + "\n"
