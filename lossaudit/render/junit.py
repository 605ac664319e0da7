"""JUnit XML, one test case per property, for CI systems that display JUnit results."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from lossaudit.jsonable import printable
from lossaudit.render.text import render_result
from lossaudit.report import Report
from lossaudit.status import Status


def render_junit(report: Report, **_: object) -> str:
    """``report`` as a JUnit ``<testsuites>`` document (failures carry the text report's detail)."""
    s = report.summary
    suites = ET.Element("testsuites")
    suite = ET.SubElement(
        suites,
        "testsuite",
        name=f"lossaudit {report.target}",
        tests=str(len(report.results)),
        failures=str(s["fail"]),
        errors=str(s["error"]),
        skipped=str(s["skip"]),
        time=f"{float(report.stats.get('seconds', 0.0)):.3f}",
    )
    for r in report.results:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"{report.target}.{r.component}",
            name=r.property,
            time=f"{r.seconds:.3f}",
        )
        if r.status is Status.FAIL:
            ET.SubElement(case, "failure", message=r.message).text = render_result(r)
        elif r.status is Status.ERROR:
            ET.SubElement(case, "error", message=r.message).text = render_result(r)
        elif r.status is Status.SKIP:
            ET.SubElement(case, "skipped", message=r.message)
        elif r.status is Status.WARN:
            ET.SubElement(case, "system-out").text = render_result(r)
    ET.indent(suites)
    # XML 1.0 cannot carry control characters (a colour code in a loss's message) at all.
    body = printable(ET.tostring(suites, encoding="unicode"))
    return '<?xml version="1.0" encoding="utf-8"?>\n' + body + "\n"
