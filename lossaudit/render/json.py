"""The canonical JSON form of a report (documented in the README)."""

from __future__ import annotations

from lossaudit.report import Report


def render_json(report: Report, **_: object) -> str:
    """One JSON document: ``schema_version``, ``target``, ``spec``, ``summary``, ``results``, ``stats``."""
    return report.to_json(indent=2) + "\n"
