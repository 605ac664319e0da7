"""Audits of catalogue fixture losses for the slow tier: one per (loss, classes) per test session.

Each audit costs seconds, and several tests read the same loss's verdicts (the property that
catches it, its training diagnostic, a warning). So the tests declare at import time what they
will read (:func:`plan`), and the first test to ask for a loss audits the union of those
properties once, ``shrink=False`` (the tests read verdicts, not minimal counterexamples). The
report is kept in memory and, under xdist, in a file in the session's shared temporary directory
behind a lock, so another worker reads it instead of auditing again (a worker that asks while
another is auditing that loss waits for it). Tests of one loss also carry an ``xdist_group``
mark (:func:`per_fixture`): with ``--dist loadgroup`` they run on one worker and never wait.
The default is ``--dist load`` (see ``addopts`` in pyproject.toml for why).

    >>> plan(get("softmax_on_truth"), ["classification.trains"])      # at import
    >>> audited(get("softmax_on_truth"), only=["classification.trains"])  # in the test
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from lossaudit.report import Report

#: ``(fixture name, classes)`` -> the properties its tests read; None: every property.
_PLANNED: dict[tuple[str, int], set[str] | None] = {}
_FIXTURES: dict[str, Any] = {}
_REPORTS: dict[tuple[str, int], Report] = {}


def _key(fixture: Any, classes: int | None) -> tuple[str, int]:
    known = _FIXTURES.setdefault(fixture.name, fixture)
    assert known == fixture, f"two different fixtures are named {fixture.name!r}"
    return fixture.name, classes or fixture.classes


def plan(fixture: Any, only: Iterable[str] | None = None, *, classes: int | None = None) -> None:
    """Declare that a test will read ``only`` (None: every property) from this fixture's audit
    at ``classes`` (default: the catalogue's). Call it at import time, beside the test."""
    key = _key(fixture, classes)
    if only is None or (key in _PLANNED and _PLANNED[key] is None):
        _PLANNED[key] = None
    else:
        _PLANNED[key] = (_PLANNED.get(key) or set()) | set(only)


def per_fixture(fixtures: Sequence[Any]) -> list[Any]:
    """``fixtures`` as parameters named after each loss, grouped per loss for xdist."""
    return [
        pytest.param(f, id=f.name, marks=pytest.mark.xdist_group(f"audit-{f.name}"))
        for f in fixtures
    ]


class Audits:
    """The session's audits; ``directory`` is shared by the xdist workers (None when serial)."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory

    def __call__(
        self, fixture: Any, *, classes: int | None = None, only: Iterable[str] | None = None
    ) -> Report:
        """The fixture's one audit (run on first use), limited to ``only`` when given."""
        key = _key(fixture, classes)
        if key not in _PLANNED:
            raise AssertionError(
                f"no audit of {key[0]} with {key[1]} class(es) is planned: call "
                f"tests.audits.plan(fixture, {list(only) if only else None}, classes={key[1]}) "
                "at import time, beside the test"
            )
        planned = _PLANNED[key]
        wanted = None if only is None else list(only)
        if planned is not None and (wanted is None or not set(wanted) <= planned):
            missing = "every property" if wanted is None else sorted(set(wanted) - planned)
            raise AssertionError(f"{key[0]}: {missing} not planned; add it to the plan() call")
        if key not in _REPORTS:
            _REPORTS[key] = self._shared(key, lambda: _audit(fixture, key[1], planned))
        report = _REPORTS[key]
        if wanted is None:
            return report
        return dataclasses.replace(
            report, results=tuple(r for r in report.results if r.property in wanted)
        )

    def _shared(self, key: tuple[str, int], run: Callable[[], Report]) -> Report:
        if self.directory is None:
            return _reloaded(run().to_json())
        path = self.directory / f"{key[0]}-{key[1]}.json"
        with _locked(path.with_suffix(".lock")):
            if not path.exists():
                tmp = path.with_suffix(f".{os.getpid()}.tmp")
                tmp.write_text(run().to_json())
                os.replace(tmp, path)
            return _reloaded(path.read_text())


def _reloaded(text: str) -> Report:
    """Every test reads the report as JSON gives it back, whichever worker audited."""
    return Report.from_dict(json.loads(text))


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # Windows: no lock; at worst two workers audit the same loss
        yield
        return
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _audit(fixture: Any, classes: int, only: set[str] | None) -> Report:
    from lossaudit.audit import audit
    from lossaudit.settings import resolve
    from lossaudit.spec import Codec, GridSpec
    from lossaudit.targets import load_target

    loss, target = load_target(fixture.target)
    return audit(
        loss,
        GridSpec(classes=classes),
        Codec(**fixture.codec),
        settings=resolve("ci", shrink=False),
        target=target,
        only=sorted(only) if only is not None else None,
        **getattr(fixture, "options", {}),
    )
