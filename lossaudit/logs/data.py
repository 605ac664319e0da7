"""What a diagnosis of TensorBoard logs is made of: frozen dataclasses and the typed status.

Plain data (numpy arrays and numbers), no I/O: the renderers in :mod:`lossaudit.render.logs` and
the report's renderers read these. ``to_dict`` writes JSON under the one policy of
:mod:`lossaudit.jsonable` (non-finite numbers as ``"nan"``, ``"inf"``, ``"-inf"``) and the
report's :data:`~lossaudit.report.SCHEMA_VERSION`; ``from_dict`` reads that back, and the older
spelling (``null`` for a non-finite number, log document version 1) too.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lossaudit.errors import LossAuditError, SchemaError
from lossaudit.jsonable import jsonable, number
from lossaudit.report import SCHEMA_VERSION

#: Log documents this version reads: 1 wrote non-finite numbers as ``null``.
READABLE_VERSIONS = (1, SCHEMA_VERSION)


class LogStatus(enum.StrEnum):
    """The verdict on one logged loss component; compares equal to its JSON spelling."""

    #: Falls clearly: the only healthy status.
    RESPONDING = "responding"
    #: No change beyond the noise and 5% of its size.
    FLAT = "flat"
    #: Exactly 0 at every logged step.
    ZERO = "zero"
    #: Rises clearly, or blows up after falling.
    DIVERGING = "diverging"
    #: A value is NaN or infinite.
    NAN = "nan"
    #: Too small next to a responding term to steer training, or pushed up by one.
    DROWNED = "drowned"


#: Every status a component can get (their JSON spelling), in :class:`LogStatus` order.
STATUSES = tuple(s.value for s in LogStatus)


class LogDirError(LossAuditError, ValueError):
    """The log directory cannot be diagnosed: missing, not a directory, no event files, or no
    scalar that looks like a loss component. The message says what was found."""


def label(run: str, tag: str) -> str:
    """``run/tag``, or just the tag for the root run ``.``."""
    return tag if run == "." else f"{run}/{tag}"


@dataclass(frozen=True, eq=False)
class ScalarSeries:
    """One scalar tag of one run, ordered by step: ``steps`` and ``values`` have shape ``(n,)``."""

    run: str
    tag: str
    steps: np.ndarray
    values: np.ndarray
    wall_times: np.ndarray

    def __len__(self) -> int:
        return len(self.values)

    @property
    def label(self) -> str:
        """``run/tag``, or just the tag for the root run."""
        return label(self.run, self.tag)


_INTS = ("steps", "first_step", "last_step", "nonfinite")
_FLOATS = ("first", "last", "min", "max", "head", "tail")


@dataclass(frozen=True)
class ComponentDiagnosis:
    """The verdict on one loss component's curve.

    ``first``/``last`` are the first and last logged values (NaN when they were); ``min``/``max``
    range over the finite values; ``head``/``tail`` are the medians of the first and last fifth;
    ``change`` is ``(tail - head) / max(|head|, |tail|)``; ``share`` is the component's typical
    size over ``reference``'s (set when it was compared with one).
    """

    name: str
    run: str
    component: str | None
    status: LogStatus
    reason: str
    steps: int
    first_step: int
    last_step: int
    first: float
    last: float
    min: float
    max: float
    head: float
    tail: float
    change: float | None
    nonfinite: int
    share: float | None = None
    reference: str | None = None
    series: ScalarSeries | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", LogStatus(self.status))  # "flat" is read as FLAT

    @property
    def label(self) -> str:
        """``run/tag``, or just the tag for the root run."""
        return label(self.run, self.name)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (non-finite numbers spelt as :mod:`lossaudit.jsonable` says); the curve
        itself is left out (see :func:`curves_for_report`)."""
        out: dict[str, Any] = {
            "name": self.name,
            "run": self.run,
            "component": self.component,
            "status": self.status,
            "reason": self.reason,
        }
        for key in (*_INTS, *_FLOATS, "change", "share", "reference"):
            out[key] = getattr(self, key)
        return jsonable(out)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ComponentDiagnosis:
        """Read :meth:`to_dict`'s form back; ``x``/``y`` (a curve, as the report keeps it) become
        ``series`` (without wall times)."""
        floats = {k: _float(data.get(k)) for k in _FLOATS}
        series = None
        if data.get("x"):
            steps = np.asarray(data["x"], dtype=np.int64)
            values = np.array([_float(v) for v in data["y"]], dtype=np.float64)
            series = ScalarSeries(
                data["run"], data["name"], steps, values, np.full(len(steps), np.nan)
            )
        return cls(
            name=data["name"],
            run=data.get("run") or ".",
            component=data.get("component"),
            status=LogStatus(data["status"]),
            reason=data.get("reason", ""),
            **{k: int(data.get(k) or 0) for k in _INTS},
            **floats,
            change=number(data.get("change")),
            share=number(data.get("share")),
            reference=data.get("reference"),
            series=series,
        )


def _float(value: Any) -> float:
    """A number from a log document, NaN where version 1 wrote ``null``."""
    read = number(value)
    return math.nan if read is None else read


@dataclass(frozen=True)
class LogDiagnosis:
    """Every loss component found under ``logdir``, with its status.

    ``ignored`` lists the scalar tags (``run/tag``) that are not loss components; ``warnings``
    the files that could not be read in full.
    """

    logdir: str
    components: tuple[ComponentDiagnosis, ...]
    ignored: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when every component responds."""
        return all(c.status is LogStatus.RESPONDING for c in self.components)

    @property
    def runs(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(c.run for c in self.components))

    @property
    def summary(self) -> dict[str, int]:
        """How many components got each status, in :class:`LogStatus` order (JSON spelling)."""
        return {s.value: sum(c.status is s for c in self.components) for s in LogStatus}

    def to_dict(self) -> dict[str, Any]:
        """The canonical document: ``schema_version``, ``logdir``, ``ok``, ``summary``,
        ``components``, ``ignored_tags``, ``warnings``."""
        return {
            "schema_version": SCHEMA_VERSION,
            "logdir": self.logdir,
            "ok": self.ok,
            "summary": self.summary,
            "components": [c.to_dict() for c in self.components],
            "ignored_tags": list(self.ignored),
            "warnings": list(self.warnings),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LogDiagnosis:
        """Read :meth:`to_dict`'s document, or :func:`curves_for_report`'s entry, back."""
        version = data.get("schema_version")
        if version is not None and version not in READABLE_VERSIONS:
            raise SchemaError(
                f"log diagnosis schema_version {version!r} is not supported: expected one of "
                f"{', '.join(map(str, READABLE_VERSIONS))}. Diagnose the logs again with this "
                "version of lossaudit (lossaudit tensorboard LOGDIR --format json)."
            )
        return cls(
            logdir=data.get("logdir", "?"),
            components=tuple(ComponentDiagnosis.from_dict(c) for c in data.get("components", ())),
            ignored=tuple(data.get("ignored_tags", ())),
            warnings=tuple(data.get("warnings", ())),
        )


def curves_for_report(diagnosis: LogDiagnosis, max_points: int = 400) -> dict[str, Any]:
    """The diagnosis with each component's curve (thinned to ``max_points``), as plain data for
    ``Report.analysis.logs``: the report's renderers read it back with
    :meth:`LogDiagnosis.from_dict`."""
    components = []
    for c in diagnosis.components:
        entry = c.to_dict()
        if c.series is not None:
            n = len(c.series)
            keep = np.unique(np.linspace(0, n - 1, min(n, max_points)).astype(int))
            entry["x"] = [int(v) for v in c.series.steps[keep]]
            entry["y"] = jsonable([float(v) for v in c.series.values[keep]])
        components.append(entry)
    return {"logdir": diagnosis.logdir, "ok": diagnosis.ok, "components": components}
