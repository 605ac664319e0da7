"""Renderers: one pure function per format, from a :class:`~lossaudit.report.Report` to text.

Renderers read no clock, terminal or environment; callers pass width and colour.
"""

from __future__ import annotations

from collections.abc import Callable

from lossaudit.render.json import render_json
from lossaudit.render.text import render_result, render_text
from lossaudit.report import Report

__all__ = ["FORMATS", "render", "render_json", "render_result", "render_text"]

FORMATS: dict[str, Callable[..., str]] = {"text": render_text, "json": render_json}


def render(report: Report, fmt: str = "text", **options: object) -> str:
    """Render ``report`` in ``fmt`` (``text`` or ``json``)."""
    return FORMATS[fmt](report, **options)
