"""Named, deterministic transforms from a scene to a case: truth plus raw predictions.

Strategies only draw the parameters (a shift, a logit, a seed); every transform here is a pure
numpy function, so a before/after pair is two cases and any counterexample can be rebuilt by
calling the same functions with the printed arguments.

Example:
    >>> from lossaudit.spec import Codec, GridSpec, Obj, Scene
    >>> scene = Scene(GridSpec(1, 2, 2, 1, 1), (Obj(0, 1, 0, 0, 0.5, 0.5, 0.2, 0.25),))
    >>> case = shifted(perfect(scene, Codec()), Codec(), dx=0.2)
    >>> case.label
    'perfect | shifted(dx=0.2, dy=0)'
"""

from __future__ import annotations

import dataclasses
import functools
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from lossaudit.spec import (
    CLS0,
    CONFIDENT_LOGIT,
    EMPTY_BOX,
    OBJ_CH,
    Codec,
    GridSpec,
    Obj,
    Scene,
)

__all__ = [
    "Case",
    "boxes_near_truth",
    "empty_scene",
    "extreme",
    "mirrored",
    "noisy",
    "ordinary_boxes",
    "perfect",
    "randomized_anchors",
    "repeated",
    "scaled",
    "scene_images",
    "set_class_logit",
    "set_confidence",
    "shifted",
    "training_scene",
    "transposed",
]

#: Extreme raw value for logits and raw sizes (BUG-CLASSES #6, #13, #14).
EXTREME = 100.0


@dataclass(frozen=True, eq=False)
class Case:
    """One loss input: ``scene`` gives ``y_true``; ``y_pred`` are raw outputs ``(batch, H, W, anchors, 5 + C)``.

    ``label`` records the transforms that built it, for messages and reproduction.
    """

    scene: Scene
    y_pred: np.ndarray
    label: str

    @property
    def spec(self) -> GridSpec:
        return self.scene.spec

    def y_true(self) -> np.ndarray:
        return self.scene.truth()

    def derive(self, y_pred: np.ndarray, step: str) -> Case:
        """A case of the same scene with ``y_pred`` (a fresh array the caller built: it is
        taken over as is when float32, and made read-only) and ``step`` added to the label."""
        return Case(
            self.scene, _read_only(np.asarray(y_pred, dtype=np.float32)), f"{self.label} | {step}"
        )


#: Bytes and number of prepared prediction grids (typical and perfect predictions) kept for
#: reuse: an audit revisits about a hundred seeds and scenes.
PREPARED_BYTES = 512 * 2**20
PREPARED_COUNT = 256


def _kept(fn: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
    """Memoise a function of hashable arguments returning a read-only array, least recently
    used first out once the kept arrays pass ``PREPARED_BYTES`` or ``PREPARED_COUNT``.
    Properties revisit a few dozen seeds and scenes many times, and at real shapes each array is
    megabytes."""
    kept: OrderedDict[tuple[Any, ...], np.ndarray] = OrderedDict()
    size = [0]

    @functools.wraps(fn)
    def wrapper(*args: Any) -> np.ndarray:
        hit = kept.get(args)
        if hit is not None:
            kept.move_to_end(args)
            return hit
        out = fn(*args)
        kept[args] = out
        size[0] += out.nbytes
        while (size[0] > PREPARED_BYTES or len(kept) > PREPARED_COUNT) and len(kept) > 1:
            size[0] -= kept.popitem(last=False)[1].nbytes
        return out

    return wrapper


def _fmt(v: float) -> str:
    return f"{v:.3g}"


def empty_scene(spec: GridSpec) -> Scene:
    """A scene with no objects at all (an all-empty batch)."""
    return Scene(spec, ())


#: Smallest size and centre range of an ordinary box (:func:`ordinary_boxes`), as
#: :mod:`lossaudit.strategies` draws them.
ORDINARY_SIZE = 0.05
ORDINARY_CENTRE = (0.05, 0.95)


def ordinary_boxes(scene: Scene) -> Scene:
    """The scene with every box made ordinary: sizes below 0.05 raised to 0.05, centre offsets
    kept 0.05 inside their cell. A degenerate box (zero size, on the image border) and its
    ordinary twin sit in the same anchor slot, so the same raw predictions compare them."""
    lo, hi = ORDINARY_CENTRE
    objs = tuple(
        dataclasses.replace(
            o,
            x=min(max(o.x, lo), hi),
            y=min(max(o.y, lo), hi),
            w=max(o.w, ORDINARY_SIZE),
            h=max(o.h, ORDINARY_SIZE),
        )
        for o in scene.objects
    )
    return Scene(scene.spec, objs, scene.flipped)


def perfect(scene: Scene, codec: Codec) -> Case:
    """Raw outputs that decode to the truth.

    Object anchors predict their box, a confident obj logit and their class; empty anchors
    predict a tiny box at the cell centre, a confident "no object" and uniform classes.
    The predictions are read-only (one array per scene, shared: properties build the perfect
    case of a scene many times); transforms copy them.
    """
    return Case(scene, _perfect_raw(scene, codec), "perfect")


@_kept
def _perfect_raw(scene: Scene, codec: Codec) -> np.ndarray:
    """The empty grid's perfect predictions (:func:`_empty_raw`) with each object's anchor
    written over: at real shapes nearly every anchor is empty, so the grid is not recomputed."""
    spec = scene.spec
    raw = _empty_raw(spec, codec).copy()
    mask = scene.object_mask()
    if mask.any():
        anchors = np.broadcast_to(codec.anchor_grid(spec), (*spec.shape[:4], 2))[mask]
        truth = scene.truth()[mask].astype(np.float64)
        raw[mask] = _perfect_values(truth, np.ones((len(truth), 1), bool), anchors, codec)
    return _read_only(raw)


@_kept
def _empty_raw(spec: GridSpec, codec: Codec) -> np.ndarray:
    """Perfect predictions of a scene with no object, float32 and read-only."""
    truth = np.zeros(spec.shape)
    mask = np.zeros((*spec.shape[:4], 1), bool)
    return _read_only(
        _perfect_values(truth, mask, codec.anchor_grid(spec), codec).astype(np.float32)
    )


def _perfect_values(
    truth: np.ndarray, mask: np.ndarray, anchors: np.ndarray, codec: Codec
) -> np.ndarray:
    """Perfect raw outputs (float64) for truth rows ``(..., 5 + C)``: ``mask`` ``(..., 1)``
    says which hold an object, ``anchors`` (broadcastable to ``(..., 2)``) their anchor sizes."""
    xy = np.where(mask, truth[..., 0:2], 0.5)
    wh = np.where(mask, truth[..., 2:4], EMPTY_BOX)
    raw = np.zeros(truth.shape, dtype=np.float64)
    raw[..., 0:2] = codec.encode_xy(xy)
    raw[..., 2:4] = codec.encode_wh(wh, anchors)
    raw[..., OBJ_CH] = codec.obj_logit(truth[..., OBJ_CH])
    onehot = truth[..., CLS0:]
    if codec.cls == "identity":
        raw[..., CLS0:] = onehot
    else:
        logits = codec.class_logits(onehot)
        uniform = 0.0 if codec.cls == "softmax" else -CONFIDENT_LOGIT
        raw[..., CLS0:] = np.where(mask, logits, uniform)
    return raw


def _read_only(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


def shifted(case: Case, codec: Codec, *, dx: float = 0.0, dy: float = 0.0) -> Case:
    """Move every object's predicted centre by ``(dx, dy)`` cell units (|d| <= 0.45).

    Each centre moves toward the side of its cell with more room: a shift that points at the
    nearer border is mirrored. The rule does not depend on the size of the shift, so shifts of
    ``d * s`` for s from 1 to 0 lie on one straight line back to the truth (never bent by a
    clip at the border).
    """
    truth = case.y_true().astype(np.float64)
    mask = case.scene.object_mask()
    raw = case.y_pred.astype(np.float64)
    for ch, d in ((0, dx), (1, dy)):
        t = truth[..., ch]
        toward_room = np.where(t > 0.5, -abs(d), abs(d))
        moved = np.clip(t + toward_room, 0.01, 0.99)
        raw[..., ch] = np.where(mask, codec.encode_xy(moved), raw[..., ch])
    return case.derive(raw, f"shifted(dx={_fmt(dx)}, dy={_fmt(dy)})")


def scaled(case: Case, codec: Codec, *, dw: float = 0.0, dh: float = 0.0) -> Case:
    """Scale every object's predicted size by ``exp(|dw|)``, ``exp(|dh|)`` (|d| <= ln 2).

    Sizes above half the image shrink by that factor instead of growing, so the box stays
    inside the image; like :func:`shifted`, the rule does not depend on the size of the step,
    so a path of steps ``d * s`` is a straight line back to the truth.
    """
    truth = case.y_true().astype(np.float64)
    mask = case.scene.object_mask()
    anchors = codec.anchor_grid(case.spec)
    raw = case.y_pred.astype(np.float64)
    size = truth[..., 2:4]
    step = np.abs(np.array([dw, dh]))
    wh = np.where(size > 0.5, size * np.exp(-step), size * np.exp(step))
    wh = np.clip(wh, 1e-4, 1.0)
    enc = codec.encode_wh(wh, anchors)
    raw[..., 2:4] = np.where(mask[..., None], enc, raw[..., 2:4])
    return case.derive(raw, f"scaled(dw={_fmt(dw)}, dh={_fmt(dh)})")


def set_confidence(case: Case, codec: Codec, *, logit: float, where: str = "objects") -> Case:
    """Set the raw obj output of object anchors (``where="objects"``) or empty anchors (``"empty"``).

    For an identity codec the logit is read as a probability-like target: 12 means 1, -12 means 0,
    values between map linearly.
    """
    mask = case.scene.object_mask()
    sel = mask if where == "objects" else ~mask
    raw = case.y_pred.copy()
    value = logit if codec.obj == "sigmoid" else (logit + CONFIDENT_LOGIT) / (2 * CONFIDENT_LOGIT)
    np.copyto(raw[..., OBJ_CH], value, where=sel)
    return case.derive(raw, f"set_confidence(logit={_fmt(logit)}, where={where!r})")


def set_class_logit(case: Case, codec: Codec, *, logit: float, cls: str = "true") -> Case:
    """Set the raw output of each object's true class (``cls="true"``) or of the next class
    (``cls="wrong"``); the other classes of object anchors read "no"."""
    spec = case.spec
    raw = case.y_pred.copy()
    if codec.cls == "identity":
        value, other = (logit + CONFIDENT_LOGIT) / (2 * CONFIDENT_LOGIT), 0.0
    else:
        value, other = logit, (0.0 if codec.cls == "softmax" else -CONFIDENT_LOGIT)
    for o in case.scene.objects:
        target = o.cls if cls == "true" else (o.cls + 1) % spec.classes
        raw[(*o.slot, slice(CLS0, None))] = other
        raw[(*o.slot, CLS0 + target)] = value
    return case.derive(raw, f"set_class_logit(logit={_fmt(logit)}, cls={cls!r})")


def _typical(rng: np.random.Generator, spec: GridSpec, codec: Codec) -> np.ndarray:
    """Typical starting predictions over the whole grid: what an untrained head outputs."""
    n = spec.shape[:4]
    out = np.zeros(spec.shape)
    if codec.xy == "sigmoid":
        out[..., 0:2] = rng.normal(0.0, 1.0, (*n, 2))
    else:
        out[..., 0:2] = rng.uniform(0.0, 1.0, (*n, 2))
    out[..., 2:4] = codec.encode_wh(rng.uniform(0.05, 0.6, (*n, 2)), codec.anchor_grid(spec))
    if codec.obj == "sigmoid":
        out[..., OBJ_CH] = rng.normal(0.0, 1.5, n)
    else:
        out[..., OBJ_CH] = rng.uniform(0.0, 1.0, n)
    if codec.cls == "identity":
        out[..., CLS0:] = rng.uniform(0.0, 1.0, (*n, spec.classes))
    else:
        out[..., CLS0:] = rng.normal(0.0, 1.5, (*n, spec.classes))
    return out


@_kept
def _typical_from_seed(seed: int, spec: GridSpec, codec: Codec) -> np.ndarray:
    """:func:`_typical` drawn from ``default_rng(seed)``, read-only and as float32 (what every
    case holds): a property draws one seed and builds several cases from it."""
    return _read_only(_typical(np.random.default_rng(seed), spec, codec).astype(np.float32))


def noisy(scene: Scene, codec: Codec, *, seed: int, tiny_empty_boxes: bool = False) -> Case:
    """Typical untrained predictions everywhere, drawn from ``numpy.random.default_rng(seed)``.

    ``tiny_empty_boxes`` makes empty anchors predict tiny boxes, so no ignore-by-IoU rule can
    switch their no-object term off.
    """
    spec = scene.spec
    raw = _typical_from_seed(seed, spec, codec)
    if tiny_empty_boxes:
        empty = ~scene.object_mask()
        tiny = codec.encode_wh(np.full((*spec.shape[:4], 2), EMPTY_BOX), codec.anchor_grid(spec))
        raw = raw.copy()
        raw[..., 2:4] = np.where(empty[..., None], tiny, raw[..., 2:4])
    suffix = ", tiny_empty_boxes=True" if tiny_empty_boxes else ""
    return Case(scene, _read_only(raw), f"noisy(seed={seed}{suffix})")


def boxes_near_truth(case: Case, codec: Codec, *, seed: int, spread: float = 0.1) -> Case:
    """Object anchors' predicted boxes a little off the truth (raw noise of ``spread``), so an
    IoU-based term, flat while boxes do not overlap, is in its responsive range."""
    mask = case.scene.object_mask()[..., None]
    rng = np.random.default_rng(seed + 104729)
    near = perfect(case.scene, codec).y_pred[..., 0:4] + rng.normal(
        0.0, spread, case.y_pred[..., 0:4].shape
    )
    raw = case.y_pred.astype(np.float64)
    raw[..., 0:4] = np.where(mask, near, raw[..., 0:4])
    return case.derive(codec.clamp(raw), f"boxes_near_truth(seed={seed})")


def randomized_anchors(case: Case, codec: Codec, *, where: str, seed: int) -> Case:
    """Replace every channel of the empty (``where="empty"``) or object (``"objects"``) anchors
    with other typical predictions drawn from ``seed``."""
    spec = case.spec
    mask = case.scene.object_mask()
    sel = ~mask if where == "empty" else mask
    other = _typical_from_seed(seed + 7919, spec, codec)
    raw = np.where(sel[..., None], other, case.y_pred)
    return case.derive(raw, f"randomized_anchors(where={where!r}, seed={seed})")


def extreme(
    case: Case, *, value: float, where: str, channels: str, codec: Codec | None = None
) -> Case:
    """Put ``value`` in ``channels`` ("xy", "wh", "obj", "cls" or "all") of the empty, object or
    all anchors: saturated logits and overflowing raw sizes (BUG-CLASSES #6, #13, #14).
    With ``codec``, identity-coded channels are kept in their range (:meth:`Codec.clamp`)."""
    mask = case.scene.object_mask()
    sel = {"empty": ~mask, "objects": mask, "all": np.ones_like(mask)}[where]
    chans = {
        "xy": slice(0, 2),
        "wh": slice(2, 4),
        "obj": slice(OBJ_CH, OBJ_CH + 1),
        "cls": slice(CLS0, None),
        "all": slice(0, None),
    }[channels]
    raw = case.y_pred.copy()
    np.copyto(raw[..., chans], value, where=sel[..., None])
    if codec is not None:
        raw = codec.clamp(raw)
    return case.derive(raw, f"extreme(value={_fmt(value)}, where={where!r}, channels={channels!r})")


def repeated(case: Case, k: int) -> Case:
    """The batch repeated ``k`` times along the batch axis (a reduction probe, BUG-CLASSES #20)."""
    spec = case.spec.replace(batch=case.spec.batch * k)
    objs = tuple(
        type(o)(o.b + r * case.spec.batch, o.i, o.j, o.a, o.x, o.y, o.w, o.h, o.cls)
        for r in range(k)
        for o in case.scene.objects
    )
    return Case(
        Scene(spec, objs),
        np.concatenate([case.y_pred] * k, axis=0),
        f"{case.label} | repeated(k={k})",
    )


def transposed(case: Case) -> Case:
    """Rows and columns, x and y, w and h swapped together in truth and predictions."""
    raw = np.swapaxes(case.y_pred, 1, 2).copy()
    raw[..., [0, 1, 2, 3]] = raw[..., [1, 0, 3, 2]]
    return Case(case.scene.transposed(), raw, f"{case.label} | transposed()")


def mirrored(case: Case, codec: Codec, axis: str) -> Case:
    """The case mirrored left-right (``axis="x"``) or upside down (``"y"``), truth and
    predictions together: columns (rows) reversed, and every centre offset ``x`` (``y``) taken
    to ``1 - x`` in raw form (``-t`` under a sigmoid). Sizes, anchors, obj and classes stay."""
    grid_axis, ch = (2, 0) if axis == "x" else (1, 1)
    raw = np.flip(case.y_pred, axis=grid_axis).astype(np.float64)
    raw[..., ch] = 1.0 - raw[..., ch] if codec.xy == "identity" else -raw[..., ch]
    return Case(
        case.scene.mirrored(axis), raw.astype(np.float32), f"{case.label} | mirrored(axis={axis!r})"
    )


def training_scene(spec: GridSpec) -> Scene:
    """A fixed scene for training runs and the balance table: one object per image, plus a
    second in image 0 when the grid has room, spread over cells, anchors and classes.

    Deterministic, so training diagnostics and balance tables are the same on every run.
    """
    objects = []
    for b in range(spec.batch):
        i, j = (2 * b + 1) % spec.H, (3 * b + 1) % spec.W
        a, cls = b % spec.anchors, b % spec.classes
        x, y = (0.3, 0.6) if b % 2 == 0 else (0.7, 0.35)
        objects.append(Obj(b, i, j, a, x, y, 0.25 + 0.1 * (b % 3), 0.35, cls))
    if spec.H * spec.W * spec.anchors > 1:
        first = objects[0]
        slot = (0, 0, 0, spec.anchors - 1) if first.slot != (0, 0, 0, spec.anchors - 1) else None
        if slot is not None and spec.H * spec.W > 1 and (first.i, first.j) != (0, 0):
            objects.append(Obj(*slot, 0.5, 0.5, 0.45, 0.2, (spec.classes - 1)))
    return Scene(spec, tuple(objects))


#: Pixels per grid cell in :func:`scene_images`.
PIXELS_PER_CELL = 4


def scene_images(scene: Scene, *, seed: int = 0) -> np.ndarray:
    """Synthetic images ``(batch, 4H, 4W, 4)`` for a scene: each object painted as a filled box
    (channel 0), its class as a level (channel 1), pixel coordinates (channels 2, 3), plus faint
    noise. What a tiny convolutional head can learn to detect in a few dozen steps.
    """
    spec = scene.spec
    k = PIXELS_PER_CELL
    h, w = spec.H * k, spec.W * k
    rng = np.random.default_rng(seed)
    img = np.zeros((spec.batch, h, w, 4), dtype=np.float64)
    img[..., 0:2] = rng.normal(0.0, 0.05, (spec.batch, h, w, 2))
    rows = (np.arange(h) + 0.5) / h
    cols = (np.arange(w) + 0.5) / w
    img[..., 2] = cols[None, None, :]
    img[..., 3] = rows[None, :, None]
    for o in scene.objects:
        cx, cy = (o.j + o.x) / spec.W, (o.i + o.y) / spec.H
        inside = (np.abs(cols[None, :] - cx) <= o.w / 2) & (np.abs(rows[:, None] - cy) <= o.h / 2)
        img[o.b, ..., 0] += inside
        img[o.b, ..., 1] += inside * (o.cls + 1) / spec.classes
    return img.astype(np.float32)
