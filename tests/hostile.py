"""Hostile loss modules (issue 12): each the source of a ``losses.py`` a test writes into a
temporary project, named for the way it attacks the gate. ``GOOD`` is a correct loss the
others start from."""

from __future__ import annotations

GOOD = """
import tensorflow as tf


def yolo_loss(y_true, y_pred):
    mask = y_true[..., 4]
    box = tf.reduce_sum(tf.square(y_pred[..., 0:4] - y_true[..., 0:4]), axis=-1)
    conf = y_pred[..., 4]
    cls = tf.reduce_sum(tf.square(y_pred[..., 5:] - y_true[..., 5:]), axis=-1)
    return {
        "coordinates": tf.reduce_sum(mask * box),
        "objects": tf.reduce_sum(mask * tf.square(1.0 - conf)),
        "no_objects": tf.reduce_sum((1.0 - mask) * tf.square(conf)),
        "classification": tf.reduce_sum(mask * cls),
    }
"""

#: Options that make ``GOOD`` pass every property (identity activations, two classes).
GOOD_FLAGS = ("--classes", "2", "--xy", "identity", "--wh", "identity", "--obj", "identity")
GOOD_FLAGS += ("--cls", "identity")
GOOD_TOML = """
classes = 2
xy = "identity"
wh = "identity"
obj = "identity"
cls = "identity"
"""


def _loss(body: str, imports: str = "") -> str:
    """``GOOD`` with ``body`` run first inside the loss."""
    head = "def yolo_loss(y_true, y_pred):\n"
    indented = "".join(f"    {line}\n" for line in body.strip().splitlines())
    return imports + GOOD.replace(head, head + indented)


HOSTILE = {
    # -- the process: exits, hangs ------------------------------------------------------------
    "sys_exit_at_import": "import sys\nsys.exit(0)\n" + GOOD,
    "argv_at_import": (
        "import argparse\n"
        "parser = argparse.ArgumentParser()\n"
        "parser.add_argument('--epochs', type=int, required=True)\n"
        "ARGS = parser.parse_args()\n" + GOOD
    ),
    "sys_exit_in_init": GOOD
    + "\n\nclass YoloLoss:\n    def __init__(self):\n        import sys\n        sys.exit(0)\n\n"
    "    def __call__(self, y_true, y_pred):\n        return yolo_loss(y_true, y_pred)\n",
    "os_exit_at_import": "import os\nos._exit(0)\n" + GOOD,
    "os_exit_in_loss": _loss("import os\nos._exit(0)"),
    "sys_exit_in_loss": _loss("import sys\nsys.exit(0)"),
    "keyboard_interrupt_in_loss": _loss("raise KeyboardInterrupt"),
    # A catastrophic regular expression: the re module holds the GIL for hours.
    "gil_hang": _loss("import re\nre.match(r'(a+)+$', 'a' * 64 + 'b')"),
    "sleep_hang": _loss("import time\ntime.sleep(3600)"),
    # -- what it says -------------------------------------------------------------------------
    "prints": _loss("print('hello from the loss')"),
    "ansi_error": _loss("raise ValueError('\\x1b[31mred\\x1b[0m and a bell \\x07 in the message')"),
    "surrogate_error": _loss("raise ValueError('a lone surrogate \\ud800 in the message')"),
    # -- what it returns ----------------------------------------------------------------------
    "python_float": "def yolo_loss(y_true, y_pred):\n    return 1.5\n",
    "int32_tensor": (
        "import tensorflow as tf\n\n\ndef yolo_loss(y_true, y_pred):\n"
        "    return tf.constant(3, tf.int32)\n"
    ),
    "graph_mode": _loss("tf.compat.v1.disable_eager_execution()"),
    # A crash while the process shuts down, after the verdict (as TensorFlow's can be).
    "abort_at_exit": "import atexit\nimport os\n\natexit.register(os.abort)\n" + GOOD,
    "partial": (
        "import tensorflow as tf\n\n\ndef yolo_loss(y_true, y_pred):\n"
        "    mask = y_true[..., 4]\n"
        "    box = tf.reduce_sum(tf.square(y_pred[..., 0:4] - y_true[..., 0:4]), axis=-1)\n"
        "    return {'coordinates': tf.reduce_sum(mask * box)}\n"
    ),
}
