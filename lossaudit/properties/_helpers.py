"""Shared pieces of the built-in properties: channel masks, tolerances, paths, messages."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
from hypothesis import strategies as st

from lossaudit import scenarios as sc
from lossaudit import strategies as ls
from lossaudit.properties.registry import Context, Outcome
from lossaudit.spec import CLS0, OBJ_CH, Obj, Scene
from lossaudit.status import Status

#: Absolute and relative tolerance for "unchanged" and "never increases" (float32 sums).
ATOL = 1e-6
RTOL = 1e-5
#: A component "responds" when it moves by more than this (absolute + relative to its floor).
RESPOND_ATOL = 1e-6
RESPOND_RTOL = 1e-4
#: Gradient norms at or below this count as "no gradient".
ZERO_GRAD = 1e-12

#: Logits a path steps through toward "yes". It stops at +3 (p = 0.95): past that, label
#: smoothing (a target of 0.9 to 0.995) legitimately makes a correct term rise again, while a
#: softmax over the one-hot truth (optimum p = 0.58 for 3 classes) has already risen.
LOGIT_PATH = (-6.0, -3.0, 0.0, 1.5, 3.0)

CHANNELS = {
    "coordinates": "x, y, w, h of object anchors",
    "objects": "obj of object anchors",
    "no_objects": "obj of empty anchors",
    "confidence": "obj of every anchor",
    "classification": "class channels of object anchors",
    "total": "every active channel (x, y, w, h, obj, classes of object anchors; obj of empty anchors)",
}


def tol(v: float, atol: float = ATOL, rtol: float = RTOL) -> float:
    return atol + rtol * abs(v)


def one_class_softmax(ctx: Context) -> bool:
    """One class under softmax and the class term measured constant (see
    ``classification.single_class``), so the other classification checks do not apply.

    The codec alone does not decide: a term that does move with one class (a softmax over the
    anchors instead of the classes, or over ``[obj, class]``) is checked like any other. When
    the measurement was not made (:func:`measure_one_class` not called) the codec decides.
    """
    return (
        ctx.spec.classes == 1
        and ctx.codec.cls == "softmax"
        and ctx.cache.get(ONE_CLASS_MEASURED, True) is True
    )


#: ``Context.cache`` key: whether the class term was measured constant with one class.
ONE_CLASS_MEASURED = "one class: class term constant"


def class_response(
    ctx: Context, role: str, cases: Sequence[Any]
) -> tuple[list[float], float, bool]:
    """``(values, largest class-channel gradient, constant)`` of ``role`` on ``cases``.

    Constant means the values agree within the tolerance and the class channels (of every
    anchor) get at most 1e-9 of gradient: rounding leaves ~1e-15 through a softmax over one
    logit, while a term that can train sends orders of magnitude more.
    """
    evs = [ctx.evaluate(c) for c in cases]
    values = [e.values[role] for e in evs]
    grad = max(float(np.abs(e.grads[role][..., CLS0:]).max(initial=0.0)) for e in evs)
    constant = max(values) - min(values) <= tol(values[0]) and grad <= 1e-9
    return values, grad, bool(constant)


def measure_one_class(ctx: Context) -> None:
    """With one class under softmax, measure whether the class term (or, for a loss that
    reports only its total, the total as the class logits move) is constant, and record it for
    :func:`one_class_softmax`. Two objects in different cells and anchor slots; the true-class
    logit at -6, 0 and +3, and for a class term also two noisy predictions."""
    if not (ctx.spec.classes == 1 and ctx.codec.cls == "softmax"):
        return
    spec = ctx.spec
    objects = [Obj(0, 0, 0, 0, 0.5, 0.5, 0.3, 0.3, 0)]
    if spec.H * spec.W > 1 or spec.anchors > 1:
        objects.append(
            Obj(spec.batch - 1, spec.H - 1, spec.W - 1, spec.anchors - 1, 0.3, 0.6, 0.2, 0.4, 0)
        )
    if len({o.slot for o in objects}) < len(objects):
        objects = objects[:1]
    scene = Scene(spec, tuple(objects))
    role = "classification" if "classification" in ctx.roles else "total"
    perfect = sc.perfect(scene, ctx.codec)
    cases = [sc.set_class_logit(perfect, ctx.codec, logit=v, cls="true") for v in (-6.0, 0.0, 3.0)]
    if role != "total":
        cases += [sc.noisy(scene, ctx.codec, seed=s) for s in (0, 1)]
    ctx.cache[ONE_CLASS_MEASURED] = class_response(ctx, role, cases)[2]


ONE_CLASS_SKIP = "one class under softmax: see classification.single_class"


def skip_one_class(ctx: Context, role: str) -> str | None:
    """Applicability for classification checks: skipped in the one-class softmax case."""
    return ONE_CLASS_SKIP if role == "classification" and one_class_softmax(ctx) else None


def channel_groups(ctx: Context, role: str, scene: Any) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """``(label, channel mask, active anchors)`` for each channel group ``role`` governs.

    The total (and the combined confidence) must move every group it is made of: a total whose
    box channels get nothing is as stuck as a coordinate term that gets nothing.
    """
    obj = scene.object_mask()
    ch = np.arange(ctx.spec.channels)
    full = np.ones(ctx.spec.shape, dtype=bool)
    box, conf, cls = full & (ch < 4), full & (ch == OBJ_CH), full & (ch >= CLS0)
    groups = {
        "coordinates": [("object anchors on x, y, w, h", box, obj)],
        "objects": [("object anchors on obj", conf, obj)],
        "no_objects": [("empty anchors on obj", conf, ~obj)],
        "classification": [("object anchors on the class channels", cls, obj)],
    }
    groups["confidence"] = groups["objects"] + groups["no_objects"]
    groups["total"] = groups["coordinates"] + groups["confidence"]
    if not one_class_softmax(ctx):
        groups["total"] = groups["total"] + groups["classification"]
    return groups[role]


def governed_union(ctx: Context, role: str, scene: Any) -> tuple[np.ndarray, np.ndarray]:
    """All channels ``role`` governs ``(batch, H, W, anchors, 5 + C)`` and the anchors where it
    is active ``(batch, H, W, anchors)``, as the union of its channel groups."""
    channels = np.zeros(ctx.spec.shape, dtype=bool)
    anchors = np.zeros(ctx.spec.shape[:4], dtype=bool)
    for _, chans, active in channel_groups(ctx, role, scene):
        channels |= chans & active[..., None]
        anchors |= active
    return channels, anchors


def cells_where(mask: np.ndarray) -> tuple[tuple[int, int, int, int], ...]:
    return tuple(tuple(int(v) for v in idx) for idx in np.argwhere(mask))  # type: ignore[misc]


def fmt(v: float) -> str:
    if not np.isfinite(v):
        return str(v)
    if v == 0:
        return "0"
    if abs(v) >= 1e4 or abs(v) < 1e-3:
        return f"{v:.3e}"
    return f"{v:.4f}"


def path_outcome(
    values: Sequence[float],
    steps: Sequence[str],
    *,
    expected: str,
    strict: bool = True,
    moved: np.ndarray | None = None,
    moved_what: str = "object anchors",
) -> Outcome:
    """Check a sequence of values measured along a path toward the truth.

    Passes when no step increases the value by more than the tolerance and, when ``strict``,
    the last value is clearly below the first (the component responds at all). ``moved`` marks
    the anchors the path moves; a failure lists them as its cells.
    """
    out = _path_verdict(values, steps, expected=expected, strict=strict)
    if out.status is Status.FAIL and moved is not None:
        return dataclasses.replace(
            out, cells=cells_where(moved), of=int(moved.sum()), of_what=moved_what
        )
    return out


def _path_verdict(
    values: Sequence[float], steps: Sequence[str], *, expected: str, strict: bool
) -> Outcome:
    for k in range(1, len(values)):
        if values[k] > values[k - 1] + tol(values[k - 1]):
            return Outcome(
                "fail",
                expected=expected,
                observed=(
                    f"rises from {fmt(values[k - 1])} to {fmt(values[k])} on the step "
                    f"{steps[k - 1]} -> {steps[k]}"
                ),
                values={"path": dict(zip(steps, values, strict=True))},
            )
    if strict and not values[0] - values[-1] > RESPOND_ATOL + RESPOND_RTOL * abs(values[-1]):
        return Outcome(
            "fail",
            expected=expected,
            observed=(
                (
                    f"does not respond: {fmt(values[0])} at {steps[0]}, {fmt(values[-1])} at "
                    f"{steps[-1]} (a component that does not move cannot train)"
                )
                if values[0] == values[-1]
                else (
                    f"barely responds: {fmt(values[0])} at {steps[0]}, {fmt(values[-1])} at "
                    f"{steps[-1]}, less than {RESPOND_RTOL:.0e} of its value (whatever else it "
                    "sums drowns this move)"
                )
            ),
            values={"path": dict(zip(steps, values, strict=True))},
        )
    return Outcome.ok(path=dict(zip(steps, values, strict=True)))


def scene_draws(
    ctx: Context,
    *,
    min_objects: int = 1,
    max_objects: int = 3,
    crowded: bool | None = False,
    tiny: bool = False,
) -> st.SearchStrategy[Scene]:
    """Scenes for ``ctx.spec``; ``crowded=None`` draws both crowded and spread-out scenes."""
    if crowded is None:
        return st.one_of(
            ls.scenes(ctx.spec, min_objects=min_objects, max_objects=max_objects, tiny=tiny),
            ls.scenes(
                ctx.spec, min_objects=min_objects, max_objects=max_objects, tiny=tiny, crowded=True
            ),
        )
    return ls.scenes(
        ctx.spec, min_objects=min_objects, max_objects=max_objects, tiny=tiny, crowded=crowded
    )


def with_seed(
    scenes: st.SearchStrategy[Scene], **extra: st.SearchStrategy[Any]
) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({"scene": scenes, "seed": ls.noise_seeds(), **extra})


def grad_norms(grad: np.ndarray, channels: np.ndarray) -> np.ndarray:
    """Per-anchor gradient norm ``(batch, H, W, anchors)`` over the selected channels."""
    g = np.where(channels, grad, 0.0)
    return np.sqrt(np.sum(np.square(g), axis=-1))
