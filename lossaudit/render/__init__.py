"""Renderers: one pure function per format, from a :class:`~lossaudit.report.Report` to text.

Renderers read no clock, terminal or environment; callers pass width and colour.
"""

from __future__ import annotations

from collections.abc import Callable

from lossaudit.render.html import render_html
from lossaudit.render.json import render_json
from lossaudit.render.junit import render_junit
from lossaudit.render.markdown import render_markdown
from lossaudit.render.text import render_result, render_text
from lossaudit.report import Report

__all__ = [
    "FORMATS",
    "render",
    "render_html",
    "render_json",
    "render_junit",
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
    """Render ``report`` in ``fmt`` (``text``, ``json``, ``markdown``, ``junit`` or ``html``)."""
    return FORMATS[fmt](report, **options)
