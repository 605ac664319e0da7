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
from lossaudit.spec import CLS0, OBJ_CH


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
    components=("coordinates", "classification", "no_objects", "total"),
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

    ``objects.target_carries_no_gradient`` is the same check for the objectness term. For a
    loss that returns only its total, the total's channels are those of every term: no box or
    class channel of an empty anchor (an unmasked softmax cross-entropy is 0 against an all-zero
    label, but TensorFlow's gradient of it, ``softmax - labels``, is not). Leaks below a
    millionth of the component's own gradient are rounding.
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


#: An empty anchor whose predicted box overlaps every truth box of its image by less than this
#: IoU keeps its no-object term: ignore rules in use spare predictions from IoU 0.5 (keras-yolo3,
#: yolov3-tf2, YunYang) to 0.7 (darknet's YOLOv3), YOLOv2's from 0.6.
SPARED_IOU = 0.3
#: Sizes tried for an empty anchor's box, as multiples of the nearest truth box's size.
_SCALES = (3.0, 2.5, 2.2, 2.0, 1.8, 1.6, 1.4, 1.2, 1.0, 0.8, 0.6, 0.45)


def _iou(box: np.ndarray, truths: np.ndarray) -> np.ndarray:
    """IoU of one ``(cx, cy, w, h)`` box with each row of ``truths`` (image fractions)."""
    lo = np.maximum(box[:2] - box[2:] / 2, truths[:, :2] - truths[:, 2:] / 2)
    hi = np.minimum(box[:2] + box[2:] / 2, truths[:, :2] + truths[:, 2:] / 2)
    inter = np.prod(np.clip(hi - lo, 0.0, None), axis=1)
    union = np.prod(box[2:]) + np.prod(truths[:, 2:], axis=1) - inter
    return inter / np.maximum(union, 1e-12)


def _poor_overlaps(scene: Any) -> dict[tuple[int, int, int, int], tuple[float, float, float]]:
    """For empty anchors that can predict one, a box ``(w, h, IoU)`` centred on the anchor's
    cell that overlaps the nearest truth box of its image with IoU in [0.1, SPARED_IOU) and
    every other one less: the predictions no ignore rule may spare."""
    spec = scene.spec
    chosen: dict[tuple[int, int, int, int], tuple[float, float, float]] = {}
    empty = ~scene.object_mask()
    for b in range(spec.batch):
        objs = [o for o in scene.objects if o.b == b]
        if not objs:
            continue
        truths = np.array([[(o.j + o.x) / spec.W, (o.i + o.y) / spec.H, o.w, o.h] for o in objs])
        for i in range(spec.H):
            for j in range(spec.W):
                centre = np.array([(j + 0.5) / spec.W, (i + 0.5) / spec.H])
                near = truths[int(np.argmin(np.sum((truths[:, :2] - centre) ** 2, axis=1)))]
                for k in _SCALES:
                    box = np.concatenate([centre, k * near[2:]])
                    iou = float(_iou(box, truths).max())
                    if 0.1 <= iou < SPARED_IOU:
                        for a in range(spec.anchors):
                            if empty[b, i, j, a]:
                                chosen[(b, i, j, a)] = (float(box[2]), float(box[3]), iou)
                        break
    return chosen


@prop(
    "spares_only_overlapping_boxes",
    components=("no_objects", "confidence", "total"),
    draws=lambda ctx, c: st.fixed_dictionaries(
        {"scene": scene_draws(ctx, max_objects=3, crowded=None), "seed": ls.noise_seeds()}
    ),
    bugs=(3,),
)
def spares_only_overlapping_boxes(ctx: Context, role: str, d: dict[str, Any]) -> Outcome:
    """An empty anchor whose predicted box overlaps every truth box of its image by less than
    IoU 0.3 is trained toward "no object" as much as when it predicts a tiny box: an
    ignore-by-IoU rule (keras-yolo3's 0.5, YOLOv2's 0.6) may spare only predictions close to a
    truth box. An IoU computed wrong (intersection over the truth's area, a corner a whole size
    from the centre, a width read from the wrong channel) spares far more, and those anchors
    never learn to say "no object".

    Each such anchor predicts a box centred on its cell, sized from the nearest truth box so
    the IoU is between 0.1 and 0.3, with obj at probability 0.5; its no-object gradient is
    compared with the one it gets predicting a tiny box (which no rule spares).
    """
    scene = d["scene"]
    chosen = _poor_overlaps(scene)
    if not chosen:
        return Outcome.ok(info="no empty anchor can predict a box overlapping a truth by 0.1-0.3")
    tiny = sc.noisy(scene, ctx.codec, seed=d["seed"], tiny_empty_boxes=True)
    half = 0.5 if ctx.codec.obj == "identity" else 0.0  # raw obj meaning probability 0.5
    small_raw = tiny.y_pred.astype(np.float64).copy()
    for slot in chosen:
        small_raw[(*slot, OBJ_CH)] = half
    raw = small_raw.copy()
    anchors = ctx.codec.anchor_grid(scene.spec)[0, 0, 0]
    for (b, i, j, a), (w, h, _) in chosen.items():
        raw[b, i, j, a, 0:2] = ctx.codec.encode_xy(np.array([0.5, 0.5]))
        raw[b, i, j, a, 2:4] = ctx.codec.encode_wh(np.array([w, h]), anchors[a])
    small = tiny.derive(small_raw, "tiny empty boxes, obj 0.5 at the chosen anchors")
    overlapping = tiny.derive(raw, "empty anchors predicting boxes of IoU 0.1-0.3 with a truth")
    g_small = np.abs(ctx.evaluate(small).grads[role][..., OBJ_CH])
    g_over = np.abs(ctx.evaluate(overlapping).grads[role][..., OBJ_CH])
    if not (np.isfinite(g_small).all() and np.isfinite(g_over).all()):
        raise NonFinite(role, overlapping.label, float("nan"))
    spared = [
        slot for slot in chosen if g_small[slot] > ZERO_GRAD and g_over[slot] < 0.1 * g_small[slot]
    ]
    if spared:
        worst = spared[0]
        return Outcome(
            "fail",
            expected=(
                f"{role} trains every empty anchor whose box overlaps each truth box by IoU < "
                f"{SPARED_IOU:g} as it does with a tiny box (ignore rules spare IoU >= 0.5)"
            ),
            observed=(
                f"{len(spared)} / {len(chosen)} such anchors lose their no-object gradient "
                f"(e.g. anchor {worst}: IoU {chosen[worst][2]:.2f}, gradient on obj "
                f"{fmt(float(g_over[worst]))} vs {fmt(float(g_small[worst]))} with a tiny box): "
                "the ignore rule's IoU is wrong and spares predictions far from any object"
            ),
            cells=tuple(spared),
            of=len(chosen),
            of_what="empty anchors with a poorly overlapping box",
            values={"spared": len(spared), "tried": len(chosen)},
        )
    return Outcome.ok(info=f"{len(chosen)} empty anchors with IoU 0.1-0.3 all trained")
