"""The console script end to end, in a subprocess: exit codes, JSON shape, bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LOSSAUDIT = [sys.executable, "-m", "lossaudit.cli"]


def run(*args: str, cwd: Path = ROOT, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "CI": "true"}
    return subprocess.run(
        [*LOSSAUDIT, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.slow
def test_default_run_audits_the_bundled_seed_loss():
    out = run("report")
    assert out.returncode == 0, out.stderr
    assert "lossaudit report: lossaudit.examples.seed:seed_loss" in out.stdout
    assert "WARN classification.single_class" in out.stdout
    assert "can never train" in out.stdout
    assert "Balance at typical untrained predictions" in out.stdout  # every full report has it
    assert "Traceback" not in out.stderr and "I0000" not in out.stderr


@pytest.mark.slow
def test_json_report_shape_and_exit_code_on_failure(tmp_path):
    out = run(
        "report",
        "--classes",
        "3",
        "--format",
        "json",
        "--only",
        "classification.decreases_as_true_class_rises",
    )
    assert out.returncode == 1, out.stderr
    doc = json.loads(out.stdout)
    assert doc["schema_version"] == 2
    assert doc["target"] == "lossaudit.examples.seed:seed_loss"
    assert doc["spec"] == {"batch": 2, "H": 3, "W": 4, "anchors": 2, "classes": 3}
    assert set(doc["summary"]) == {"pass", "fail", "warn", "skip", "error"}
    (result,) = doc["results"]
    assert set(result) >= {"property", "component", "status", "message", "counterexample"}
    assert result["status"] == "fail" and result["component"] == "classification"
    cx = result["counterexample"]
    assert cx["scene"] and cx["spec"]["classes"] == 3
    assert {"examples", "loss_evaluations", "seconds"} <= set(doc["stats"])


@pytest.mark.slow
def test_out_file_is_written_whole_and_nothing_else(tmp_path):
    target = tmp_path / "report.json"
    out = run(
        "report", "--only", "total.pure", "--format", "json", "--out", str(target), cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(target.read_text())["results"][0]["property"] == "total.pure"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]  # no .hypothesis either
    assert target.stat().st_mode & 0o044  # an ordinary, readable file


@pytest.mark.slow
def test_a_users_loss_file_with_options(tmp_path):
    (tmp_path / "my_loss.py").write_text(
        "import tensorflow as tf\n"
        "def yolo_loss(y_true, y_pred):\n"
        "    m = y_true[..., 4:5]\n"
        "    return {'box': tf.reduce_sum(m * tf.square(y_pred[..., :4] - y_true[..., :4])),\n"
        "            'obj': tf.reduce_sum(m * tf.square(y_pred[..., 4:5] - 1.0)),\n"
        "            'noobj': tf.reduce_sum((1 - m) * tf.square(y_pred[..., 4:5]))}\n"
    )
    out = run(
        "report",
        "my_loss.py:yolo_loss",
        "--grid",
        "2x3",
        "--anchors",
        "1",
        "--xy",
        "identity",
        "--wh",
        "identity",
        "--obj",
        "identity",
        "--only",
        "coordinates.decreases_as_boxes_converge",
        "--only",
        "no_objects.ignores_object_anchors",
        "--format",
        "json",
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    doc = json.loads(out.stdout)
    assert [r["status"] for r in doc["results"]] == ["pass", "pass"]
    assert doc["components"]["coordinates"] == ["box"]


@pytest.mark.slow
def test_a_failing_zoo_loss_prints_the_house_failure_format():
    out = run(
        "report",
        "fixtures/losses/bugzoo.py:unmasked_coordinates",
        "--cls",
        "sigmoid",
        "--only",
        "coordinates.ignores_empty_anchors",
    )
    assert out.returncode == 1
    text = out.stdout
    for piece in (
        "FAILED coordinates.ignores_empty_anchors",
        "Expected:",
        "Observed:",
        "Offending cells:",
        "Minimal counterexample:",
        "spec  = GridSpec(",
        "scene = [Obj(",
        "Reproduce:\n    lossaudit report fixtures/losses/bugzoo.py:unmasked_coordinates",
    ):
        assert piece in text, piece


@pytest.mark.parametrize(
    "args,fragment",
    [
        # These load TensorFlow before the target (seconds each): the slow tier.
        pytest.param(["report", "missing.py:loss"], "no such file", marks=pytest.mark.slow),
        pytest.param(
            ["report", "fixtures/losses/references.py:mse_los"],
            "Did you mean 'mse_loss'",
            marks=pytest.mark.slow,
        ),
        pytest.param(
            ["report", "fixtures/losses/references.py"], "no ':name' part", marks=pytest.mark.slow
        ),
        (["report", "--xy", "sigmod"], "Did you mean 'sigmoid'"),
        (["report", "--grid", "3y4"], "expected H or HxW"),
        (["report", "--anchors", "0"], "expected a positive integer"),
        (["report", "--component", "xy=coords"], "received xy=coords"),
        (["report", "--anchors", "3", "--anchor-sizes", "0.2,0.2"], "one per anchor"),
        pytest.param(
            ["report", "--only", "coordinates.finit"],
            "Did you mean 'coordinates.finite'",
            marks=pytest.mark.slow,
        ),
        (["report", "--out", "/no/such/dir/r.json"], "existing directory"),
        (["report", "--out", "/tmp"], "expected a file path"),
        (["report", "--time-limit", "inf"], "time_limit=inf"),
        (["report", "--profile", "fast"], "invalid choice"),
        pytest.param(
            ["report", "--logs", "/no/such/logdir"], "does not exist", marks=pytest.mark.slow
        ),
        ([], "usage"),
    ],
)
def test_usage_errors_exit_2_without_traceback(args, fragment):
    out = run(*args)
    assert out.returncode == 2, out.stdout + out.stderr
    assert fragment in out.stderr
    assert "Traceback" not in out.stderr


def test_list_and_version():
    out = run("report", "--list")
    assert out.returncode == 0 and "coordinates.minimal_at_truth" in out.stdout
    out = run("--version")
    assert out.returncode == 0 and out.stdout.startswith("lossaudit ")


def test_a_malformed_pyproject_table_is_a_usage_error(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.lossaudit]\nprofile = "fastest"\n')
    out = run("report", "--only", "total.pure", cwd=tmp_path)
    assert out.returncode == 2
    assert "profile='fastest'" in out.stderr and "Did you mean" not in out.stdout
    assert "Traceback" not in out.stderr


@pytest.mark.slow
@pytest.mark.parametrize("fmt,marker", [("markdown", "### lossaudit:"), ("junit", "<testsuites>")])
def test_markdown_and_junit_formats(fmt, marker):
    out = run("report", "--only", "total.pure", "--format", fmt)
    assert out.returncode == 0, out.stderr
    assert marker in out.stdout


@pytest.mark.slow
def test_html_report_with_tensorboard_logs(tmp_path):
    """One page: verdicts, pictures, balance, and the diagnosed logs with their curves."""
    import numpy as np

    from lossaudit.adapter import import_tensorflow

    tf = import_tensorflow()
    writer = tf.summary.create_file_writer(str(tmp_path / "logs" / "metrics"))
    with writer.as_default():
        for step in range(20):
            tf.summary.scalar("no_objects_loss_sum", 100.0 * 0.8**step, step=step)
            tf.summary.scalar("classification_loss_sum", 0.0, step=step)
            tf.summary.scalar("coordinates_loss_sum", 5.0 + 0.01 * np.sin(step), step=step)
    writer.close()
    page = tmp_path / "report.html"
    out = run(
        "report",
        "--format",
        "html",
        "--out",
        str(page),
        "--logs",
        str(tmp_path / "logs"),
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    text = page.read_text()
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    for part in (
        "Verdict per component",
        "Response curves",
        "Balance",
        "Gradients per component",
        "Training response",
        "TensorBoard logs in",
        "classification_loss_sum",
        "zero",
    ):
        assert part in text, part
    assert text.count("<svg") >= 5


def test_report_refuses_a_misspelt_config_key_as_check_does(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.lossaudit]\nprofle = "ci"\n')
    for command in ("report", "check"):
        out = run(command, cwd=tmp_path)
        assert out.returncode == 2, out.stdout + out.stderr
        assert "unknown key 'profle'" in out.stderr and "Did you mean 'profile'" in out.stderr
        assert "Traceback" not in out.stderr
