"""The TF1 / Keras 2 bridge: old names answered, Keras 2 imports stood in for, process-wide
switches ignored, and a clear error where the bridge cannot help."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

from lossaudit.adapter import Adapter
from lossaudit.legacy import notes
from lossaudit.scenarios import noisy
from lossaudit.spec import Codec, GridSpec, Obj, Scene
from lossaudit.targets import load_target

SCENE = Scene(
    GridSpec(batch=2, H=2, W=3, anchors=2, classes=2), (Obj(0, 1, 2, 1, 0.4, 0.6, 0.3, 0.2, 1),)
)
CASE = noisy(SCENE, Codec(), seed=1)

OLD = """
import tensorflow as tf
from keras import backend as K
from keras.layers import merge
from keras.layers.merge import concatenate

tf.compat.v1.disable_v2_behavior()


def loss(y_true, y_pred):
    err = K.sum(K.square(tf.to_float(y_pred) - y_true))
    return tf.Print(err, [err], message="err:")


def calls_merge(y_true, y_pred):
    return merge([y_true, y_pred], mode="concat")


def needs_session(y_true, y_pred):
    K.get_session()
    return K.sum(y_pred)


def needs_contrib(y_true, y_pred):
    return tf.contrib.layers.l2_regularizer(0.1)(y_pred)
"""


@pytest.fixture
def old_module(tmp_path):
    path = tmp_path / "old_loss.py"
    path.write_text(textwrap.dedent(OLD))
    return path


def test_old_names_are_answered_and_the_loss_computes_as_its_port_would(old_module):
    import tensorflow as tf

    def port(y_true, y_pred):
        return tf.reduce_sum(tf.square(tf.cast(y_pred, tf.float32) - y_true))

    loss, _ = load_target(f"{old_module}:loss")
    assert tf.executing_eagerly(), "disable_v2_behavior() at import must not reach the process"
    old, new = Adapter(loss).evaluate(CASE), Adapter(port).evaluate(CASE)
    assert old.values["total"] == pytest.approx(new.values["total"], rel=1e-6)
    np.testing.assert_allclose(old.grads["total"], new.grads["total"], rtol=1e-6)
    (note,) = notes(loss)
    for name in ("K.sum", "K.square", "tf.to_float", "tf.Print"):
        assert name in note
    assert "keras.layers.merge" in note
    assert "tf.compat.v1.disable_v2_behavior()" in note


def test_a_stood_in_import_that_the_loss_calls_says_so(old_module):
    from lossaudit.errors import LossError

    loss, _ = load_target(f"{old_module}:calls_merge")
    with pytest.raises(LossError, match="Keras 2 API that Keras 3 does not have"):
        Adapter(loss).evaluate(CASE)


@pytest.mark.parametrize(
    ("name", "fragment"),
    [("needs_session", "there is no session in TensorFlow 2"), ("needs_contrib", "port this call")],
)
def test_what_the_bridge_cannot_do_is_named(old_module, name, fragment):
    from lossaudit.errors import LossError

    loss, _ = load_target(f"{old_module}:{name}")
    with pytest.raises(LossError, match=fragment):
        Adapter(loss).evaluate(CASE)


def test_a_tf2_module_is_left_alone(tmp_path):
    path = tmp_path / "new_loss.py"
    path.write_text("import tensorflow as tf\n\ndef loss(t, p):\n    return tf.reduce_sum(p)\n")
    loss, _ = load_target(f"{path}:loss")
    import tensorflow as tf

    assert loss.__globals__["tf"] is tf
    assert notes(loss) == ()
