"""Renderers: one pure function per format, from a :class:`~lossaudit.report.Report` to text;
and from a TensorBoard log diagnosis (:class:`~lossaudit.logs.LogDiagnosis`) to text, JSON or a
PNG (:mod:`lossaudit.render.logs`).

Renderers read no clock, terminal or environment; callers pass width and colour.
"""

from __future__ import annotations

from collections.abc import Callable

from lossaudit.jsonable import encodable
from lossaudit.render.html import render_html
from lossaudit.render.json import render_json
from lossaudit.render.junit import render_junit
from lossaudit.render.logs import plot_logs_png, render_logs_json, render_logs_text
from lossaudit.render.markdown import render_markdown
from lossaudit.render.text import render_result, render_text
from lossaudit.report import Report

__all__ = [
    "FORMATS",
    "plot_logs_png",
    "render",
    "render_html",
    "render_json",
    "render_junit",
    "render_logs_json",
    "render_logs_text",
    "render_markdown",
    "render_result",
    "render_text",
]

FORMATS: dict[str, Callable[..., str]] = {
    "text": render_text,
    "json": render_json,
    "markdown": render_markdown,
    "junit": render_junit,
    "html": render_html,
}


def render(report: Report, fmt: str = "text", **options: object) -> str:
    """Render ``report`` in ``fmt`` (``text``, ``json``, ``markdown``, ``junit`` or ``html``).

    The result can always be written as UTF-8: a lone surrogate (in a name the loss reported,
    say) becomes U+FFFD."""
    return encodable(FORMATS[fmt](report, **options))
