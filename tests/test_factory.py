"""A factory target (``--factory``): the target makes the loss from the audit's options, so the
loss's anchors, classes and grid are declared once (issue 10)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lossaudit import audit
from lossaudit.errors import LossAuditError, TargetError
from lossaudit.layouts import Frame
from lossaudit.layouts.base import factory_keywords
from lossaudit.options import LossOptions
from lossaudit.settings import resolve
from lossaudit.spec import Codec, GridSpec

SPEC = GridSpec(batch=2, H=2, W=3, anchors=2, classes=2)
ANCHORS = ((0.2, 0.5), (0.6, 0.3))
CODEC = Codec(cls="sigmoid", anchor_sizes=ANCHORS)


def test_a_factory_is_given_the_keywords_it_takes():
    frame = Frame(SPEC, CODEC)

    def two(anchors, classes):
        return None

    def every(anchors, classes, num_classes, grid, scales, input_size, **kwargs):
        return None

    given = factory_keywords(two, frame, "image")
    assert sorted(given) == ["anchors", "classes"] and given["classes"] == 2
    np.testing.assert_allclose(given["anchors"], ANCHORS)
    assert factory_keywords(two, frame, "grid")["anchors"][0].tolist() == pytest.approx(
        [0.2 * 3, 0.5 * 2]
    )
    assert factory_keywords(every, frame, "image")["grid"] == (2, 3)
    assert factory_keywords(every, frame, "image")["input_size"] == (64, 96)
    assert factory_keywords(lambda **kwargs: None, frame, "image") == {}


@pytest.mark.parametrize(
    "name, message",
    [
        ("broken_factory", "broken_factory(anchors=[[0.2, 0.5], [0.6, 0.3]], classes=2)"),
        ("not_a_factory", "received a ndarray"),
    ],
)
def test_a_factory_that_makes_no_loss_says_what_it_was_called_with(name, message):
    from fixtures.losses import factories

    with pytest.raises(TargetError, match="--factory: the target is called as") as info:
        audit(getattr(factories, name), SPEC, CODEC, settings=resolve("ci"), factory=True)
    assert message in str(info.value)


def test_a_layout_that_builds_its_own_loss_takes_no_factory():
    with pytest.raises(LossAuditError, match="builds the loss from the target itself"):
        LossOptions.from_table({"layout": "yolov3-tf2", "factory": True}, where="t")


@pytest.mark.slow
def test_the_loss_is_made_for_every_grid_the_audit_uses():
    """The fixture's loss refuses any grid but its own: the transposed and the wider grid pass
    only because the factory is called again for each, with the anchors transposed too."""
    from fixtures.losses import factories

    factories.CALLS.clear()
    only = ["total.transpose_invariant", "total.other_grid_size", "coordinates.minimal_at_truth"]
    report = audit(
        factories.make_loss, SPEC, CODEC, settings=resolve("ci"), only=only, factory=True
    )
    assert {r.property: str(r.status) for r in report.results} == dict.fromkeys(only, "pass")
    grids = {tuple(k["grid"]): k for _, k in factories.CALLS}
    assert {(2, 3), (3, 2), (3, 5)} <= set(grids)
    np.testing.assert_allclose(grids[(2, 3)]["anchors"], ANCHORS)
    np.testing.assert_allclose(grids[(3, 2)]["anchors"], [(h, w) for w, h in ANCHORS])
    assert all(k["classes"] == 2 for _, k in factories.CALLS)
    assert report.results[0].reproduce == ""  # passed; a failure's line would add --factory


@pytest.mark.slow
def test_a_loss_class_with_arguments_is_a_factory_from_the_command_line(tmp_path):
    from lossaudit.cli import ExitCode, main

    out = tmp_path / "report.json"
    code = main(
        [
            "report",
            "fixtures/losses/factories.py:AnchoredLoss",
            "--factory",
            "--grid",
            "2x3",
            "--classes",
            "2",
            "--cls",
            "sigmoid",
            "--anchor-sizes",
            "0.2,0.5",
            "0.6,0.3",
            "--only",
            "coordinates.minimal_at_truth",
            "--profile",
            "ci",
            "--format",
            "json",
            "--out",
            str(out),
        ]
    )
    report = json.loads(out.read_text())
    assert code == ExitCode.OK, report
    (result,) = report["results"]
    assert result["status"] == "pass"
