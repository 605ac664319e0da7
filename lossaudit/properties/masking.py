"""Masking behaviours: each component depends only on the anchors it governs."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st

from lossaudit import scenarios as sc
from lossaudit import strategies as ls
from lossaudit.properties._helpers import (
    CHANNELS,
    ZERO_GRAD,
    cells_where,
    fmt,
    governed_union,
    grad_norms,
    scene_draws,
    skip_one_class,
    tol,
)
from lossaudit.properties.registry import Context, NonFinite, Outcome, prop
from lossaudit.spec import CLS0


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
    every = np.ones(e0.grads[role].shape, bool)
    norms = [grad_norms(e.grads[role], every) for e in (e0, e1)]
    anchors = "empty anchors" if where == "empty" else "object anchors"
    if abs(v1 - v0) > tol(v0):
        leak = moved_sel & ((norms[0] > ZERO_GRAD) | (norms[1] > ZERO_GRAD))
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
    # Same value, yet gradient: a term left unmasked where it happens to be 0 (a class
    # cross-entropy against an all-zero label) still trains those anchors.
    own = max(float(n[~moved_sel].max(initial=0.0)) for n in norms)
    sent = [np.where(moved_sel, n, 0.0) for n in norms]
    leak = (sent[0] > 1e-6 * own + ZERO_GRAD) | (sent[1] > 1e-6 * own + ZERO_GRAD)
    if leak.any():
        largest = max(float(n.max()) for n in sent)
        return Outcome(
            "fail",
            expected=f"{role} neither moves nor sends gradient when the {anchors} are redrawn",
            observed=(
                f"{role} stays {fmt(v0)}, but {int(leak.sum())} / {int(moved_sel.sum())} "
                f"{anchors} get gradient from it (largest {fmt(largest)} vs {fmt(own)} on the "
                "anchors it governs): the term is not masked there"
            ),
            cells=cells_where(leak),
            of=int(moved_sel.sum()),
            of_what=anchors,
            values={"before": v0, "after": v1, "leak": largest},
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
    """Predictions in anchors without an object do not move the component, and get no
    gradient from it (an unmasked cross-entropy is 0 against an all-zero label, yet
    TensorFlow's gradient of it is not).

    Every channel of the empty anchors is redrawn, including the unused anchors of a cell whose
    other anchor holds an object (a mask reduced over anchors and broadcast back leaks there).
    """
    return unchanged_when(ctx, role, d, where="empty")


@prop("ignores_object_anchors", components=("no_objects",), draws=_ignores_draws, bugs=(26,))
def ignores_object_anchors(ctx: Context, role: str, d: dict[str, Any]) -> Outcome:
    """no_objects does not depend on the anchors that hold objects: redrawing every channel of
    the object anchors leaves it unchanged (a no-object term applied to every anchor does not)."""
    return unchanged_when(ctx, role, d, where="objects")


_CHANNEL_NAMES = ("x", "y", "w", "h", "obj")


def _channel_label(ch: int) -> str:
    return _CHANNEL_NAMES[ch] if ch < len(_CHANNEL_NAMES) else f"class {ch - CLS0}"


@prop(
    "own_channels",
    components=("coordinates", "classification", "no_objects"),
    draws=lambda ctx, c: st.fixed_dictionaries(
        {"scene": scene_draws(ctx, max_objects=3, crowded=None), "seed": ls.noise_seeds()}
    ),
    applies=skip_one_class,
    bugs=(8, 22),
)
def own_channels(ctx: Context, role: str, d: dict[str, Any]) -> Outcome:
    """The component sends gradient only to the channels it governs: a class term does not
    push obj (a class loss on the detection score ``obj * class``), a box term does not push
    obj or the classes (a box loss weighted by the predicted confidence), the no-object term
    moves nothing but the obj output of empty anchors.

    ``objects.target_carries_no_gradient`` is the same check for the objectness term. Leaks
    below a millionth of the component's own gradient are rounding.
    """
    case = sc.noisy(d["scene"], ctx.codec, seed=d["seed"])
    g = ctx.evaluate(case).grads[role]
    if not np.isfinite(g).all():
        raise NonFinite(role, case.label, float("nan"))
    governed, _ = governed_union(ctx, role, d["scene"])
    own = float(np.abs(np.where(governed, g, 0.0)).max(initial=0.0))
    leak = np.where(governed, 0.0, np.abs(g))
    bad = leak.max(axis=-1) > 1e-6 * own + ZERO_GRAD
    if bad.any():
        worst = np.unravel_index(int(np.argmax(leak)), leak.shape)
        channels = sorted(
            {_channel_label(int(c)) for c in np.nonzero(leak > 1e-6 * own + ZERO_GRAD)[-1]},
            key=lambda c: (len(c) > 1, c),
        )
        return Outcome(
            "fail",
            expected=f"gradient of {role} only on {CHANNELS[role]} (rounding allowed: 1e-6 of its own)",
            observed=(
                f"{int(bad.sum())} anchors get gradient from {role} on channels it does not "
                f"govern ({', '.join(channels)}); largest {fmt(float(leak[worst]))} on "
                f"{_channel_label(int(worst[-1]))} vs {fmt(own)} on its own channels"
            ),
            cells=cells_where(bad),
            of=int(bad.size),
            values={"leak": float(leak[worst]), "own": own},
        )
    return Outcome.ok(own=own)
