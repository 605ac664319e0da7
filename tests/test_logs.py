"""`lossaudit tensorboard`: real event files in, one status per loss component out."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lossaudit.cli import main, write_atomic
from lossaudit.errors import LossAuditError
from lossaudit.logs import (
    STATUSES,
    LogDirError,
    LogStatus,
    ScalarSeries,
    diagnose,
    diagnose_logdir,
    loss_role,
    read_scalars,
    rules,
)
from lossaudit.render.logs import plot_logs_png, render_logs_json, render_logs_text

ROOT = Path(__file__).resolve().parents[1]
LOSSAUDIT = [sys.executable, "-m", "lossaudit.cli"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
STEPS = 200
EPOCHS = 20


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = {**os.environ, "CI": "true"}
    return subprocess.run(
        [*LOSSAUDIT, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def _curves() -> dict[str, dict[str, np.ndarray]]:
    """Synthetic curves for every status, keyed by run and tag (the seed's names and Keras's)."""
    rng = np.random.default_rng(0)
    t = np.arange(STEPS, dtype=np.float64)
    e = np.arange(EPOCHS, dtype=np.float64)
    no_objects = 400 * np.exp(-t / 50) + 40 + rng.normal(0, 10, STEPS)  # noisy, falling
    objects = 0.3 + rng.normal(0, 0.02, STEPS)  # flat and tiny next to no_objects
    coordinates = 30 + rng.normal(0, 2, STEPS)  # noisy, flat
    nan_curve = 5 * np.exp(-t / 40) + 1
    nan_curve[120] = np.nan
    blowup = np.r_[5 * np.exp(-t[:150] / 20) + 0.1, 0.1 * np.exp((t[150:] - 150) / 10)]
    epoch_total = 0.5 * (400 * np.exp(-e / 5) + 70) + rng.normal(0, 2, EPOCHS)
    return {
        "seed/metrics": {
            "coordinates_loss_sum": coordinates,
            "objects_loss_sum": objects,
            "no_objects_loss_sum": no_objects,
            "confidence_loss_sum": objects + no_objects,
            "classification_loss_sum": np.zeros(STEPS),  # one-class softmax
        },
        "seed/train": {
            "epoch_loss": epoch_total,
            "epoch_learning_rate": np.full(EPOCHS, 1e-3),
            "epoch_accuracy": np.linspace(0.2, 0.9, EPOCHS),
        },
        "seed/validation": {
            "epoch_loss": epoch_total * 1.1,
            "evaluation_loss_vs_iterations": epoch_total * 1.1,
        },
        "broken": {
            "coordinates_loss": 1 + 0.05 * t + rng.normal(0, 0.3, STEPS),  # rising
            "objects_loss": nan_curve,
            "no_objects_loss": blowup,
            "yolo_output_0_loss": 3 * np.exp(-t / 60) + 0.2,  # a loss no role fits
        },
        "good/train": {"epoch_loss": epoch_total, "epoch_mae": np.linspace(1, 0.1, EPOCHS)},
        "good/metrics": {
            "xy_loss": 2 * np.exp(-t / 30) + 0.1 + rng.normal(0, 0.05, STEPS),
            "noobj_loss": 9 * np.exp(-t / 80) + 1,
        },
        "no_losses/train": {"epoch_accuracy": np.linspace(0.2, 0.9, EPOCHS)},
    }


def _write_legacy_scalars(logdir: Path, tag: str, values: np.ndarray) -> None:
    """Old-style ``simple_value`` scalars (TF1, PyTorch), written with TensorBoard's own writer."""
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    writer = EventFileWriter(str(logdir))
    for step, value in enumerate(values):
        summary = summary_pb2.Summary(
            value=[summary_pb2.Summary.Value(tag=tag, simple_value=value)]
        )
        writer.add_event(event_pb2.Event(step=step, wall_time=1.0e9 + step, summary=summary))
    writer.close()


@pytest.fixture(scope="module")
def logs(tmp_path_factory) -> Path:
    """Every log directory the tests read, written once with tf.summary (TF2 tensor events)."""
    from lossaudit.adapter import import_tensorflow

    tf = import_tensorflow()
    root = tmp_path_factory.mktemp("tb")
    for run_name, tags in _curves().items():
        writer = tf.summary.create_file_writer(str(root / run_name))
        with writer.as_default():
            for tag, values in tags.items():
                for step, value in enumerate(values):
                    tf.summary.scalar(tag, float(value), step=step)
            tf.summary.histogram("weights", np.arange(4.0), step=0)  # not a scalar: skipped
        writer.close()
    _write_legacy_scalars(root / "good" / "torch", "Loss/train", np.linspace(3.0, 0.5, 50))

    (root / "empty").mkdir()
    (root / "empty" / "notes.txt").write_text("no event files here\n")
    damaged = root / "damaged"
    (damaged / "cut").mkdir(parents=True)
    (source,) = (root / "good" / "metrics").iterdir()
    data = source.read_bytes()
    (damaged / "cut" / source.name).write_bytes(data[: len(data) * 2 // 3])  # truncated mid-run
    garbage = np.random.default_rng(1).integers(0, 256, 3000, dtype=np.uint8).tobytes()
    (damaged / "cut" / "events.out.tfevents.9999999999.garbage").write_bytes(garbage)
    (root / "garbage_only").mkdir()
    (root / "garbage_only" / "events.out.tfevents.1.host").write_bytes(garbage)
    return root


def _by_label(diagnosis):
    return {c.label: c for c in diagnosis.components}


# ------------------------------------------------------------------------- reading


def test_read_scalars_reads_tensor_and_legacy_scalars_by_run(logs):
    runs = read_scalars(logs / "good")
    assert sorted(runs) == ["metrics", "torch", "train"]
    assert set(runs["train"]) == {"epoch_loss", "epoch_mae"}  # the histogram is not a scalar
    series = runs["metrics"]["xy_loss"]
    assert len(series) == STEPS and list(series.steps[:3]) == [0, 1, 2]
    assert series.values.dtype == np.float64
    legacy = runs["torch"]["Loss/train"]
    assert len(legacy) == 50 and legacy.values[0] == pytest.approx(3.0)


def test_root_run_is_named_dot(logs):
    runs = read_scalars(logs / "good" / "train")
    assert list(runs) == ["."]


# ------------------------------------------------------------------------- statuses


def test_seed_style_logs_get_one_status_each(logs):
    d = diagnose_logdir(logs / "seed")
    got = {c.label: (c.component, c.status) for c in d.components}
    assert got == {
        "metrics/coordinates_loss_sum": ("coordinates", "flat"),
        "metrics/objects_loss_sum": ("objects", "drowned"),
        "metrics/no_objects_loss_sum": ("no_objects", "responding"),
        "metrics/classification_loss_sum": ("classification", "zero"),
        "metrics/confidence_loss_sum": ("confidence", "responding"),
        "train/epoch_loss": ("total", "responding"),
        "validation/epoch_loss": ("total", "responding"),
    }
    # Keras's per-iteration copy of the validation curve is not counted twice.
    assert set(d.ignored) == {
        "train/epoch_learning_rate",
        "train/epoch_accuracy",
        "validation/evaluation_loss_vs_iterations",
    }
    assert not d.ok
    drowned = _by_label(d)["metrics/objects_loss_sum"]
    assert drowned.share is not None and drowned.share < 0.01
    assert drowned.reference == "metrics/confidence_loss_sum"
    assert "barely feels it" in drowned.reason
    zero = _by_label(d)["metrics/classification_loss_sum"]
    assert (zero.first, zero.last, zero.min, zero.max, zero.steps) == (0, 0, 0, 0, STEPS)


def test_broken_run_diverges_and_goes_nan(logs):
    d = diagnose_logdir(logs / "broken")
    got = {c.name: (c.component, c.status) for c in d.components}
    assert got == {
        "coordinates_loss": ("coordinates", "diverging"),
        "objects_loss": ("objects", "nan"),
        "no_objects_loss": ("no_objects", "diverging"),
        "yolo_output_0_loss": (None, "responding"),
    }
    c = _by_label(d)
    assert c["objects_loss"].nonfinite == 1 and "first at step 120" in c["objects_loss"].reason
    assert "blows up" in c["no_objects_loss"].reason
    assert c["coordinates_loss"].reason.startswith("rises")
    assert [x.run for x in d.components] == ["."] * 4


def test_all_responding_logs_are_ok(logs):
    d = diagnose_logdir(logs / "good")
    assert d.ok, render_logs_text(d)
    assert {c.label: c.component for c in d.components} == {
        "metrics/xy_loss": "coordinates",
        "metrics/noobj_loss": "no_objects",
        "torch/Loss/train": "total",
        "train/epoch_loss": "total",
    }
    assert d.ignored == ("train/epoch_mae",)


def _series(values, run="r", tag="loss"):
    values = np.asarray(values, dtype=np.float64)
    steps = np.arange(len(values))
    return ScalarSeries(run, tag, steps, values, steps.astype(np.float64))


@pytest.mark.parametrize(
    "values,status",
    [
        (10 - 0.02 * np.arange(200) + np.random.default_rng(2).normal(0, 3, 200), "responding"),
        (5 + np.random.default_rng(3).normal(0, 3, 200), "flat"),  # moves ~20% but all noise
        (np.full(50, 2.5), "flat"),
        ([4.0], "flat"),  # one point: movement cannot be judged
        ([1.0, 0.8, 0.7], "responding"),  # a short Keras run
        (np.r_[np.linspace(2, 1, 100), np.linspace(1, 1.4, 100)], "responding"),  # overfits
        (10 * np.exp(-np.arange(200) / 10) + 1e-3, "responding"),  # converges to ~0
        ([0.0, 0.0, 0.0], "zero"),
        ([1.0, np.inf, 0.5], "nan"),
        (np.exp(np.arange(30) / 3), "diverging"),
    ],
)
def test_status_rules_on_single_series(values, status):
    d = diagnose({"r": {"loss": _series(values)}})
    (c,) = d.components
    assert c.status == status, c.reason
    assert c.status in STATUSES


def test_drowned_needs_a_responding_peer():
    flat_tiny = np.full(100, 0.01)
    falling = np.linspace(100, 10, 100)
    d = diagnose(
        {"r": {"obj_loss": _series(flat_tiny, tag="obj_loss"), "box": _series(falling, tag="box")}}
    )
    assert {c.name: c.status for c in d.components} == {"box": "responding", "obj_loss": "drowned"}
    d = diagnose(
        {
            "r": {
                "obj_loss": _series(flat_tiny, tag="obj_loss"),
                "box": _series(np.full(100, 50.0), tag="box"),
            }
        }
    )
    assert {c.name: c.status for c in d.components} == {"box": "flat", "obj_loss": "flat"}


@pytest.mark.parametrize(
    "tag,expected",
    [
        ("coordinates_loss_sum", (True, "coordinates")),
        ("no_objects_loss_sum", (True, "no_objects")),
        ("confidence_loss_sum", (True, "confidence")),
        ("epoch_loss", (True, "total")),
        ("batch_loss", (True, "total")),
        ("evaluation_loss_vs_iterations", (False, None)),
        ("epoch_classification_loss", (True, "classification")),
        ("train/box_loss", (True, "coordinates")),
        ("Loss/train", (True, "total")),
        ("epoch_yolo_output_0_loss", (True, None)),
        ("noobj", (True, "no_objects")),
        ("epoch_learning_rate", (False, None)),
        ("epoch_accuracy", (False, None)),
        ("class_accuracy", (False, None)),
        ("metrics/mAP_0.5", (False, None)),
        ("loss_scale", (False, None)),
    ],
)
def test_which_tags_are_loss_components(tag, expected):
    assert loss_role(tag) == expected


def test_explicit_mapping_overrides_and_ignores(logs):
    d = diagnose_logdir(
        logs / "broken",
        components={"yolo_output_0_loss": "classification", "objects_loss": "ignore"},
    )
    got = {c.name: c.component for c in d.components}
    assert got["yolo_output_0_loss"] == "classification" and "objects_loss" not in got
    with pytest.raises(LossAuditError, match="Did you mean 'objects_loss'"):
        diagnose_logdir(logs / "broken", components={"objcts_loss": "objects"})


# ------------------------------------------------------------------------- output


def test_json_is_strict_and_has_the_documented_keys(logs):
    d = diagnose_logdir(logs / "broken")
    doc = json.loads(render_logs_json(d))  # allow_nan=False: NaN would have raised
    assert doc["schema_version"] == 2 and doc["ok"] is False
    assert set(doc["summary"]) == set(STATUSES)
    nan = next(c for c in doc["components"] if c["status"] == "nan")
    assert {"name", "run", "component", "status", "steps", "first", "last", "min", "max"} <= set(
        nan
    )
    assert nan["max"] is not None and nan["nonfinite"] == 1
    # One JSON policy with the report: a non-finite number is a string, never null.
    assert (nan["head"], nan["tail"]) == ("nan", "nan")


def test_text_table_lists_every_component_with_a_hint(logs):
    text = render_logs_text(diagnose_logdir(logs / "seed"))
    assert text.splitlines()[2].split()[:5] == ["NAME", "RUN", "ROLE", "STATUS", "FIRST"]
    for piece in (
        "classification_loss_sum",
        "drowned",
        "zero (metrics/classification_loss_sum)",
        "softmax",
        "0 -> 0",
    ):
        assert piece in text, piece
    assert "Not loss components (ignored): " in text


def test_plot_png_writes_a_real_png(logs, tmp_path):
    # The renderer returns the bytes; the command line writes them (atomically).
    target = tmp_path / "curves.png"
    write_atomic(target, plot_logs_png(diagnose_logdir(logs / "seed")))
    data = target.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 1000
    assert [p.name for p in tmp_path.iterdir()] == ["curves.png"]


def test_damaged_files_do_not_crash_and_are_named(logs):
    d = diagnose_logdir(logs / "damaged")
    assert {c.name for c in d.components} == {"xy_loss", "noobj_loss"}
    assert all(c.steps <= STEPS for c in d.components)
    assert any("garbage" in w and "no readable event" in w for w in d.warnings)
    assert any(w.startswith("cut/events.") and "partial record" in w for w in d.warnings)
    with pytest.raises(LogDirError, match=r"no scalar tags at all.*no readable event"):
        diagnose_logdir(logs / "garbage_only")


# ------------------------------------------------------------------------- command line


@pytest.mark.slow
def test_cli_json_out_and_plot_exit_1(logs, tmp_path):
    out, png = tmp_path / "diag.json", tmp_path / "curves.png"
    proc = run(
        "tensorboard",
        str(logs / "broken"),
        "--format",
        "json",
        "--out",
        str(out),
        "--plot",
        str(png),
    )
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "I0000" not in proc.stderr
    assert "wrote json diagnosis" in proc.stdout and "2 diverging" in proc.stdout
    doc = json.loads(out.read_text())
    assert {c["name"]: c["status"] for c in doc["components"]}["objects_loss"] == "nan"
    assert png.read_bytes().startswith(PNG_MAGIC)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["curves.png", "diag.json"]


@pytest.mark.slow
def test_cli_text_exit_0_when_everything_responds_and_writes_nothing(logs, tmp_path):
    logdir = tmp_path / "copy"
    shutil.copytree(logs / "good", logdir)
    before = sorted(p.relative_to(logdir) for p in logdir.rglob("*"))
    proc = run("tensorboard", str(logdir), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Every loss component responds" in proc.stdout
    assert "responding" in proc.stdout and "Traceback" not in proc.stderr
    assert sorted(p.relative_to(logdir) for p in logdir.rglob("*")) == before
    assert [p.name for p in tmp_path.iterdir()] == ["copy"]


def test_cli_in_process_json_to_stdout_exit_1(logs, capsys):
    # In process (TensorFlow is already loaded here); the subprocess tests cover the script.
    assert main(["tensorboard", str(logs / "seed"), "--format", "json"]) == 1
    statuses = {c["name"]: c["status"] for c in json.loads(capsys.readouterr().out)["components"]}
    assert statuses["classification_loss_sum"] == "zero"


def _bad_path(logs: Path, tmp_path: Path, where: str) -> Path:
    return {
        "missing": tmp_path / "nope",
        "file": next((logs / "good" / "train").iterdir()),
    }.get(where, logs / where)


@pytest.mark.parametrize(
    "where,extra,fragment",
    [
        ("missing", [], "does not exist"),
        ("file", [], "expected a directory; received the file"),
        ("empty", [], "expected event files"),
        pytest.param(  # reads the events with TensorBoard's reader, loading TensorFlow
            "no_losses",
            [],
            "received 1 scalar tag(s), none of them a loss: train/epoch_accuracy",
            marks=pytest.mark.slow,
        ),
        ("good", ["--plot", "/no/such/dir/c.png"], "existing directory"),
        ("good", ["--component", "xy_loss=coords"], "received xy_loss=coords"),
        ("good", ["--format", "yaml"], "invalid choice"),
    ],
)
def test_cli_bad_input_exits_2_without_traceback(logs, tmp_path, where, extra, fragment):
    proc = run("tensorboard", str(_bad_path(logs, tmp_path, where)), *extra)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert fragment in proc.stderr
    assert "Traceback" not in proc.stderr and "I0000" not in proc.stderr
    assert proc.stdout == ""


@pytest.mark.parametrize(
    "where,extra,fragment",
    [
        ("garbage_only", [], "no scalar tags at all"),
        ("good", ["--component", "xy_los=coordinates"], "Did you mean 'xy_loss'"),
        ("good", ["--out", "/no/such/dir/d.json"], "existing directory"),
    ],
)
def test_cli_in_process_bad_input_exits_2(logs, tmp_path, capsys, where, extra, fragment):
    assert main(["tensorboard", str(_bad_path(logs, tmp_path, where)), *extra]) == 2
    err = capsys.readouterr().err
    assert fragment in err and "Traceback" not in err


def test_cli_help_and_module_import_stay_light():
    code = (
        "import sys\nimport lossaudit.logs\nfrom lossaudit.cli import main\n"
        "try:\n    main(['tensorboard', '--help'])\nexcept SystemExit:\n    pass\n"
        "print('MODULES', ' '.join(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(out.stdout.split("MODULES", 1)[1].split())
    assert "LOGDIR" in out.stdout
    assert not {"tensorflow", "tensorboard", "matplotlib"} & loaded


def test_a_small_term_pushed_up_by_a_big_falling_one_is_drowned():
    """The seed's objects term: 0.8% of no_objects at the start, it rises as no_objects falls."""
    big = np.geomspace(3100.0, 1.0, 30)
    small = np.concatenate([np.linspace(24.0, 75.0, 8), np.full(22, 75.0)])
    d = diagnose(
        {
            "train": {
                "epoch_objects": _series(small, tag="epoch_objects"),
                "epoch_no_objects": _series(big, tag="epoch_no_objects"),
            }
        }
    )
    by = {c.name: c for c in d.components}
    assert by["epoch_objects"].status == "drowned", by["epoch_objects"].reason
    assert "epoch_no_objects" in by["epoch_objects"].reason
    # The same rise from a term of comparable size is not drowning: it diverges.
    d = diagnose(
        {
            "train": {
                "epoch_objects": _series(small * 100, tag="epoch_objects"),
                "epoch_no_objects": _series(big, tag="epoch_no_objects"),
            }
        }
    )
    assert {c.name: c.status for c in d.components}["epoch_objects"] == "diverging"


def test_a_term_that_starts_at_zero_and_outgrows_its_peer_is_not_drowned():
    """Only a term that stays small next to the falling one is called drowned."""
    rising = np.concatenate([[0.0], np.linspace(1.0, 5.0, 29)])
    falling = np.linspace(3.0, 1.0, 30)
    d = diagnose(
        {
            "train": {
                "epoch_objects": _series(rising, tag="epoch_objects"),
                "epoch_no_objects": _series(falling, tag="epoch_no_objects"),
            }
        }
    )
    assert {c.name: c.status for c in d.components}["epoch_objects"] == "diverging"


# ------------------------------------------------------------------------- rules, on arrays alone


def _frozen(values) -> np.ndarray:
    array = np.array(values, dtype=np.float64)
    array.setflags(write=False)  # a rule that wrote to its input would raise
    return array


def test_rules_are_pure_functions_of_arrays():
    """No files, no TensorBoard: the rules take numpy arrays and numbers, and decide on typed
    fields (``Trend.rising``), never on the wording of a reason."""
    t = _frozen(np.arange(30))
    falling = rules.trend(_frozen(np.geomspace(3100.0, 1.0, 30)), t)
    rising = rules.trend(_frozen(np.r_[np.linspace(24.0, 75.0, 8), np.full(22, 75.0)]), t)
    blowup = rules.trend(
        _frozen(np.r_[5 * np.exp(-t[:20] / 3) + 0.1, 0.1 * np.exp((t[20:] - 20) / 1.5)]), t
    )
    assert (falling.status, falling.rising) == (LogStatus.RESPONDING, False)
    assert (rising.status, rising.rising) == (LogStatus.DIVERGING, True)
    assert (blowup.status, blowup.rising) == (LogStatus.DIVERGING, False)
    assert blowup.reason.startswith("blows up")

    peers = [("train/epoch_no_objects", falling.head)]
    pushed = rules.pushed_up(rising, peers)
    assert pushed is not None and pushed.reference == "train/epoch_no_objects"
    assert pushed.share < rules.PUSHED_SHARE and pushed.reason.startswith("rises")
    assert rules.pushed_up(rising, []) is None
    # The typed field decides, whatever the reason says.
    assert rules.pushed_up(dataclasses.replace(rising, rising=False), peers) is None
    assert rules.pushed_up(dataclasses.replace(blowup, reason="rises 500%"), peers) is None
    assert rules.pushed_up(dataclasses.replace(blowup, rising=True, reason="?"), peers) is not None

    tiny = _frozen(np.full(30, 0.01))
    flat = rules.trend(tiny, t)
    assert (flat.status, flat.barely) == (LogStatus.FLAT, True)
    drowned = rules.drowned_by_size(flat, rules.typical(tiny), [("a", 5.0), ("box", 50.0)])
    assert drowned is not None and drowned.reference == "box"
    assert drowned.share == pytest.approx(0.01 / 50)
    assert rules.drowned_by_size(flat, 0.01, [("box", 0.5)]) is None  # 2%: not drowned
    assert rules.drowned_by_size(falling, 0.01, [("box", 50.0)]) is None  # falls clearly
    assert rules.format_number(float("-inf")) == "-inf" and rules.format_number(0.0) == "0"
