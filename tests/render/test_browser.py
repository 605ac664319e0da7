"""The HTML report in a real browser: headless Chromium renders it, with no console errors.

Skipped, saying why, where no Chromium is installed (Debian: ``apt-get install chromium``;
``.ci/run`` installs it).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from fixtures.catalog import get
from lossaudit.render import render_html
from tests.audits import plan
from tests.render.sample import sample_report

BROWSER = next(
    (b for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None
)
pytestmark = pytest.mark.skipif(
    BROWSER is None,
    reason="no headless Chromium on this machine (Debian: apt-get install chromium)",
)

if BROWSER is not None:
    plan(get("softmax_on_truth"))  # the whole audit, shared with the meta-tests' reads

#: Chromium logs every console message of the page as ``INFO:CONSOLE...] "message"``.
_CONSOLE = re.compile(r":CONSOLE[:(]\d*\)?\] (.*)")


def _open(page: Path, shot: Path) -> list[str]:
    """Render ``page`` headless, write a screenshot, return the page's console messages."""
    assert BROWSER is not None
    proc = subprocess.run(
        [
            BROWSER,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--no-first-run",
            "--enable-logging=stderr",
            "--v=0",
            f"--user-data-dir={page.parent / 'profile'}",
            f"--screenshot={shot}",
            "--window-size=1200,2400",
            page.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "HOME": str(page.parent)},
    )
    assert shot.exists() and shot.stat().st_size > 10_000, proc.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return _CONSOLE.findall(proc.stderr)


def test_console_errors_are_seen(tmp_path):
    """The check can fail: a page that logs an error is caught."""
    page = tmp_path / "bad.html"
    page.write_text("<html><body><script>console.error('boom')</script>x</body></html>")
    assert any("boom" in m for m in _open(page, tmp_path / "bad.png"))


def test_sample_report_renders_without_console_errors(tmp_path):
    page = tmp_path / "report.html"
    page.write_text(render_html(sample_report()))
    assert _open(page, tmp_path / "report.png") == []


@pytest.mark.slow
@pytest.mark.xdist_group("audit-softmax_on_truth")
def test_a_real_audit_renders_without_console_errors(tmp_path, audited):
    report = audited(get("softmax_on_truth"))
    assert any(r.status == "fail" and r.counterexample for r in report.results)
    page = tmp_path / "audit.html"
    page.write_text(render_html(report))
    assert _open(page, tmp_path / "audit.png") == []
