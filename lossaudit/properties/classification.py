"""Classification behaviours: the one-class trap, and moving toward the true class."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from lossaudit import scenarios as sc
from lossaudit import strategies as ls
from lossaudit.properties._helpers import (
    LOGIT_PATH,
    ONE_CLASS_SKIP,
    cells_where,
    class_response,
    fmt,
    one_class_softmax,
    path_outcome,
    scene_draws,
)
from lossaudit.properties.registry import Context, Outcome, prop


def _single_applies(ctx: Context, role: str) -> str | None:
    if ctx.spec.classes != 1:
        return f"{ctx.spec.classes} classes; see classification.decreases_as_true_class_rises"
    return None


@prop(
    "single_class",
    components=("classification", "total"),
    draws=lambda ctx, c: st.fixed_dictionaries(
        {"scene": scene_draws(ctx, max_objects=3, crowded=None), "seed": ls.noise_seeds()}
    ),
    applies=_single_applies,
    bugs=(1,),
)
def single_class(ctx: Context, role: str, d: dict[str, Any]) -> Outcome:
    """With one class, a classification term that is constant with no gradient can never
    train: reported as a warning, not a failure (the same for a loss that returns only its
    total, where the total does not move with the class output).

    A softmax over a single logit is 1 whatever the network outputs, so a softmax or
    categorical cross-entropy term is identically 0 (the seed write-up's "classification loss
    is 0"). No weight or hyperparameter changes that; drop the term or use a sigmoid output.
    """
    scene = d["scene"]
    perfect = sc.perfect(scene, ctx.codec)
    # The total moves with every channel: only the class output changes between its cases.
    cases = [
        perfect,
        sc.set_class_logit(perfect, ctx.codec, logit=-6.0, cls="true"),
        sc.set_class_logit(perfect, ctx.codec, logit=3.0, cls="true"),
    ]
    if role != "total":
        cases.insert(0, sc.noisy(scene, ctx.codec, seed=d["seed"]))
    values, _, constant = class_response(ctx, role, cases)
    mask = scene.object_mask()
    if constant:
        what = (
            f"{role} is {fmt(values[0])} on every prediction tried ({len(values)}) and sends no "
            "gradient to the class channel"
            if role != "total"
            else f"the total stays {fmt(values[0])} as the true class's logit moves from -6 to "
            "+3 and sends no gradient to the class channel (a loss with no class term at all "
            "shows the same; then ignore this)"
        )
        return Outcome(
            "warn",
            expected="with C = 1 a classification term that can train (it moves with the class output)",
            observed=(
                f"{what}: with one class a softmax is always 1, so a classification term can "
                "never train. No weight changes that: drop it, or use a sigmoid class output."
            ),
            cells=cells_where(mask),
            of=int(mask.sum()),
            of_what="object anchors",
            values={"values": values},
        )
    return Outcome.ok(info="the classification term responds with one class", values=values)


def _rises_applies(ctx: Context, role: str) -> str | None:
    return ONE_CLASS_SKIP if one_class_softmax(ctx) else None


@prop(
    "decreases_as_true_class_rises",
    components=("classification", "total"),
    draws=lambda ctx, c: st.fixed_dictionaries(
        {"scene": scene_draws(ctx, max_objects=3, crowded=None)}
    ),
    applies=_rises_applies,
    bugs=(2, 7, 10),
)
def decreases_as_true_class_rises(ctx: Context, role: str, d: dict[str, Any]) -> Outcome:
    """As each object's true-class logit rises from -6 to +3 (other classes held at "no"), the
    component never increases and ends clearly lower.

    Catches a softmax applied to the one-hot truth (its optimum caps the true-class probability
    near 0.58 with 3 classes) and a class index read as one-hot or the other way round.
    """
    base = sc.perfect(d["scene"], ctx.codec)
    cases = [sc.set_class_logit(base, ctx.codec, logit=v, cls="true") for v in LOGIT_PATH]
    values = [ctx.value(c, role) for c in cases]
    return path_outcome(
        values,
        [f"true-class logit {v:g}" for v in LOGIT_PATH],
        expected=f"{role} never increases as the true-class logit rises from -6 to +3, and ends lower",
        moved=d["scene"].object_mask(),
    )
