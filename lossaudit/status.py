"""Typed outcomes: the statuses every verdict uses, worst first.

A verdict is decided from these types, never from the wording of a message: properties return
an :class:`~lossaudit.properties.Outcome` with a :class:`Status` (and, for the training
diagnostic, a typed cause), the audit marks a hang with a flag, and the report counts statuses.
``Status`` is a ``StrEnum``, so it compares equal to its JSON spelling (``Status.FAIL ==
"fail"``) and serialises as that string.
"""

from __future__ import annotations

import enum

from lossaudit.errors import InvalidSpec, did_you_mean, invalid

__all__ = ["Status"]


class Status(enum.StrEnum):
    """A property's verdict on one loss (members in order of severity, worst first)."""

    #: The loss raised, hung or returned something unusable (or lossaudit itself failed).
    ERROR = "error"
    #: The loss violates the property: a bug.
    FAIL = "fail"
    #: A known cost worth knowing (a saturated term, a drowned term), not a bug by itself.
    WARN = "warn"
    #: The property holds on every example tried.
    PASS = "pass"
    #: The property does not apply to this loss (the reason says why).
    SKIP = "skip"

    @property
    def rank(self) -> int:
        """0 for the worst status; lower is worse."""
        return _ORDER.index(self)

    @property
    def bad(self) -> bool:
        """Whether this status fails an audit (a failure or an error)."""
        return self in (Status.ERROR, Status.FAIL)

    @classmethod
    def parse(cls, value: str) -> Status:
        """``value`` as a Status, or :class:`~lossaudit.errors.InvalidSpec` naming them all."""
        try:
            return cls(value)
        except ValueError:
            names = [s.value for s in cls]
            raise invalid(
                "unknown status",
                " | ".join(names),
                repr(value),
                "Use one of the statuses above." + did_you_mean(str(value), names),
                cls=InvalidSpec,
            ) from None


_ORDER = tuple(Status)
