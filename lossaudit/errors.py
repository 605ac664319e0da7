"""Exceptions raised when lossaudit itself is called wrongly.

A loss that misbehaves never raises out of an audit: it becomes a result with status ``error``.
These exceptions are for the caller's mistakes (bad spec, unknown property, unloadable target),
and every message says what was wrong, what was expected, what was received and how to fix it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class LossAuditError(Exception):
    """Root of every exception lossaudit raises on purpose."""


class InvalidArgument(LossAuditError, TypeError):
    """An argument has the wrong type or an unknown name."""


class InvalidSpec(LossAuditError, ValueError):
    """A grid spec, codec or setting has a value outside what lossaudit supports."""


class TargetError(LossAuditError):
    """The loss named by a target cannot be found or loaded."""


class SchemaError(LossAuditError, ValueError):
    """A saved document (report, baseline) is not one this version of lossaudit can read."""


class UsageError(LossAuditError):
    """A mistake on the command line or in an output path: exit code 2, no traceback."""


class LossError(LossAuditError):
    """The audited loss raised, hung, or returned something unusable.

    Raised inside the adapter and caught by the audit, which turns it into a result with
    status ``error``; it never escapes :func:`lossaudit.audit`.
    """


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return ``" Did you mean 'x'?"`` for the closest choices, or ``""`` when none is close."""
    close = difflib.get_close_matches(name, list(choices), n=3, cutoff=0.6)
    if not close:
        return ""
    quoted = " or ".join(repr(c) for c in close)
    return f" Did you mean {quoted}?"


def invalid(
    what: str, expected: str, received: str, fix: str, *, cls: type[LossAuditError] = InvalidSpec
) -> LossAuditError:
    """Build an exception phrased the house way: what, expected, received, fix."""
    return cls(f"{what}: expected {expected}; received {received}. {fix}")
