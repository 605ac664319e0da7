"""The opt-in degenerate-box scenario (``--degenerate-boxes``): what it calls a failure.

The catalogue's meta-tests show the rest: every correct fixture passes it, the zoo's unguarded
``log(w)`` (``log_truth_wh_at_objects``) and the layouts' keras-yolo3 ``log_zero_box`` and
YunYang ``giou_divide_by_zero`` fail it.
"""

from __future__ import annotations

import pytest

from lossaudit import audit
from lossaudit.settings import resolve
from lossaudit.spec import Codec, GridSpec

NAME = "total.finite_on_degenerate_boxes"
SPEC = GridSpec(batch=2, H=2, W=3, anchors=2, classes=2)


def _run(loss):
    report = audit(
        loss,
        SPEC,
        Codec(cls="sigmoid"),
        settings=resolve("ci", full_shrink=True),
        only=[NAME],
        degenerate_boxes=True,
    )
    (result,) = report.results
    return result


@pytest.mark.slow
def test_a_finite_value_that_blows_up_fails():
    """A division by a floored truth size is finite and still wrecks training."""
    import tensorflow as tf

    from fixtures.losses.references import mse_loss

    def ratio_loss(y_true, y_pred):
        parts = mse_loss(y_true, y_pred)
        obj = y_true[..., 4:5] > 0
        w = tf.where(obj, tf.maximum(y_true[..., 2:3], 1e-12), 1.0)
        ratio = tf.where(obj, tf.exp(tf.clip_by_value(y_pred[..., 2:3], -10, 10)) / w, 1.0)
        parts["coordinates"] = parts["coordinates"] + tf.reduce_sum(tf.square(ratio - 1.0))
        return parts

    result = _run(ratio_loss)
    assert result.status == "fail"
    assert "blows up" in result.observed and "coordinates" in result.observed
    (obj,) = result.counterexample.scene
    assert min(obj["w"], obj["h"]) < 1e-6


@pytest.mark.slow
def test_a_loss_non_finite_with_ordinary_boxes_too_is_sent_to_its_finite_property():
    """Not this scenario's finding: the error points at coordinates.finite."""
    from fixtures.losses.bugzoo import log_zero_truth_wh

    result = _run(log_zero_truth_wh)
    assert result.status == "error"
    assert "see coordinates.finite" in result.message
