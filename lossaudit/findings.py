"""The analysis beside the verdicts, as typed data: response curves, gradient view, balance,
training runs and diagnosed TensorBoard logs (:class:`Analysis`, held by ``Report.analysis``).

Frozen dataclasses with ``to_dict``/``from_dict`` under the report's ``schema_version``;
``from_dict`` reads what older versions and damaged documents hold (a missing part is
``None``, a number it cannot read is NaN) so a renderer never has to probe nested dicts.
Nothing here measures anything: :mod:`lossaudit.analysis` does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lossaudit.jsonable import as_float, jsonable

__all__ = [
    "Analysis",
    "Balance",
    "BalanceRow",
    "Curve",
    "GradientRow",
    "GradientView",
    "TrainingRun",
]

#: The measured parts, in document order.
PARTS = ("curves", "gradients", "balance")


def _opt(value: Any) -> float | None:
    return None if value is None else as_float(value)


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


@dataclass(frozen=True)
class Curve:
    """One component's values along one path to the truth, with the shape a correct loss
    shows (``expected``: ``falls``, ``flat`` or empty for either) and the one observed."""

    path: str
    component: str
    x_label: str
    x: tuple[float, ...]
    y: tuple[float, ...]
    expected: str
    observed: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "component": self.component,
            "x_label": self.x_label,
            "x": list(self.x),
            "y": list(self.y),
            "expected": self.expected,
            "observed": self.observed,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Curve:
        return cls(
            path=str(d.get("path", "?")),
            component=str(d.get("component", "?")),
            x_label=str(d.get("x_label", "")),
            x=tuple(as_float(v) for v in d.get("x") or ()),
            y=tuple(as_float(v) for v in d.get("y") or ()),
            expected=str(d.get("expected") or ""),
            observed=str(d.get("observed") or ""),
        )


@dataclass(frozen=True)
class GradientRow:
    """A component's gradient norm per channel group and anchor kind (``"x, y @ object"``)."""

    component: str
    norms: dict[str, float]
    connected: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {"component": self.component, "norms": dict(self.norms), "connected": self.connected}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> GradientRow:
        return cls(
            component=str(d.get("component", "?")),
            norms={str(k): as_float(v) for k, v in _map(d.get("norms")).items()},
            connected=bool(d.get("connected", True)),
        )


@dataclass(frozen=True)
class GradientView:
    """Gradient norms of every component (rows) on each channel group (columns), ``at``
    which predictions."""

    columns: tuple[str, ...]
    rows: tuple[GradientRow, ...]
    at: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "columns": list(self.columns),
            "rows": [r.to_dict() for r in self.rows],
            "at": self.at,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> GradientView:
        return cls(
            columns=tuple(str(c) for c in d.get("columns") or ()),
            rows=tuple(GradientRow.from_dict(_map(r)) for r in d.get("rows") or ()),
            at=str(d.get("at", "")),
        )


@dataclass(frozen=True)
class BalanceRow:
    """A base component's value, fitted weight in the total (``None``: no gradient at all),
    share of the total's gradient and that share with its weight doubled."""

    component: str
    value: float
    weight: float | None
    share: float | None
    share_if_doubled: float | None
    finite: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "component": self.component,
            "value": self.value,
            "weight": self.weight,
            "share": self.share,
            "share_if_doubled": self.share_if_doubled,
            "finite": self.finite,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> BalanceRow:
        return cls(
            component=str(d.get("component", "?")),
            value=as_float(d.get("value")),
            weight=_opt(d.get("weight")),
            share=_opt(d.get("share")),
            share_if_doubled=_opt(d.get("share_if_doubled")),
            finite=d.get("finite") is not False,
        )


@dataclass(frozen=True)
class Balance:
    """The balance table: can different weights make a component train?"""

    rows: tuple[BalanceRow, ...]
    total: float | None = None
    at: str = ""
    note: str = ""
    weights_fitted: bool = True
    #: What the shares are measured on: the outputs, or a head's shared weights.
    on: str = "the outputs"

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": [r.to_dict() for r in self.rows],
            "total": self.total,
            "at": self.at,
            "note": self.note,
            "weights_fitted": self.weights_fitted,
            "on": self.on,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Balance:
        return cls(
            rows=tuple(BalanceRow.from_dict(_map(r)) for r in d.get("rows") or ()),
            total=_opt(d.get("total")),
            at=str(d.get("at", "?")),
            note=str(d.get("note") or ""),
            weights_fitted=bool(d.get("weights_fitted", False)),
            on=str(d.get("on") or "the outputs"),
        )


@dataclass(frozen=True)
class TrainingRun:
    """Every component at every step of one training run; ``error`` when the loss raised."""

    values: dict[str, tuple[float, ...]]
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"values": {r: list(v) for r, v in self.values.items()}, "error": self.error}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TrainingRun:
        values = {
            str(r): tuple(as_float(x) for x in v or ()) for r, v in _map(d.get("values")).items()
        }
        error = d.get("error")
        return cls(values=values, error=None if error is None else str(error))


@dataclass(frozen=True)
class Analysis:
    """Everything measured beside the verdicts; each part ``None`` when not measured.

    ``error`` says why nothing was measured (the analysis hung or broke); ``errors`` why one
    part was not (``{"curves": "the loss raised ..."}``). ``logs`` is the TensorBoard
    diagnosis drawn with the report (:func:`lossaudit.logs.curves_for_report`), as data.
    """

    curves: tuple[Curve, ...] | None = None
    gradients: GradientView | None = None
    balance: Balance | None = None
    training: dict[str, TrainingRun] | None = None
    logs: dict[str, Any] | None = None
    error: str = ""
    errors: dict[str, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return self != Analysis()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.error:
            out["error"] = self.error
        parts: dict[str, Any] = {
            "curves": None if self.curves is None else [c.to_dict() for c in self.curves],
            "gradients": None if self.gradients is None else self.gradients.to_dict(),
            "balance": None if self.balance is None else self.balance.to_dict(),
        }
        for key in PARTS:
            if key in self.errors:
                out[key] = {"error": self.errors[key]}
            elif parts[key] is not None:
                out[key] = parts[key]
        if self.training is not None:
            out["training"] = {name: run.to_dict() for name, run in self.training.items()}
        if self.logs is not None:
            out["logs"] = self.logs
        return jsonable(out)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Analysis:
        """Read a document's ``analysis`` (any version; damaged parts become errors or NaN)."""
        d = _map(data)
        errors = {
            key: str(d[key]["error"])
            for key in PARTS
            if isinstance(d.get(key), Mapping) and "error" in d[key]
        }
        curves = d.get("curves")
        gradients, balance = d.get("gradients"), d.get("balance")
        training, logs = d.get("training"), d.get("logs")
        return cls(
            curves=(
                tuple(Curve.from_dict(_map(c)) for c in curves)
                if isinstance(curves, list)
                else None
            ),
            gradients=(
                GradientView.from_dict(gradients)
                if isinstance(gradients, Mapping) and "gradients" not in errors
                else None
            ),
            balance=(
                Balance.from_dict(balance)
                if isinstance(balance, Mapping) and "balance" not in errors
                else None
            ),
            training=(
                {str(k): TrainingRun.from_dict(_map(v)) for k, v in training.items()}
                if isinstance(training, Mapping)
                else None
            ),
            logs=dict(logs) if isinstance(logs, Mapping) else None,
            error=str(d["error"]) if isinstance(d.get("error"), str) else "",
            errors=errors,
        )
