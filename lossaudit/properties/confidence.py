"""Objectness behaviours: objects and no_objects move toward the truth, separate it from its
opposite, and take no gradient through their targets."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st

from lossaudit import scenarios as sc
from lossaudit import strategies as ls
from lossaudit.properties._helpers import (
    LOGIT_PATH,
    ZERO_GRAD,
    cells_where,
    fmt,
    grad_norms,
    path_outcome,
    scene_draws,
    skip_one_class,
)
from lossaudit.properties.registry import Context, NonFinite, Outcome, prop
from lossaudit.spec import CONFIDENT_LOGIT, OBJ_CH


def _scene_only(ctx: Context, role: str) -> st.SearchStrategy[Any]:
    return st.fixed_dictionaries({"scene": scene_draws(ctx, max_objects=3, crowded=None)})


def _logit_path(ctx: Context, role: str, d: dict[str, Any], *, where: str) -> Outcome:
    base = sc.perfect(d["scene"], ctx.codec)
    mask = d["scene"].object_mask()
    logits = LOGIT_PATH if where == "objects" else tuple(-v for v in LOGIT_PATH)
    cases = [sc.set_confidence(base, ctx.codec, logit=v, where=where) for v in logits]
    values = [ctx.value(c, role) for c in cases]
    steps = [f"obj logit {v:g}" for v in logits]
    anchors = "object" if where == "objects" else "empty"
    direction = "rises toward +3" if where == "objects" else "falls toward -3"
    return path_outcome(
        values,
        steps,
        expected=(
            f"{role} never increases as the obj logit of {anchors} anchors {direction}, and ends "
            "lower than it starts"
        ),
        moved=mask if where == "objects" else ~mask,
        moved_what=f"{anchors} anchors",
    )


@prop(
    "decreases_as_confidence_rises",
    components=("objects", "confidence", "total"),
    draws=_scene_only,
    bugs=(3, 8, 10),
)
def decreases_as_confidence_rises(ctx: Context, role: str, d: dict[str, Any]) -> Outcome:
    """As the obj logit of the object anchors rises from -6 to +3, the component never
    increases and ends clearly lower (objectness read from the wrong channel does not move)."""
    return _logit_path(ctx, role, d, where="objects")


def _falls_applies(ctx: Context, role: str) -> str | None:
    total = ctx.spec.batch * ctx.spec.H * ctx.spec.W * ctx.spec.anchors
    return None if total > 1 else "the grid has a single anchor, so no empty anchor exists"


@prop(
    "decreases_as_confidence_falls",
    components=("no_objects", "confidence", "total"),
    draws=_scene_only,
    applies=_falls_applies,
    bugs=(3, 8),
)
def decreases_as_confidence_falls(ctx: Context, role: str, d: dict[str, Any]) -> Outcome:
    """As the obj logit of the empty anchors falls from +6 to -3, the component never increases
    and ends clearly lower."""
    mask = d["scene"].object_mask()
    if mask.all():
        return Outcome.ok(info="every anchor holds an object")
    return _logit_path(ctx, role, d, where="empty")


def _opposite(ctx: Context, role: str, base: sc.Case) -> sc.Case:
    if role == "objects":
        return sc.set_confidence(base, ctx.codec, logit=-CONFIDENT_LOGIT, where="objects")
    if role == "no_objects":
        return sc.set_confidence(base, ctx.codec, logit=CONFIDENT_LOGIT, where="empty")
    if ctx.spec.classes == 1:
        return sc.set_class_logit(base, ctx.codec, logit=-CONFIDENT_LOGIT, cls="true")
    return sc.set_class_logit(base, ctx.codec, logit=CONFIDENT_LOGIT, cls="wrong")


def _separates_applies(ctx: Context, role: str) -> str | None:
    if role == "no_objects":
        return _falls_applies(ctx, role)
    return skip_one_class(ctx, role)


#: At the perfect prediction a hard-target term keeps at most this share of its opposite value
#: (label smoothing of 0.1 keeps about 7%; a sigmoid applied twice keeps 45%).
SEPARATION = 0.15


@prop(
    "separates_truth_from_opposite",
    components=("objects", "no_objects", "classification"),
    draws=_scene_only,
    applies=_separates_applies,
    bugs=(2, 10),
)
def separates_truth_from_opposite(ctx: Context, role: str, d: dict[str, Any]) -> Outcome:
    """On hard 0/1 targets, the component at the perfect prediction is a small fraction (<= 15%)
    of its value at the opposite prediction (obj or class logits flipped).

    A term that cannot get near its minimum at the truth, such as a sigmoid applied twice or
    softmax outputs fed to a from-logits cross-entropy, keeps a large share.
    """
    scene = d["scene"]
    if role == "no_objects" and scene.object_mask().all():
        return Outcome.ok(info="every anchor holds an object")
    base = sc.perfect(scene, ctx.codec)
    opp = _opposite(ctx, role, base)
    v_truth, v_opp = ctx.value(base, role), ctx.value(opp, role)
    ratio = v_truth / v_opp if v_opp > 0 else float("inf")
    if not (v_opp > 0 and v_truth <= SEPARATION * v_opp):
        return Outcome(
            "fail",
            expected=f"{role} at the truth <= {SEPARATION:g} x {role} at the opposite prediction",
            observed=(
                f"{fmt(v_truth)} at the truth vs {fmt(v_opp)} at {opp.label.split(' | ')[-1]} "
                f"(ratio {fmt(ratio)}): the term cannot get near its minimum at the truth"
            ),
            values={"at_truth": v_truth, "at_opposite": v_opp},
        )
    return Outcome.ok(info=f"ratio {fmt(ratio)}", at_truth=v_truth, at_opposite=v_opp)


@prop(
    "target_carries_no_gradient",
    components=("objects", "confidence"),
    draws=lambda ctx, c: st.fixed_dictionaries(
        {"scene": scene_draws(ctx, max_objects=3, crowded=None), "seed": ls.noise_seeds()}
    ),
    bugs=(22,),
)
def target_carries_no_gradient(ctx: Context, role: str, d: dict[str, Any]) -> Outcome:
    """The objectness term sends gradient only to obj channels: an IoU-rescored target must
    carry no gradient into the box (or class) channels."""
    scene = d["scene"]
    case = sc.noisy(scene, ctx.codec, seed=d["seed"])
    ev = ctx.evaluate(case)
    g = ev.grads[role]
    if not np.isfinite(g).all():
        raise NonFinite(role, case.label, float("nan"))
    ch = np.arange(ctx.spec.channels)
    others = np.broadcast_to(ch != OBJ_CH, g.shape)
    obj_norm = float(np.abs(g[..., OBJ_CH]).max()) if g.size else 0.0
    leak = grad_norms(g, others)
    bad = leak > 1e-6 * obj_norm + ZERO_GRAD
    if bad.any():
        return Outcome(
            "fail",
            expected=f"gradient of {role} is zero on x, y, w, h and classes (only obj moves it)",
            observed=(
                f"{int(bad.sum())} anchors get gradient on non-obj channels from {role} "
                f"(largest {fmt(float(leak.max()))} vs obj {fmt(obj_norm)}): its target is not "
                "wrapped in stop_gradient"
            ),
            cells=cells_where(bad),
            of=int(bad.size),
            values={"leak": float(leak.max())},
        )
    return Outcome.ok()
