"""Which scalar tags are loss components, and their role (from :mod:`lossaudit.components`).

Keras's ``evaluation_<name>_vs_iterations`` tags are per-iteration copies of the validation
curves ``epoch_<name>`` already holds, and are skipped. A Keras prefix (``epoch_``, ``batch_``)
and a ``val_``/``train_`` prefix are dropped, then a tag is a component when its name contains
``loss``, or when :func:`lossaudit.components.role_for_name` gives it a role and no word in it
names a metric. Words such as ``learning_rate``, ``lr``, ``scale`` or ``weight`` rule a tag out
even when it contains ``loss`` (``loss_scale`` is not a loss). Pure string work: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from lossaudit.components import role_for_name

__all__ = ["bare", "loss_role"]

_KERAS_AFFIX = re.compile(r"^(?:epoch_|batch_)|^evaluation_(?=.*_vs_iterations$)|_vs_iterations$")
_SPLIT_PREFIX = re.compile(r"^(?:val|validation|train|training)_")
_RUN_WORDS = frozenset({"train", "training", "val", "validation", "eval", "evaluation", "test"})
#: Words that make a tag a metric or a hyperparameter even when it says "loss".
_NEVER = frozenset(
    "lr learning rate scale scaling weight weights time seconds sec throughput norm grad grads "
    "gradient gradients".split()
)
#: Words that make a tag a metric unless it says "loss".
_METRIC = frozenset(
    "acc accuracy precision recall iou miou map ap ap50 ap75 f1 auc fitness mae mse "
    "top1 top5 error".split()
)


def _words(name: str) -> set[str]:
    return {w for w in re.split(r"[^a-z0-9]+", name) if w}


def bare(tag: str) -> str:
    """The tag without Keras's ``epoch_``/``batch_``/``evaluation_*_vs_iterations`` wrapping."""
    name = tag.strip().lower()
    head, sep, last = name.rpartition("/")
    if head and last in _RUN_WORDS:  # "Loss/train": the name is before the split
        head, sep, last = head.rpartition("/")
    last = _SPLIT_PREFIX.sub("", _KERAS_AFFIX.sub("", last))
    return f"{head}{sep}{last}" if last else name


def loss_role(tag: str, explicit: Mapping[str, str] | None = None) -> tuple[bool, str | None]:
    """Whether ``tag`` is a loss component, and its canonical role (``None`` when none fits).

    An explicit ``{tag: role}`` mapping wins (``tag`` as logged or :func:`bare`); the role
    ``ignore`` drops the tag.

    Example:
        >>> loss_role("epoch_loss"), loss_role("coordinates_loss_sum"), loss_role("epoch_lr")
        ((True, 'total'), (True, 'coordinates'), (False, None))
        >>> loss_role("yolo_output_0_loss")
        (True, None)
    """
    if tag.startswith("evaluation_") and tag.endswith("_vs_iterations"):
        # Keras's per-iteration copy of the validation curve that epoch_<name> already holds.
        return (False, None)
    name = bare(tag)
    if explicit:
        for key in (tag, name):
            if key in explicit:
                role = explicit[key]
                return (role != "ignore", None if role == "ignore" else role)
    words = _words(name)
    if words & _NEVER:
        return (False, None)
    role = role_for_name(name)
    if "loss" in name:
        return (True, role)
    if role is not None and not words & _METRIC:
        return (True, role)
    return (False, None)
