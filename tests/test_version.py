"""One version: ``lossaudit.__version__`` is the source; pyproject, metadata and the CLI agree."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

import lossaudit

ROOT = Path(__file__).resolve().parents[1]


def test_pyproject_reads_the_version_from_the_package():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"]
    assert "version" in project["project"]["dynamic"]
    dynamic = project["tool"]["setuptools"]["dynamic"]
    assert dynamic["version"] == {"attr": "lossaudit.__version__"}


def test_cli_version_is_the_package_version():
    out = subprocess.run(
        [sys.executable, "-m", "lossaudit", "--version"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout == f"lossaudit {lossaudit.__version__}\n"


def _installed_from() -> Path | None:
    """The directory the installed distribution was installed from, when pip recorded one."""
    text = metadata.distribution("lossaudit").read_text("direct_url.json")
    url = json.loads(text).get("url", "") if text else ""
    return Path(url.removeprefix("file://")).resolve() if url.startswith("file://") else None


def test_installed_metadata_has_the_package_version():
    try:
        installed = metadata.version("lossaudit")
    except metadata.PackageNotFoundError:
        pytest.skip("lossaudit is not installed: run `pip install -e .` to compare its metadata")
    source = _installed_from()
    if source is not None and source != ROOT:
        pytest.skip(
            f"the installed lossaudit metadata comes from {source}, not this checkout ({ROOT}); "
            "run `pip install -e .` here to compare it"
        )
    assert installed == lossaudit.__version__
