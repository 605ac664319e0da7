"""A gate that cannot be fooled or hung (issue 12): every hostile loss of ``tests/hostile.py``
through the real console script. The gate always ends (the subprocess timeouts are generous
guards against a hang, never timing assertions), with a non-zero exit code and a message that
says what happened, and never passes having audited nothing."""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import random
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from lossaudit import cli
from lossaudit.calling import describe_exception
from lossaudit.cli import ExitCode
from lossaudit.config import parse_losses, validate_table
from lossaudit.errors import InvalidSpec, LossError, UsageError
from lossaudit.files import check_writable, write_atomic
from lossaudit.gate import other_spec, read_baseline
from lossaudit.render.check import SPEC_DRIFT, render_check
from lossaudit.settings import resolve
from lossaudit.status import Status
from lossaudit.supervisor import Ended, where_from_dump
from lossaudit.worker import Worker
from tests.hostile import GOOD, GOOD_FLAGS, GOOD_TOML, HOSTILE

CONFIG = (
    """
[tool.lossaudit]
profile = "ci"
max_examples = 3
time_limit = {limit}

[[tool.lossaudit.losses]]
target = "losses.py:{name}"
"""
    + GOOD_TOML
)


def lossaudit(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lossaudit", *args],
        cwd=cwd,
        env={**os.environ, "CI": "true"},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def project(tmp_path: Path, hostile: str, *, limit: float = 60, name: str = "yolo_loss") -> Path:
    (tmp_path / "losses.py").write_text(GOOD if hostile == "good" else HOSTILE[hostile])
    (tmp_path / "pyproject.toml").write_text(CONFIG.format(limit=limit, name=name))
    return tmp_path


def report(cwd: Path, *extra: str, limit: float = 60, target: str = "losses.py:yolo_loss"):
    argv = ["report", target, *GOOD_FLAGS, "--time-limit", f"{limit:g}", *extra]
    return lossaudit(*argv, cwd=cwd)


# -- 2: sys.exit, sys.argv and os._exit while the target loads ----------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("command", ["report", "check", "baseline"])
def test_sys_exit_at_import_is_a_usage_error_not_a_silent_pass(tmp_path, command):
    cwd = project(tmp_path, "sys_exit_at_import")
    out = report(cwd) if command == "report" else lossaudit(command, cwd=cwd)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "called sys.exit(0) when lossaudit imported it" in out.stderr
    assert 'if __name__ == "__main__"' in out.stderr and "Traceback" not in out.stderr
    assert not (cwd / "lossaudit-baseline.json").exists()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("hostile", "target", "says"),
    [
        ("argv_at_import", "losses.py:yolo_loss", "called sys.exit(2) when lossaudit imported"),
        ("sys_exit_in_init", "losses.py:YoloLoss", "called sys.exit(0) when lossaudit built"),
    ],
)
def test_argv_parsing_and_exit_in_a_constructor_are_the_targets_error(
    tmp_path, hostile, target, says
):
    out = report(project(tmp_path, hostile), target=target)
    assert out.returncode == 2, out.stdout + out.stderr
    assert says in out.stderr
    # The module saw a clean command line, not lossaudit's flags.
    assert "--time-limit" not in out.stderr.split("called sys.exit")[0]


@pytest.mark.slow
@pytest.mark.parametrize("hostile", ["os_exit_at_import", "os_exit_in_loss"])
@pytest.mark.parametrize("command", ["report", "check", "baseline"])
def test_os_exit_fails_closed(tmp_path, hostile, command):
    cwd = project(tmp_path, hostile)
    out = report(cwd, "--format", "json") if command == "report" else lossaudit(command, cwd=cwd)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "exited with code 0" in out.stderr and "fails closed" in out.stderr
    assert not (cwd / "lossaudit-baseline.json").exists()
    if command == "report":
        (result,) = json.loads(out.stdout)["results"]
        assert result["status"] == "error" and "fails closed" in result["message"]
    if command == "check":
        assert "FAILED" in out.stdout


# -- 3: BaseException inside the loss --------------------------------------------------------------


def test_a_base_exception_on_the_worker_comes_back_as_the_losss_error():
    worker = Worker()
    for raised in (SystemExit(3), KeyboardInterrupt(), GeneratorExit()):

        def fn(raised: BaseException = raised) -> None:
            raise raised

        # The limit is a guard: before the fix the thread died and this waited it out.
        with pytest.raises(LossError, match=type(raised).__name__):
            worker.run(fn, 600)
    assert worker.run(lambda: 7, 600) == (True, 7)  # the thread survived
    worker.close(hung=False)


@pytest.mark.slow
@pytest.mark.parametrize("hostile", ["sys_exit_in_loss", "keyboard_interrupt_in_loss"])
def test_sys_exit_or_ctrl_c_raised_by_the_loss_is_reported_at_once(tmp_path, hostile):
    # A limit far beyond the subprocess's timeout: waiting it out would fail the test.
    out = report(project(tmp_path, hostile), "--format", "json", limit=3000)
    assert out.returncode == 1, out.stdout + out.stderr
    doc = json.loads(out.stdout)
    (result,) = doc["results"]
    expected = "SystemExit" if hostile == "sys_exit_in_loss" else "KeyboardInterrupt"
    assert result["status"] == "error" and expected in result["message"]
    assert not result["hung"]


# -- 12: a loss holding the GIL; 1: baseline and check under the time limit -------------------------


@pytest.mark.slow
def test_a_loss_holding_the_gil_is_stopped_with_a_report(tmp_path):
    # A limit long enough for the first call to reach the loss's body on a busy machine (under
    # a shorter one the limit can pass while TensorFlow is still setting up, before the GIL is
    # held, and the hang is then abandoned in-process as any other).
    out = report(project(tmp_path, "gil_hang"), "--format", "junit", "--out", "r.xml", limit=8)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "could not be abandoned in-process" in out.stderr
    assert "in yolo_loss" in out.stderr  # where it was stuck
    text = (tmp_path / "r.xml").read_text()
    assert "<error" in text and "time limit of 8s" in text


@pytest.mark.slow
@pytest.mark.parametrize("hostile", ["gil_hang", "sleep_hang"])
def test_baseline_and_check_end_within_the_time_limit(tmp_path, hostile):
    cwd = project(tmp_path, hostile, limit=2)
    made = lossaudit("baseline", cwd=cwd)
    assert made.returncode == 1, made.stdout + made.stderr
    assert not (cwd / "lossaudit-baseline.json").exists()
    # A baseline recorded from the good loss (with time to trace it on a busy machine): check
    # then audits and measures the hostile one.
    project(tmp_path, "good", limit=120)
    assert lossaudit("baseline", cwd=cwd).returncode == 0
    project(tmp_path, hostile, limit=2)
    checked = lossaudit("check", "--out", "check.txt", cwd=cwd)
    assert checked.returncode == 1, checked.stdout + checked.stderr
    assert (cwd / "check.txt").read_text() == checked.stdout


def test_where_a_hung_loss_was_is_read_off_the_stack_dump():
    dump = (
        "Thread 0x00007f01 (most recent call first):\n"
        f'  File "{Path(sysconfig.get_paths()["stdlib"]) / "re" / "__init__.py"}", line 166 in match\n'
        '  File "/home/me/proj/losses.py", line 12 in yolo_loss\n'
        f'  File "{Path(__file__).parents[1] / "lossaudit" / "adapter.py"}", line 9 in _call\n'
        "\nCurrent thread 0x00007f02 (most recent call first):\n"
        '  File "/home/me/proj/main.py", line 3 in wait\n'
    )
    assert where_from_dump(dump) == " (at /home/me/proj/losses.py:12 in yolo_loss)"
    traced = '  File "/tmp/__autograph_generated_file1.py", line 11 in tf__yolo_loss\n'
    assert where_from_dump("Thread 0x1 (most recent call first):\n" + traced) == (
        " (in yolo_loss, traced by tf.function)"
    )
    assert where_from_dump("") == ""


def test_every_way_a_supervised_command_ends_is_explained():
    hung = Ended("hung", 1, -9, "coordinates.minimal_at_truth", 2.0, 7.0, " (at l.py:3 in f)")
    assert "time limit of 2s (at l.py:3 in f)" in hung.describe()
    assert (
        "killed by SIGSEGV in the first call"
        in Ended("exited", 1, -11, "the first call").describe()
    )
    assert (
        "exited with code 0 in the first call" in Ended("exited", 1, 0, "the first call").describe()
    )
    assert "outside any step" in Ended("exited", 1, 0).describe()
    assert "interrupted" in Ended("interrupted", 130).describe()


# -- 8: print() in the loss ---------------------------------------------------------------------


@pytest.mark.slow
def test_print_in_the_loss_stays_off_the_report_stream(tmp_path):
    out = report(project(tmp_path, "prints"), "--format", "json", "--only", "total.pure")
    assert out.returncode == 0, out.stdout + out.stderr
    json.loads(out.stdout)  # the whole of stdout is the report
    assert "hello from the loss" in out.stderr


# -- 4, 11: configuration ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("table", "fragment"),
    [
        (
            {"losses": [{"target": "a.py:loss"}, {"target": "a.py:loss", "grid": "13"}]},
            "target 'a.py:loss' is configured twice (tables #1 and #2)",
        ),
        ({"baseline": ""}, "baseline: expected a path (a string)"),
        ({"baseline": 5}, "baseline: expected a path (a string)"),
    ],
)
def test_a_gate_that_could_never_pass_or_write_is_refused(table, fragment):
    with pytest.raises(InvalidSpec) as err:
        validate_table(table)
    assert fragment in str(err.value)


# -- 6: a baseline recorded for another spec ----------------------------------------------------


def test_a_baseline_for_another_spec_says_so_instead_of_drifting_everywhere():
    (configured,) = parse_losses(
        {"losses": [{"target": "a.py:loss", "classes": 4, "grid": "13x9"}]}
    )
    (recorded_as,) = parse_losses({"losses": [{"target": "a.py:loss"}]})
    recorded = {**recorded_as.options.record(), "values": {"perfect": {"total": 1.0}}}
    drift = other_spec(configured, recorded)
    assert drift is not None and drift.component == SPEC_DRIFT
    assert "H=3 W=4 classes=1" in drift.baseline and "H=13 W=9 classes=4" in drift.current
    assert other_spec(recorded_as, recorded) is None
    text = render_check([], [drift.row()], baseline="b.json", compared=True)
    assert "was recorded for another grid spec or codec" in text


# -- 9, 10, 11: files ----------------------------------------------------------------------------


def test_outputs_are_written_through_a_symbolic_link(tmp_path):
    real = tmp_path / "real.json"
    real.write_text("old\n")
    link = tmp_path / "link.json"
    link.symlink_to(real)
    write_atomic(link, "new\n")
    assert link.is_symlink() and real.read_text() == "new\n"


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_a_fifo_or_device_is_refused_not_replaced(tmp_path, kind):
    if kind == "fifo":
        path = tmp_path / "pipe"
        os.mkfifo(path)
    else:
        path = Path(os.devnull)
    with pytest.raises(UsageError, match="expected a regular file or a new path"):
        write_atomic(path, "a report\n")
    assert path.exists() and not path.is_file()


def test_a_killed_writers_temporary_file_is_removed_by_the_next_write(tmp_path):
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    stale = tmp_path / f".report.json.{dead.stdout.strip()}.abc123.tmp"
    stale.write_text("half a rep")
    alive = tmp_path / f".report.json.{os.getppid()}.def456.tmp"  # a live concurrent writer
    alive.write_text("being written")
    write_atomic(tmp_path / "report.json", "{}\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == [alive.name, "report.json"]


def test_an_unwritable_directory_is_found_before_the_audit(tmp_path, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    if os.geteuid() == 0:  # root may write anywhere: the directory says no the way it would
        monkeypatch.setattr(os, "access", lambda path, mode: Path(path) != locked)
    try:
        with pytest.raises(UsageError, match="not writable"):
            check_writable(locked / "report.json")
    finally:
        locked.chmod(0o700)


@pytest.mark.parametrize("value", [[1.0], {"x": 1.0}, 10**400, True, None])
def test_a_hand_edited_baseline_value_is_a_usage_error(tmp_path, value):
    path = tmp_path / "lossaudit-baseline.json"
    doc = {"schema_version": 1, "losses": {"a.py:loss": {"values": {"perfect": {"total": value}}}}}
    path.write_text(json.dumps(doc))
    with pytest.raises(InvalidSpec, match="is damaged: expected a number"):
        read_baseline(path)


def test_a_grid_too_big_for_memory_is_a_usage_error(monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HYPOTHESIS_STORAGE_DIRECTORY", str(tmp_path / ".hypothesis-unused"))
    monkeypatch.setattr("lossaudit.adapter.import_tensorflow", lambda: None)
    monkeypatch.setattr(
        "lossaudit.targets.load_target", lambda t, **_: (lambda a, b: 0.0, "x.py:l")
    )

    def allocate(*_args: object, **_kwargs: object) -> None:
        raise MemoryError("Unable to allocate 2.23 TiB for an array")

    # importlib: ``lossaudit.audit`` the attribute is the function, not the module.
    monkeypatch.setattr(importlib.import_module("lossaudit.audit"), "audit", allocate)
    assert cli.main(["report", "x.py:l", "--grid", "20000x20000"]) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert "ran out of memory" in err and "smaller grid" in err and "bug" not in err


# -- 16: the caller's random state ------------------------------------------------------------------


def test_the_dev_profile_leaves_the_callers_random_state_alone():
    from lossaudit.audit import _checked

    random.seed(1234)
    state = random.getstate()
    _, _, settings = _checked(None, None, resolve("dev"))
    assert settings.seed is not None
    assert random.getstate() == state


# -- 13: a loss returning a Python float or an int32 tensor ----------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("hostile", ["python_float", "int32_tensor"])
def test_a_constant_total_is_the_losss_failure_not_an_internal_error(tmp_path, hostile):
    out = report(project(tmp_path, hostile), "--format", "json", "--only", "total.trains")
    doc = json.loads(out.stdout)
    (result,) = doc["results"]
    assert result["status"] == "fail", result
    assert "constant" in result["observed"] and "ValueError" not in result["message"]


# -- 7: colour codes and lone surrogates in a loss's message ---------------------------------------

HOSTILE_MESSAGE = "ValueError: \x1b[31mred\x1b[0m, a bell \x07 and a lone surrogate \ud800"


def test_a_hostile_message_renders_in_every_format_and_junit_stays_xml(tmp_path):
    import xml.etree.ElementTree as ET

    from lossaudit.render import FORMATS, render
    from tests.render.sample import sample_report

    base = sample_report()
    errored = dataclasses.replace(base.results[0], status=Status.ERROR, message=HOSTILE_MESSAGE)
    report = dataclasses.replace(base, results=(errored,), notes=("unmapped: xy\ud800",))
    for fmt in FORMATS:
        text = render(report, fmt)
        write_atomic(tmp_path / f"report.{fmt}", text)  # UTF-8: no surrogate may remain
        if fmt == "junit":
            ET.fromstring(text.split("\n", 1)[1])
            assert "\x1b" not in text and "\x07" not in text
    described = describe_exception(ValueError(HOSTILE_MESSAGE.removeprefix("ValueError: ")))
    assert described == "ValueError: red, a bell  and a lone surrogate \ufffd"


@pytest.mark.slow
@pytest.mark.parametrize("hostile", ["ansi_error", "surrogate_error"])
def test_a_hostile_message_from_a_real_loss_is_reported_not_a_crash(tmp_path, hostile):
    import xml.etree.ElementTree as ET

    cwd = project(tmp_path, hostile)
    # The terminal's format and the one that must stay XML; every format renders the same
    # message in test_a_hostile_message_renders_in_every_format_and_junit_stays_xml.
    for fmt in ("text", "junit"):
        out = report(cwd, "--format", fmt, "--out", f"r.{fmt}", "--only", "total.pure")
        assert out.returncode == 1, out.stdout + out.stderr
    ET.parse(cwd / "r.junit")


# -- 5: a loss that reports only some components -----------------------------------------------------


def test_components_a_loss_never_reports_are_named():
    from lossaudit.audit import _unreported

    (note,) = _unreported(("coordinates", "total"))
    assert "never audited" in note and "objects, no_objects, classification" in note
    assert _unreported(("coordinates", "confidence", "classification", "total")) == []
    (only_total,) = _unreported(("total",))
    assert "it reports only its total" in only_total


@pytest.mark.slow
def test_a_partial_loss_says_what_was_never_checked(tmp_path):
    out = report(project(tmp_path, "partial"), "--format", "markdown")
    assert "objects, no_objects, classification" in out.stdout, out.stdout + out.stderr


# -- 15: the pytest plugin ---------------------------------------------------------------------------

pytest_plugins = ["pytester"]

PLUGIN_CONFIG = (
    """
[tool.lossaudit]
profile = "ci"
max_examples = 2

[[tool.lossaudit.losses]]
target = "losses.py:yolo_loss"
"""
    + GOOD_TOML
)

COUNTED = "import os\nwith open('imports.txt', 'a') as f:\n    f.write(str(os.getpid()) + '\\n')\n"


@pytest.fixture
def plugin_project(pytester):
    pytester.makefile(".toml", pyproject=PLUGIN_CONFIG)
    pytester.makepyfile(losses=COUNTED + GOOD)
    pytester.makeini("[pytest]\naddopts = -p no:cacheprovider\n")
    return pytester


def test_max_examples_zero_is_a_usage_error(plugin_project):
    result = plugin_project.runpytest("-n", "0", "--lossaudit-max-examples", "0")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--lossaudit-max-examples: expected an int >= 1*received 0*"])


def test_a_node_id_selects_one_configured_item(plugin_project):
    node = "pyproject.toml::losses.py:yolo_loss::total.pure"
    result = plugin_project.runpytest("-n", "0", "--lossaudit", "--collect-only", "-q", node)
    items = [line for line in result.stdout.lines if "::" in line]
    assert items == [node], result.stdout.str()


@pytest.mark.slow
def test_a_plugin_audit_leaves_no_hypothesis_directory_and_runs_once_under_xdist(plugin_project):
    # Two inner workers even inside this suite's own xdist worker: one would not show that the
    # second worker reads the first one's audit instead of auditing again.
    only = ["--lossaudit", "-k", "total.pure or objects.gradient_flows or coordinates"]
    result = plugin_project.runpytest_subprocess("-n", "2", "-q", *only)
    assert result.ret == 0, result.stdout.str()
    assert "bringing up nodes" in result.stdout.str()
    assert not (plugin_project.path / ".hypothesis").exists()
    imports = (plugin_project.path / "imports.txt").read_text().split()
    assert len(imports) == 1, imports  # one worker audited; the other read its report


# -- 14: a crash after the verdict ---------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("hostile", ["abort_at_exit", "graph_mode"])
def test_a_crash_at_shutdown_does_not_change_the_verdict(tmp_path, hostile):
    out = report(project(tmp_path, hostile), "--format", "json", "--only", "total.pure")
    assert out.returncode in (0, 1), out.stdout + out.stderr  # the verdict's, never 134
    doc = json.loads(out.stdout)
    assert out.returncode == (0 if doc["summary"]["error"] + doc["summary"]["fail"] == 0 else 1)


# -- 12 under pytest: the plugin's time limit holds for a loss holding the GIL ------------------------


@pytest.mark.slow
def test_a_pytest_run_ends_when_a_loss_holds_the_gil(pytester):
    pytester.makefile(
        ".toml", pyproject=PLUGIN_CONFIG.replace("max_examples = 2", "time_limit = 2")
    )
    pytester.makepyfile(losses=HOSTILE["gil_hang"])
    pytester.makeini("[pytest]\naddopts = -p no:cacheprovider\n")
    result = pytester.runpytest_subprocess(
        "-n", "0", "--lossaudit", "-k", "total.pure", timeout=240
    )
    assert result.ret != 0
    assert "Timeout" in result.stderr.str() and "yolo_loss" in result.stderr.str()  # where
