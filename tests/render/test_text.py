"""Golden output of the renderers on a fixed report (set LOSSAUDIT_UPDATE_GOLDEN=1 to rewrite)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from xml.etree import ElementTree

import pytest

from lossaudit.render import render, render_json, render_text
from lossaudit.report import Report
from tests.render.sample import sample_report

GOLDEN = Path(__file__).parent / "golden"


def _check(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("LOSSAUDIT_UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text()


@pytest.mark.parametrize("color", [False, True])
def test_text_golden(color):
    _check(
        f"report{'-color' if color else ''}.txt",
        render_text(sample_report(), width=100, color=color),
    )


def test_json_golden_and_round_trip():
    text = render_json(sample_report())
    _check("report.json", text)
    assert Report.from_dict(json.loads(text)) == sample_report()


def test_text_is_pure_and_bounded():
    a = render(sample_report(), "text", width=60)
    assert a == render(sample_report(), "text", width=60)
    # Counterexample code and reproduce commands stay whole so they can be copied.
    long = [
        ln
        for ln in a.splitlines()
        if len(ln) > 60 and not ln.lstrip().startswith(("spec  =", "scene =", "lossaudit report "))
    ]
    assert long == []
    assert "NOT OK" in a


def test_failure_reads_in_the_house_order():
    text = render_text(sample_report())
    order = [
        "FAILED coordinates.decreases_as_boxes_converge",
        "Expected:",
        "Observed:",
        "Offending cells: 1 / 4",
        "[b=0, i=1, j=0, a=0]: truth (x=0.50",
        "Minimal counterexample:",
        "spec  = GridSpec(",
        "Reproduce:",
    ]
    positions = [text.index(p) for p in order]
    assert positions == sorted(positions)


@pytest.mark.parametrize("fmt,name", [("markdown", "report.md"), ("junit", "report.xml")])
def test_other_formats_golden(fmt, name):
    _check(name, render(sample_report(), fmt))


def test_junit_is_valid_xml_with_one_case_per_property():
    import xml.etree.ElementTree as ET

    root = ET.fromstring(render(sample_report(), "junit"))
    cases = root.findall(".//testcase")
    assert [c.get("name") for c in cases] == [r.property for r in sample_report().results]
    assert root.find(".//failure") is not None and root.find(".//error") is not None
    assert root.find("testsuite").get("failures") == "1"


_SVG = re.compile(r"<svg.*?</svg>", re.S)


def test_html_golden_is_self_contained_and_pure():
    from lossaudit.render import render_html

    page = render_html(sample_report())
    assert page == render_html(sample_report())
    # The pictures are matplotlib's SVG: checked for content here, left out of the golden file
    # so a new matplotlib release does not break it.
    svgs = _SVG.findall(page)
    assert len(svgs) >= 4  # the failing scene, two response-curve paths, the training run
    for svg in svgs:
        ElementTree.fromstring(svg)  # well-formed
    _check("report.html", _SVG.sub("<svg/>", page))
    for fetch in ("http://", "https://", "<script", "<link", "@import", "url("):
        assert fetch not in _SVG.sub("", page)
    assert "rises" in page and "mismatch" in page  # the curve that does not fall is marked


def test_balance_table_in_text_and_markdown():
    text = render_text(sample_report())
    assert "x2 weight" in text and "no gradient" in text and "18%" in text
    md = render(sample_report(), "markdown")
    assert "| objects | 0.75 | 5 | 10% | 18% |" in md


def _damaged_reports():
    """Reports as they come back from JSON or from an audit that lost part of its analysis."""
    import dataclasses

    base = sample_report()
    a = base.analysis.to_dict()
    a["gradients"]["rows"][0]["norms"]["x, y @ object"] = "nan"
    a["gradients"]["rows"][1]["norms"]["obj @ object"] = float("inf")
    a["balance"]["rows"][0]["share"] = "nan"
    a["balance"]["rows"][1].update(weight=None, share=None, share_if_doubled=None, finite=False)
    a["curves"][0]["x"] = []
    a["training"]["free predictions"]["values"]["objects"] = ["nan", "inf", 1.0]
    cx = base.results[1].counterexample
    broken_cx = dataclasses.replace(cx, predicted=[{**cx.predicted[0], "x": "nan"}])
    results = list(base.results)
    results[1] = dataclasses.replace(results[1], counterexample=broken_cx)
    yield dataclasses.replace(base, analysis=a, results=tuple(results))
    yield dataclasses.replace(base, analysis={"error": "did not finish within 300s"})
    yield dataclasses.replace(
        base, analysis={"curves": {"error": "boom"}, "balance": {"error": "x"}}
    )
    old = base.to_dict()
    old.pop("analysis")
    yield Report.from_dict(old)  # a document written before the analysis existed


@pytest.mark.parametrize("fmt", ["text", "markdown", "junit", "json", "html"])
def test_renderers_survive_partial_and_reloaded_analysis(fmt):
    for report in _damaged_reports():
        out = render(report, fmt)
        assert out
        if fmt == "html":
            assert "analysis not measured" in out or not report.analysis.error


def test_reads_a_version_1_report():
    """Version 1 (before ``cause`` and ``hung``) is still read, as the current version."""
    old = json.loads((GOLDEN / "report-v1.json").read_text())
    assert old["schema_version"] == 1
    report = Report.from_dict(old)
    assert report == sample_report()
    assert json.loads(render_json(report))["schema_version"] == 2


def test_an_unknown_schema_version_is_a_schema_error():
    from lossaudit.errors import LossAuditError, SchemaError

    data = sample_report().to_dict() | {"schema_version": 99}
    with pytest.raises(SchemaError, match="expected one of 1, 2") as info:
        Report.from_dict(data)
    assert isinstance(info.value, LossAuditError)
