"""lossaudit.keras: a loss's components as Keras metrics, checked through a real ``model.fit``.

A tiny model (images -> Conv2D -> Reshape to ``(H, W, anchors, 5 + C)``) trains for a few epochs
on synthetic scenes; the History, ``model.evaluate`` and the event files the stock TensorBoard
callback writes (read back with TensorBoard's own reader) must each show one curve per component.
Keras and TensorFlow are imported inside the tests, so collecting this module stays cheap.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from lossaudit import errors
from lossaudit.keras import component_metrics, total_of
from lossaudit.spec import GridSpec, Obj, Scene
from lossaudit.targets import load_target

# Keras's TensorBoard callback converts its learning-rate variable with np.array(copy=False),
# which numpy 2 warns about on every epoch; not lossaudit's to fix.
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)

REFERENCES = Path(__file__).resolve().parents[1] / "fixtures" / "losses" / "references.py"
#: Grid of the model's head: 16x16 images, two stride-2 convolutions.
SPEC = GridSpec(batch=10, H=4, W=4, anchors=2, classes=2)
SEED_COMPONENTS = ["coordinates", "objects", "no_objects", "classification", "confidence"]
ROLES4 = ["coordinates", "objects", "no_objects", "classification"]


def _loss(name: str):
    if name == "seed_loss":
        return load_target("lossaudit.examples.seed:seed_loss")[0]
    return load_target(f"{REFERENCES}:{name}")[0]


def _data(n: int = SPEC.batch, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random images and canonical truths ``(n, H, W, anchors, 5 + C)`` with 1-2 objects each."""
    rng = np.random.default_rng(seed)
    spec = SPEC.replace(batch=n)
    objs, used = [], set()
    for b in range(n):
        for _ in range(1 + b % 2):
            slot = (b, int(rng.integers(spec.H)), int(rng.integers(spec.W)), int(rng.integers(2)))
            if slot in used:
                continue
            used.add(slot)
            x, y, w, h = rng.uniform(0.1, 0.9), rng.uniform(0.1, 0.9), *rng.uniform(0.1, 0.5, 2)
            objs.append(Obj(*slot, x, y, w, h, int(rng.integers(spec.classes))))
    truth = Scene(spec, tuple(objs)).truth()
    images = rng.normal(size=(n, 16, 16, 3)).astype(np.float32)
    return images, truth


def _model():
    import keras

    keras.utils.set_random_seed(1)
    return keras.Sequential(
        [
            keras.Input((16, 16, 3)),
            keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu"),
            keras.layers.Conv2D(SPEC.anchors * SPEC.channels, 1, strides=2),
            keras.layers.Reshape((SPEC.H, SPEC.W, SPEC.anchors, SPEC.channels)),
        ]
    )


def _curves(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar in a run's event files as ``{tag: [(step, value), ...]}``, read with
    TensorBoard's reader (Keras 3 writes scalars as tensor events)."""
    from tensorboard.backend.event_processing import event_accumulator
    from tensorboard.util import tensor_util

    acc = event_accumulator.EventAccumulator(
        str(run_dir), size_guidance={event_accumulator.TENSORS: 0}
    )
    acc.Reload()
    return {
        tag: [(e.step, float(tensor_util.make_ndarray(e.tensor_proto))) for e in acc.Tensors(tag)]
        for tag in acc.Tags()["tensors"]
        if acc.SummaryMetadata(tag).plugin_data.plugin_name == "scalars"
    }


def _fit(loss, metrics, tmp_path, *, epochs, **callback):
    import keras

    x, y = _data()
    model = _model()
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss, metrics=metrics)
    board = keras.callbacks.TensorBoard(log_dir=str(tmp_path), **callback)
    history = model.fit(
        x,
        y,
        batch_size=4,
        epochs=epochs,
        validation_data=_data(4, seed=1),
        callbacks=[board],
        verbose=0,
    )
    return model, history.history


def _check_history_and_curves(history, names, tmp_path, epochs):
    assert set(history) == {"loss", "val_loss", *names, *(f"val_{n}" for n in names)}
    for key, values in history.items():
        assert len(values) == epochs and all(math.isfinite(v) for v in values), (key, values)
    for run, prefix in (("train", ""), ("validation", "val_")):
        curves = _curves(tmp_path / run)
        for name in names:
            points = curves[f"epoch_{name}"]  # its own curve, one point per epoch
            assert [step for step, _ in points] == list(range(epochs)), (run, name)
            np.testing.assert_allclose(
                [v for _, v in points], history[prefix + name], rtol=1e-6, err_msg=name
            )


@pytest.mark.slow
def test_seed_loss_logged_with_tf_summary(tmp_path):
    seed = _loss("seed_loss")
    metrics = component_metrics(seed, shape=(SPEC.H, SPEC.W, SPEC.anchors, SPEC.channels))
    assert [m.name for m in metrics] == SEED_COMPONENTS
    _, history = _fit(seed, metrics, tmp_path, epochs=3)
    _check_history_and_curves(history, SEED_COMPONENTS, tmp_path, epochs=3)
    # Same batches, same weighting: the seed's total relation holds between the epoch curves.
    total = 0.5 * (
        np.array(history["confidence"])
        + np.array(history["classification"])
        + np.array(history["coordinates"])
    )
    np.testing.assert_allclose(total, history["loss"], rtol=1e-5)


@pytest.mark.parametrize(
    "name", ["mse_loss", pytest.param("giou_loss", marks=pytest.mark.slow)]
)  # scalars; per-sample vectors
def test_loss_returning_a_dict(tmp_path, name):
    loss = _loss(name)
    metrics = component_metrics(loss)
    assert [m.name for m in metrics] == ROLES4
    _, history = _fit(total_of(loss), metrics, tmp_path, epochs=2)
    _check_history_and_curves(history, ROLES4, tmp_path, epochs=2)
    # total_of trains on the sum of the components, and the metrics average like Keras's loss.
    np.testing.assert_allclose(
        np.sum([history[n] for n in ROLES4], axis=0), history["loss"], rtol=1e-5
    )


def _direct(loss, model, x, y, batch_size):
    """Each component computed eagerly, batch by batch, then averaged weighted by batch size."""
    from lossaudit.calling import capture_summaries

    sums: dict[str, float] = {}
    for start in range(0, len(x), batch_size):
        y_true, y_pred = y[start : start + batch_size], model(x[start : start + batch_size])
        captured: dict[str, object] = {}
        with capture_summaries(captured):
            total = loss(y_true, y_pred)
        captured["total"] = total
        for key, value in captured.items():
            sums[key] = sums.get(key, 0.0) + float(value) * len(y_true)
    return {k: v / len(x) for k, v in sums.items()}


@pytest.mark.parametrize(
    "mode",
    [{}, {"run_eagerly": True}, pytest.param({"jit_compile": True}, marks=pytest.mark.slow)],
    ids=["graph", "eager", "xla"],
)
def test_values_agree_with_the_loss_called_directly(mode):
    import keras

    seed = _loss("seed_loss")
    x, y = _data()
    model = _model()
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=total_of(seed),
        metrics=component_metrics(seed, only=[*SEED_COMPONENTS, "total"]),
        **mode,
    )
    # 10 samples in batches of 4, 4, 2: the unequal last batch exercises the weighting.
    logs = model.evaluate(x, y, batch_size=4, return_dict=True, verbose=0)
    direct = _direct(seed, model, x, y, batch_size=4)
    for name in SEED_COMPONENTS:
        assert logs[name] == pytest.approx(direct[f"{name}_loss_sum"], rel=1e-5), name
    assert logs["total"] == pytest.approx(direct["total"], rel=1e-5)
    assert logs["loss"] == pytest.approx(logs["total"], rel=1e-6)


def test_one_loss_evaluation_per_batch_for_all_metrics():
    seed = _loss("seed_loss")
    calls = []

    def counted(y_true, y_pred):
        calls.append(1)
        return seed(y_true, y_pred)

    metrics = component_metrics(counted)
    assert len(calls) == 1  # the probe that learns the names
    x, y = _data()
    model = _model()
    model.compile(optimizer="sgd", loss=total_of(seed), metrics=metrics, run_eagerly=True)
    model.fit(x, y, batch_size=4, epochs=2, verbose=0)
    batches = 2 * 3
    # Eagerly every batch calls the loss in Python: once for all five metrics, not five times
    # (one more call is allowed for Keras's symbolic build).
    assert len(metrics) == 5
    assert batches <= len(calls) - 1 <= batches + 1


@pytest.mark.slow
def test_summaries_inside_the_loss_never_reach_the_writer(tmp_path):
    """With a writer set for every batch (update_freq=1), the seed's tf.summary calls are
    written from the compiled loss, under its broken step; never from the metrics, and never
    through total_of."""
    seed = _loss("seed_loss")
    _fit(seed, component_metrics(seed), tmp_path / "raw", epochs=1, update_freq=1)
    logged = [t for t in _curves(tmp_path / "raw" / "train") if t.endswith("_loss_sum")]
    assert logged, "control: the plain loss's summaries should reach the writer"
    assert all(t.startswith("compile_loss/") for t in logged), logged

    _fit(total_of(seed), component_metrics(seed), tmp_path / "quiet", epochs=1, update_freq=1)
    for run in ("train", "validation"):
        tags = _curves(tmp_path / "quiet" / run)
        assert not [t for t in tags if "loss_sum" in t], tags
        assert "epoch_coordinates" in tags


def test_names_prefix_and_mapping():
    seed = _loss("seed_loss")
    named = component_metrics(seed, prefix="loss_", only=["coordinates_loss_sum", "total"])
    assert [m.name for m in named] == ["loss_coordinates", "loss_total"]
    dropped = component_metrics(seed, components={"confidence_loss_sum": "ignore"})
    assert [m.name for m in dropped] == SEED_COMPONENTS[:-1]

    def parts(y_true, y_pred):
        import tensorflow as tf

        d = tf.reduce_sum(tf.square(y_pred - y_true), axis=[1, 2, 3])
        return {"xy": d[:, 0], "wh": d[:, 2], "conf": d[:, 4], "Aux Term": d[:, 5]}

    assert [m.name for m in component_metrics(parts)] == ["coordinates", "confidence", "Aux_Term"]
    mapped = component_metrics(parts, components={"Aux Term": "classification"})
    assert [m.name for m in mapped] == ["coordinates", "classification", "confidence"]

    y_true, y_pred = np.zeros((2, 1, 1, 1, 6), np.float32), np.ones((2, 1, 1, 1, 6), np.float32)
    total = total_of(parts, components={"Aux Term": "ignore"})
    assert total(y_true, y_pred).numpy().tolist() == [3.0, 3.0]  # xy + wh + conf, per sample
    with pytest.raises(errors.InvalidArgument, match="'Aux Term'"):
        total_of(parts)(y_true, y_pred)


def _loss_for_seven_channels(y_true, y_pred):
    import tensorflow as tf

    return {"coordinates": tf.reduce_sum(tf.reshape(y_pred, (-1, 7))[:, :4])}


INVALID = [
    (
        "unknown only name",
        lambda seed: component_metrics(seed, only=["coords"]),
        "Did you mean 'coordinates'",
    ),
    ("only as a string", lambda seed: component_metrics(seed, only="objects"), "only=['objects']"),
    (
        "unknown role",
        lambda seed: component_metrics(seed, components={"xy": "coords"}),
        "xy=coords",
    ),
    ("not callable", lambda seed: component_metrics(42), "int"),
    ("prefix", lambda seed: component_metrics(seed, prefix=1), "prefix=1"),
    ("shape with batch 0", lambda seed: component_metrics(seed, shape=(0, 2)), "shape=(0, 2)"),
    (
        "shape and sample",
        lambda seed: component_metrics(seed, shape=(1, 1, 1, 6), sample=(0, 0)),
        "at most one",
    ),
    ("sample not a pair", lambda seed: component_metrics(seed, sample=[1]), "(y_true, y_pred)"),
    (
        "no components",
        lambda seed: component_metrics(_loss("softmax_ce_loss")),
        "reports no components",
    ),
    (
        "probe shape the loss rejects",
        lambda seed: component_metrics(_loss_for_seven_channels),
        "shape=model.output_shape[1:]",
    ),
]


@pytest.mark.parametrize("call,match", [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_invalid_arguments(call, match):
    with pytest.raises(errors.InvalidArgument) as info:
        call(_loss("seed_loss"))
    assert match in str(info.value)
    assert "expected" in str(info.value) and "received" in str(info.value)
