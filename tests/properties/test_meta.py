"""Meta-tests: every property passes every correct fixture loss, and the bug zoo is caught.

- each correct fixture passes every property that applies to it, at one class and at several;
- each bug-zoo loss is caught by the property its catalogue entry names, with the named status;
- every behaviour in the registry is caught on at least one bug-zoo loss (so none can never fail);
- every property has a docstring and names the bug classes it exposes.

Each fixture loss is audited once per class count (``tests/audits.py``): the ``plan`` calls
beside each test say what it reads from that one audit.
"""

from __future__ import annotations

import dataclasses

import pytest

from fixtures.catalog import BUGS, CORRECT, TWINS, TWINS_FILE, get
from lossaudit import properties
from lossaudit.properties.training import CauseKind
from lossaudit.spec import GridSpec
from lossaudit.status import Status
from tests.audits import per_fixture, plan


def _classes(fixture, classes):
    return 1 if classes == "one" else max(fixture.classes, 2)


for _f in CORRECT:
    for _n in ("one", "several"):
        plan(_f, classes=_classes(_f, _n))


@pytest.mark.slow
@pytest.mark.parametrize("fixture", per_fixture(CORRECT))
@pytest.mark.parametrize("classes", ["one", "several"])
def test_correct_fixture_passes_every_property(fixture, classes, audited):
    n = _classes(fixture, classes)
    report = audited(fixture, classes=n)
    bad = [r for r in report.results if r.status in ("fail", "error")]
    assert not bad, "\n".join(f"{r.property}: {r.message}" for r in bad)
    ran = [r for r in report.results if r.status == "pass"]
    assert len(ran) >= 10, f"only {len(ran)} properties ran on {fixture.name}"
    warned = {r.property for r in report.results if r.status == "warn"}
    # Warnings a correct loss may get: the ones its catalogue entry declares (a design choice
    # with a known cost), and a softmax class term with one class (reported by single_class,
    # and by trains as the cause of a class term that cannot train).
    one_class = {"classification.single_class", "classification.trains", "total.single_class"}
    assert warned - set(fixture.warns) <= one_class
    if warned & one_class:
        assert n == 1 and fixture.codec["cls"] == "softmax"
    # A declared warning is real: it shows wherever its property runs.
    by_name = {r.property: r for r in report.results}
    for name in fixture.warns:
        if by_name[name].status != "skip":
            assert by_name[name].status == "warn", f"{name}: {by_name[name].message}"


#: The opt-in scenarios' properties, and the ``audit`` keyword that switches each on.
OPT_IN = {"total.finite_on_degenerate_boxes": {"degenerate_boxes": True}}


def _opted_in(fixture, name):
    """``fixture`` audited with ``name``'s opt-in scenario on (its own audit, so its name)."""
    return dataclasses.replace(fixture, name=f"{fixture.name}+{name}", options=OPT_IN[name])


for _f in CORRECT:
    for _name in OPT_IN:
        for _n in ("one", "several"):
            plan(_opted_in(_f, _name), [_name], classes=_classes(_f, _n))


@pytest.mark.slow
@pytest.mark.parametrize("fixture", per_fixture(CORRECT))
@pytest.mark.parametrize("classes", ["one", "several"])
@pytest.mark.parametrize("name", list(OPT_IN))
def test_correct_fixture_passes_every_opt_in_property(fixture, classes, name, audited):
    """The opt-in scenarios (left out of the audits above) hold on every correct loss too."""
    report = audited(_opted_in(fixture, name), classes=_classes(fixture, classes), only=[name])
    (result,) = report.results
    assert result.status == "pass", result.message


def test_every_opt_in_property_is_met_here():
    assert sorted(OPT_IN) == sorted(n for n in properties.names() if properties.get(n).opt_in)


for _f in BUGS + TWINS:
    plan(_f, [_f.catches, *_f.also])


@pytest.mark.slow
@pytest.mark.parametrize("fixture", per_fixture(BUGS + TWINS))
def test_bug_zoo_loss_is_caught_by_its_property(fixture, audited):
    report = audited(fixture, only=[fixture.catches, *fixture.also])
    by_name = {r.property: r for r in report.results}
    result = by_name[fixture.catches]
    assert result.status == fixture.expect, result.message
    assert result.reproduce.startswith("lossaudit report ")
    assert f"--only {fixture.catches}" in result.reproduce
    if fixture.expect == "fail":
        assert result.expected and result.observed
    if result.counterexample is None:
        # Only failures that are not about a drawn scene (a loss that cannot be traced) lack one.
        assert "tracing" in result.observed
    for name in fixture.also:
        assert by_name[name].status == "fail", f"{name}: {by_name[name].message}"


TRAINING_BUGS = [f for f in BUGS if f.trains]
#: Twins whose training diagnostic is checked too: ``(twin, property, cause)``.
TRAINING_TWINS = [
    ("scalar__sqrt_distance", "total.trains", "nan"),
    ("confidence__noobj_target_inverted", "confidence.trains", "optimum off the truth"),
]
for _f in TRAINING_BUGS:
    plan(_f, [_f.trains_check[0]])


@pytest.mark.slow
@pytest.mark.parametrize("fixture", per_fixture(TRAINING_BUGS))
def test_training_diagnostic_names_the_term_and_its_cause(fixture, audited):
    """Every zoo loss whose symptom is "this term does not train" gets that term's trains
    result failing (warning for the one-class softmax) with the right cause."""
    name, cause = fixture.trains_check
    report = audited(fixture, only=[name])
    (result,) = report.results
    kind = CauseKind(cause)
    # A structural cause fails; a question of balance (drowned) and the one-class trap warn.
    warns = fixture.name == "softmax_one_class" or kind in (
        CauseKind.DROWNED,
        CauseKind.VANISHING,
        CauseKind.STALLS,
    )
    assert result.status is (Status.WARN if warns else Status.FAIL), result.message
    assert result.cause == kind, result.observed


#: Warning-only properties and a zoo loss (or twin) each warns on: ``(fixture, property)``.
WARNED = [
    ("double_sigmoid", "objects.not_saturated"),
    ("double_sigmoid", "no_objects.not_saturated"),
    ("confidence__double_sigmoid", "confidence.not_saturated"),
    ("softmax_on_truth", "classification.not_saturated"),
]


def _warned_fixture(name):
    if "__" in name:  # a twin the catalogue does not list: built from twins.py directly
        return dataclasses.replace(
            get(name.split("__", 1)[1]), name=name, target=f"{TWINS_FILE}:{name}"
        )
    return get(name)


for _name, _prop in WARNED:
    plan(_warned_fixture(_name), [_prop])


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, prop",
    [
        pytest.param(a, b, id=f"{a}-{b}", marks=pytest.mark.xdist_group(f"audit-{a}"))
        for a, b in WARNED
    ],
)
def test_warning_properties_warn_on_a_zoo_loss(name, prop, audited):
    (result,) = audited(_warned_fixture(name), only=[prop]).results
    assert result.status == "warn", result.message


for _twin, _name, _ in TRAINING_TWINS:
    plan(get(_twin), [_name])


@pytest.mark.slow
@pytest.mark.parametrize(
    "twin, name, cause",
    [
        pytest.param(*t, id=t[0], marks=pytest.mark.xdist_group(f"audit-{t[0]}"))
        for t in TRAINING_TWINS
    ],
)
def test_training_diagnostic_on_twins(twin, name, cause, audited):
    (result,) = audited(get(twin), only=[name]).results
    assert result.status is Status.FAIL
    assert result.cause == CauseKind(cause), result.observed


def test_every_property_fails_on_some_bug_zoo_loss():
    """Each registered property, per component, is failed by at least one zoo loss (or twin)."""
    caught = {f.catches for f in BUGS + TWINS} | {n for f in BUGS for n in f.also}
    caught |= {f.trains_check[0] for f in TRAINING_BUGS} | {t[1] for t in TRAINING_TWINS}
    caught |= {prop for _, prop in WARNED}
    assert [n for n in properties.names() if n not in caught] == []


def test_every_bug_class_in_the_zoo_is_distinct_and_documented():
    classes = {f.bug_class for f in BUGS}
    assert len(classes) >= 20
    for f in BUGS:
        assert f.bug_class in properties.get(f.catches).bugs, (
            f"{f.catches} does not list bug class {f.bug_class} ({f.name})"
        )


@pytest.mark.parametrize("name", properties.names())
def test_every_property_is_documented(name):
    prop = properties.get(name)
    assert prop.doc and len(prop.summary) > 20
    assert prop.name == f"{prop.component}.{prop.behaviour}"


TRAINING = [
    n for n in properties.names() if n.endswith((".trains", ".not_drowned", ".not_saturated"))
]


@pytest.mark.slow
@pytest.mark.parametrize("fixture", CORRECT, ids=lambda f: f.name)
def test_correct_fixture_trains_on_a_realistic_grid(fixture):
    """On a 13 x 13 grid with 3 anchors (338 empty anchors per object) the terms of a correct
    loss compete for the head's weights: that may warn (balance), never fail."""
    from lossaudit import audit
    from lossaudit.settings import resolve
    from lossaudit.spec import Codec
    from lossaudit.targets import load_target

    loss, target = load_target(fixture.target)
    spec = GridSpec(batch=2, H=13, W=13, anchors=3, classes=max(2, fixture.classes))
    report = audit(
        loss, spec, Codec(**fixture.codec), settings=resolve("ci"), target=target, only=TRAINING
    )
    bad = [r for r in report.results if r.status in ("fail", "error")]
    assert not bad, "\n".join(f"{r.property}: {r.message}" for r in bad)


BROKEN_TERM = [f"{c}.trains" for c in ("coordinates", "objects", "no_objects", "classification")]
plan(get("sqrt_distance"), BROKEN_TERM)


@pytest.mark.slow
@pytest.mark.xdist_group("audit-sqrt_distance")
def test_a_broken_term_does_not_fail_the_others(audited):
    """sqrt_distance's coordinates turn the shared training run NaN: the other terms are not
    blamed (not judged in that run), the coordinates term is."""
    names = BROKEN_TERM
    by = {r.property: r for r in audited(get("sqrt_distance"), only=names).results}
    assert by["coordinates.trains"].status is Status.FAIL
    assert by["coordinates.trains"].cause == CauseKind.NAN
    for name in names[1:]:
        assert by[name].status in ("pass", "skip"), f"{name}: {by[name].message}"


EDGE_SPECS = {
    "1x1 grid, one anchor, one image": GridSpec(batch=1, H=1, W=1, anchors=1, classes=2),
    "2x5 grid, one anchor": GridSpec(batch=1, H=2, W=5, anchors=1, classes=2),
    "4x2 grid, three anchors, three images": GridSpec(batch=3, H=4, W=2, anchors=3, classes=3),
}


@pytest.mark.slow
@pytest.mark.parametrize("fixture", CORRECT, ids=lambda f: f.name)
@pytest.mark.parametrize("spec", list(EDGE_SPECS.values()), ids=list(EDGE_SPECS))
def test_correct_fixture_passes_on_edge_grids_with_random_seeds(fixture, spec):
    """No false alarms off the default grid: tiny, non-square, many anchors; a dev seed."""
    from lossaudit import audit
    from lossaudit.settings import resolve
    from lossaudit.spec import Codec
    from lossaudit.targets import load_target

    loss, target = load_target(fixture.target)
    settings = resolve("dev", seed=11, max_examples=6)
    report = audit(loss, spec, Codec(**fixture.codec), settings=settings, target=target)
    bad = [r for r in report.results if r.status in ("fail", "error")]
    assert not bad, "\n".join(f"{r.property}: {r.message}" for r in bad)
