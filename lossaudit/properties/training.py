"""Training response: every component must fall when the loss's total is minimised.

Two short runs on a fixed scene (:func:`lossaudit.scenarios.training_scene`), shared by every
component's check: Adam on free prediction variables starting from typical untrained outputs,
and Adam on a tiny convolutional head over synthetic images of the scene, so gradients pass
through shared weights as in a real detector. A component that does not fall gets a cause, read
off the evidence rather than guessed:

- ``nan``: a value turned NaN or infinite during training;
- ``diverging``: it ended higher than it started;
- ``optimum off the truth``: training drove it clearly below its value at the true
  predictions, so minimising it pulls predictions away from the truth;
- ``constant``: it has the same value whatever the predictions (no gradient can exist);
- ``disconnected``: its value changes with the predictions but no gradient reaches them
  (``stop_gradient``, a NumPy round trip, ``argmax``);
- ``vanishing``: some gradient reaches it, but orders of magnitude less than its distance from
  the truth calls for (a saturated activation);
- ``part disconnected``: it falls, but some object anchors it governs never move (an anchor
  the target assignment never selects);
- ``left out of the total``: the total's gradient carries none of it;
- ``drowned``: it has a gradient of its own, but its share of the total's gradient on the
  outputs or weights it shares with other terms is tiny;
- ``stalls``: none of the above, yet it fell by less than the margin.

Causes that are properties of the loss (nan, constant, disconnected, part disconnected, left
out, optimum off the truth), and a rise on free predictions, are failures. The others are about
the balance of the terms and the optimiser through a shared head, which a correct loss can show
on a large grid too: warnings. A term whose run another term turned NaN is not judged (skip).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import strategies as st

from lossaudit import scenarios as sc
from lossaudit.errors import LossError
from lossaudit.harness import Training, train
from lossaudit.properties._balance import contributions, share
from lossaudit.properties._helpers import (
    ZERO_GRAD,
    cells_where,
    fmt,
    governed_union,
    one_class_softmax,
    tol,
)
from lossaudit.properties.registry import Context, Outcome, prop
from lossaudit.spec import CLS0
from lossaudit.status import Status

#: A component trains when it closes at least this fraction of its gap to the truth's value.
FALL_FRACTION = 0.25
#: Below this share of the total's gradient, a component that does not train is drowned.
DROWNED_SHARE = 0.005
#: Gradient norm per unit of gap below which a component's gradient is vanishing.
VANISHING = 1e-3
FREE_STEPS, FREE_RATE = 100, 0.05
HEAD_STEPS, HEAD_RATE = 150, 0.01
RUNS = ("free predictions", "conv head")


class CauseKind(enum.StrEnum):
    """Why a component does not fall in training (see the module docstring)."""

    NAN = "nan"
    DIVERGING = "diverging"
    OFF_TRUTH = "optimum off the truth"
    CONSTANT = "constant"
    DISCONNECTED = "disconnected"
    VANISHING = "vanishing"
    PART_DISCONNECTED = "part disconnected"
    LEFT_OUT = "left out of the total"
    DROWNED = "drowned"
    STALLS = "stalls"

    @property
    def structural(self) -> bool:
        """A property of the loss wherever it shows (a ``fail``); the others are about the
        balance of the terms and the optimiser (a ``warn``, except a rise on free predictions)."""
        return self in _STRUCTURAL


_STRUCTURAL = frozenset(
    {
        CauseKind.NAN,
        CauseKind.CONSTANT,
        CauseKind.DISCONNECTED,
        CauseKind.PART_DISCONNECTED,
        CauseKind.LEFT_OUT,
        CauseKind.OFF_TRUTH,
    }
)


@dataclass(frozen=True)
class Cause:
    """A typed cause, the evidence behind it in words (``detail``) and, for a drowned term, the
    term that drowns it (``by``)."""

    kind: CauseKind
    detail: str
    by: str = ""

    def __str__(self) -> str:
        return f"{self.kind}{' by ' + self.by if self.by else ''}: {self.detail}"


def runs(ctx: Context) -> dict[str, Any]:
    """The two training runs and the reference values, computed once per audit."""
    if "training" not in ctx.cache:
        scene = sc.training_scene(ctx.spec)
        start = sc.noisy(scene, ctx.codec, seed=0)
        truth = sc.perfect(scene, ctx.codec)
        runs = {
            "free predictions": train(
                ctx.adapter, scene, start=start.y_pred, steps=FREE_STEPS, learning_rate=FREE_RATE
            ),
            "conv head": train(
                ctx.adapter,
                scene,
                images=sc.scene_images(scene),
                steps=HEAD_STEPS,
                learning_rate=HEAD_RATE,
            ),
        }
        ctx.cache["training"] = {
            "scene": scene,
            "start": start,
            "truth": ctx.evaluate(truth),
            "start_eval": ctx.evaluate(start),
            "other_eval": ctx.evaluate(sc.noisy(scene, ctx.codec, seed=1)),
            "runs": runs,
        }
    return ctx.cache["training"]


def recorded_runs(ctx: Context) -> dict[str, Training] | None:
    """The training runs this audit already made (``None`` when no property needed them)."""
    data = ctx.cache.get("training")
    return None if data is None else dict(data["runs"])


def _share_of(ctx: Context, role: str, run: Training, scene: Any) -> tuple[float, str] | None:
    """``role``'s share of the total's gradient where it competes, and the biggest rival."""
    parts = contributions(run.param_grads, ctx.total_given)
    members = [
        r for r in parts if r == role or (role == "confidence" and r in ("objects", "no_objects"))
    ]
    if not members:
        return None
    where = None
    if run.model == "free":
        channels, _ = governed_union(ctx, role, scene)
        where = channels.reshape(-1)
    shares = share(parts, where)
    mine = sum(shares[r] for r in members)
    rivals = {r: v for r, v in shares.items() if r not in members}
    if not rivals:
        return None
    return mine, max(rivals, key=rivals.__getitem__)


class _Disrupted(Exception):
    """The run turned NaN through another component: this one cannot be judged in it."""


def _cause(ctx: Context, role: str, name: str, run: Training, data: dict[str, Any]) -> Cause:
    """Why ``role`` did not fall in ``run``, from evidence."""
    start, other, truth = data["start_eval"], data["other_eval"], data["truth"]
    v0, vt = start.values[role], truth.values[role]
    culprits = _nonfinite_roles(run, data)
    if role in culprits:
        return Cause(CauseKind.NAN, "its gradient is not finite at the start of training")
    if culprits:
        raise _Disrupted(
            f"not judged: {', '.join(culprits)} sends a non-finite gradient into the {name} run "
            f"(see {culprits[0]}.trains and {culprits[0]}.finite)"
        )
    channels, _ = governed_union(ctx, role, data["scene"])
    grad = start.grads[role][channels] if channels.any() else start.grads[role].reshape(-1)
    gnorm = float(np.linalg.norm(grad)) if start.connected.get(role, True) else 0.0
    if gnorm <= ZERO_GRAD:
        values = (v0, vt, other.values[role])
        if max(values) - min(values) <= tol(v0):
            hint = (
                " (a softmax over one class is always 1: this term can never train)"
                if role == "classification" and one_class_softmax(ctx)
                else ""
            )
            return Cause(CauseKind.CONSTANT, f"{fmt(v0)} whatever the predictions{hint}")
        return Cause(
            CauseKind.DISCONNECTED,
            f"its value changes with the predictions ({fmt(v0)} at the start, "
            f"{fmt(vt)} at the truth) but no gradient reaches {_channels(role)} "
            "(stop_gradient, a NumPy round trip, argmax, or a mask applied to the predictions)",
        )
    gap = abs(v0 - vt)
    if gnorm < VANISHING * max(gap, 1e-3):
        return Cause(
            CauseKind.VANISHING,
            f"gradient norm {fmt(gnorm)} on {_channels(role)} against a distance "
            f"of {fmt(gap)} from its value at the truth (a saturated activation?)",
        )
    found = _share_of(ctx, role, run, data["scene"])
    if found is not None and found[0] < 1e-6:
        return Cause(
            CauseKind.LEFT_OUT,
            f"the total's gradient carries none of {role} (fitted weight "
            "0), so minimising the total never trains it",
        )
    if found is not None and found[0] < DROWNED_SHARE:
        mine, rival = found
        return Cause(
            CauseKind.DROWNED,
            f"{mine:.1%} of the total's gradient on the "
            f"{'outputs' if run.model == 'free' else 'shared weights'} it trains "
            f"(raise its weight or normalise the other term)",
            by=rival,
        )
    values = run.values[role]
    end = float(np.median(values[-5:]))
    if end > v0 + tol(v0) + 0.05 * gap:
        return Cause(
            CauseKind.DIVERGING, f"rises from {fmt(v0)} to {fmt(end)} while the total is minimised"
        )
    return Cause(
        CauseKind.STALLS,
        f"falls only from {fmt(values[0])} to {fmt(values[-1])} in {len(values) - 1} steps",
    )


def _channels(role: str) -> str:
    from lossaudit.properties._helpers import CHANNELS

    return CHANNELS.get(role, "its channels")


def _nonfinite_roles(run: Training, data: dict[str, Any]) -> list[str]:
    """Components whose own gradient is non-finite at the start (free outputs or head weights)."""
    start = data["start_eval"]
    bad = []
    for role, g in start.grads.items():
        head = run.param_grads.get(role)
        if role == "total":
            continue
        if not np.all(np.isfinite(g)) or (head is not None and not np.all(np.isfinite(head))):
            bad.append(role)
    return bad


def _verdict(
    ctx: Context, role: str, name: str, run: Training, data: dict[str, Any]
) -> Cause | None:
    """``None`` when ``role`` trains in ``run``, else what went wrong and why."""
    if run.error:
        raise LossError(f"the loss raised during the {name} training run: {run.error}")
    values = run.values.get(role)
    if values is None or len(values) < 2:
        return None
    vt = data["truth"].values[role]
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        culprits = _nonfinite_roles(run, data)
        if culprits and role not in culprits:
            raise _Disrupted(
                f"not judged: the {name} run turned NaN through {', '.join(culprits)} "
                f"(see {culprits[0]}.trains and {culprits[0]}.finite)"
            )
        return Cause(CauseKind.NAN, f"turns {values[bad[0]]} at step {int(bad[0])}")
    v0, end = values[0], float(np.median(values[-5:]))
    gap = v0 - vt
    low = float(values.min())
    # Judged on free predictions only: they converge, while the head's run is a partial
    # optimisation whose predictions are still far from anything.
    if run.model == "free" and low < vt - (0.05 * abs(gap) + tol(vt) + 1e-4):
        off, seen = _predictions_off(ctx, role, run, data)
        if off:
            return Cause(
                CauseKind.OFF_TRUTH,
                f"training drove it to {fmt(low)}, below its value at the "
                f"true predictions ({fmt(vt)}), with {seen}: minimising it pulls predictions "
                "away from the truth",
            )
        # Below the value at saturated logits, yet the predictions stay near the truth: soft
        # targets (label smoothing) put the optimum just short of 0 and 1. Judged as usual.
    if gap > tol(v0) and v0 - end >= FALL_FRACTION * gap:
        stuck = _stuck_object_anchors(ctx, role, run, data)
        if stuck is None or not stuck[0].any():
            return None
        mask, of = stuck
        return Cause(
            CauseKind.PART_DISCONNECTED,
            f"it falls, but the predictions of {int(mask.sum())} of {of} "
            f"object anchors it governs never moved ({_channels(role)}): no gradient reaches them "
            "(an anchor or scale the target assignment never selects?)",
        )
    return _cause(ctx, role, name, run, data)


#: Mean distance of trained probabilities from their 0/1 targets beyond which the optimum is
#: off the truth. Label smoothing of 0.1 to 0.2 keeps it at 0.05 to 0.1; softmax over the
#: one-hot truth (3 classes) leaves it near 0.3.
OFF_TRUTH = 0.2


def _predictions_off(
    ctx: Context, role: str, run: Training, data: dict[str, Any]
) -> tuple[bool, str]:
    """Whether the trained predictions sit clearly away from the truth on ``role``'s channels,
    and what they are. Probabilities (obj, classes) are compared with their 0/1 targets (for the
    total too: a box term off the truth has properties of its own); coordinates count as off on
    their value alone."""
    scene = data["scene"]
    obj = scene.object_mask()
    probs = ctx.codec.decode(run.final, ctx.spec)
    truth = scene.truth().astype(np.float64)
    errors = []
    if role in ("objects", "confidence", "total"):
        errors.append(("objectness at object anchors", np.abs(probs["obj"][obj] - 1.0)))
    if role in ("no_objects", "confidence", "total"):
        errors.append(("objectness at empty anchors", np.abs(probs["obj"][~obj])))
    if role in ("classification", "total") and not one_class_softmax(ctx):
        errors.append(("class probabilities", np.abs(probs["cls"][obj] - truth[obj][:, CLS0:])))
    if role == "coordinates":
        return True, "the boxes where the value puts them"
    measured = [(what, float(np.mean(e))) for what, e in errors if e.size]
    if not measured:
        return True, "its value alone to go by"
    what, worst = max(measured, key=lambda m: m[1])
    return worst > OFF_TRUTH, f"{what} {worst:.2f} away from their targets on average"


def _stuck_object_anchors(
    ctx: Context, role: str, run: Training, data: dict[str, Any]
) -> tuple[np.ndarray, int] | None:
    """Object anchors whose governed channels training never moved (free predictions only)."""
    if run.model != "free" or role not in ("coordinates", "objects", "classification"):
        return None
    channels, anchors = governed_union(ctx, role, data["scene"])
    moved = np.abs(run.final.astype(np.float64) - data["start"].y_pred) > 1e-6
    moved_any = np.any(moved & channels, axis=-1)
    return anchors & ~moved_any, int(anchors.sum())


def _severity(ctx: Context, role: str, run: str, cause: Cause) -> Status:
    """A structural cause fails (but the one-class softmax's constant term, a known trap with
    its own property, warns); a rise on free predictions fails; the rest is balance: a warning."""
    if cause.kind.structural:
        one_class = role == "classification" and one_class_softmax(ctx)
        return Status.WARN if one_class and cause.kind is CauseKind.CONSTANT else Status.FAIL
    if run == RUNS[0] and cause.kind is CauseKind.DIVERGING:
        return Status.FAIL
    return Status.WARN


@prop(
    "trains",
    components=("coordinates", "objects", "no_objects", "classification", "confidence", "total"),
    draws=lambda ctx, c: st.just({"scene": sc.training_scene(ctx.spec)}),
    bugs=(1, 2, 3, 4, 9, 10, 28),
)
def trains(ctx: Context, role: str, _: Any) -> Outcome:
    """When the total is minimised, the component falls by at least a quarter of its distance
    from its value at the truth, with free predictions and through a tiny convolutional head.

    Otherwise the result names the cause from evidence: NaN, diverging, optimum off the truth,
    constant, disconnected, vanishing gradient, drowned by another term, or stalled. Answers
    "why does this component not respond to training?" before a week of training does.
    """
    data = runs(ctx)
    if not governed_union(ctx, role, data["scene"])[1].any():
        return Outcome.ok(info=f"the training scene has no anchor {role} governs (a tiny grid)")
    falls = []
    found: list[tuple[str, Cause, Training]] = []
    for name in RUNS:
        run = data["runs"][name]
        try:
            cause = _verdict(ctx, role, name, run, data)
        except _Disrupted as exc:
            return Outcome(Status.SKIP, observed=str(exc))
        values = run.values.get(role, np.zeros(1))
        if cause is None:
            falls.append(f"{name}: {fmt(values[0])} -> {fmt(values[-1])}")
        else:
            found.append((name, cause, run))
    if found:
        # The most telling cause: a structural one, else a failure of free predictions.
        name, cause, run = min(
            found, key=lambda f: 0 if f[1].kind.structural else 1 if f[0] == RUNS[0] else 2
        )
        values = run.values.get(role, np.zeros(1))
        stuck = _stuck_object_anchors(ctx, role, run, data)
        cells = (
            cells_where(stuck[0])
            if stuck is not None and cause.kind is CauseKind.PART_DISCONNECTED
            else ()
        )
        return Outcome(
            _severity(ctx, role, name, cause),
            expected=(
                f"{role} falls by at least {FALL_FRACTION:.0%} of its distance to its value "
                f"at the truth ({fmt(data['truth'].values[role])}) when the total is minimised"
            ),
            observed=f"{name}: {cause}",
            cells=cells,
            of=stuck[1] if cells and stuck is not None else 0,
            of_what="object anchors",
            values={
                "run": name,
                "start": float(values[0]),
                "end": float(values[-1]),
                "truth": data["truth"].values[role],
            },
            info="; ".join(falls),
            cause=cause,
        )
    return Outcome.ok(info="; ".join(falls))


@prop(
    "not_drowned",
    components=("coordinates", "objects", "no_objects", "classification", "confidence"),
    draws=lambda ctx, c: st.just({"scene": sc.training_scene(ctx.spec)}),
    bugs=(29,),
    applies=lambda ctx, c: (
        "one class under softmax: see classification.single_class"
        if c == "classification" and one_class_softmax(ctx)
        else None
    ),
)
def not_drowned(ctx: Context, role: str, _: Any) -> Outcome:
    """At typical untrained predictions, the component's share of the total's gradient on the
    weights of a convolutional head (shared by every term) is at least 0.5%.

    A warning, not a failure: a drowned term still has a gradient, but the optimiser hears
    little of it, the way 844 empty anchors drown one object anchor. The share is of the
    summed gradient norms of the weighted terms; doubling the term's weight roughly doubles it.
    """
    data = runs(ctx)
    if not governed_union(ctx, role, data["scene"])[1].any():
        return Outcome.ok(info=f"the training scene has no anchor {role} governs (a tiny grid)")
    run = data["runs"]["conv head"]
    if run.error:
        raise LossError(f"the loss raised during the conv head training run: {run.error}")
    grads = run.param_grads
    if not all(np.all(np.isfinite(g)) for g in grads.values()):
        return Outcome.ok(info="non-finite gradients: see the finite properties")
    own = [
        r for r in grads if r == role or (role == "confidence" and r in ("objects", "no_objects"))
    ]
    if not own or sum(float(np.linalg.norm(grads[r])) for r in own) <= ZERO_GRAD:
        return Outcome.ok(info="no gradient of its own: see gradient_flows and trains")
    found = _share_of(ctx, role, run, data["scene"])
    if found is None:
        return Outcome.ok(info="no other term competes for the weights")
    mine, rival = found
    if mine < 1e-6:
        return Outcome(
            "warn",
            expected=f"{role} is part of the total the optimiser minimises",
            observed=f"the total's gradient carries none of {role}: it is left out of the total",
            values={"share": mine},
        )
    if mine < DROWNED_SHARE:
        return Outcome(
            "warn",
            expected=f"{role} gets at least {DROWNED_SHARE:.0%} of the total's gradient on shared weights",
            observed=(
                f"{100 * mine:.2g}% of the gradient; {rival} takes the most. It will barely move in "
                "training: raise its weight, or normalise the dominant term by its anchor count"
            ),
            values={"share": mine, "rival": rival},
        )
    return Outcome.ok(info=f"{mine:.1%} of the total's gradient on shared weights")
