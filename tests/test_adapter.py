"""The TensorFlow seam: output shapes, component capture, gradients, errors, graph fallback."""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import pytest

from lossaudit.adapter import Adapter
from lossaudit.errors import LossError
from lossaudit.scenarios import noisy, perfect
from lossaudit.spec import Codec, GridSpec, Obj, Scene

SCENE = Scene(
    GridSpec(batch=2, H=2, W=3, anchors=2, classes=2), (Obj(0, 1, 2, 1, 0.4, 0.6, 0.3, 0.2, 1),)
)
CASE = noisy(SCENE, Codec(), seed=1)


def _sq(y_true, y_pred):
    import tensorflow as tf

    return tf.square(y_pred - y_true)


def test_dict_of_per_sample_components_and_gradients():
    import tensorflow as tf

    def loss(y_true, y_pred):
        s = _sq(y_true, y_pred)
        return {
            "xy_loss": tf.reduce_sum(s[..., 0:2], [1, 2, 3, 4]),
            "wh_loss": tf.reduce_sum(s[..., 2:4], [1, 2, 3, 4]),
            "obj_loss": tf.reduce_sum(s[..., 4]),
        }

    ev = Adapter(loss).evaluate(CASE)
    assert set(ev.roles) == {"coordinates", "objects", "total"}
    assert ev.per_sample["coordinates"].shape == (2,)
    assert not ev.total_given
    d = CASE.y_pred - CASE.y_true()
    np.testing.assert_allclose(ev.values["coordinates"], (d[..., 0:4] ** 2).sum() / 2, rtol=1e-5)
    np.testing.assert_allclose(ev.grads["objects"][..., 4], 2 * d[..., 4], rtol=1e-4, atol=1e-6)
    assert not ev.grads["objects"][..., :4].any()
    assert ev.names["coordinates"] == ("xy_loss", "wh_loss")


def test_summary_scalars_are_captured_without_changing_the_loss():
    import tensorflow as tf

    def loss(y_true, y_pred):
        s = tf.reduce_sum(_sq(y_true, y_pred), axis=[1, 2, 3])
        coords, obj = tf.reduce_sum(s[..., 0:4]), tf.reduce_sum(s[..., 4])
        tf.summary.scalar("coordinates_loss_sum", coords, step=0)
        tf.summary.scalar("objects_loss_sum", data=obj, step=0)
        return coords + obj

    ad = Adapter(loss)
    for mode in ("graph", "eager"):
        ev = ad.try_mode(CASE, mode)[0]
        assert set(ev.roles) == {"coordinates", "objects", "total"} and ev.total_given
        np.testing.assert_allclose(
            ev.values["total"], ev.values["coordinates"] + ev.values["objects"], rtol=1e-5
        )


def test_keras_loss_instances_are_called_through_call():
    import keras

    class PerSample(keras.losses.Loss):
        def call(self, y_true, y_pred):
            return keras.ops.sum(keras.ops.square(y_pred - y_true), axis=[1, 2, 3, 4])

    ev = Adapter(PerSample()).evaluate(CASE)
    assert ev.per_sample["total"].shape == (2,)


def test_disconnected_component_is_reported():
    import tensorflow as tf

    def loss(y_true, y_pred):
        return {
            "coordinates": tf.reduce_sum(tf.stop_gradient(y_pred)),
            "objects": tf.reduce_sum(y_pred[..., 4]),
        }

    ev = Adapter(loss).evaluate(CASE)
    assert ev.connected == {"coordinates": False, "objects": True, "total": True}


@pytest.mark.parametrize(
    "returned,fragment",
    [
        ("matrix", "has shape (2, 2)"),
        ("tuple", "returned a tuple"),
        ("string", "expected a float tensor"),
        ("unknown", "no component lossaudit recognises"),
        ("empty", "empty mapping"),
    ],
)
def test_unusable_outputs_are_loss_errors(returned, fragment):
    import tensorflow as tf

    def loss(y_true, y_pred):
        if returned == "matrix":
            return tf.reduce_sum(y_pred, axis=[2, 3, 4])
        if returned == "tuple":
            return (tf.reduce_sum(y_pred), tf.reduce_sum(y_true))
        if returned == "string":
            return {"coordinates": "zero"}
        if returned == "unknown":
            return {"lr": tf.reduce_sum(y_pred)}
        return {}

    with pytest.raises(LossError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        Adapter(loss).evaluate(CASE)


def test_a_raising_loss_reports_its_own_message_and_line():
    def loss(y_true, y_pred):
        raise RuntimeError("anchors not set")

    with pytest.raises(LossError) as info:
        Adapter(loss).evaluate(CASE)
    assert "RuntimeError: anchors not set" in str(info.value)
    assert "test_adapter.py:" in str(info.value)


def test_graph_breakage_falls_back_to_eager_and_is_recorded():
    import tensorflow as tf

    def loss(y_true, y_pred):
        scale = float(tf.reduce_max(y_true).numpy())  # works eagerly only
        return tf.reduce_sum(tf.square(y_pred)) * scale

    ad = Adapter(loss)
    ev = ad.evaluate(perfect(SCENE, Codec()))
    assert np.isfinite(ev.values["total"])
    assert ad.default_mode == "eager" and "numpy" in ad.graph_error


#: The functions AutoGraph converted that were running when ``_branching`` was last traced.
CONVERTED: list[str] = []


def _branching(y_true, y_pred):
    import sys

    import tensorflow as tf

    frame, CONVERTED[:] = sys._getframe(), []
    while frame is not None:
        if "__autograph_generated" in frame.f_code.co_filename:
            CONVERTED.append(frame.f_code.co_name)
        frame = frame.f_back
    # Python control flow on tensors: only AutoGraph makes it traceable.
    total = tf.constant(0.0)
    for k in tf.range(2):
        total += tf.reduce_sum(tf.square(y_pred[..., k] - y_true[..., k]))
    if tf.reduce_sum(y_true[..., 4]) > 0:
        total += tf.reduce_sum(tf.square(y_pred[..., 4] - y_true[..., 4]))
    return total


def test_autograph_converts_the_users_loss_but_not_lossaudits_wrappers():
    from lossaudit.harness import train

    ad = Adapter(_branching)
    graph, error = ad.try_mode(CASE, "graph")
    assert error is None and not ad.graph_error, error
    assert CONVERTED == ["tf___branching"]  # lossaudit's own functions around it: as written
    eager = ad.try_mode(CASE, "eager")[0]
    assert CONVERTED == []  # eagerly, the loss runs as written
    np.testing.assert_allclose(graph.values["total"], eager.values["total"], rtol=1e-5)
    np.testing.assert_allclose(graph.grads["total"], eager.grads["total"], rtol=1e-4, atol=1e-6)
    run = train(ad, SCENE, start=CASE.y_pred, steps=3)  # the traced training step converts it too
    assert run.error is None and run.values["total"][-1] < run.values["total"][0]
    assert CONVERTED == ["tf___branching"]


def _yad2k_loss(args, anchors, num_classes, rescore_confidence=False, scale=1.0):
    import tensorflow as tf

    return scale * tf.reduce_sum(tf.square(args[0])) + 0.0 * tf.reduce_sum(args[1])


class _CallableLoss:
    def __call__(self, args, anchors, num_classes):
        return _yad2k_loss(args, anchors, num_classes)


@pytest.mark.parametrize(
    "loss", [functools.partial(_yad2k_loss, scale=2.0), _CallableLoss()], ids=["partial", "object"]
)
def test_a_converted_loss_keeps_its_signature_for_the_layout(loss):
    """yad2k's layout passes keywords only a loss that takes them (inspect.signature): the loss
    converted for tracing still shows its own parameters, so graph mode traces."""
    from lossaudit.layouts import BUILT_IN
    from lossaudit.layouts.base import Frame

    spec = GridSpec(batch=1, H=3, W=3, anchors=2, classes=2)
    case = noisy(Scene(spec, (Obj(0, 1, 2, 1, 0.4, 0.6, 0.3, 0.2, 1),)), Codec(), seed=1)
    frame = Frame(spec, Codec(anchor_sizes=((0.2, 0.3), (0.5, 0.5))))
    ad = Adapter(loss, layout=BUILT_IN["yad2k"], frame=frame)
    graph, error = ad.try_mode(case, "graph")
    assert error is None, error
    eager = ad.try_mode(case, "eager")[0]
    np.testing.assert_allclose(graph.values["total"], eager.values["total"], rtol=1e-5)


def test_a_users_layout_is_converted_as_user_code():
    """A layout of the user's own is user code: its Python ``if`` on a tensor traces."""
    import tensorflow as tf

    from lossaudit.layouts import CANONICAL

    def call(loss, truth, y_pred, frame):
        out = loss(truth["y_true"], y_pred)
        if tf.reduce_sum(truth["y_true"][..., 4]) > 0:
            out = out * 1.0
        return out

    layout = dataclasses.replace(CANONICAL, name="mine", call=call)
    ad = Adapter(lambda t, p: tf.reduce_sum(tf.square(p - t)), layout=layout)
    graph, error = ad.try_mode(CASE, "graph")
    assert error is None and not ad.graph_error, error
    assert graph.values["total"] == pytest.approx(ad.try_mode(CASE, "eager")[0].values["total"])


def test_evaluations_are_cached_by_input():
    import tensorflow as tf

    ad = Adapter(lambda t, p: tf.reduce_sum(p))
    ad.evaluate(CASE)
    ad.evaluate(noisy(SCENE, Codec(), seed=1))
    assert ad.calls == 1


def test_a_result_derived_from_gradients_outlives_them(monkeypatch):
    """``Adapter.derived`` computes once per case and name, and serves the result without a
    loss call after the case's gradients were let go (every component's ``finite`` reads it)."""
    import tensorflow as tf

    import lossaudit.adapter as adapter_module

    ad = Adapter(lambda t, p: tf.reduce_sum(tf.square(p - t)))
    seen = []

    def nonzero(ev):
        seen.append(ev)
        return int(np.count_nonzero(ev.grads["total"]))

    first = ad.derived(CASE, "nonzero", nonzero)
    assert first == CASE.y_pred.size and ad.calls == 1
    monkeypatch.setattr(adapter_module, "_GRADIENT_BYTES", 0)  # keep one case's gradients
    other = noisy(SCENE, Codec(), seed=2)
    ad.evaluate(other)  # CASE's gradients go
    assert ad.derived(noisy(SCENE, Codec(), seed=1), "nonzero", nonzero) == first
    assert ad.calls == 2 and len(seen) == 1
    assert ad.derived(other, "nonzero", nonzero) == first and len(seen) == 2
    assert ad.calls == 2  # other's gradients were still kept


def test_none_and_ignored_names_get_plain_answers():
    import tensorflow as tf

    with pytest.raises(LossError, match="returned None"):
        Adapter(lambda t, p: None).evaluate(CASE)
    ad = Adapter(
        lambda t, p: {"coordinates": tf.reduce_sum(p), "lr": 0.1}, components={"lr": "ignore"}
    )
    ad.evaluate(CASE)
    assert ad.unmapped == set()


def test_scalars_beside_per_sample_vectors_keep_their_value():
    import tensorflow as tf

    def loss(y_true, y_pred):
        per_sample = tf.reduce_sum(tf.square(y_pred[..., :4]), axis=[1, 2, 3, 4])
        return {
            "coordinates": per_sample,
            "objects": tf.reduce_mean(tf.reduce_sum(y_pred[..., 4] ** 2, [1, 2, 3])),
        }

    ev = Adapter(loss).evaluate(CASE)
    p = CASE.y_pred.astype(np.float64)
    expected = (p[..., :4] ** 2).sum() / 2 + (p[..., 4] ** 2).sum() / 2
    np.testing.assert_allclose(ev.values["total"], expected, rtol=1e-5)


def test_py_function_losses_get_one_pass_per_component():
    import tensorflow as tf

    def loss(y_true, y_pred):
        sq = tf.py_function(lambda a: a * a, [y_pred - y_true], tf.float32)
        sq.set_shape(y_pred.shape)
        mask = y_true[..., 4]
        return {
            "coordinates": tf.reduce_sum(sq[..., :4] * mask[..., None]),
            "objects": tf.reduce_sum(sq[..., 4] * mask),
        }

    ad = Adapter(loss)
    ev = ad.evaluate(CASE)
    assert ad.separate_passes
    d = CASE.y_pred - CASE.y_true()
    m = CASE.y_true()[..., 4]
    np.testing.assert_allclose(ev.grads["objects"][..., 4], 2 * d[..., 4] * m, rtol=1e-4, atol=1e-6)


def test_summary_capture_is_per_thread_and_never_leaks(tmp_path):
    """A worker stuck inside a captured loss (a hung audit) leaves tf.summary working for
    every other thread: the user's own summaries still reach their writer."""
    import threading

    from lossaudit.calling import capture_summaries, import_tensorflow

    tf = import_tensorflow()
    inside, release = threading.Event(), threading.Event()
    captured: dict = {}

    def hung_loss():
        with capture_summaries(captured):
            tf.summary.scalar("in_worker", 1.0, step=0)
            inside.set()
            release.wait(30)

    worker = threading.Thread(target=hung_loss, daemon=True)
    worker.start()
    assert inside.wait(30)
    writer = tf.summary.create_file_writer(str(tmp_path))
    with writer.as_default():
        assert bool(tf.summary.scalar("in_main", 2.0, step=0))  # written, not captured
    writer.close()
    release.set()
    worker.join(30)
    assert set(captured) == {"in_worker"}
    assert any(tmp_path.iterdir())
