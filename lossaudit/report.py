"""The audit's result as plain data: frozen dataclasses with ``to_dict``/``from_dict``.

JSON (``to_dict``) is the canonical form and carries ``schema_version``; every renderer reads
the same :class:`Report`. Nothing here imports TensorFlow or Hypothesis.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from lossaudit.components import COMPONENTS
from lossaudit.errors import SchemaError
from lossaudit.findings import Analysis
from lossaudit.jsonable import jsonable
from lossaudit.status import Status

__all__ = [
    "SCHEMA_VERSION",
    "STATUSES",
    "Counterexample",
    "Report",
    "Result",
]

#: Version 2 added ``Result.cause`` and ``Result.hung``; version 1 documents are still read.
SCHEMA_VERSION = 2
READABLE_VERSIONS = (1, 2)
#: Result statuses, worst first (their JSON spelling).
STATUSES = tuple(s.value for s in Status)


@dataclass(frozen=True)
class Counterexample:
    """The minimal example Hypothesis shrank a failure to.

    ``spec`` and ``scene`` rebuild the truth (``scene`` lists objects as dicts); ``code`` is the
    same as constructor calls; ``case`` names the transforms that built the predictions;
    ``params`` the other drawn values; ``observed`` the numbers behind the verdict.
    """

    spec: dict[str, int]
    scene: list[dict[str, Any]]
    code: str
    case: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    observed: dict[str, Any] = field(default_factory=dict)
    #: Predicted boxes of the case drawn: object anchors and offending cells, decoded to
    #: ``b, i, j, a, x, y, w, h, obj`` (cell offsets, image fractions, probability) + ``kind``.
    predicted: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return jsonable(asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Counterexample:
        return cls(
            spec=dict(data["spec"]),
            scene=list(data.get("scene", [])),
            code=data.get("code", ""),
            case=data.get("case", ""),
            params=dict(data.get("params", {})),
            observed=dict(data.get("observed", {})),
            predicted=list(data.get("predicted", [])),
        )


@dataclass(frozen=True)
class Result:
    """One property's verdict on one loss.

    ``status`` decides everything (counts, verdicts, exit codes); ``cause`` is the typed cause
    a diagnostic named (``"constant"``, ``"drowned"``, ... see
    :class:`lossaudit.properties.training.CauseKind`), empty otherwise; ``hung`` is set when the
    property did not finish within the time limit. ``message`` is prose for people only.
    """

    property: str
    component: str
    status: Status
    message: str
    expected: str = ""
    observed: str = ""
    cells: list[list[int]] = field(default_factory=list)
    cells_count: int = 0
    cells_of: int = 0
    cells_what: str = "anchors"
    counterexample: Counterexample | None = None
    reproduce: str = ""
    info: str = ""
    bugs: list[int] = field(default_factory=list)
    examples: int = 0
    seconds: float = 0.0
    cause: str = ""
    hung: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", Status.parse(self.status))

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in asdict(self).items() if k != "counterexample"}
        d["counterexample"] = self.counterexample.to_dict() if self.counterexample else None
        return jsonable(d)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Result:
        cx = data.get("counterexample")
        known = {
            k: data[k] for k in cls.__dataclass_fields__ if k in data and k != "counterexample"
        }
        return cls(**known, counterexample=Counterexample.from_dict(cx) if cx else None)


@dataclass(frozen=True)
class Report:
    """Everything one audit found, in a form any renderer can read."""

    target: str
    spec: dict[str, int]
    codec: dict[str, Any]
    results: tuple[Result, ...]
    settings: dict[str, Any] = field(default_factory=dict)
    components: dict[str, list[str]] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    stats: dict[str, Any] = field(default_factory=dict)
    #: Response curves, gradient view, balance table, training curves and diagnosed logs
    #: (:class:`lossaudit.findings.Analysis`); every part ``None`` when not measured. A plain
    #: mapping (a document's ``analysis``) is read with ``Analysis.from_dict``.
    analysis: Analysis = field(default_factory=Analysis)
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        if not isinstance(self.analysis, Analysis):
            object.__setattr__(self, "analysis", Analysis.from_dict(self.analysis))

    @property
    def summary(self) -> dict[str, int]:
        """Count of results per status (keyed by its JSON spelling), every status present."""
        counts = dict.fromkeys(STATUSES, 0)
        for r in self.results:
            counts[r.status.value] += 1
        return counts

    @property
    def ok(self) -> bool:
        """True when no property failed and the loss raised nowhere."""
        return not any(r.status.bad for r in self.results)

    def verdicts(self) -> dict[str, Status]:
        """Worst status per component, in canonical component order."""
        worst: dict[str, Status] = {}
        for r in self.results:
            cur = worst.get(r.component)
            if cur is None or r.status.rank < cur.rank:
                worst[r.component] = r.status
        return {c: worst[c] for c in COMPONENTS if c in worst}

    def to_dict(self) -> dict[str, Any]:
        return jsonable(
            {
                "schema_version": self.schema_version,
                "target": self.target,
                "spec": self.spec,
                "codec": self.codec,
                "settings": self.settings,
                "components": self.components,
                "summary": self.summary,
                "verdicts": self.verdicts(),
                "results": [r.to_dict() for r in self.results],
                "notes": list(self.notes),
                "stats": self.stats,
                "analysis": self.analysis.to_dict(),
            }
        )

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Report:
        version = data.get("schema_version")
        if version not in READABLE_VERSIONS:
            raise SchemaError(
                f"report schema_version {version!r} is not supported: expected one of "
                f"{', '.join(map(str, READABLE_VERSIONS))}. Re-run the audit with this version "
                "of lossaudit to get a report it can read."
            )
        return cls(
            target=data["target"],
            spec=dict(data["spec"]),
            codec=dict(data["codec"]),
            results=tuple(Result.from_dict(r) for r in data["results"]),
            settings=dict(data.get("settings", {})),
            components={k: list(v) for k, v in data.get("components", {}).items()},
            notes=tuple(data.get("notes", ())),
            stats=dict(data.get("stats", {})),
            analysis=Analysis.from_dict(data.get("analysis")),
            schema_version=SCHEMA_VERSION,
        )
