"""Pictures and tables of how a loss behaves, beside the verdicts: response curves, the gradient
each component sends to each channel group, and the balance of the components.

All three are measured on one fixed scene (:func:`lossaudit.scenarios.training_scene`) so they
are the same on every run, and returned as plain data for the :class:`~lossaudit.report.Report`;
renderers draw them. Nothing here decides a verdict: the properties do.

- **Response curves**: each component along four paths that end at the true predictions (boxes
  shifted back onto the truth, the object anchors' confidence logit rising, the empty anchors'
  logit falling, the true-class logit rising), with the shape a correct loss shows beside the
  observed one.
- **Gradient view**: the norm of each component's gradient on ``x, y``, ``w, h``, ``obj`` and the
  class channels, at object anchors and at empty anchors, at typical untrained predictions.
- **Balance**: each component's value, weight in the total and share of the total's gradient on
  the weights of a small convolutional head (shared by every term, as in a real detector) at
  typical untrained predictions, and the share it would have with its weight doubled: "can I
  fix it with different weights?".
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lossaudit import scenarios as sc
from lossaudit.components import base_roles
from lossaudit.errors import LossError
from lossaudit.findings import (
    Analysis,
    Balance,
    BalanceRow,
    Curve,
    GradientRow,
    GradientView,
    TrainingRun,
)
from lossaudit.properties._balance import fitted_weights
from lossaudit.properties._helpers import one_class_softmax, tol
from lossaudit.properties.registry import Context
from lossaudit.properties.training import recorded_runs, runs
from lossaudit.spec import CLS0, OBJ_CH

__all__ = ["analyse", "balance", "gradient_view", "response_curves"]

#: Points per response curve.
POINTS = 9
#: Channel groups of the gradient view: label and channel slice.
GROUPS = (
    ("x, y", slice(0, 2)),
    ("w, h", slice(2, 4)),
    ("obj", slice(OBJ_CH, OBJ_CH + 1)),
    ("classes", slice(CLS0, None)),
)


def _shape(values: list[float]) -> str:
    """``falls``, ``rises``, ``flat``, ``mixed`` or ``not finite`` for a sequence of values."""
    v = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(v)):
        return "not finite"
    if float(v.max() - v.min()) <= tol(float(np.abs(v).max()), atol=1e-6, rtol=1e-4):
        return "flat"
    steps = np.diff(v)
    slack = np.array([tol(x) for x in v[:-1]])
    if np.all(steps <= slack) and v[-1] < v[0]:
        return "falls"
    if np.all(steps >= -slack) and v[-1] > v[0]:
        return "rises"
    return "mixed"


def _paths(ctx: Context) -> list[dict[str, Any]]:
    """The four paths: name, x label, x values and cases, and which roles must fall along each."""
    codec = ctx.codec
    scene = sc.training_scene(ctx.spec)
    base = sc.perfect(scene, codec)
    s_values = np.linspace(1.0, 0.0, POINTS)
    logits = np.linspace(-6.0, 3.0, POINTS)
    empty_logits = np.linspace(3.0, -6.0, POINTS)
    paths = [
        {
            "name": "box shift",
            "x_label": "centre shift (cells), back to the truth",
            "x": [float(0.4 * s) for s in s_values],
            "cases": [sc.shifted(base, codec, dx=0.4 * s, dy=0.3 * s) for s in s_values],
            "governed": ("coordinates",),
        },
        {
            "name": "object confidence",
            "x_label": "obj logit of the object anchors",
            "x": [float(v) for v in logits],
            "cases": [sc.set_confidence(base, codec, logit=float(v)) for v in logits],
            "governed": ("objects", "confidence"),
        },
        {
            "name": "empty-anchor confidence",
            "x_label": "obj logit of the empty anchors",
            "x": [float(v) for v in empty_logits],
            "cases": [
                sc.set_confidence(base, codec, logit=float(v), where="empty") for v in empty_logits
            ],
            "governed": ("no_objects", "confidence"),
        },
        {
            "name": "true-class logit",
            "x_label": "logit of each object's true class",
            "x": [float(v) for v in logits],
            "cases": [sc.set_class_logit(base, codec, logit=float(v)) for v in logits],
            "governed": ("classification",),
        },
    ]
    return paths


def response_curves(ctx: Context) -> tuple[Curve, ...]:
    """One curve per (path, component): the component's values along a path to the truth.

    ``expected`` is ``falls`` for the components the path's channels belong to and for the
    total, ``constant`` for a one-class softmax class term, and empty where a correct loss may
    do either (another component's channels).
    """
    curves = []
    one_class = one_class_softmax(ctx)
    for path in _paths(ctx):
        evaluations = [ctx.evaluate(case) for case in path["cases"]]
        for role in ctx.roles:
            values = [e.values[role] for e in evaluations]
            expected = ""
            if role in path["governed"] or role == "total":
                expected = "falls"
                if path["name"] == "true-class logit" and one_class:
                    expected = "flat" if role == "classification" else ""
            curves.append(
                Curve(
                    path=path["name"],
                    component=role,
                    x_label=path["x_label"],
                    x=tuple(float(v) for v in path["x"]),
                    y=tuple(float(v) for v in values),
                    expected=expected,
                    observed=_shape(values),
                )
            )
    return tuple(curves)


def gradient_view(ctx: Context) -> GradientView:
    """Gradient norm of every component on each channel group, at object and empty anchors."""
    scene = sc.training_scene(ctx.spec)
    start = ctx.evaluate(sc.noisy(scene, ctx.codec, seed=0))
    obj = scene.object_mask()
    rows = []
    for role in ctx.roles:
        g = start.grads[role]
        cells = {}
        for label, sl in GROUPS:
            for where, mask in (("object", obj), ("empty", ~obj)):
                part = g[..., sl][mask]
                cells[f"{label} @ {where}"] = float(np.linalg.norm(part)) if part.size else 0.0
        rows.append(GradientRow(role, cells, bool(start.connected[role])))
    return GradientView(
        columns=tuple(f"{label} @ {where}" for label, _ in GROUPS for where in ("object", "empty")),
        rows=tuple(rows),
        at="typical untrained predictions on the fixed scene",
    )


def balance(ctx: Context) -> Balance:
    """Each base component's value, fitted weight, share of the total's gradient on the outputs,
    and that share with its weight doubled, at typical untrained predictions."""
    scene = sc.training_scene(ctx.spec)
    start = ctx.evaluate(sc.noisy(scene, ctx.codec, seed=0))
    flat = {r: g.astype(np.float64).reshape(-1) for r, g in start.grads.items()}
    on = "the outputs"
    head = runs(ctx)["runs"]["conv head"]
    if head.param_grads and all(np.all(np.isfinite(g)) for g in head.param_grads.values()):
        # Shared weights are where terms compete: 844 small per-anchor gradients add up there.
        flat, on = head.param_grads, "the weights of a small convolutional head"
    finite = {r: bool(np.all(np.isfinite(g))) for r, g in flat.items()}
    usable = {r: g for r, g in flat.items() if finite[r]}
    weights = fitted_weights(usable, ctx.total_given)
    if not weights:  # the total's own gradient is not finite: no fit, every weight read as 1
        weights = {r: 1.0 for r in base_roles(usable) if r in usable}
    norms = {r: abs(w) * float(np.linalg.norm(usable[r])) for r, w in weights.items()}
    whole = sum(norms.values())
    rows = []
    for role in base_roles(flat):
        if role not in flat:
            continue
        if not finite[role]:
            rows.append(BalanceRow(role, start.values[role], None, None, None, finite=False))
            continue
        weight = weights.get(role, 0.0)
        has_gradient = float(np.linalg.norm(usable[role])) > 0
        share = norms.get(role, 0.0) / whole if whole > 0 else 0.0
        doubled = 2 * norms.get(role, 0.0) / (whole + norms.get(role, 0.0)) if whole > 0 else 0.0
        rows.append(
            BalanceRow(role, start.values[role], weight if has_gradient else None, share, doubled)
        )
    movable = [r for r in rows if r.weight is not None]
    stuck = [r.component for r in rows if r.weight is None and r.finite]
    broken = [r.component for r in rows if not r.finite]
    notes = []
    if len(movable) > 1:
        low = min(movable, key=lambda r: r.share or 0.0)
        high = max(movable, key=lambda r: r.share or 0.0)
        notes.append(
            f"{high.component} takes {high.share:.0%} of the gradient and "
            f"{low.component} {100 * (low.share or 0.0):.2g}%; doubling the {low.component} "
            f"term's weight would give it {100 * (low.share_if_doubled or 0.0):.2g}%"
        )
    if stuck:
        notes.append(
            f"{', '.join(stuck)}: no gradient at all, so no weight can make "
            f"{'it' if len(stuck) == 1 else 'them'} train"
        )
    if broken:
        notes.append(f"{', '.join(broken)}: non-finite gradient (see the finite properties)")
    return Balance(
        rows=tuple(rows),
        total=start.values.get("total"),
        at=f"typical untrained predictions (noisy seed 0) on {len(scene.objects)} objects in "
        f"{ctx.spec.batch} x {ctx.spec.H} x {ctx.spec.W} x {ctx.spec.anchors} anchors",
        note="; ".join(notes),
        weights_fitted=bool(ctx.total_given),
        on=on,
    )


def analyse(ctx: Context) -> Analysis:
    """Curves, gradient view, balance and the training runs the properties made; a part the
    loss cannot evaluate records its error."""
    parts: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for key, fn in (
        ("curves", response_curves),
        ("gradients", gradient_view),
        ("balance", balance),
    ):
        try:
            parts[key] = fn(ctx)
        except LossError as exc:
            errors[key] = str(exc)
        except Exception as exc:  # a bug in lossaudit: the other parts and the verdicts stand
            errors[key] = f"internal error in lossaudit: {type(exc).__name__}: {exc}"
    made = recorded_runs(ctx)
    training = (
        None
        if made is None
        else {
            name: TrainingRun(
                {r: tuple(float(v) for v in vals) for r, vals in run.values.items()}, run.error
            )
            for name, run in made.items()
        }
    )
    return Analysis(**parts, training=training, errors=errors)
