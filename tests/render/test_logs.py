"""The log diagnosis's renderers on a diagnosis built in memory (no event files, no TensorFlow):
golden text and JSON, the JSON read back, and the report showing the same rows.

Set LOSSAUDIT_UPDATE_GOLDEN=1 to rewrite the golden files.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np

from lossaudit.logs import LogDiagnosis, LogStatus, ScalarSeries, curves_for_report, diagnose
from lossaudit.render import render
from lossaudit.render.logs import (
    log_cells,
    logs_table,
    plot_logs_png,
    render_logs_json,
    render_logs_text,
)
from lossaudit.report import SCHEMA_VERSION
from tests.render.sample import sample_report
from tests.render.test_text import _check


def _series(run: str, tag: str, values) -> ScalarSeries:
    values = np.asarray(values, dtype=np.float64)
    steps = np.arange(len(values)) * 10
    return ScalarSeries(run, tag, steps, values, steps.astype(np.float64))


def sample_diagnosis() -> LogDiagnosis:
    """One component per status, with deterministic curves (no random noise)."""
    t = np.arange(30, dtype=np.float64)
    with_nan = 5 * np.exp(-t / 10) + 1
    with_nan[12] = np.nan
    with_inf = np.linspace(2.0, 1.0, 30)
    with_inf[-1] = np.inf
    curves = {
        "train": {
            "epoch_loss": 1600 * np.exp(-t / 6) + 40,
            "epoch_no_objects": np.geomspace(3100.0, 1.0, 30),
            "epoch_objects": np.r_[np.linspace(24.0, 75.0, 8), np.full(22, 75.0)],
            "epoch_classification": np.zeros(30),
            "epoch_coordinates": np.full(30, 30.0),
            "epoch_learning_rate": np.full(30, 1e-3),
        },
        "broken": {
            "objects_loss": with_nan,
            "no_objects_loss": with_inf,
            "xy_loss": 1 + 0.1 * t,
        },
    }
    runs = {
        run: {tag: _series(run, tag, v) for tag, v in tags.items()} for run, tags in curves.items()
    }
    return diagnose(runs, logdir="logs/seed", warnings=("broken/events.out.tfevents.1 is empty",))


def test_every_status_is_in_the_sample():
    assert {c.status for c in sample_diagnosis().components} == set(LogStatus)


def test_text_golden():
    _check("logs.txt", render_logs_text(sample_diagnosis()))


def test_json_golden_uses_the_report_policy_and_version():
    text = render_logs_json(sample_diagnosis())
    _check("logs.json", text)
    doc = json.loads(text)
    assert doc["schema_version"] == SCHEMA_VERSION
    nan = {c["name"]: c for c in doc["components"]}["objects_loss"]
    assert (nan["first"], nan["head"], nan["change"]) == (6.0, "nan", None)
    inf = {c["name"]: c for c in doc["components"]}["no_objects_loss"]
    assert inf["last"] == "inf" and inf["max"] == 2.0


def test_json_reads_back_and_so_does_version_1():
    doc = json.loads(render_logs_json(sample_diagnosis()))
    assert LogDiagnosis.from_dict(doc).to_dict() == doc
    old = {**doc, "schema_version": 1}
    old["components"] = [{**c, "head": None, "tail": None} for c in doc["components"]]
    back = LogDiagnosis.from_dict(old)
    assert all(np.isnan(c.head) for c in back.components)
    assert [c.status for c in back.components] == [c["status"] for c in doc["components"]]


def test_renderers_are_pure():
    d = sample_diagnosis()
    assert render_logs_text(d) == render_logs_text(sample_diagnosis())
    png = plot_logs_png(d)
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and png == plot_logs_png(d)


def test_the_report_shows_the_logs_with_the_same_cells():
    d = sample_diagnosis()
    report = dataclasses.replace(sample_report(), analysis={"logs": curves_for_report(d)})
    caption, rows = logs_table(report)
    assert caption == "TensorBoard logs in logs/seed"
    assert rows == [(c.label, *log_cells(c)) for c in d.components]
    # In memory and read back from JSON alike.
    again = type(report).from_dict(json.loads(report.to_json()))
    assert logs_table(again) == (caption, rows)
    text = render(again, "text", width=200)
    assert "broken/objects_loss [objects]: nan, 6 -> 1.275:" in text
    assert "broken/no_objects_loss [no_objects]: nan, 2 -> inf:" in text
    assert "| broken/xy_loss | coordinates | diverging | 1 -> 3.9 |" in render(again, "markdown")
    page = render(again, "html")
    assert "TensorBoard logs in logs/seed" in page and page.count("<svg") >= 1
