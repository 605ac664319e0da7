from __future__ import annotations

import numpy as np
import pytest

from lossaudit.spec import Codec, GridSpec, Obj, Scene


def test_truth_encoding_puts_each_object_in_its_slot():
    spec = GridSpec(batch=2, H=3, W=4, anchors=2, classes=3)
    scene = Scene(spec, (Obj(1, 2, 3, 1, 0.25, 0.75, 0.5, 0.125, 2),))
    y = scene.truth()
    assert y.shape == (2, 3, 4, 2, 8) and y.dtype == np.float32
    np.testing.assert_allclose(y[1, 2, 3, 1], [0.25, 0.75, 0.5, 0.125, 1, 0, 0, 1])
    y[1, 2, 3, 1] = 0
    assert not y.any(), "every channel of a non-responsible anchor is 0"
    assert scene.object_mask().sum() == 1


def test_transposed_swaps_rows_columns_and_axes():
    spec = GridSpec(batch=1, H=2, W=5, anchors=1, classes=1)
    scene = Scene(spec, (Obj(0, 1, 4, 0, 0.2, 0.7, 0.3, 0.6, 0),))
    t = scene.transposed()
    assert (t.spec.H, t.spec.W) == (5, 2)
    assert t.objects == (Obj(0, 4, 1, 0, 0.7, 0.2, 0.6, 0.3, 0),)
    np.testing.assert_array_equal(
        np.swapaxes(scene.truth(), 1, 2)[..., [1, 0, 3, 2, 4, 5]], t.truth()
    )


@pytest.mark.parametrize("xy", ["identity", "sigmoid"])
@pytest.mark.parametrize("wh", ["identity", "exp", "square"])
def test_codec_encodes_what_its_activation_decodes(xy, wh):
    codec = Codec(xy=xy, wh=wh, anchor_sizes=((0.2, 0.4),))
    x = np.array([0.05, 0.5, 0.95])
    t = codec.encode_xy(x)
    back = t if xy == "identity" else 1 / (1 + np.exp(-t))
    np.testing.assert_allclose(back, x, rtol=1e-6)
    w = np.array([[0.1, 0.3]])
    anchors = np.array([[0.2, 0.4]])
    t = codec.encode_wh(w, anchors)
    back = {"identity": t, "exp": anchors * np.exp(t), "square": t * t}[wh]
    np.testing.assert_allclose(back, w, rtol=1e-6)


def test_codec_defaults_and_symmetry():
    assert Codec().anchor(3) == (1.0, 1.0)
    assert Codec().symmetric_anchors
    assert not Codec(anchor_sizes=((0.2, 0.3),)).symmetric_anchors
