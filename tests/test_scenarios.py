from __future__ import annotations

import numpy as np
import pytest

from lossaudit import scenarios as sc
from lossaudit.spec import Codec, GridSpec, Obj, Scene

SPEC = GridSpec(batch=2, H=3, W=4, anchors=2, classes=3)
SCENE = Scene(
    SPEC, (Obj(0, 1, 2, 1, 0.3, 0.6, 0.2, 0.4, 2), Obj(1, 0, 0, 0, 0.5, 0.5, 0.7, 0.1, 0))
)


def _sigmoid(t):
    return 1 / (1 + np.exp(-t))


@pytest.mark.parametrize(
    "codec",
    [
        Codec(),
        Codec(xy="identity", wh="square", obj="identity", cls="identity"),
        Codec(cls="sigmoid", anchor_sizes=((0.3, 0.3), (0.5, 0.2))),
    ],
)
def test_perfect_decodes_to_the_truth(codec):
    case = sc.perfect(SCENE, codec)
    y, p = case.y_true(), case.y_pred.astype(np.float64)
    m = SCENE.object_mask()
    xy = p[..., 0:2] if codec.xy == "identity" else _sigmoid(p[..., 0:2])
    np.testing.assert_allclose(xy[m], y[..., 0:2][m], atol=1e-5)
    anchors = np.broadcast_to(codec.anchor_grid(SPEC), (*SPEC.shape[:4], 2))
    wh = {
        "identity": p[..., 2:4],
        "square": p[..., 2:4] ** 2,
        "exp": anchors * np.exp(p[..., 2:4]),
    }[codec.wh]
    np.testing.assert_allclose(wh[m], y[..., 2:4][m], rtol=1e-5)
    obj = p[..., 4] if codec.obj == "identity" else _sigmoid(p[..., 4])
    np.testing.assert_allclose(obj, y[..., 4], atol=1e-4)
    assert (np.argmax(p[..., 5:][m], -1) == np.argmax(y[..., 5:][m], -1)).all()


def test_shifted_moves_only_object_centres_and_returns_at_zero():
    codec = Codec()
    base = sc.perfect(SCENE, codec)
    moved = sc.shifted(base, codec, dx=0.2, dy=-0.1)
    m = SCENE.object_mask()
    np.testing.assert_allclose(_sigmoid(moved.y_pred[..., 0][m]), [0.5, 0.7], atol=1e-5)
    np.testing.assert_array_equal(moved.y_pred[~m], base.y_pred[~m])
    np.testing.assert_allclose(sc.shifted(base, codec).y_pred, base.y_pred, atol=1e-6)
    assert moved.label == "perfect | shifted(dx=0.2, dy=-0.1)"


def test_scaled_and_confidence_and_class_logits():
    codec = Codec()
    base = sc.perfect(SCENE, codec)
    m = SCENE.object_mask()
    big = sc.scaled(base, codec, dw=np.log(2.0))
    np.testing.assert_allclose(
        np.exp(big.y_pred[..., 2][m]), [0.4, 0.35], rtol=1e-5
    )  # 0.7 would leave the image: halved
    low = sc.set_confidence(base, codec, logit=-3.0)
    assert (low.y_pred[..., 4][m] == -3).all() and (
        low.y_pred[..., 4][~m] == base.y_pred[..., 4][~m]
    ).all()
    wrong = sc.set_class_logit(base, codec, logit=12.0, cls="wrong")
    assert wrong.y_pred[0, 1, 2, 1, 5] == 12.0 and wrong.y_pred[0, 1, 2, 1, 7] == 0.0


def test_randomized_anchors_touch_only_the_chosen_anchors():
    codec = Codec()
    base = sc.noisy(SCENE, codec, seed=3)
    m = SCENE.object_mask()
    other = sc.randomized_anchors(base, codec, where="empty", seed=3)
    np.testing.assert_array_equal(other.y_pred[m], base.y_pred[m])
    assert (other.y_pred[~m] != base.y_pred[~m]).any()


def test_noisy_is_deterministic_per_seed():
    a, b, c = (sc.noisy(SCENE, Codec(), seed=s) for s in (1, 1, 2))
    np.testing.assert_array_equal(a.y_pred, b.y_pred)
    assert (a.y_pred != c.y_pred).any()


def test_repeated_and_transposed_keep_the_pairing():
    case = sc.noisy(SCENE, Codec(), seed=0)
    twice = sc.repeated(case, 2)
    assert twice.spec.batch == 4 and len(twice.scene.objects) == 4
    np.testing.assert_array_equal(twice.y_true()[2:], case.y_true())
    t = sc.transposed(case)
    np.testing.assert_array_equal(t.y_true(), t.scene.truth())
    np.testing.assert_array_equal(sc.transposed(t).y_pred, case.y_pred)


@pytest.mark.parametrize("codec", [Codec(), Codec(xy="identity", wh="square", obj="identity")])
@pytest.mark.parametrize("axis", ["x", "y"])
def test_mirrored_is_the_perfect_prediction_of_the_mirrored_scene(codec, axis):
    mirrored = sc.mirrored(sc.perfect(SCENE, codec), codec, axis)
    want = sc.perfect(SCENE.mirrored(axis), codec)
    m = mirrored.scene.object_mask()
    np.testing.assert_array_equal(mirrored.y_true(), want.y_true())
    np.testing.assert_allclose(mirrored.y_pred[m], want.y_pred[m], atol=1e-5)
    case = sc.noisy(SCENE, codec, seed=3)
    back = sc.mirrored(sc.mirrored(case, codec, axis), codec, axis)
    np.testing.assert_allclose(back.y_pred, case.y_pred, atol=1e-6)
    o, (flip, _) = SCENE.objects[0], mirrored.scene.objects
    if axis == "x":
        assert (flip.j, flip.i, flip.x, flip.y) == (SPEC.W - 1 - o.j, o.i, 1 - o.x, o.y)
    else:
        assert (flip.i, flip.j, flip.y, flip.x) == (SPEC.H - 1 - o.i, o.j, 1 - o.y, o.x)


def test_extreme_writes_only_selected_channels():
    case = sc.perfect(SCENE, Codec())
    ex = sc.extreme(case, value=100.0, where="empty", channels="wh")
    m = SCENE.object_mask()
    assert (ex.y_pred[..., 2:4][~m] == 100).all()
    np.testing.assert_array_equal(ex.y_pred[m], case.y_pred[m])


def test_shared_predictions_are_read_only_and_the_same_on_every_build():
    scene = Scene(GridSpec(2, 3, 4, 2, 3), (Obj(0, 1, 2, 1, 0.5, 0.5, 0.2, 0.3, 1),))
    first, again = sc.perfect(scene, Codec()), sc.perfect(scene, Codec())
    assert not first.y_pred.flags.writeable
    np.testing.assert_array_equal(first.y_pred, again.y_pred)
    moved = sc.set_confidence(first, Codec(), logit=-3.0)  # transforms copy
    assert first.y_pred[..., 4].max() == 12.0 and moved.y_pred[..., 4].max() == -3.0
    a = sc.noisy(scene, Codec(), seed=5)
    b = sc.noisy(scene, Codec(), seed=5, tiny_empty_boxes=True)
    c = sc.noisy(scene, Codec(), seed=5)
    np.testing.assert_array_equal(a.y_pred, c.y_pred)
    assert not np.array_equal(a.y_pred[..., 2:4], b.y_pred[..., 2:4])
    # Every case's predictions are read-only: a property writing into them fails loudly
    # instead of changing a prediction grid other cases share.
    for case in (moved, a, b, sc.extreme(a, value=9.0, where="all", channels="obj")):
        assert not case.y_pred.flags.writeable


def test_ordinary_boxes_keep_the_slots_and_lift_degenerate_sizes():
    degenerate = Scene(
        SPEC, (Obj(0, 2, 3, 1, 1.0, 0.4, 0.0, 1e-7, 2), Obj(1, 0, 0, 0, 0.0, 0.5, 0.3, 0.2, 0))
    )
    ordinary = sc.ordinary_boxes(degenerate)
    assert [o.slot for o in ordinary.objects] == [o.slot for o in degenerate.objects]
    first, second = ordinary.objects
    assert (first.x, first.y, first.w, first.h) == (0.95, 0.4, 0.05, 0.05)
    assert (second.x, second.w, second.h) == (0.05, 0.3, 0.2)
    assert sc.ordinary_boxes(SCENE) == SCENE


def test_prepared_predictions_are_kept_up_to_a_count_and_recomputed_after(monkeypatch):
    computed = []
    real = sc._typical
    monkeypatch.setattr(sc, "_typical", lambda *a: computed.append(1) or real(*a))
    monkeypatch.setattr(sc, "PREPARED_COUNT", 4)
    scene = Scene(GridSpec(1, 2, 3, 1, 2), ())
    for seed in range(10_000, 10_006):
        sc.noisy(scene, Codec(), seed=seed)
    assert len(computed) == 6
    again = sc.noisy(scene, Codec(), seed=10_005)  # kept
    assert len(computed) == 6
    sc.noisy(scene, Codec(), seed=10_000)  # let go: recomputed, the same values
    assert len(computed) == 7
    np.testing.assert_array_equal(again.y_pred, sc.noisy(scene, Codec(), seed=10_005).y_pred)
