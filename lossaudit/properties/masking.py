"""Masking behaviours: each component depends only on the anchors it governs."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st

from lossaudit import scenarios as sc
from lossaudit import strategies as ls
from lossaudit.layouts.base import image_boxes
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


def _max_iou(boxes: np.ndarray, truths: np.ndarray) -> np.ndarray:
    """Best IoU of each ``(cx, cy, w, h)`` row of ``boxes`` with any row of ``truths``."""
    lo = np.maximum(
        boxes[:, None, :2] - boxes[:, None, 2:] / 2, truths[None, :, :2] - truths[None, :, 2:] / 2
    )
    hi = np.minimum(
        boxes[:, None, :2] + boxes[:, None, 2:] / 2, truths[None, :, :2] + truths[None, :, 2:] / 2
    )
    inter = np.prod(np.clip(hi - lo, 0.0, None), axis=2)
    union = np.prod(boxes[:, None, 2:], axis=2) + np.prod(truths[None, :, 2:], axis=2) - inter
    return (inter / np.maximum(union, 1e-12)).max(axis=1)


def _truths_by_image(scene: Any) -> dict[int, np.ndarray]:
    """Each image's truth boxes ``(cx, cy, w, h)`` in image fractions, for images with any."""
    rows = image_boxes(scene)
    return {int(b): rows[rows[:, 0] == b, 1:5] for b in np.unique(rows[:, 0])}


def _poor_overlaps(scene: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For empty anchors that can predict one, a box centred on the anchor's cell that overlaps
    the nearest truth box of its image with IoU in [0.1, SPARED_IOU) and every other one less:
    the predictions no ignore rule may spare. Returns the chosen anchors ``(batch, H, W, A)``,
    each cell's box size ``(batch, H, W, 2)`` and its IoU ``(batch, H, W)``."""
    spec = scene.spec
    chosen = np.zeros(spec.shape[:4], dtype=bool)
    sizes = np.zeros((spec.batch, spec.H, spec.W, 2))
    ious = np.zeros((spec.batch, spec.H, spec.W))
    empty = ~scene.object_mask()
    rows, cols = np.meshgrid(np.arange(spec.H), np.arange(spec.W), indexing="ij")
    centres = np.stack([(cols.ravel() + 0.5) / spec.W, (rows.ravel() + 0.5) / spec.H], axis=1)
    for b, truths in _truths_by_image(scene).items():
        near = truths[np.argmin(((centres[:, None] - truths[None, :, :2]) ** 2).sum(-1), axis=1)]
        found = np.zeros(len(centres), dtype=bool)
        for k in _SCALES:
            boxes = np.concatenate([centres, k * near[:, 2:]], axis=1)
            iou = _max_iou(boxes, truths)
            hit = ~found & (iou >= 0.1) & (iou < SPARED_IOU)
            sizes[b].reshape(-1, 2)[hit] = boxes[hit, 2:]
            ious[b].reshape(-1)[hit] = iou[hit]
            found |= hit
        chosen[b] = found.reshape(spec.H, spec.W)[..., None] & empty[b]
    return chosen, sizes, ious


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
    chosen, sizes, ious = _poor_overlaps(scene)
    if not chosen.any():
        return Outcome.ok(info="no empty anchor can predict a box overlapping a truth by 0.1-0.3")
    tiny = sc.noisy(scene, ctx.codec, seed=d["seed"], tiny_empty_boxes=True)
    half = 0.5 if ctx.codec.obj == "identity" else 0.0  # raw obj meaning probability 0.5
    small_raw = tiny.y_pred.astype(np.float64)
    small_raw[..., OBJ_CH] = np.where(chosen, half, small_raw[..., OBJ_CH])
    raw = small_raw.copy()
    box = chosen[..., None]
    raw[..., 0:2] = np.where(box, ctx.codec.encode_xy(np.array([0.5, 0.5])), raw[..., 0:2])
    wh = np.broadcast_to(np.maximum(sizes, 1e-6)[:, :, :, None, :], raw[..., 2:4].shape)
    enc = ctx.codec.encode_wh(wh, ctx.codec.anchor_grid(scene.spec))
    raw[..., 2:4] = np.where(box, enc, raw[..., 2:4])
    small = tiny.derive(small_raw, "tiny empty boxes, obj 0.5 at the chosen anchors")
    overlapping = tiny.derive(raw, "empty anchors predicting boxes of IoU 0.1-0.3 with a truth")
    g_small = np.abs(ctx.evaluate(small).grads[role][..., OBJ_CH])
    g_over = np.abs(ctx.evaluate(overlapping).grads[role][..., OBJ_CH])
    if not (np.isfinite(g_small).all() and np.isfinite(g_over).all()):
        raise NonFinite(role, overlapping.label, float("nan"))
    bad = chosen & (g_small > ZERO_GRAD) & (g_over < 0.1 * g_small)
    tried = int(chosen.sum())
    if bad.any():
        spared = [tuple(int(v) for v in slot) for slot in np.argwhere(bad)]
        worst = spared[0]
        return Outcome(
            "fail",
            expected=(
                f"{role} trains every empty anchor whose box overlaps each truth box by IoU < "
                f"{SPARED_IOU:g} as it does with a tiny box (ignore rules spare IoU >= 0.5)"
            ),
            observed=(
                f"{len(spared)} / {tried} such anchors lose their no-object gradient "
                f"(e.g. anchor {worst}: IoU {ious[worst[:3]]:.2f}, gradient on obj "
                f"{fmt(float(g_over[worst]))} vs {fmt(float(g_small[worst]))} with a tiny box): "
                "the ignore rule's IoU is wrong and spares predictions far from any object"
            ),
            cells=tuple(spared),
            of=tried,
            of_what="empty anchors with a poorly overlapping box",
            values={"spared": len(spared), "tried": tried},
        )
    return Outcome.ok(info=f"{tried} empty anchors with IoU 0.1-0.3 all trained")


#: IoU levels an empty anchor's box is set to by ``ignore_follows_iou``.
_IOU_LADDER = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
#: Two IoUs closer than this are never compared: an ignore threshold may lie between them.
IOU_MARGIN = 0.05
#: Shapes of a box relative to the nearest truth box: ``(k w, k h)`` bigger or smaller than
#: the best fit, ``(k w, h)`` and ``(w, k h)`` stretched.
_FAMILIES = ("grown", "shrunk", "wide", "tall")
_FACTORS = np.geomspace(0.05, 20.0, 600)
#: Empty anchors given a ladder box per example (a random choice among those near a truth).
_LADDER_SLOTS = 48

Slot = tuple[int, int, int, int]
#: A ladder box: centre offset in its cell, size (image fractions), IoU, shape family.
Ladder = tuple[float, float, float, float, float, str]


def _near_truth_slots(scene: Any) -> tuple[list[Slot], dict[int, np.ndarray]]:
    """Empty anchors of every cell that reaches into a truth box, and each image's truths."""
    spec = scene.spec
    empty = ~scene.object_mask()
    truths = _truths_by_image(scene)
    slots: set[Slot] = set()
    for b, boxes in truths.items():
        for cx, cy, w, h in boxes:
            j0, j1 = (
                int(np.clip(np.floor(v * spec.W), 0, spec.W - 1)) for v in (cx - w / 2, cx + w / 2)
            )
            i0, i1 = (
                int(np.clip(np.floor(v * spec.H), 0, spec.H - 1)) for v in (cy - h / 2, cy + h / 2)
            )
            for i in range(i0, i1 + 1):
                for j in range(j0, j1 + 1):
                    slots.update((b, i, j, a) for a in range(spec.anchors) if empty[b, i, j, a])
    return sorted(slots), truths


def _ladder_boxes(scene: Any, seed: int) -> list[dict[Slot, Ladder]]:
    """Two rounds of boxes for up to ``_LADDER_SLOTS`` empty anchors near a truth box: each
    centred in its cell as close as it can get to the nearest truth's centre, and sized so its
    best IoU with the image's truths is a level of ``_IOU_LADDER``, reached by a different
    shape family in each round."""
    spec = scene.spec
    rng = np.random.default_rng(seed + 2029)
    slots, truths = _near_truth_slots(scene)
    if len(slots) > _LADDER_SLOTS:
        slots = [slots[k] for k in sorted(rng.choice(len(slots), _LADDER_SLOTS, replace=False))]
    rounds: list[dict[Slot, Ladder]] = [{}, {}]
    for b, i, j, a in slots:
        image = truths[b]
        lo = np.array([(j + 0.05) / spec.W, (i + 0.05) / spec.H])
        hi = np.array([(j + 0.95) / spec.W, (i + 0.95) / spec.H])
        near = image[int(np.argmin(np.sum((image[:, :2] - (lo + hi) / 2) ** 2, axis=1)))]
        centre = np.clip(near[:2], lo, hi)
        first = int(rng.integers(len(_FAMILIES)))
        for r, out in enumerate(rounds):
            family = _FAMILIES[(first + 2 * r) % len(_FAMILIES)]
            target = float(_IOU_LADDER[int(rng.integers(len(_IOU_LADDER)))])
            kw = _FACTORS if family in ("grown", "shrunk", "wide") else np.ones_like(_FACTORS)
            kh = _FACTORS if family in ("grown", "shrunk", "tall") else np.ones_like(_FACTORS)
            sizes = np.stack([kw * near[2], kh * near[3]], axis=1)
            boxes = np.concatenate([np.broadcast_to(centre, sizes.shape), sizes], axis=1)
            ious = _max_iou(boxes, image)
            peak = int(np.argmax(ious))
            branch = np.arange(len(ious))
            branch = branch[: peak + 1] if family == "shrunk" else branch[peak:]
            pick = int(branch[np.argmin(np.abs(ious[branch] - target))])
            if abs(ious[pick] - target) < 0.03 and np.all(sizes[pick] < 4.0):
                offset = (centre[0] * spec.W - j, centre[1] * spec.H - i)
                out[(b, i, j, a)] = (
                    *offset,
                    *(float(v) for v in sizes[pick]),
                    float(ious[pick]),
                    family,
                )
    return rounds


@prop(
    "ignore_follows_iou",
    components=("no_objects", "confidence", "total"),
    draws=lambda ctx, c: st.fixed_dictionaries(
        {
            "scene": scene_draws(ctx, min_objects=1, max_objects=3, crowded=None),
            "seed": ls.noise_seeds(),
        }
    ),
    bugs=(3, 8),
)
def ignore_follows_iou(ctx: Context, role: str, d: dict[str, Any]) -> Outcome:
    """An ignore rule decides by IoU alone: if an empty anchor whose box overlaps a truth by
    IoU q is spared its no-object term, no empty anchor whose box overlaps a truth by more is
    still trained, whatever the boxes' shapes. An IoU computed from a wrong corner, a size read
    from the wrong channel or a box scaled twice spares some shapes and not others.

    Empty anchors near a truth box predict boxes (obj at probability 0.5) whose IoU with the
    truths is set to levels from 0.2 to 0.9, in two rounds of different shapes (bigger and
    smaller than the truth, stretched wide or tall); an anchor counts as spared when its
    no-object gradient is under a tenth of the one it gets predicting a tiny box. A loss with
    no ignore rule spares none and passes.
    """
    scene = d["scene"]
    rounds = _ladder_boxes(scene, d["seed"])
    if not any(rounds):
        return Outcome.ok(info="no empty anchor near a truth box can reach the IoU ladder")
    tiny = sc.noisy(scene, ctx.codec, seed=d["seed"], tiny_empty_boxes=True)
    half = 0.5 if ctx.codec.obj == "identity" else 0.0  # raw obj meaning probability 0.5
    base = tiny.y_pred.astype(np.float64)
    for slot in set().union(*rounds):
        base[(*slot, OBJ_CH)] = half
    anchors = ctx.codec.anchor_grid(scene.spec)[0, 0, 0]
    g_small = np.abs(
        ctx.evaluate(tiny.derive(base, "tiny empty boxes, obj 0.5")).grads[role][..., OBJ_CH]
    )
    samples: list[tuple[float, bool, Slot, str]] = []
    for r, boxes in enumerate(rounds):
        raw = base.copy()
        for (b, i, j, a), (ox, oy, w, h, _, _) in boxes.items():
            raw[b, i, j, a, 0:2] = ctx.codec.encode_xy(np.array([ox, oy]))
            raw[b, i, j, a, 2:4] = ctx.codec.encode_wh(np.array([w, h]), anchors[a])
        case = tiny.derive(raw, f"empty anchors' boxes on the IoU ladder (round {r + 1})")
        g = np.abs(ctx.evaluate(case).grads[role][..., OBJ_CH])
        if not (np.isfinite(g_small).all() and np.isfinite(g).all()):
            raise NonFinite(role, case.label, float("nan"))
        for slot, (_, _, _, _, iou, family) in boxes.items():
            if g_small[slot] > ZERO_GRAD:
                samples.append((iou, bool(g[slot] < 0.1 * g_small[slot]), slot, family))
    spared = [s for s in samples if s[1]]
    trained = [s for s in samples if not s[1]]
    if spared and trained:
        low = min(spared)
        high = max(trained)
        if high[0] > low[0] + IOU_MARGIN:
            wrong = [s for s in trained if s[0] > low[0] + IOU_MARGIN]
            return Outcome(
                "fail",
                expected=(
                    f"{role} spares empty anchors by IoU alone: once a box of IoU q is spared, "
                    "every box overlapping a truth more is spared too, whatever its shape"
                ),
                observed=(
                    f"anchor {low[2]} ({low[3]} box, IoU {low[0]:.2f}) is spared while anchor "
                    f"{high[2]} ({high[3]} box, IoU {high[0]:.2f}) is still trained "
                    f"({len(wrong)} / {len(trained)} trained anchors overlap more than a spared "
                    "one): the ignore rule's IoU depends on the boxes' shapes, a corner, size or "
                    "channel read wrong"
                ),
                cells=tuple(s[2] for s in wrong),
                of=len(samples),
                of_what="empty anchors given a box on the IoU ladder",
                values={"spared_iou": low[0], "trained_iou": high[0]},
            )
    return Outcome.ok(
        info=f"{len(samples)} ladder boxes, {len(spared)} spared, consistent with one IoU threshold"
    )
