"""The worked example's pieces: the fixed seed loss passes, the synthetic car scenes are sound.

The whole example (two 30-epoch trainings and two audits, about 3 minutes) is not run here;
these are the claims the README makes about its parts.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _module(name: str):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_the_fixed_seed_loss_passes_every_property_without_warnings():
    from lossaudit import audit
    from lossaudit.settings import resolve
    from lossaudit.spec import Codec, GridSpec
    from lossaudit.targets import load_target

    loss, target = load_target(f"{EXAMPLES / 'seed_fixed.py'}:fixed_loss")
    report = audit(loss, GridSpec(), Codec(cls="sigmoid"), settings=resolve("ci"), target=target)
    assert report.summary["fail"] == report.summary["error"] == report.summary["warn"] == 0, [
        (r.property, r.message) for r in report.results if r.status in ("fail", "error", "warn")
    ]


def test_car_scenes_hold_one_car_each_in_the_canonical_layout():
    example = _module("seed_worked_example")
    images, truth = example.car_scenes(6)
    g, a = example.GRID, example.ANCHORS
    assert images.shape == (6, g * example.PIXELS, g * example.PIXELS, 3)
    assert truth.shape == (6, g, g, a, 5 + example.CLASSES)
    assert (truth[..., 4].reshape(6, -1).sum(axis=1) == 1).all()  # one responsible anchor each
    present = truth[..., 4] == 1
    assert np.all((truth[present][:, 0:2] >= 0) & (truth[present][:, 0:2] < 1))
    assert np.all(truth[present][:, 5] == 1)
