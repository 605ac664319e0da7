"""Coordinate behaviours: shifted and rescaled boxes converge to the truth."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from lossaudit import scenarios as sc
from lossaudit import strategies as ls
from lossaudit.properties._helpers import path_outcome, scene_draws
from lossaudit.properties.registry import Context, Outcome, prop

PATH = (1.0, 0.75, 0.5, 0.25, 0.0)


def converge_draws(scenes: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A scene and a move (shift, scale or both) to bring back to the truth."""
    return st.fixed_dictionaries(
        {
            "scene": scenes,
            "move": st.sampled_from(("shift", "scale", "both")),
            "dx": ls.shifts(),
            "dy": ls.shifts(),
            "dw": ls.shifts(high=0.69),
            "dh": ls.shifts(high=0.69),
        }
    )


def converge_path(ctx: Context, d: dict[str, Any]) -> tuple[list[sc.Case], list[str]]:
    """Cases along a straight path from a shifted/rescaled prediction back to the truth."""
    scene = d["scene"]
    base = sc.perfect(scene, ctx.codec)
    shift = d["move"] in ("shift", "both")
    scale = d["move"] in ("scale", "both")
    cases, steps = [], []
    for s in PATH:
        case = base
        if shift:
            case = sc.shifted(case, ctx.codec, dx=d["dx"] * s, dy=d["dy"] * s)
        if scale:
            case = sc.scaled(case, ctx.codec, dw=d["dw"] * s, dh=d["dh"] * s)
        cases.append(case)
        steps.append(f"s={s:g}")
    return cases, steps


@prop(
    "decreases_as_boxes_converge",
    components=("coordinates", "total"),
    draws=lambda ctx, c: converge_draws(scene_draws(ctx, max_objects=3, crowded=None)),
    bugs=(3, 19, 25),
)
def decreases_as_boxes_converge(ctx: Context, role: str, d: dict[str, Any]) -> Outcome:
    """As shifted or rescaled predicted boxes move back to the truth in equal steps, the
    component never increases, and it ends clearly lower than it started.

    Catches a coordinate term that does not respond at all (a mask thrown away, boxes compared
    in the wrong frame) and one whose minimum sits away from the truth.
    """
    cases, steps = converge_path(ctx, d)
    values = [ctx.value(c, role) for c in cases]
    shift = f"centres moved by ({abs(d['dx']):g}, {abs(d['dy']):g}) cells"
    scale = f"sizes scaled by (exp(±{abs(d['dw']):g}), exp(±{abs(d['dh']):g}))"
    move = {"shift": shift, "scale": scale, "both": f"{shift} and {scale}"}[d["move"]]
    return path_outcome(
        values,
        steps,
        expected=(
            f"{role} never increases as boxes ({move}) return to the truth in steps "
            f"s = 1, 0.75, 0.5, 0.25, 0, and ends lower than it starts"
        ),
        moved=d["scene"].object_mask(),
    )
