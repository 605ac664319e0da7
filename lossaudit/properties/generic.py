"""Behaviours every component shares: finite, non-negative, minimal at the truth, gradient flow,
batch independence."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from hypothesis import strategies as st

from lossaudit import scenarios as sc
from lossaudit.components import COMPONENTS
from lossaudit.properties._helpers import (
    CHANNELS,
    ZERO_GRAD,
    cells_where,
    channel_groups,
    fmt,
    governed_union,
    grad_norms,
    scene_draws,
    skip_one_class,
    tol,
    with_seed,
)
from lossaudit.properties.registry import Context, NonFinite, Outcome, prop
from lossaudit.spec import CLS0, OBJ_CH

ALL = COMPONENTS


def _scene_and_seed(ctx: Context, component: str) -> st.SearchStrategy[Any]:
    return st.fixed_dictionaries(
        {
            "scene": st.one_of(
                scene_draws(ctx, min_objects=1, max_objects=3, crowded=None),
                scene_draws(ctx, min_objects=1, max_objects=2, tiny=True),
            ),
            "seed": st.integers(0, 2**16 - 1),
        }
    )


def _finite_cases(ctx: Context, d: dict[str, Any]) -> list[sc.Case]:
    """Every stress case for one drawn scene: each kind, with +100 and with -100."""
    codec, scene = ctx.codec, d["scene"]
    cases = [
        sc.noisy(scene, codec, seed=d["seed"]),
        sc.perfect(scene, codec),
    ]
    empty = sc.noisy(sc.empty_scene(ctx.spec), codec, seed=d["seed"])
    cases.append(sc.Case(empty.scene, empty.y_pred, f"all-empty batch | {empty.label}"))
    for value in (sc.EXTREME, -sc.EXTREME):
        cases.append(
            sc.extreme(
                sc.perfect(scene, codec), value=value, where="empty", channels="all", codec=codec
            )
        )
        logits = sc.extreme(
            sc.perfect(scene, codec), value=value, where="objects", channels="obj", codec=codec
        )
        cases.append(sc.extreme(logits, value=-value, where="objects", channels="cls", codec=codec))
        cases.append(
            sc.extreme(
                sc.noisy(scene, codec, seed=d["seed"]),
                value=value,
                where="all",
                channels="wh",
                codec=codec,
            )
        )
    return cases


@prop("finite", components=ALL, draws=_scene_and_seed, bugs=(6, 11, 12, 13, 14, 15, 23))
def finite(ctx: Context, role: str, d: dict[str, Any]) -> Outcome:
    """The component and its gradient are finite for every valid scene.

    Checked on typical and perfect predictions, an all-empty batch, logits of +-100 in empty
    cells (a 0 * NaN leak through a multiplicative mask), saturated obj and class logits in
    object cells (log of an activated probability), raw sizes of +-100 (exp overflow) and tiny
    boxes (log(0), division by zero in IoU, sqrt at 0).
    """
    expected = "value and gradient finite (no NaN, no inf)"
    hint = (
        "; usual causes: a mask applied by multiplying (0 x inf = NaN; select inputs with "
        "tf.where instead), exp of an unclipped raw size, log of an activated probability "
        "(use the from-logits loss), a division without an epsilon, sqrt at 0"
    )
    for case in _finite_cases(ctx, d):
        v, bad = ctx.nonfinite(case)[role]
        if not np.isfinite(v):
            observed = f"{role} = {v} on {case.label}{hint}"
        elif bad.any():
            observed = f"{role} = {fmt(v)} but its gradient is non-finite on {case.label}{hint}"
        else:
            continue
        return Outcome(
            "fail",
            expected=expected,
            observed=observed,
            cells=cells_where(bad),
            of=bad.size,
            values={"value": v},
        )
    return Outcome.ok()


def _stress_cases(ctx: Context, d: dict[str, Any]) -> list[sc.Case]:
    """Predictions across the range a network can output: typical, three times wider,
    perfect, and perfect with saturated logits (+-50) in object cells."""
    codec, scene = ctx.codec, d["scene"]
    base = sc.noisy(scene, codec, seed=d["seed"])
    cases = [
        base,
        base.derive(codec.clamp(base.y_pred * 3.0), "scaled_logits(factor=3)"),
        sc.perfect(scene, codec),
    ]
    for value in (50.0, -50.0):
        for channels in ("xy", "obj", "cls"):
            cases.append(
                sc.extreme(
                    sc.perfect(scene, codec),
                    value=value,
                    where="objects",
                    channels=channels,
                    codec=codec,
                )
            )
    return cases


@prop(
    "non_negative",
    components=ALL,
    draws=lambda ctx, c: with_seed(scene_draws(ctx, min_objects=0, crowded=None)),
    bugs=(17,),
)
def non_negative(ctx: Context, role: str, d: dict[str, Any]) -> Outcome:
    """The component is never negative (BCE against a target outside [0, 1] can be).

    Checked on typical predictions, wider ones, the perfect prediction and saturated
    (+-50) xy, obj and class logits in object cells.
    """
    cases = _stress_cases(ctx, d)
    # Float32 sums of terms that are 0 at best (1 - IoU slightly above 1) round to tiny
    # negatives; the allowance scales with the component's size on typical predictions.
    typical = abs(ctx.evaluate(cases[0]).values[role])
    allowance = 1e-6 + 1e-5 * (typical if np.isfinite(typical) else 0.0)
    for case in cases:
        ev = ctx.evaluate(case)
        v = ev.values[role]
        if not np.isfinite(v):
            raise NonFinite(role, case.label, v)
        per = ev.per_sample.get(role)
        if v < -allowance or (per is not None and (per < -allowance).any()):
            detail = f"; per sample {np.round(per, 6).tolist()}" if per is not None else ""
            return Outcome(
                "fail",
                expected=f"{role} >= 0 (atol={allowance:.2g})",
                observed=f"{role} = {fmt(v)} on {case.label}{detail}",
                values={"value": v},
            )
    return Outcome.ok()


def _finite_optimum_channels(ctx: Context, role: str, scene: Any) -> np.ndarray:
    """Channels whose truth value is finite for this codec: boxes always; obj and classes only
    for identity codecs (a saturating activation reaches its truth only at infinity)."""
    m = governed_union(ctx, "total", scene)[0]
    ch = np.arange(ctx.spec.channels)
    if ctx.codec.saturating_obj:
        m &= ch != OBJ_CH
    if ctx.codec.saturating_cls:
        m &= ch < CLS0
    return m


def _minimal_applies(ctx: Context, role: str) -> str | None:
    if role in ("coordinates", "total"):
        return None
    sat = ctx.codec.saturating_cls if role == "classification" else ctx.codec.saturating_obj
    if sat:
        behaviour = {
            "classification": "decreases_as_true_class_rises",
            "objects": "decreases_as_confidence_rises",
            "no_objects": "decreases_as_confidence_falls",
            "confidence": "decreases_as_confidence_rises",
        }[role]
        return (
            f"its codec saturates (truth only at infinite logits); {role}.{behaviour} checks "
            "it moves toward the truth instead"
        )
    return None


@prop(
    "minimal_at_truth",
    components=ALL,
    draws=lambda ctx, c: with_seed(scene_draws(ctx, crowded=None)),
    applies=_minimal_applies,
    bugs=(2, 8, 10, 19),
)
def minimal_at_truth(ctx: Context, role: str, d: dict[str, Any]) -> Outcome:
    """At the perfect prediction the component is minimal: no small move of the predicted boxes
    (or of identity-coded obj and class outputs) away from the truth lowers it.

    Probes a random direction both ways and the component's own descent direction, at three
    step sizes. The value there need not be 0 (BCE on soft targets has a floor by design); the
    floor and the gradient size at the truth are reported as information.
    """
    scene = d["scene"]
    base = sc.perfect(scene, ctx.codec)
    ev = ctx.evaluate(base)
    v0 = ev.values[role]
    if not np.isfinite(v0):
        raise NonFinite(role, base.label, v0)
    chans = _finite_optimum_channels(ctx, role, scene)
    g0 = np.where(chans, ev.grads[role], 0.0)
    rng = np.random.default_rng(d["seed"])
    u = np.where(chans, rng.normal(size=chans.shape), 0.0)
    directions = [("random", u / max(np.linalg.norm(u), 1e-12))]
    gnorm = float(np.linalg.norm(g0))
    if np.isfinite(gnorm) and gnorm > ZERO_GRAD:
        directions.append(("descent", -g0 / gnorm))
    worst = None
    for label, direction in directions:
        for step in (1e-3, 1e-2, 1e-1):
            for sign in (1.0, -1.0) if label == "random" else (1.0,):
                moved = base.derive(
                    ctx.codec.clamp(base.y_pred + sign * step * direction),
                    f"moved({label}, step={sign * step:g})",
                )
                v = ctx.value(moved, role)
                if v < v0 - tol(v0) and (worst is None or v - v0 < worst[0]):
                    worst = (v - v0, moved.label, v)
    info = f"floor at the truth {fmt(v0)}; gradient norm there {fmt(gnorm)}"
    if worst is not None:
        moved_cells = chans.any(axis=-1)
        return Outcome(
            "fail",
            expected=f"{role} at the perfect prediction <= {role} at any nearby prediction (tol={tol(v0):.2g})",
            observed=(
                f"{role} falls from {fmt(v0)} at the truth to {fmt(worst[2])} after "
                f"{worst[1].split(' | ')[-1]}: its minimum is not at the truth (gradient norm at the truth {fmt(gnorm)})"
            ),
            cells=cells_where(moved_cells),
            of=int(moved_cells.size),
            of_what="anchors (the ones the move touched)",
            values={"at_truth": v0, "nearby": worst[2], "gradient_norm": gnorm},
            info=info,
        )
    return Outcome.ok(info=info, floor=v0, gradient_norm=gnorm)


@prop(
    "gradient_flows",
    components=ALL,
    draws=lambda ctx, c: with_seed(scene_draws(ctx, crowded=None)),
    applies=skip_one_class,
    bugs=(3, 4, 8, 9),
)
def gradient_flows(ctx: Context, role: str, d: dict[str, Any]) -> Outcome:
    """The component sends a non-zero, finite gradient to the channels it governs wherever it is
    active: coordinates to x, y, w, h of object anchors; objects to obj of object anchors;
    no_objects to obj of empty anchors; classification to the class channels of object anchors.

    A zero or disconnected gradient is the "this term does not respond to training" symptom:
    a stop_gradient, a NumPy round trip, a mask thrown away, an anchor never selected.
    """
    scene = d["scene"]
    case = sc.noisy(scene, ctx.codec, seed=d["seed"], tiny_empty_boxes=True)
    case = sc.boxes_near_truth(case, ctx.codec, seed=d["seed"])
    ev = ctx.evaluate(case)
    v = ev.values[role]
    if not np.isfinite(v):
        raise NonFinite(role, case.label, v)
    active = governed_union(ctx, role, scene)[1]
    n_active = int(active.sum())
    if n_active == 0:
        return Outcome.ok(info="no active anchor in this scene")
    expected = f"non-zero finite gradient on {CHANNELS[role]}"
    if not ev.connected[role]:
        return Outcome(
            "fail",
            expected=expected,
            observed=(
                f"no path from the predictions to {role} at all (disconnected: a stop_gradient, "
                "a NumPy round trip or a constant)"
            ),
            cells=cells_where(active),
            of=n_active,
            of_what="active anchors",
            values={"value": v},
        )
    for label, channels, anchors in channel_groups(ctx, role, scene):
        if not anchors.any():
            continue
        norms = grad_norms(ev.grads[role], channels)
        bad = anchors & ~(np.isfinite(norms) & (norms > ZERO_GRAD))
        if bad.any():
            what = (
                "a non-finite gradient" if (~np.isfinite(norms) & anchors).any() else "no gradient"
            )
            return Outcome(
                "fail",
                expected=expected,
                observed=(
                    f"{int(bad.sum())} / {int(anchors.sum())} {label} get {what} from {role} "
                    f"(value {fmt(v)})"
                ),
                cells=cells_where(bad),
                of=int(anchors.sum()),
                of_what=label.split(" on ")[0],
                values={"value": v},
            )
    return Outcome.ok(value=v)


def _batch_applies(ctx: Context, role: str) -> str | None:
    if ctx.spec.batch < 2:
        return "needs a batch of 2 or more images (--batch 2)"
    return None


def _batch_draws(ctx: Context, role: str) -> st.SearchStrategy[Any]:
    others = tuple(range(1, ctx.spec.batch))
    from lossaudit import strategies as ls

    return st.fixed_dictionaries(
        {
            "scene": ls.scenes(ctx.spec, min_objects=0, max_objects=2, images=(0,)),
            "others_a": ls.scenes(ctx.spec, min_objects=0, max_objects=3, images=others),
            "others_b": ls.scenes(ctx.spec, min_objects=1, max_objects=3, images=others),
            "same_slots": st.booleans(),
            "echo": st.booleans(),
            "seed": ls.noise_seeds(),
        }
    )


def _echo(case: sc.Case, objects: tuple[Any, ...], codec: Any, taken: set[Any]) -> sc.Case:
    """``case`` with image 0 predicting each of ``objects``' boxes in the same slot."""
    from lossaudit.spec import Scene

    raw = case.y_pred.copy()
    moved = tuple(
        dataclasses.replace(o, b=0) for o in dict.fromkeys(objects) if o.slot[1:] not in taken
    )
    moved = tuple({o.slot: o for o in moved}.values())
    if not moved:
        return case
    perfect = sc.perfect(Scene(case.spec, moved), codec).y_pred
    for o in moved:
        raw[o.slot][0:4] = perfect[o.slot][0:4]
    return case.derive(raw, "image 0 predicting the other images' boxes")


@prop("batch_independent", components=ALL, draws=_batch_draws, applies=_batch_applies, bugs=(5,))
def batch_independent(ctx: Context, role: str, d: dict[str, Any]) -> Outcome:
    """One image's contribution does not depend on the other images in the batch.

    Image 0 keeps its objects and predictions while the other images change; the gradient the
    component sends to image 0 may only change by a common positive factor (a batch-wide
    normaliser), never in direction (an ignore mask built from every image's truth).
    """
    from lossaudit.spec import Scene

    spec = ctx.spec
    img0 = d["scene"].objects
    others_b = d["others_b"].objects
    if d["same_slots"]:
        # Image 1 gets objects in image 0's own anchor slots (other sizes and classes): leaks
        # across the batch axis hide exactly there.
        others_b = tuple(
            dataclasses.replace(o, b=1, w=p.w, h=p.h, cls=p.cls)
            for o, p in zip(img0, others_b * len(img0), strict=False)
        )
    scene_a = Scene(spec, img0 + d["others_a"].objects)
    scene_b = Scene(spec, img0 + others_b)
    case_a = sc.noisy(scene_a, ctx.codec, seed=d["seed"])
    if d.get("echo"):
        # Image 0's empty anchors predict, exactly, the boxes of the other images' objects in
        # batch b: an ignore mask built from every image's truth stops penalising them there.
        case_a = _echo(case_a, others_b, ctx.codec, taken={o.slot[1:] for o in img0})
    other = sc.noisy(scene_b, ctx.codec, seed=(d["seed"] + 1) % 2**16)
    pred_b = other.y_pred.copy()
    pred_b[0] = case_a.y_pred[0]
    case_b = sc.Case(scene_b, pred_b, f"{other.label} with image 0 from {case_a.label}")
    ga = ctx.evaluate(case_a).grads[role][0]
    gb = ctx.evaluate(case_b).grads[role][0]
    for lab, g in (("a", ga), ("b", gb)):
        if not np.isfinite(g).all():
            raise NonFinite(role, f"batch {lab}", float("nan"))
    # Each channel group may carry its own batch-wide normaliser (experiencor divides each
    # term by its own positive count), so each gets its own factor.
    groups = [
        (label, chans[0] & anchors[0][..., None])
        for label, chans, anchors in channel_groups(ctx, role, scene_a)
    ]
    covered = np.zeros(ga.shape, dtype=bool)
    for _, m in groups:
        covered |= m
    groups.append(("other channels", ~covered))
    factors = {}
    for label, m in groups:
        a, b = np.where(m, ga, 0.0), np.where(m, gb, 0.0)
        na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
        if na <= ZERO_GRAD and nb <= ZERO_GRAD:
            continue
        k = float(np.sum(a * b) / max(nb * nb, ZERO_GRAD))
        resid = a - k * b
        if k > 0 and np.linalg.norm(resid) <= 1e-4 * max(na, nb) + 1e-9:
            factors[label] = k
            continue
        bad_anchor = np.sqrt(np.sum(resid**2, axis=-1)) > 1e-4 * max(na, nb) + 1e-9
        if min(na, nb) <= ZERO_GRAD:
            change = f"image 0's {label} get gradient norm {fmt(na)} in one batch and {fmt(nb)} in the other"
        else:
            change = f"the gradient on image 0's {label} changes direction (relative residual {fmt(float(np.linalg.norm(resid)) / max(na, nb))})"
        return Outcome(
            "fail",
            expected=f"gradient of {role} on image 0 unchanged (up to a positive factor per channel group) when other images change (rtol=1e-4)",
            observed=(
                f"{change} when images 1..{spec.batch - 1} change from "
                f"{list(d['others_a'].objects)} to {list(others_b)}"
            ),
            cells=tuple((0, *c) for c in cells_where(bad_anchor)),
            of=int(np.prod(spec.shape[1:4])),
            of_what="anchors of image 0",
            values={"factor": k, "norm_a": na, "norm_b": nb},
        )
    return Outcome.ok(factors=factors)
