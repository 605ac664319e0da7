"""The audit never crashes: raising, hanging, NaN and wrongly shaped losses become results."""

from __future__ import annotations

import json

import pytest

from lossaudit import audit
from lossaudit.report import Report
from lossaudit.settings import resolve
from lossaudit.spec import Codec, GridSpec

CI = resolve("ci")
SPEC = GridSpec(batch=2, H=2, W=3, anchors=2, classes=2)


def _ok_loss(y_true, y_pred):
    from fixtures.losses.references import mse_loss

    return mse_loss(y_true, y_pred)


def test_a_loss_that_always_raises_is_one_error_result():
    def broken(y_true, y_pred):
        raise ValueError("grid size must be 13")

    report = audit(broken, SPEC, settings=CI, target="t.py:broken")
    (result,) = report.results
    assert result.status == "error" and "ValueError: grid size must be 13" in result.message
    assert not report.ok
    assert "lossaudit report t.py:broken" in result.reproduce


@pytest.mark.slow
def test_a_loss_that_raises_on_some_scenes_errors_with_a_minimal_scene():
    import tensorflow as tf

    def picky(y_true, y_pred):
        n = tf.reduce_sum(y_true[..., 4])
        tf.debugging.assert_less(n, 2.0, message="more than one object")
        return _ok_loss(y_true, y_pred)

    report = audit(
        picky,
        SPEC,
        Codec(cls="sigmoid"),
        settings=CI.replace(full_shrink=True),
        only=["coordinates.gradient_flows"],
    )
    (result,) = report.results
    assert result.status == "error"
    assert "more than one object" in result.message
    assert result.counterexample is not None and len(result.counterexample.scene) == 2


@pytest.mark.slow
def test_nan_is_a_finite_failure_and_an_error_elsewhere():
    import tensorflow as tf

    def nan_loss(y_true, y_pred):
        parts = _ok_loss(y_true, y_pred)
        parts["objects"] = parts["objects"] + tf.math.log(tf.reduce_sum(y_true[..., 4]) - 100.0)
        return parts

    report = audit(
        nan_loss,
        SPEC,
        Codec(cls="sigmoid"),
        settings=CI,
        only=["objects.finite", "objects.gradient_flows"],
    )
    statuses = {r.property: r.status for r in report.results}
    assert statuses == {"objects.finite": "fail", "objects.gradient_flows": "error"}
    err = next(r for r in report.results if r.status == "error")
    assert "objects.finite" in err.message


@pytest.mark.slow
def test_a_hanging_loss_is_stopped_by_the_time_limit():
    import time

    hanging = [True]

    def slow(y_true, y_pred):
        y_true.numpy()  # eager only, so the sleep below runs on every call
        if hanging[0]:
            time.sleep(0.5)
        return _ok_loss(y_true, y_pred)

    settings = CI.replace(time_limit=4.0)
    try:
        report = audit(
            slow,
            SPEC,
            Codec(cls="sigmoid"),
            settings=settings,
            only=["coordinates.finite", "objects.finite"],
        )
    finally:
        hanging[0] = False  # let the abandoned worker thread finish quickly
    assert len(report.results) == 2, report.results
    first, second = report.results
    assert first.status == "error" and "did not finish within 4s" in first.message
    assert second.status == "error" and "hung in coordinates.finite" in second.message


def test_report_round_trips_through_json():
    report = audit(
        _ok_loss, SPEC, Codec(cls="sigmoid"), settings=CI, only=["coordinates.finite", "total.pure"]
    )
    again = Report.from_dict(json.loads(report.to_json()))
    assert again == report
    data = report.to_dict()
    assert data["summary"] == {"error": 0, "fail": 0, "warn": 0, "pass": 2, "skip": 0}
    assert {"examples", "loss_evaluations", "seconds"} <= set(data["stats"])


def test_skips_say_why():
    report = audit(
        _ok_loss,
        SPEC.replace(batch=1),
        Codec(cls="sigmoid"),
        settings=CI,
        only=["coordinates.batch_independent"],
    )
    (result,) = report.results
    assert result.status == "skip" and "batch of 2" in result.message


def test_dev_profile_records_a_seed_that_reproduces():
    settings = resolve("dev", seed=1234)
    report = audit(
        _ok_loss, SPEC, Codec(cls="sigmoid"), settings=settings, only=["coordinates.finite"]
    )
    assert report.settings["seed"] == 1234


@pytest.mark.slow
@pytest.mark.parametrize("profile", ["ci", "dev"])
def test_failure_reproduce_command_reruns_the_same_verdict(profile, tmp_path):
    from fixtures.losses import bugzoo

    # Fully shrunk: a budget cut short by time may stop on another example.
    settings = resolve(profile, seed=99, full_shrink=True)
    first = audit(
        bugzoo.unmasked_coordinates,
        GridSpec(),
        Codec(cls="sigmoid"),
        settings=settings,
        only=["coordinates.ignores_empty_anchors"],
    )
    again = audit(
        bugzoo.unmasked_coordinates,
        GridSpec(),
        Codec(cls="sigmoid"),
        settings=settings,
        only=["coordinates.ignores_empty_anchors"],
    )
    assert first.results[0].status == again.results[0].status == "fail"
    assert first.results[0].counterexample == again.results[0].counterexample


@pytest.mark.slow
def test_counterexamples_are_shrunk_unless_asked_not_to():
    from fixtures.losses import bugzoo

    only = ["coordinates.ignores_empty_anchors"]
    full = CI.replace(full_shrink=True)
    shrunk = audit(
        bugzoo.unmasked_coordinates, SPEC, Codec(cls="sigmoid"), settings=full, only=only
    )
    cx = shrunk.results[0].counterexample
    assert len(cx.scene) == 1 and cx.scene[0]["b"] == 0 and cx.scene[0]["i"] == 0
    assert "not fully minimised" not in shrunk.results[0].info
    assert shrunk.results[0].reproduce.endswith("--profile ci --full-shrink")
    raw = audit(
        bugzoo.unmasked_coordinates,
        SPEC,
        Codec(cls="sigmoid"),
        settings=CI.replace(shrink=False),
        only=only,
    )
    assert raw.results[0].status == "fail"
    assert raw.results[0].reproduce.endswith("--no-shrink")


def test_a_shrink_cut_short_keeps_the_verdict_and_says_how_to_get_the_minimal_one():
    from fixtures.losses import bugzoo

    only = ["coordinates.ignores_empty_anchors"]
    cut = CI.replace(max_examples=1)  # a budget of one shrink attempt
    report = audit(bugzoo.unmasked_coordinates, SPEC, Codec(cls="sigmoid"), settings=cut, only=only)
    (result,) = report.results
    assert result.status == "fail" and result.counterexample is not None
    assert "counterexample not fully minimised" in result.info
    assert "--full-shrink" in result.info


def test_a_loss_that_hangs_on_its_first_call_is_an_error_not_a_hang():
    import time

    hanging = [True]

    def stuck(y_true, y_pred):
        while hanging[0]:
            time.sleep(0.05)
        return _ok_loss(y_true, y_pred)

    try:
        report = audit(stuck, SPEC, Codec(cls="sigmoid"), settings=CI.replace(time_limit=1.0))
    finally:
        hanging[0] = False
    (result,) = report.results
    assert result.status == "error" and "did not finish within 1s" in result.message


def test_reproduce_keeps_non_default_effort():
    from lossaudit.audit import reproduce_command

    cmd = reproduce_command(
        "x.py:l",
        GridSpec(),
        Codec(),
        CI.replace(max_examples=99, time_limit=5.0),
        only="total.pure",
    )
    assert cmd.endswith("--only total.pure --profile ci --max-examples 99 --time-limit 5")
    full = reproduce_command("x.py:l", GridSpec(), Codec(), CI.replace(full_shrink=True))
    assert full.endswith("--profile ci --full-shrink")
    thorough = reproduce_command("x.py:l", GridSpec(), Codec(), resolve("thorough"))
    assert "--full-shrink" not in thorough


DEGENERATE = "total.finite_on_degenerate_boxes"


def test_an_opt_in_property_is_left_out_unless_its_option_is_on():
    from lossaudit import properties
    from lossaudit.audit import _opted
    from lossaudit.options import LossOptions

    everything = properties.select()
    off = _opted(everything, LossOptions(), named=False)
    assert [p.name for p in off] == [n for n in properties.names() if n != DEGENERATE]
    assert _opted(everything, LossOptions(degenerate_boxes=True), named=False) == everything
    named = properties.select(only=[DEGENERATE])
    assert _opted(named, LossOptions(), named=True) == named


def test_an_opt_in_property_named_with_its_option_off_says_how_to_switch_it_on():
    report = audit(_ok_loss, SPEC, Codec(cls="sigmoid"), settings=CI, only=[DEGENERATE])
    (result,) = report.results
    assert result.status == "skip"
    assert "--degenerate-boxes" in result.message and "degenerate_boxes=True" in result.message


@pytest.mark.slow
def test_an_opt_in_scenario_changes_no_other_result():
    """Switched on, the degenerate-box scenario adds its own result and leaves every other
    one as it was: the same examples, the same verdict, the same counterexample."""
    from fixtures.losses import bugzoo

    only = ["coordinates.finite", "coordinates.ignores_empty_anchors"]
    runs = [
        audit(
            bugzoo.unmasked_coordinates,
            SPEC,
            Codec(cls="sigmoid"),
            # Fully shrunk: a shrink budget cut short by time may stop on another example.
            settings=CI.replace(full_shrink=True),
            only=[*only, DEGENERATE] if on else only,
            degenerate_boxes=on,
        )
        for on in (False, True)
    ]
    off, on = ({r.property: r for r in run.results} for run in runs)
    assert set(on) - set(off) == {DEGENERATE}
    for name in only:
        a, b = off[name].to_dict(), on[name].to_dict()
        a.pop("seconds"), b.pop("seconds")
        # The reproduce line writes every option back, this one too (it changes nothing there).
        assert b.pop("reproduce") == a.pop("reproduce").replace(
            " --only", " --degenerate-boxes --only"
        )
        assert a == b, name


def test_properties_run_a_behaviour_at_a_time_and_are_reported_by_component():
    """Every component's ``finite`` runs before any ``gradient_flows`` (the cases' gradients are
    still kept for the next component), yet the report lists the results component by component."""
    only = [
        f"{c}.{b}"
        for c in ("coordinates", "objects", "no_objects")
        for b in ("finite", "gradient_flows")
    ]
    ran: list[str] = []
    report = audit(
        _ok_loss,
        SPEC,
        Codec(cls="sigmoid"),
        settings=CI.replace(max_examples=2),
        only=only,
        progress=lambda index, total, name: ran.append(name),
    )
    assert ran == [f"{c}.finite" for c in ("coordinates", "objects", "no_objects")] + [
        f"{c}.gradient_flows" for c in ("coordinates", "objects", "no_objects")
    ]
    assert [r.property for r in report.results] == only
    assert all(str(r.status) == "pass" for r in report.results)
