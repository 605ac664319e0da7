"""Shared test helpers: audits of fixture losses are cached per session (each costs seconds)."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

_AUDITS: dict[tuple, object] = {}


def audit_fixture(
    fixture, *, classes: int | None = None, only=None, profile: str = "ci", shrink: bool = True
):
    """Audit a catalogue fixture (cached): ``fixtures.catalog.Fixture`` -> ``Report``.

    ``shrink=False`` skips minimising counterexamples: detection tests need the verdict, and
    shrinking is most of a failing property's time.
    """
    from lossaudit.audit import audit
    from lossaudit.settings import resolve
    from lossaudit.spec import Codec, GridSpec
    from lossaudit.targets import load_target

    classes = classes or fixture.classes
    key = (fixture.name, classes, tuple(only or ()), profile, shrink)
    if key not in _AUDITS:
        loss, target = load_target(fixture.target)
        _AUDITS[key] = audit(
            loss,
            GridSpec(classes=classes),
            Codec(**fixture.codec),
            settings=resolve(profile, shrink=shrink),
            target=target,
            only=only,
        )
    return _AUDITS[key]


@pytest.fixture(scope="session")
def audited():
    return audit_fixture
