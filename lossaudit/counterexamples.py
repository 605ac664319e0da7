"""A failing example as the report shows it: the scene, the constructor calls that rebuild it,
the case the verdict names and the boxes the loss was shown there, decoded.

Pure numpy: called by the audit once Hypothesis has shrunk a failure.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict
from typing import Any

from lossaudit.properties.registry import Outcome
from lossaudit.report import Counterexample
from lossaudit.scenarios import Case
from lossaudit.spec import Codec, Scene

__all__ = ["MAX_CELLS", "counterexample"]

#: Offending cells kept per result (the count is kept in full).
MAX_CELLS = 20


def _scene_code(scene: Scene) -> str:
    inner = ", ".join(repr(o) for o in scene.objects)
    return f"spec  = {scene.spec!r}\nscene = [{inner}]"


def _drawn_case(cases: list[Case], scene: Scene, said: str) -> Case | None:
    """The case to draw for a failure: the one the verdict names (its label appears in what
    the property observed), else the last evaluated that is not the perfect prediction (the
    perturbed case of a before/after pair, the case a finiteness check stopped on)."""
    mine = [c for c in cases if c.scene == scene]
    named = [c for c in mine if c.label != "perfect" and c.label in said]
    if named:
        return max(named, key=lambda c: len(c.label))
    for case in reversed(mine):
        if case.label != "perfect":
            return case
    return mine[0] if mine else None


def _predicted(case: Case, codec: Codec, cells: Iterable[Iterable[int]]) -> list[dict[str, Any]]:
    """Decoded predicted boxes of ``case`` at its object anchors and at the offending cells."""
    decoded = codec.decode(case.y_pred, case.spec)
    objects = {o.slot for o in case.scene.objects}
    slots = list(objects) + [tuple(c) for c in cells if tuple(c) not in objects]
    out = []
    for slot in sorted(slots)[: MAX_CELLS + len(objects)]:
        b, i, j, a = (int(v) for v in slot)
        xy, wh = decoded["xy"][b, i, j, a], decoded["wh"][b, i, j, a]
        out.append(
            {
                "b": b,
                "i": i,
                "j": j,
                "a": a,
                "x": float(xy[0]),
                "y": float(xy[1]),
                "w": float(wh[0]),
                "h": float(wh[1]),
                "obj": float(decoded["obj"][b, i, j, a]),
                "kind": "object" if slot in objects else "offending",
            }
        )
    return out


def counterexample(
    drawn: Any,
    outcome: Outcome | None,
    cases: list[Case] | None = None,
    codec: Codec | None = None,
) -> Counterexample | None:
    """The minimal example as report data: the drawn scene and parameters, the case the verdict
    names and its decoded predicted boxes (when ``codec`` is given); ``None`` when the property
    drew no scene."""
    if not isinstance(drawn, dict):
        return None
    main = drawn.get("scene")
    if not isinstance(main, Scene):
        return None
    params: dict[str, Any] = {}
    for key, value in drawn.items():
        if key == "scene":
            continue
        params[key] = [repr(o) for o in value.objects] if isinstance(value, Scene) else value
    said = f"{outcome.observed} {outcome.expected}" if outcome else ""
    case = _drawn_case(cases or [], main, said) if codec is not None else None
    predicted = (
        _predicted(case, codec, outcome.cells if outcome else ())
        if case is not None and codec is not None
        else []
    )
    return Counterexample(
        spec=asdict(main.spec),
        scene=[asdict(o) for o in main.objects],
        code=_scene_code(main),
        case=case.label if case is not None else "",
        params=params,
        observed=dict(outcome.values) if outcome else {},
        predicted=predicted,
    )
