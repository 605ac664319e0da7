"""The slow tier's shared fixture audits (``tests/audits.py``): one audit per (loss, classes)
with the union of what its tests read, each reader sees only what it asked for, and a read
that was not planned fails loudly instead of auditing again."""

from __future__ import annotations

import dataclasses

import pytest

from fixtures.catalog import get
from lossaudit.report import Report, Result
from tests import audits


@pytest.fixture
def fresh(monkeypatch):
    """Empty plans and caches, and an audit that records its calls instead of running."""
    for name in ("_PLANNED", "_FIXTURES", "_REPORTS"):
        monkeypatch.setattr(audits, name, {})
    calls = []

    def fake_audit(fixture, classes, only):
        calls.append((fixture.name, classes, None if only is None else sorted(only)))
        names = sorted(only or {"a.x", "b.y", "c.z"})
        results = tuple(Result(n, n.split(".")[0], "pass", "") for n in names)
        return Report(fixture.target, {"classes": classes}, {}, results)

    monkeypatch.setattr(audits, "_audit", fake_audit)
    return calls


@pytest.mark.parametrize("shared", [False, True], ids=["serial", "xdist"])
def test_one_audit_of_the_union_and_each_reader_sees_its_part(fresh, tmp_path, shared):
    fixture = get("softmax_on_truth")
    audits.plan(fixture, ["a.x"])
    audits.plan(fixture, ["b.y", "a.x"])
    read = audits.Audits(tmp_path if shared else None)

    assert [r.property for r in read(fixture, only=["b.y"]).results] == ["b.y"]
    assert [r.property for r in read(fixture, only=["a.x", "b.y"]).results] == ["a.x", "b.y"]
    assert fresh == [("softmax_on_truth", fixture.classes, ["a.x", "b.y"])]
    if shared:  # another worker: same file, no second audit
        audits._REPORTS.clear()
        assert [r.property for r in read(fixture, only=["a.x"]).results] == ["a.x"]
        assert len(fresh) == 1


def test_a_whole_audit_serves_every_reader_and_classes_are_separate(fresh):
    fixture = get("mse_loss")
    audits.plan(fixture, ["a.x"], classes=1)
    audits.plan(fixture, classes=1)  # the whole audit wins over any subset
    audits.plan(fixture, ["b.y"], classes=2)
    read = audits.Audits(None)
    assert len(read(fixture, classes=1).results) == 3
    assert len(read(fixture, classes=1, only=["c.z"]).results) == 1
    read(fixture, classes=2, only=["b.y"])
    assert fresh == [("mse_loss", 1, None), ("mse_loss", 2, ["b.y"])]


def test_an_unplanned_read_fails_instead_of_auditing(fresh):
    fixture = get("softmax_on_truth")
    read = audits.Audits(None)
    with pytest.raises(AssertionError, match="no audit of softmax_on_truth"):
        read(fixture, only=["a.x"])
    audits.plan(fixture, ["a.x"])
    with pytest.raises(AssertionError, match=r"\['b.y'\] not planned"):
        read(fixture, only=["b.y"])
    with pytest.raises(AssertionError, match="every property not planned"):
        read(fixture)
    assert fresh == []


def test_two_fixtures_may_not_share_a_name(fresh):
    fixture = get("softmax_on_truth")
    audits.plan(fixture, ["a.x"])
    with pytest.raises(AssertionError, match="two different fixtures"):
        audits.plan(dataclasses.replace(fixture, target="elsewhere.py:loss"), ["a.x"])
