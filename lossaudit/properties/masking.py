"""Masking behaviours: each component depends only on the anchors it governs."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st

from lossaudit import scenarios as sc
from lossaudit import strategies as ls
from lossaudit.properties._helpers import (
    ZERO_GRAD,
    cells_where,
    fmt,
    grad_norms,
    scene_draws,
    skip_one_class,
    tol,
)
from lossaudit.properties.registry import Context, NonFinite, Outcome, prop


def _ignores_draws(ctx: Context, role: str) -> st.SearchStrategy[Any]:
    return st.fixed_dictionaries(
        {
            "scene": scene_draws(ctx, max_objects=3, crowded=None),
            "base": st.sampled_from(("perfect", "noisy")),
            "seed": ls.noise_seeds(),
        }
    )


def unchanged_when(ctx: Context, role: str, d: dict[str, Any], *, where: str) -> Outcome:
    """The component is unchanged when every channel of the ``where`` anchors is redrawn."""
    scene = d["scene"]
    mask = scene.object_mask()
    moved_sel = ~mask if where == "empty" else mask
    if not moved_sel.any():
        return Outcome.ok(info=f"no {where} anchor in this scene")
    base = (
        sc.perfect(scene, ctx.codec)
        if d["base"] == "perfect"
        else sc.noisy(scene, ctx.codec, seed=d["seed"])
    )
    other = sc.randomized_anchors(base, ctx.codec, where=where, seed=d["seed"])
    e0, e1 = ctx.evaluate(base), ctx.evaluate(other)
    v0, v1 = e0.values[role], e1.values[role]
    for case, v in ((base, v0), (other, v1)):
        if not np.isfinite(v):
            raise NonFinite(role, case.label, v)
    if abs(v1 - v0) > tol(v0):
        leak = moved_sel & (
            (grad_norms(e0.grads[role], np.ones(e0.grads[role].shape, bool)) > ZERO_GRAD)
            | (grad_norms(e1.grads[role], np.ones(e1.grads[role].shape, bool)) > ZERO_GRAD)
        )
        anchors = "empty anchors" if where == "empty" else "object anchors"
        return Outcome(
            "fail",
            expected=f"{role} unchanged when every channel of the {anchors} is redrawn (tol={tol(v0):.2g})",
            observed=(
                f"{role} moves from {fmt(v0)} to {fmt(v1)}; {int(leak.sum())} / {int(moved_sel.sum())} "
                f"{anchors} send it gradient"
            ),
            cells=cells_where(leak),
            of=int(moved_sel.sum()),
            of_what=anchors,
            values={"before": v0, "after": v1},
        )
    return Outcome.ok(before=v0, after=v1)


@prop(
    "ignores_empty_anchors",
    components=("coordinates", "classification", "objects"),
    draws=_ignores_draws,
    applies=skip_one_class,
    bugs=(25, 27),
)
def ignores_empty_anchors(ctx: Context, role: str, d: dict[str, Any]) -> Outcome:
    """Predictions in anchors without an object do not move the component.

    Every channel of the empty anchors is redrawn, including the unused anchors of a cell whose
    other anchor holds an object (a mask reduced over anchors and broadcast back leaks there).
    """
    return unchanged_when(ctx, role, d, where="empty")


@prop("ignores_object_anchors", components=("no_objects",), draws=_ignores_draws, bugs=(26,))
def ignores_object_anchors(ctx: Context, role: str, d: dict[str, Any]) -> Outcome:
    """no_objects does not depend on the anchors that hold objects: redrawing every channel of
    the object anchors leaves it unchanged (a no-object term applied to every anchor does not)."""
    return unchanged_when(ctx, role, d, where="objects")
