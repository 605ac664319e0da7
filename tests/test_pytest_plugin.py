"""The pytest plugin, driven with pytester: collection, verdicts, options, config, xdist."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]
REFS = ROOT / "fixtures" / "losses" / "references.py"
ZOO = ROOT / "fixtures" / "losses" / "bugzoo.py"

TEST_FILE = f"""
from lossaudit.pytest_plugin import audit_loss

good = audit_loss("{REFS}:mse_loss", cls="sigmoid", classes=2,
                  only=["coordinates.ignores_empty_anchors", "objects.gradient_flows", "total.pure",
                        "classification.single_class"])
bad = audit_loss("{ZOO}:unmasked_coordinates", cls="sigmoid", only=["coordinates.ignores_empty_anchors"])
seed = audit_loss("lossaudit.examples.seed:seed_loss", only=["classification.single_class"])
"""


@pytest.fixture(autouse=True)
def _tensorflow_outside_pytester():
    """In-process pytester runs restore sys.modules afterwards; TensorFlow must be imported
    before the first one, or the next run re-imports it and its C++ runtime aborts."""
    from lossaudit.adapter import import_tensorflow

    import_tensorflow()


@pytest.fixture
def project(pytester):
    pytester.makepyfile(test_losses=TEST_FILE)
    pytester.makeini("[pytest]\naddopts = -p no:cacheprovider\n")
    return pytester


def test_each_property_is_an_item_with_a_readable_id(project):
    verbose = project.runpytest("-v", "-n", "0", "-k", "good and pure", "--lossaudit-profile", "ci")
    verbose.stdout.fnmatch_lines(["test_losses.py::good::total.pure PASSED*"])
    result = project.runpytest("--collect-only", "-q", "-n", "0")
    result.stdout.fnmatch_lines(
        [
            "test_losses.py::good::coordinates.ignores_empty_anchors",
            "test_losses.py::good::total.pure",
            "test_losses.py::bad::coordinates.ignores_empty_anchors",
            "test_losses.py::seed::classification.single_class",
        ]
    )


def test_an_opt_in_property_is_collected_only_with_its_option(pytester):
    pytester.makepyfile(
        test_opt=f"""
from lossaudit.pytest_plugin import audit_loss

plain = audit_loss("{REFS}:mse_loss")
opted = audit_loss("{REFS}:mse_loss", degenerate_boxes=True)
"""
    )
    result = pytester.runpytest("--collect-only", "-q", "-n", "0", "-p", "no:cacheprovider")
    out = result.stdout.str()
    assert "test_opt.py::opted::total.finite_on_degenerate_boxes" in out
    assert "test_opt.py::plain::total.finite_on_degenerate_boxes" not in out
    assert "test_opt.py::plain::total.pure" in out


@pytest.mark.slow
def test_verdicts_map_to_pass_fail_skip_and_warning(project):
    result = project.runpytest("-n", "0", "-rA", "--lossaudit-profile", "ci")
    result.assert_outcomes(passed=4, failed=1, skipped=1, warnings=1)
    result.stdout.fnmatch_lines(
        [
            "*FAILED coordinates.ignores_empty_anchors*",
            "*Expected: coordinates unchanged when every channel of the empty anchors is redrawn*",
            "*Minimal counterexample:*",
            "*lossaudit report *bugzoo.py:unmasked_coordinates*--only coordinates.ignores_empty_anchors*",
            "*LossAuditWarning: WARN classification.single_class*",
            "SKIPPED*2 classes; see classification.decreases_as_true_class_rises",
        ]
    )


@pytest.mark.slow
def test_profile_and_seed_options_reach_the_reproduce_line(project):
    result = project.runpytest(
        "-n", "0", "-k", "bad", "--lossaudit-profile", "dev", "--lossaudit-seed", "77"
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*--profile dev --seed 77*"])


@pytest.mark.slow
def test_max_examples_option(project):
    result = project.runpytest(
        "-n", "0", "-k", "bad", "--lossaudit-profile", "ci", "--lossaudit-max-examples", "3"
    )
    result.stdout.fnmatch_lines(["*--profile ci --max-examples 3*"])


@pytest.mark.slow
def test_configured_losses_are_collected_with_the_flag(pytester):
    pytester.makepyprojecttoml(
        f"""
[tool.lossaudit]
profile = "ci"

[[tool.lossaudit.losses]]
target = "{ZOO}:noobj_on_object_cells"
cls = "sigmoid"
"""
    )
    assert "no tests ran" in pytester.runpytest("-n", "0", "-q").stdout.str()
    result = pytester.runpytest(
        "-n", "0", "-q", "--lossaudit", "-k", "ignores_object_anchors or pure"
    )
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        ["FAILED pyproject.toml::*noobj_on_object_cells::no_objects.ignores_object_anchors*"]
    )


def test_a_bad_config_is_a_usage_error(pytester):
    pytester.makepyprojecttoml('[[tool.lossaudit.losses]]\ntarget = "x.py:l"\nclases = 3\n')
    result = pytester.runpytest("-n", "0", "--lossaudit")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown key 'clases'*Did you mean 'classes'*"])


@pytest.mark.slow
def test_custom_properties_in_a_test_module_are_collected(pytester):
    pytester.makepyfile(
        test_custom=f"""
from hypothesis import strategies as st
from lossaudit import Outcome, prop
from lossaudit import scenarios as sc
from lossaudit import strategies as ls
from lossaudit.pytest_plugin import audit_loss

@prop("doubles_when_predictions_double", components=("coordinates",),
      draws=lambda ctx, c: st.fixed_dictionaries({{"scene": ls.scenes(ctx.spec)}}))
def never_holds(ctx, role, d):
    "A made-up property that no real loss satisfies, to see it fail."
    case = sc.perfect(d["scene"], ctx.codec)
    return Outcome("fail", expected="made up", observed=f"{{ctx.value(case, role)}}")

mse = audit_loss("{REFS}:mse_loss", cls="sigmoid", only=["coordinates.doubles_when_predictions_double"])
"""
    )
    result = pytester.runpytest("-n", "0", "--lossaudit-profile", "ci")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*mse: coordinates.doubles_when_predictions_double*", "*Expected: made up*"]
    )


@pytest.mark.slow
def test_xdist_gives_the_same_ids_and_results(project):
    """The same items and verdicts serially and from xdist workers (separate processes that
    collect on their own). Inside an xdist worker of this suite, one inner worker: two would
    run beside this suite's other worker, oversubscribing the cores; one still collects and
    runs every item in its own process and reports through xdist."""
    import os

    workers = "1" if os.environ.get("PYTEST_XDIST_WORKER") else "2"
    serial = project.runpytest_subprocess("-n", "0", "-q", "-rA")
    parallel = project.runpytest_subprocess("-n", workers, "-q", "-rA")
    assert "bringing up nodes" in parallel.stdout.str()  # xdist did distribute the run

    def outcomes(result):
        return sorted(
            line.split(" - ")[0]
            for line in result.stdout.lines
            if line.startswith(("PASSED", "FAILED", "SKIPPED"))
        )

    assert outcomes(serial) == outcomes(parallel) != []


def test_collection_does_not_import_tensorflow(project):
    project.makeconftest(
        """
import sys
def pytest_collection_finish(session):
    print("TF_LOADED", "tensorflow" in sys.modules)
"""
    )
    result = project.runpytest_subprocess("--collect-only", "-q", "-s", "-n", "0")
    result.stdout.fnmatch_lines(["TF_LOADED False"])


def test_audit_loss_takes_the_config_forms_and_checks_them():
    from lossaudit.errors import InvalidSpec
    from lossaudit.pytest_plugin import audit_loss

    loss = audit_loss(
        "x.py:loss",
        grid=(3, 5),
        anchors=2,
        anchor_sizes=["0.1,0.1", (0.3, 0.3)],
        components=["box=coordinates"],
    )
    assert (loss.spec.H, loss.spec.W) == (3, 5) and loss.codec.anchor_sizes == (
        (0.1, 0.1),
        (0.3, 0.3),
    )
    assert loss.components == {"box": "coordinates"}
    for bad in ({"batch": 0}, {"reduction": "avg"}, {"cls": "softmx"}):
        with pytest.raises(InvalidSpec):
            audit_loss("x.py:loss", **bad)


def test_a_bad_top_level_key_is_a_usage_error_with_the_flag(pytester):
    pytester.makepyprojecttoml(
        '[tool.lossaudit]\nprofil = "ci"\n[[tool.lossaudit.losses]]\ntarget = "x.py:l"\n'
    )
    result = pytester.runpytest("-n", "0", "--lossaudit")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown key 'profil'*Did you mean 'profile'*"])


def test_a_misspelt_key_fails_audit_loss_items_as_it_fails_the_commands(project):
    project.makepyprojecttoml('[tool.lossaudit]\nprofle = "ci"\n')
    result = project.runpytest("-n", "0", "-k", "good and pure")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*unknown key 'profle'*Did you mean 'profile'*"])
