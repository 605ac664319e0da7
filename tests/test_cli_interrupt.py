"""Ctrl-C: every subcommand exits INTERRUPTED (130) with one line on stderr, no traceback, and
leaves no output file behind, whole or half-written.

In process, with the slow step replaced by one that raises KeyboardInterrupt (a real signal
would land wherever the audit happens to be; what matters is what the CLI does with it).
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import pytest

from lossaudit import cli
from lossaudit.cli import ExitCode

CONFIG = """
[tool.lossaudit]
profile = "ci"

[[tool.lossaudit.losses]]
target = "losses.py:yolo_loss"
"""


def _interrupt(*args: object, **kwargs: object) -> None:
    raise KeyboardInterrupt


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A directory with a configured loss, as the current directory; no TensorFlow, no loss."""
    (tmp_path / "pyproject.toml").write_text(CONFIG)
    (tmp_path / "losses.py").write_text("def yolo_loss(y_true, y_pred):\n    return 0.0\n")
    (tmp_path / "logs").mkdir()
    monkeypatch.chdir(tmp_path)
    # The CLI would point Hypothesis at a private temporary home for the whole process.
    monkeypatch.setenv("HYPOTHESIS_STORAGE_DIRECTORY", str(tmp_path / ".hypothesis-unused"))
    monkeypatch.setattr("lossaudit.adapter.import_tensorflow", lambda: None)
    monkeypatch.setattr(
        "lossaudit.targets.load_target", lambda target, **_: (lambda t, p: 0.0, str(target))
    )
    return tmp_path


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


INTERRUPTED_STEP = {
    "report": ("lossaudit.audit", "audit"),
    "check": ("lossaudit.gate", "run_check"),
    "baseline": ("lossaudit.gate", "measure"),
    "tensorboard": ("lossaudit.logs", "diagnose_logdir"),
}
ARGV = {
    "report": ["report", "--only", "total.pure", "--out", "report.json", "--format", "json"],
    "check": ["check", "--out", "check.txt", "--html", "check.html"],
    "baseline": ["baseline"],
    "tensorboard": ["tensorboard", "logs", "--out", "tb.json", "--plot", "tb.png"],
}


@pytest.mark.parametrize("command", list(ARGV))
def test_every_subcommand_exits_interrupted_and_writes_nothing(
    command, project, monkeypatch, capsys
):
    module, name = INTERRUPTED_STEP[command]
    # importlib: ``lossaudit.audit`` the attribute is the function, not the module.
    monkeypatch.setattr(importlib.import_module(module), name, _interrupt)
    before = _files(project)

    code = cli.main(ARGV[command])

    assert code == ExitCode.INTERRUPTED == 130
    err = capsys.readouterr().err
    assert err.splitlines() == ["lossaudit: interrupted; no output file was left half-written"]
    assert _files(project) == before  # no report, page, plot, baseline or temporary file


def test_an_interrupted_write_leaves_neither_the_file_nor_its_temporary(project, monkeypatch):
    from tests.render.sample import sample_report

    monkeypatch.setattr(
        importlib.import_module("lossaudit.audit"), "audit", lambda *a, **k: sample_report()
    )
    monkeypatch.setattr(os, "fsync", _interrupt)  # mid-write: the text is in the temporary file
    before = _files(project)

    code = cli.main(["report", "--format", "json", "--out", "report.json"])

    assert code == ExitCode.INTERRUPTED
    assert _files(project) == before


def test_an_interrupted_write_keeps_the_previous_file_whole(tmp_path, monkeypatch):
    target = tmp_path / "report.txt"
    target.write_text("the previous report\n")
    monkeypatch.setattr(os, "fsync", _interrupt)
    with pytest.raises(KeyboardInterrupt):
        cli.write_atomic(target, "a new report that never lands\n")
    assert [p.name for p in tmp_path.iterdir()] == ["report.txt"]
    assert target.read_text() == "the previous report\n"


def test_exit_codes_are_distinct_and_documented():
    assert len({int(c) for c in ExitCode}) == len(ExitCode)
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    for code in ExitCode:
        assert f"**{int(code)}**" in readme, (
            f"README does not list exit code {int(code)} ({code.name})"
        )


@pytest.mark.slow
def test_ctrl_c_during_a_real_audit(tmp_path):
    """The console script under a real SIGINT while the loss is running on the audit's worker
    thread: exit 130, one line, no traceback, no report, and the process does not hang."""
    import signal
    import subprocess
    import sys
    import time

    (tmp_path / "losses.py").write_text(
        "import pathlib, time\n"
        "def yolo_loss(y_true, y_pred):\n"
        "    pathlib.Path('started').touch()\n"
        "    while True:\n"
        "        time.sleep(0.05)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "lossaudit", "report", "losses.py:yolo_loss", "--out", "r.json"],
        cwd=tmp_path,
        env={**os.environ, "CI": "true"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 300  # a guard against a hang, not a timing assertion
        while not (tmp_path / "started").exists() and proc.poll() is None:
            assert time.monotonic() < deadline, "the loss was never called"
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == ExitCode.INTERRUPTED, out + err
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.startswith("lossaudit:")]
    assert lines == ["lossaudit: interrupted; no output file was left half-written"], err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["losses.py", "started"]
