"""The README's custom-property example, run as written: it must pass a correct loss and catch
a loss that compares boxes in the wrong frame."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lossaudit import audit, properties
from lossaudit.settings import resolve
from lossaudit.spec import Codec, GridSpec

README = Path(__file__).resolve().parents[1] / "README.md"
NAME = "coordinates.symmetric_under_horizontal_flip"


@pytest.fixture
def readme_property():
    section = README.read_text().split("### Writing your own property", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    exec(compile(code, str(README), "exec"), {"__name__": "readme_example"})
    yield properties.get(NAME)
    properties.unregister(NAME)


@pytest.mark.slow
def test_readme_property_passes_a_correct_loss_and_fails_a_zoo_loss(readme_property):
    from fixtures.losses import bugzoo, references

    codec, ci = Codec(cls="sigmoid"), resolve("ci")
    good = audit(references.mse_loss, GridSpec(), codec, settings=ci, only=[NAME])
    assert [r.status for r in good.results] == ["pass"], good.results[0].message
    bad = audit(bugzoo.frame_mismatch, GridSpec(), codec, settings=ci, only=[NAME])
    assert [r.status for r in bad.results] == ["fail"]
    assert "horizontal flip" in bad.results[0].expected
