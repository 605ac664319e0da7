"""Shared test helpers: each catalogue fixture loss is audited once per session (see
``tests/audits.py``), whichever tests and xdist workers read it."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session")
def audited(request, tmp_path_factory):
    """``audited(fixture, classes=None, only=None)`` -> the fixture's one ``Report`` (planned
    with :func:`tests.audits.plan`), limited to ``only``."""
    from tests.audits import Audits

    if not hasattr(request.config, "workerinput"):  # not an xdist worker: memory is enough
        return Audits(None)
    # Every worker's base temporary directory sits in the session's one directory.
    shared = tmp_path_factory.getbasetemp().parent / "lossaudit-audits"
    shared.mkdir(exist_ok=True)
    return Audits(shared)
