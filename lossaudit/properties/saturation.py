"""Saturation: a term must keep its gradient where a prediction is confidently wrong.

``<component>.not_saturated`` (a warning) compares a term's gradient at a confidently wrong
logit with its gradient at an undecided one, on the fixed training scene.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st

from lossaudit import scenarios as sc
from lossaudit.properties._helpers import ZERO_GRAD, fmt, one_class_softmax
from lossaudit.properties.registry import Context, Outcome, prop
from lossaudit.spec import CLS0, OBJ_CH

#: Logit of a confidently wrong prediction, and the warning threshold on the gradient ratio.
WRONG_LOGIT = 6.0
SATURATED_RATIO = 0.1


def _saturation_cases(ctx: Context, role: str, scene: Any) -> list[tuple[str, Any, Any, Any]]:
    """``(what, confidently wrong case, undecided case, channel mask)`` per group ``role`` has."""
    base = sc.perfect(scene, ctx.codec)
    obj = scene.object_mask()
    ch = np.arange(ctx.spec.channels)
    groups = []
    if role in ("objects", "confidence"):
        groups.append(
            (
                "object anchors' obj logit",
                sc.set_confidence(base, ctx.codec, logit=-WRONG_LOGIT),
                sc.set_confidence(base, ctx.codec, logit=0.0),
                obj[..., None] & (ch == OBJ_CH),
            )
        )
    if role in ("no_objects", "confidence"):
        groups.append(
            (
                "empty anchors' obj logit",
                sc.set_confidence(base, ctx.codec, logit=WRONG_LOGIT, where="empty"),
                sc.set_confidence(base, ctx.codec, logit=0.0, where="empty"),
                ~obj[..., None] & (ch == OBJ_CH),
            )
        )
    if role == "classification":
        groups.append(
            (
                "true-class logit",
                sc.set_class_logit(base, ctx.codec, logit=-WRONG_LOGIT),
                sc.set_class_logit(base, ctx.codec, logit=0.0),
                obj[..., None] & (ch >= CLS0),
            )
        )
    return groups


def _saturation_applies(ctx: Context, role: str) -> str | None:
    if role == "classification":
        if one_class_softmax(ctx):
            return "one class under softmax: see classification.single_class"
        if not ctx.codec.saturating_cls:
            return "identity class codec: the loss receives probabilities, not logits"
    elif not ctx.codec.saturating_obj:
        return "identity obj codec: the loss receives probabilities, not logits"
    return None


@prop(
    "not_saturated",
    components=("objects", "no_objects", "confidence", "classification"),
    draws=lambda ctx, c: st.just({"scene": sc.training_scene(ctx.spec)}),
    bugs=(10,),
    applies=_saturation_applies,
)
def not_saturated(ctx: Context, role: str, d: dict[str, Any]) -> Outcome:
    """Where a prediction is confidently wrong (logit 6 the wrong way), the component's gradient
    is at least a tenth of what it is at an undecided logit of 0.

    A warning, not a failure: a squared error on a sigmoid or softmax output (YOLOv2, the seed)
    has almost no gradient exactly where it is most wrong. Once another term (844 empty anchors)
    drives every logit down, this term cannot pull its anchors back: it looks stuck in training.
    Binary cross-entropy on the logit keeps the gradient.
    """
    found = []
    for what, wrong, mid, mask in _saturation_cases(ctx, role, d["scene"]):
        if not mask.any():
            continue
        g_wrong = float(np.linalg.norm(ctx.evaluate(wrong).grads[role][mask]))
        g_mid = float(np.linalg.norm(ctx.evaluate(mid).grads[role][mask]))
        if not (np.isfinite(g_wrong) and np.isfinite(g_mid)) or g_mid <= ZERO_GRAD:
            continue
        ratio = g_wrong / g_mid
        found.append(f"{what}: {ratio:.3g}")
        if ratio < SATURATED_RATIO:
            return Outcome(
                "warn",
                expected=(
                    f"the {role} term's gradient on the {what} at least {SATURATED_RATIO:g} x its gradient "
                    "at logit 0 when the prediction is confidently wrong"
                ),
                observed=(
                    f"gradient {fmt(g_wrong)} confidently wrong vs {fmt(g_mid)} undecided "
                    f"(ratio {ratio:.3g}): saturated, like a squared error on a sigmoid. Once "
                    "another term drives these logits the wrong way this term cannot pull them "
                    "back; binary cross-entropy on the logit keeps the gradient"
                ),
                values={"ratio": ratio, "wrong": g_wrong, "undecided": g_mid},
            )
    return Outcome.ok(info="; ".join(f"gradient ratio {f}" for f in found))
