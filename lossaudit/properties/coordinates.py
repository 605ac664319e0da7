"""Coordinate behaviours: shifted and rescaled boxes converge to the truth."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st

from lossaudit import scenarios as sc
from lossaudit import strategies as ls
from lossaudit.properties._helpers import fmt, path_outcome, scene_draws
from lossaudit.properties.registry import Context, Outcome, prop
from lossaudit.spec import Obj, Scene

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


#: Box sizes (image fractions) compared by ``size_relative``, and the relative size error.
SMALL, LARGE, SIZE_ERROR = 0.05, 0.5, 0.2
#: Below this, a small box's size error counts for next to nothing against a large box's.
SIZE_RATIO = 0.05


def _one_object(ctx: Context, role: str) -> st.SearchStrategy[Any]:
    return st.fixed_dictionaries({"scene": scene_draws(ctx, min_objects=1, max_objects=1)})


@prop("size_relative", components=("coordinates",), draws=_one_object, bugs=(19,))
def size_relative(ctx: Context, role: str, d: dict[str, Any]) -> Outcome:
    """The same relative size error (20%) on a small box (5% of the image) moves the
    coordinate term at least a twentieth as much as on a large one (50%): w, h compared
    linearly make a small box's errors vanish (YOLOv1 compares square roots, YOLOv2 and later
    log sizes or IoU). A design question, so a warning."""
    (obj,) = d["scene"].objects
    rises = {}
    for size in (SMALL, LARGE):
        scene = Scene(d["scene"].spec, (Obj(*obj.slot, obj.x, obj.y, size, size, obj.cls),))
        base = sc.perfect(scene, ctx.codec)
        moved = sc.scaled(base, ctx.codec, dw=np.log1p(SIZE_ERROR), dh=np.log1p(SIZE_ERROR))
        rises[size] = ctx.value(moved, role) - ctx.value(base, role)
    small, large = rises[SMALL], rises[LARGE]
    if large <= 1e-9:
        return Outcome.ok(info="the term does not move with box size", values=rises)
    ratio = small / large
    if ratio < SIZE_RATIO:
        return Outcome(
            "warn",
            expected=(
                f"a {SIZE_ERROR:.0%} size error on a {SMALL:g}-wide box counts at least "
                f"{SIZE_RATIO:g} x as much as on a {LARGE:g}-wide box"
            ),
            observed=(
                f"{role} rises {fmt(small)} for the small box and {fmt(large)} for the large one "
                f"(ratio {fmt(ratio)}): w, h are compared linearly, so small boxes barely "
                "count; compare log sizes (the raw t_w against log(w / anchor)), square roots, "
                "or use an IoU loss"
            ),
            values={"small": small, "large": large, "ratio": ratio},
        )
    return Outcome.ok(values={"small": small, "large": large, "ratio": ratio})
