"""The CI gate end to end on a temporary project: clean, bug, drift, update, bad config."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

LOSS = """
import tensorflow as tf

OBJECT_WEIGHT = {weight}

def yolo_loss(y_true, y_pred):
    mask = y_true[..., 4]
    box = tf.reduce_sum(tf.square(y_pred[..., 0:4] - y_true[..., 0:4]), axis=-1)
    conf = y_pred[..., 4]
    cls = tf.reduce_sum(tf.square(y_pred[..., 5:] - y_true[..., 5:]), axis=-1)
    return {{
        "coordinates": tf.reduce_sum(mask * box),
        "objects": OBJECT_WEIGHT * tf.reduce_sum(mask * tf.square(1.0 - conf)),
        "no_objects": tf.reduce_sum((1.0 - mask) * tf.square(conf)),
        "classification": tf.reduce_sum(mask * cls),
    }}
"""

CONFIG = """
[tool.lossaudit]
profile = "ci"
max_examples = 5

[[tool.lossaudit.losses]]
target = "{target}"
classes = 2
xy = "identity"
wh = "identity"
obj = "identity"
cls = "identity"
"""


def lossaudit(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lossaudit.cli", *args],
        cwd=cwd,
        env={**os.environ, "CI": "true"},
        capture_output=True,
        text=True,
        timeout=600,
    )


def in_process(*args: str, cwd: Path, capsys, monkeypatch) -> subprocess.CompletedProcess:
    """``lossaudit ARGS`` run by :func:`lossaudit.cli.main` in this process (no supervisor, no
    second TensorFlow import): the gate's logic, where :func:`lossaudit` runs the real command."""
    from lossaudit.cli import main

    monkeypatch.chdir(cwd)
    monkeypatch.setenv("CI", "true")
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(["lossaudit", *args], int(code), out, err)


@pytest.fixture
def project(tmp_path):
    (tmp_path / "losses.py").write_text(LOSS.format(weight=1.0))
    (tmp_path / "pyproject.toml").write_text(CONFIG.format(target="losses.py:yolo_loss"))
    return tmp_path


@pytest.mark.slow
def test_gate_without_baseline_then_clean_then_drift_then_update(project, capsys, monkeypatch):
    # Every step but the drift runs in this process; the drift's exit code and HTML page come
    # from the real command (its supervisor and child process).
    def run(*args: str) -> subprocess.CompletedProcess:
        return in_process(*args, cwd=project, capsys=capsys, monkeypatch=monkeypatch)

    first = run("check")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "No baseline at" in first.stdout and "lossaudit baseline" in first.stdout

    made = run("baseline")
    assert made.returncode == 0, made.stderr
    doc = json.loads((project / "lossaudit-baseline.json").read_text())
    values = doc["losses"]["losses.py:yolo_loss"]["values"]
    assert {"perfect", "shifted_0.1", "empty", "crowded", "extreme_empty"} <= set(values)

    again = run("baseline")
    assert again.returncode == 2 and "--update" in again.stderr

    clean = run("check")
    assert clean.returncode == 0, clean.stdout
    assert "No drift" in clean.stdout

    # Still correct, but objects moved ("2.00": another size, so no stale bytecode is read).
    (project / "losses.py").write_text(LOSS.format(weight="2.00"))
    drift = lossaudit("check", "--html", "gate.html", cwd=project)
    assert drift.returncode == 1, drift.stdout
    assert "drifted from lossaudit-baseline.json" in drift.stdout
    page = (project / "gate.html").read_text()
    assert "Drift from the baseline" in page and "objects" in page and "<svg" in page
    assert "lossaudit baseline --update" in page
    assert "objects" in drift.stdout and "lossaudit baseline --update" in drift.stdout
    assert "FAILED" not in drift.stdout  # every property still holds: only values moved

    accepted = run("baseline", "--update")
    assert accepted.returncode == 0
    assert run("check").returncode == 0


@pytest.mark.slow
def test_gate_fails_on_a_bug_zoo_loss(tmp_path):
    target = f"{ROOT / 'fixtures' / 'losses' / 'bugzoo.py'}:noobj_on_object_cells"
    (tmp_path / "pyproject.toml").write_text(
        CONFIG.format(target=target).replace(
            'xy = "identity"\nwh = "identity"\nobj = "identity"\ncls = "identity"\n',
            'cls = "sigmoid"\n',
        )
    )
    out = lossaudit("check", "--format", "markdown", cwd=tmp_path)
    assert out.returncode == 1
    assert "no_objects.ignores_object_anchors" in out.stdout


@pytest.mark.parametrize(
    "text,fragment",
    [
        (
            '[tool.lossaudit]\nprofle = "ci"\n[[tool.lossaudit.losses]]\ntarget = "a.py:l"\n',
            "unknown key 'profle'",
        ),
        (
            '[tool.lossaudit]\n[[tool.lossaudit.losses]]\ntarget = "a.py:l"\ngrid = "3y4"\n',
            "#1: grid",
        ),
        ("[tool.lossaudit]\nprofile = 'ci'\n", "no losses configured"),
        (
            '[[tool.lossaudit.losses]]\ntarget = "a.py:l"\ncls = "softmx"\n',
            "Did you mean 'softmax'",
        ),
    ],
)
def test_a_malformed_config_exits_2(tmp_path, text, fragment):
    (tmp_path / "pyproject.toml").write_text(text)
    out = lossaudit("check", cwd=tmp_path)
    assert out.returncode == 2, out.stdout + out.stderr
    assert fragment in out.stderr and "Traceback" not in out.stderr


@pytest.mark.parametrize(
    "document,fragment",
    [
        ('{"schema_version": 1}', "is damaged"),
        ('{"schema_version": 1, "losses": {"losses.py:yolo_loss": 5}}', "is damaged"),
        ("{not json", "not valid JSON"),
    ],
)
def test_a_damaged_baseline_exits_2(project, document, fragment):
    (project / "lossaudit-baseline.json").write_text(document)
    out = lossaudit("check", cwd=project)
    assert out.returncode == 2, out.stdout + out.stderr
    assert fragment in out.stderr


@pytest.mark.slow
def test_misspelt_tolerance_and_raising_losses_are_refused(project):
    config = project / "pyproject.toml"
    config.write_text(config.read_text() + "\n[tool.lossaudit.tolerance]\ncoordinate = 1e-3\n")
    out = lossaudit("check", cwd=project)
    assert out.returncode == 2 and "Did you mean 'coordinates'" in out.stderr
    config.write_text(CONFIG.format(target="losses.py:yolo_loss"))
    (project / "losses.py").write_text(
        "def yolo_loss(y_true, y_pred):\n    raise RuntimeError('kaboom')\n"
    )
    out = lossaudit("baseline", cwd=project)
    assert out.returncode == 1 and "kaboom" in out.stderr and "Nothing was written" in out.stderr
    assert not (project / "lossaudit-baseline.json").exists()
