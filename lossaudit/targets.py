"""Resolve a target string (``path/to/file.py:name`` or ``package.module:name``) to a loss.

Every failure is a :class:`~lossaudit.errors.TargetError` that says what was wrong, what was
expected, what was received and how to fix it, with close matches for misspelt names.
"""

from __future__ import annotations

from typing import Any

from lossaudit.errors import TargetError
from lossaudit.references import as_imported, is_reference, resolve

__all__ = ["DEFAULT_TARGET", "load_target"]

#: What ``lossaudit report`` audits when given no target: the seed write-up's loss.
DEFAULT_TARGET = "lossaudit.examples.seed:seed_loss"


def load_target(target: str | None, *, factory: bool = False) -> tuple[Any, str]:
    """Load the loss a target names; returns ``(loss, canonical_target_string)``.

    A class is instantiated with no arguments (a Keras ``Loss`` subclass, say), unless the
    target is a ``factory`` (``--factory``): the audit then calls it with the options.

    Example:
        >>> loss, name = load_target(None)  # doctest: +SKIP
        >>> name
        'lossaudit.examples.seed:seed_loss'
    """
    target = target or DEFAULT_TARGET
    if not is_reference(target):
        resolve(target, error=TargetError, what="target", expected="")  # raises the message
    from lossaudit.adapter import import_tensorflow

    # Quietly, before the user's module imports it with all its start-up logging.
    import_tensorflow()
    from lossaudit.legacy import LegacyShims

    obj = resolve(
        target,
        error=TargetError,
        what="target",
        expected="a loss function, a Keras Loss instance or a Loss class",
        shims=LegacyShims(),
    )
    if isinstance(obj, type) and not factory:
        try:
            with as_imported(repr(target), TargetError, "built"):
                obj = obj()
        except TargetError:
            raise
        except Exception as exc:
            raise TargetError(
                f"{target!r} is a class that cannot be built without arguments: {type(exc).__name__}: {exc}. "
                "Point at an instance instead (e.g. a module-level `loss = MyLoss(anchors)`)."
            ) from exc
    if not callable(obj):
        raise TargetError(
            f"{target!r} is a {type(obj).__name__}, not a loss: expected a function "
            "loss(y_true, y_pred), a Keras Loss instance or a Loss class. Point at the loss itself."
        )
    return obj, target
