"""The terminal view: a verdict per component, then each failure in full, then a summary."""

from __future__ import annotations

import textwrap
from typing import Any

from lossaudit.render._common import BALANCE_HEADER, balance_table
from lossaudit.render.logs import logs_table
from lossaudit.report import Report, Result
from lossaudit.status import Status

_LABEL = {"error": "ERROR", "fail": "FAILED", "warn": "WARN", "pass": "PASS", "skip": "SKIP"}
_COLOUR = {"error": "31;1", "fail": "31;1", "warn": "33;1", "pass": "32", "skip": "2"}
#: How many offending cells a failure lists before it only counts them.
MAX_CELLS = 3


def _paint(text: str, status: str, color: bool) -> str:
    return f"\x1b[{_COLOUR[status]}m{text}\x1b[0m" if color else text


def _wrap(text: str, width: int, indent: str) -> list[str]:
    return textwrap.wrap(
        text,
        width=max(width, len(indent) + 20),
        initial_indent=indent,
        subsequent_indent=indent + "  ",
    ) or [indent]


def _cell_line(cell: list[int], scene: list[dict[str, Any]]) -> str:
    b, i, j, a = cell[:4]
    line = f"[b={b}, i={i}, j={j}, a={a}]"
    for o in scene:
        if (o["b"], o["i"], o["j"], o["a"]) == (b, i, j, a):
            return line + (
                f": truth (x={o['x']:.2f}, y={o['y']:.2f}, w={o['w']:.3g}, h={o['h']:.3g}, cls={o['cls']})"
            )
    return line + ": empty anchor"


def _counts(results: list[Result]) -> str:
    parts = []
    words = (
        ("error", "error", "errors"),
        ("fail", "failed", "failed"),
        ("warn", "warning", "warnings"),
        ("pass", "passed", "passed"),
        ("skip", "not applicable", "not applicable"),
    )
    for status, one, many in words:
        n = sum(r.status == status for r in results)
        if n:
            parts.append(f"{n} {one if n == 1 else many}")
    return ", ".join(parts)


def _detail(r: Result, width: int, color: bool) -> list[str]:
    """One result in full: expected, observed, offending cells, counterexample, reproduce."""
    lines = [_paint(f"{_LABEL[r.status]} {r.property}", r.status, color)]
    if r.status is Status.ERROR:
        lines += _wrap(f"Error: {r.message}", width, "  ")
    else:
        if r.expected:
            lines += _wrap(f"Expected: {r.expected}.", width, "  ")
        if r.observed:
            lines += _wrap(f"Observed: {r.observed}", width, "  ")
    scene = r.counterexample.scene if r.counterexample else []
    if r.cells:
        count = max(r.cells_count, len(r.cells))
        total = r.cells_of or count
        share = f" ({100 * count / total:.0f}%)" if total else ""
        shown = r.cells[:MAX_CELLS]
        lines.append(f"  Offending cells: {count} / {total} {r.cells_what}{share}")
        for c in shown:
            lines += _wrap(_cell_line(c, scene), width, "    ")
        if count > len(shown):
            lines.append(f"    ... and {count - len(shown)} more (--format json lists up to 20)")
    if r.counterexample is not None:
        lines.append("  Minimal counterexample:")
        lines += [f"    {ln}" for ln in r.counterexample.code.splitlines()]
        params = ", ".join(f"{k}={v!r}" for k, v in r.counterexample.params.items())
        if params:
            lines += _wrap(f"drawn = {params}", width, "    ")
    if r.info and r.status is not Status.PASS:
        lines += _wrap(f"Note: {r.info}", width, "  ")
    if r.reproduce:
        # Never wrapped: a command must survive copy and paste whole.
        lines += ["  Reproduce:", f"    {r.reproduce}"]
    return lines


def _tables(report: Report, width: int) -> list[str]:
    """The TensorBoard logs table and the balance table, when the report has them."""
    lines: list[str] = []
    logs = logs_table(report)
    if logs is not None:
        caption, rows = logs
        lines += ["", caption + ":"]
        for label, role, status, span, why in rows:
            lines += _wrap(f"{label} [{role}]: {status}, {span}: {why}", width, "  ")
    table = balance_table(report)
    if table is not None:
        caption, rows, note = table
        lines += ["", *_wrap(caption + ":", width, "")]
        widths = [max(len(r[k]) for r in [BALANCE_HEADER, *rows]) for k in range(5)]
        for row in [BALANCE_HEADER, *rows]:
            lines.append(
                "  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
            )
        if note:
            lines += _wrap(note + ".", width, "  ")
    return lines


def render_text(
    report: Report, *, width: int = 100, color: bool = False, verbose: bool = False
) -> str:
    """Render ``report`` for a person at a terminal.

    ``color`` adds ANSI colours; ``verbose`` lists every passing and skipped property too.
    """
    spec, codec = report.spec, report.codec
    grid = f"{spec['H']}x{spec['W']}"
    classes = "class" if spec["classes"] == 1 else "classes"
    seed = report.settings.get("seed")
    seeded = f", seed {seed}" if seed is not None and not report.settings.get("derandomize") else ""
    lines = _wrap(f"lossaudit report: {report.target}", width, "")
    lines += _wrap(
        f"grid: batch {spec['batch']}, {grid}, {spec['anchors']} anchors, {spec['classes']} {classes}; "
        f"codec: xy={codec['xy']} wh={codec['wh']} obj={codec['obj']} cls={codec['cls']}; "
        f"profile {report.settings.get('profile', '?')}{seeded}",
        width,
        "  ",
    )
    lines += ["", "Verdict per component:"]
    name_w = max([len(c) for c in report.verdicts()] + [10])
    for comp, status in report.verdicts().items():
        if status is Status.SKIP and not verbose:
            continue  # a component audited through others (confidence) or not reported
        mine = [r for r in report.results if r.component == comp]
        names = report.components.get(comp)
        reported = f"  (reported as {', '.join(names)})" if names else ""
        head = f"  {comp:<{name_w}}  "
        body = _wrap(f"{_counts(mine)}{reported}", width - len(head) - 8, "")
        lines.append(head + _paint(f"{_LABEL[status]:<6}", status, color) + "  " + body[0])
        lines += [" " * (len(head) + 8) + b.strip() for b in body[1:]]
    problems = [r for r in report.results if r.status in (Status.ERROR, Status.FAIL, Status.WARN)]
    for r in problems:
        lines.append("")
        lines += _detail(r, width, color)
    lines += _tables(report, width)
    if verbose:
        lines += ["", "All properties:"]
        for r in report.results:
            lines += _wrap(
                f"{_LABEL[r.status]:<6} {r.property}: {r.info or r.message}", width, "  "
            )
    if report.notes:
        lines.append("")
        for note in report.notes:
            lines += _wrap(f"Note: {note}", width, "")
    s, st = report.summary, report.stats
    lines.append("")
    verdict = "OK" if report.ok else "NOT OK"
    tail = _wrap(
        f"{verdict}: {_counts(list(report.results))}"
        + (f" in {st['seconds']:.1f}s" if "seconds" in st else "")
        + (
            f" ({st.get('examples', 0)} examples, {st.get('loss_evaluations', 0)} loss evaluations)"
            if st
            else ""
        ),
        width,
        "",
    )
    tail[0] = _paint(verdict, "pass" if report.ok else "fail", color) + tail[0][len(verdict) :]
    lines += tail
    if s["skip"] and not verbose:
        lines += _wrap(
            "(--verbose lists every property; --format json gives everything)", width, "  "
        )
    return "\n".join(lines) + "\n"


def render_result(result: Result, *, width: int = 100, color: bool = False) -> str:
    """One result as ``lossaudit report`` prints it (for pytest failures and warnings)."""
    return "\n".join(_detail(result, width, color)) + "\n"
