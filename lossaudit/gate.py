"""The CI gate on loss changes: ``lossaudit check`` and ``lossaudit baseline``.

``baseline`` records, for every loss configured in ``[tool.lossaudit]``, each component's value
on a fixed set of canonical scenes (perfect, shifted by three sizes, rescaled, typical, empty,
wrong class, crowded, extreme logits in empty cells) into a JSON file to review and commit.
``check`` audits every configured loss and compares those values with the baseline, so a change
that keeps every property but moves a component is seen before it merges.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lossaudit import scenarios as sc
from lossaudit.config import LossConfig, load_project
from lossaudit.errors import InvalidSpec, LossError
from lossaudit.jsonable import jsonable
from lossaudit.render.check import SPEC_DRIFT
from lossaudit.report import Report
from lossaudit.settings import Settings, resolve
from lossaudit.spec import Codec, GridSpec, Obj, Scene

__all__ = [
    "BASELINE_VERSION",
    "Drift",
    "GateConfig",
    "canonical_cases",
    "compare",
    "load_gate",
    "measure",
]

BASELINE_VERSION = 1
#: Relative drift allowed per component unless ``[tool.lossaudit.tolerance]`` says otherwise.
DEFAULT_RTOL = 1e-4
ATOL = 1e-6


@dataclass(frozen=True)
class GateConfig:
    """What ``check`` and ``baseline`` read from ``[tool.lossaudit]``."""

    source: Path
    losses: tuple[LossConfig, ...]
    baseline: Path
    tolerance: dict[str, float]
    table: dict[str, Any]

    def settings(self, profile: str | None = None) -> Settings:
        return resolve(profile, config=self.table)


def load_gate(config: str | Path | None = None) -> GateConfig:
    """Read the gate's configuration from ``config`` (a TOML file or a directory holding
    ``pyproject.toml``; default: the current directory)."""
    path = Path(config) if config else Path.cwd()
    if path.is_dir():
        path = path / "pyproject.toml"
    if not path.is_file():
        raise InvalidSpec(
            f"no configuration: expected a pyproject.toml with [tool.lossaudit]; received {str(path)!r}. "
            "Create one (see the README's CI gate section) or pass --config FILE."
        )
    project = load_project(path.parent, filename=path.name)
    table, losses = project.table, project.losses
    if not losses:
        raise InvalidSpec(
            f"{path.name}: no losses configured: expected at least one [[tool.lossaudit.losses]] table "
            'with a target; received none. Add one, e.g. target = "my_pkg/losses.py:yolo_loss".'
        )
    tolerance = table.get("tolerance", {})  # checked by load_project
    baseline = path.parent / str(table.get("baseline", "lossaudit-baseline.json"))
    return GateConfig(
        path, losses, baseline, {str(k): float(v) for k, v in tolerance.items()}, table
    )


def canonical_cases(spec: GridSpec, codec: Codec) -> list[tuple[str, sc.Case]]:
    """The fixed scenes a baseline records, named; the same for a spec and codec every time."""
    last = (spec.batch - 1, spec.H - 1, spec.W - 1, spec.anchors - 1)
    objects = [Obj(0, 0, 0, 0, 0.3, 0.6, 0.4, 0.3, 0)]
    if last != (0, 0, 0, 0):
        objects.append(Obj(*last, 0.7, 0.2, 0.2, 0.5, spec.classes - 1))
    scene = Scene(spec, tuple(objects))
    crowded = Scene(
        spec,
        tuple(
            Obj(0, 0, 0, a, 0.5, 0.5, 0.2 + 0.2 * a / spec.anchors, 0.3, 0)
            for a in range(spec.anchors)
        ),
    )
    base = sc.perfect(scene, codec)
    cases = [("perfect", base)]
    for d in (0.1, 0.25, 0.4):
        cases.append((f"shifted_{d:g}", sc.shifted(base, codec, dx=d, dy=d)))
    cases.append(("rescaled_0.3", sc.scaled(base, codec, dw=0.3, dh=0.3)))
    cases.append(("typical", sc.noisy(scene, codec, seed=7)))
    cases.append(("empty", sc.noisy(sc.empty_scene(spec), codec, seed=7)))
    if spec.classes > 1:
        cases.append(("wrong_class", sc.set_class_logit(base, codec, logit=12.0, cls="wrong")))
    cases.append(("crowded", sc.noisy(crowded, codec, seed=3)))
    cases.append(
        (
            "extreme_empty",
            sc.extreme(base, value=sc.EXTREME, where="empty", channels="all", codec=codec),
        )
    )
    return cases


def measure(
    loss: Any, cfg: LossConfig, *, time_limit: float = 300.0
) -> dict[str, dict[str, float]]:
    """Every component's value on every canonical scene: ``{scene: {component: value}}``.

    A scene the loss raised on holds ``{"error": message}``. The scenes are measured on the
    audit's worker thread within ``time_limit`` seconds, like a property: a loss that hangs
    leaves the scenes it never finished as errors instead of hanging the gate.
    """
    from lossaudit.adapter import Adapter
    from lossaudit.worker import Worker

    options = cfg.options
    frame = options.frame()  # a multi-scale loss is measured on its first scale
    adapter = Adapter.calling(loss, options, frame)
    cases = canonical_cases(frame.spec, frame.codec)
    out: dict[str, dict[str, float]] = {}

    def run() -> None:
        for name, case in cases:
            try:
                out[name] = dict(adapter.evaluate(case).values)
            except LossError as exc:
                out[name] = {"error": str(exc)}  # type: ignore[dict-item]

    worker = Worker()
    label = f"the canonical scenes of {cfg.target}"
    try:
        finished, _ = worker.run(run, time_limit, label)
    except LossError as exc:  # SystemExit and the like, from the loss
        finished, hung = True, {"error": str(exc)}
    else:
        hung = {"error": f"did not finish within {time_limit:g}s: the loss hangs or is very slow"}
    worker.close(hung=not finished)
    return {name: dict(out.get(name) or hung) for name, _ in cases}


def baseline_document(entries: dict[str, tuple[LossConfig, dict[str, dict[str, float]]]]) -> str:
    doc = {
        "schema_version": BASELINE_VERSION,
        "losses": {
            target: {**cfg.options.record(), "values": jsonable(values)}
            for target, (cfg, values) in entries.items()
        },
    }
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def read_baseline(path: Path) -> dict[str, Any] | None:
    """The baseline document, ``None`` when there is none; a broken one is a usage error."""
    if not path.is_file():
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidSpec(
            f"cannot read the baseline {str(path)!r}: {exc.strerror or exc}. Make it readable or "
            "point [tool.lossaudit] baseline at another file."
        ) from None
    try:
        doc = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise InvalidSpec(
            f"the baseline {str(path)!r} is not valid JSON: expected a file written by `lossaudit baseline`; "
            f"received a parse error ({exc}). Recreate it with `lossaudit baseline --update`."
        ) from None
    if isinstance(doc, dict) and doc.get("schema_version") == BASELINE_VERSION:
        losses = doc.get("losses")
        entries_ok = isinstance(losses, dict) and all(
            isinstance(e, dict)
            and isinstance(e.get("values"), dict)
            and all(isinstance(v, dict) for v in e["values"].values())
            for e in losses.values()
        )
        if not entries_ok:
            raise InvalidSpec(
                f"the baseline {str(path)!r} is damaged: expected {{'losses': {{target: {{'values': "
                "{scene: {component: value}}}}}}} as `lossaudit baseline` writes it; received another "
                "shape. Recreate it with `lossaudit baseline --update`."
            )
        for target, entry in losses.items():
            for scene, values in entry["values"].items():
                for component, value in values.items():
                    if not _readable_value(value):
                        raise InvalidSpec(
                            f"the baseline {str(path)!r} is damaged: expected a number (or a "
                            "loss's error message) for every component on every scene; received "
                            f"{target} / {scene} / {component} = {_short(value)}. Recreate it "
                            "with `lossaudit baseline --update`."
                        )
    if not isinstance(doc, dict) or doc.get("schema_version") != BASELINE_VERSION:
        raise InvalidSpec(
            f"the baseline {str(path)!r} has schema_version {doc.get('schema_version') if isinstance(doc, dict) else None!r}: "
            f"expected {BASELINE_VERSION}. Recreate it with `lossaudit baseline --update`."
        )
    return doc


def _readable_value(value: Any) -> bool:
    """A finite-width number (``10**400`` is no float) or an error message."""
    if isinstance(value, str):
        return True
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        float(value)
    except OverflowError:
        return False
    return True


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


@dataclass(frozen=True)
class Drift:
    """One component that moved on one canonical scene."""

    target: str
    scene: str
    component: str
    baseline: Any
    current: Any

    @property
    def absolute(self) -> float:
        try:
            return abs(float(self.current) - float(self.baseline))
        except (TypeError, ValueError):
            return math.inf

    @property
    def relative(self) -> float:
        try:
            return self.absolute / max(abs(float(self.baseline)), ATOL)
        except (TypeError, ValueError):
            return math.inf

    def row(self) -> dict[str, Any]:
        """As plain data for the renderers (:mod:`lossaudit.render.check`)."""
        return {
            "target": self.target,
            "component": self.component,
            "scene": self.scene,
            "baseline": self.baseline,
            "current": self.current,
            "absolute": self.absolute,
            "relative": self.relative,
        }


def _same(a: Any, b: Any, rtol: float) -> bool:
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    return abs(a - b) <= ATOL + rtol * abs(a)


def compare(
    target: str,
    recorded: dict[str, Any] | None,
    current: dict[str, dict[str, float]],
    tolerance: dict[str, float],
) -> list[Drift]:
    """Drifts of ``current`` from the ``recorded`` baseline entry of ``target``."""
    if recorded is None:
        return [Drift(target, "*", "*", "not in the baseline", "measured")]
    old = recorded.get("values", {})
    now = jsonable(current)
    drifts = []
    for scene in sorted(set(old) | set(now)):
        for comp in sorted(set(old.get(scene, {})) | set(now.get(scene, {}))):
            a, b = old.get(scene, {}).get(comp), now.get(scene, {}).get(comp)
            if a is None or b is None or not _same(a, b, tolerance.get(comp, DEFAULT_RTOL)):
                drifts.append(Drift(target, scene, comp, a, b))
    return drifts


def other_spec(cfg: LossConfig, recorded: dict[str, Any] | None) -> Drift | None:
    """A drift saying the baseline entry was recorded for another grid spec or codec than the
    one configured now (its values cannot be compared); ``None`` when they agree."""
    if recorded is None or not isinstance(recorded.get("spec"), dict):
        return None  # not in the baseline, or a baseline that did not record its spec
    now = jsonable(cfg.options.record())
    changed = [
        (part, key)
        for part in now
        for key in now[part]
        if (recorded.get(part) or {}).get(key) != now[part][key]
    ]
    if not changed:
        return None

    def spelt(doc: dict[str, Any]) -> str:
        return " ".join(f"{key}={(doc.get(part) or {}).get(key)!r}" for part, key in changed)

    return Drift(
        cfg.target,
        "*",
        SPEC_DRIFT,
        f"recorded for {spelt(recorded)}",
        f"configured {spelt(now)}",
    )


#: Loads the loss a configured entry names (its target, as a factory or not).
Loader = Callable[[LossConfig], Any]


def run_check(
    gate: GateConfig, *, loader: Loader, settings: Settings, analyse: bool = False
) -> tuple[list[Report], list[Drift], bool]:
    """Audit every configured loss and compare it with the baseline.

    ``analyse`` also measures the curves, gradients and balance the HTML page draws. Returns
    the reports, the drifts, and whether a baseline file exists.
    """
    from lossaudit.audit import audit

    doc = read_baseline(gate.baseline)
    reports, drifts = [], []
    for cfg in gate.losses:
        loss, options = loader(cfg), cfg.options
        reports.append(
            audit(
                loss,
                options.spec,
                options.codec,
                settings=settings.replace(reduction=options.reduction),
                components=options.components,
                target=cfg.target,
                analyse_loss=analyse,
                **options.calling(),
            )
        )
        if doc is None:
            continue
        if any(r.hung for r in reports[-1].results):
            # Measuring would hang the same way: the audit's error already fails the gate.
            drifts.append(Drift(cfg.target, "*", "*", "recorded", "not measured: the loss hung"))
            continue
        recorded = doc["losses"].get(cfg.target)
        spec_drift = other_spec(cfg, recorded)
        if spec_drift is not None:  # comparing values of another grid would flag every one
            drifts.append(spec_drift)
            continue
        current = measure(loss, cfg, time_limit=settings.time_limit)
        drifts += compare(cfg.target, recorded, current, gate.tolerance)
    return reports, drifts, doc is not None
