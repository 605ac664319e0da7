"""Whole-loss behaviours: purity, consistency with the components, graph parity, grid
transposition and mirroring, other grid sizes, batch reduction."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st

from lossaudit import scenarios as sc
from lossaudit import strategies as ls
from lossaudit.components import base_roles
from lossaudit.errors import LossError
from lossaudit.properties._helpers import ZERO_GRAD, fmt, path_outcome, scene_draws, tol
from lossaudit.properties.coordinates import converge_draws, converge_path
from lossaudit.properties.registry import Context, NonFinite, Outcome, prop


def _scene_seed(ctx: Context, role: str) -> st.SearchStrategy[Any]:
    return st.fixed_dictionaries(
        {
            "scene": scene_draws(ctx, min_objects=0, max_objects=3, crowded=None),
            "seed": ls.noise_seeds(),
        }
    )


@prop("pure", components=("total",), draws=_scene_seed, total_only_when_scalar=False, bugs=(21,))
def pure(ctx: Context, role: str, d: dict[str, Any]) -> Outcome:
    """The same inputs give the same values on every call (no warm-up counter or other state
    inside the loss).

    A variable the traced loss writes is named, and the loss evaluated with it as it is and
    reset to zero (as at its first call): a counter that changes the values fails even after
    its warm-up has run out; a step kept only for summaries passes."""
    case = sc.noisy(d["scene"], ctx.codec, seed=d["seed"])
    for name, variable in ctx.adapter.written_variables():
        now, reset = ctx.adapter.state_effect(case, variable)
        for r in ctx.roles:
            a, b = now.get(r, np.nan), reset.get(r, np.nan)
            if np.isfinite(a) and np.isfinite(b) and abs(a - b) > tol(a, atol=1e-7, rtol=1e-6):
                return Outcome(
                    "fail",
                    expected="values that do not depend on state the loss keeps between calls",
                    observed=(
                        f"the loss writes variable {name!r} on every call and its values depend "
                        f"on it: {r} = {fmt(a)} now, {fmt(b)} with {name} reset to 0 (as at the "
                        "first call); move the counter out of the loss (a callback or the "
                        "training loop) or make it a constant"
                    ),
                    values={"now": a, "reset": b, "state": name},
                )
    mode = ctx.adapter.default_mode
    runs = []
    for _ in range(3):
        ev, err = ctx.adapter.try_mode(case, mode)
        if ev is None:
            raise LossError(err or "the loss failed")
        runs.append(ev.values)
    for r in ctx.roles:
        vals = [run[r] for run in runs]
        if not all(np.isfinite(vals)):
            continue
        if max(vals) - min(vals) > tol(vals[0], atol=1e-7, rtol=1e-6):
            return Outcome(
                "fail",
                expected="identical values on three calls with identical inputs",
                observed=f"{r} = {', '.join(fmt(v) for v in vals)} on three calls of {case.label}",
                values={"calls": vals},
            )
    return Outcome.ok()


def _consistent_applies(ctx: Context, role: str) -> str | None:
    if not ctx.components:
        return "the loss reports no components"
    if not ctx.total_given:
        return "the loss gives no total of its own (lossaudit sums the components)"
    return None


@prop(
    "consistent_with_components",
    components=("total",),
    draws=_scene_seed,
    applies=_consistent_applies,
    total_only_when_scalar=False,
    bugs=(3,),
)
def consistent_with_components(ctx: Context, role: str, d: dict[str, Any]) -> Outcome:
    """The total is a positive weighted sum of the reported components (the seed's 0.5 x sum,
    or 5 x coordinates + objects + 0.5 x no_objects): a term computed and logged but left out of
    the total gets a weight of 0 and fails."""
    scene = d["scene"]
    cases = [sc.noisy(scene, ctx.codec, seed=(d["seed"] + 17 * k) % 2**16) for k in range(5)]
    cases.append(sc.perfect(scene, ctx.codec))
    parts = base_roles(ctx.roles)
    rows, totals = [], []
    for case in cases:
        values = ctx.evaluate(case).values
        row = [values[r] for r in parts]
        if not np.isfinite([*row, values["total"]]).all():
            raise NonFinite("total", case.label, values["total"])
        rows.append(row)
        totals.append(values["total"])
    a, b = np.array(rows), np.array(totals)
    live = np.abs(a).max(axis=0) > 1e-6
    if not live.any():
        return Outcome.ok(info="components are ~0 on these cases")
    weights = np.zeros(len(parts))
    weights[live] = np.linalg.lstsq(a[:, live], b, rcond=None)[0]
    resid = float(np.abs(a @ weights - b).max())
    scale = float(np.abs(b).max())
    shown = ", ".join(
        f"{r} x{fmt(w)}" for r, w in zip(parts, weights, strict=True) if live[parts.index(r)]
    )
    expected = f"total = w1 x {' + w2 x '.join(parts)} with weights > 0"
    if resid > 1e-4 * scale + 1e-5:
        return Outcome(
            "fail",
            expected=expected,
            observed=f"no weights reproduce the total (best fit {shown} is off by {fmt(resid)})",
            values={"weights": dict(zip(parts, weights.tolist(), strict=True)), "residual": resid},
        )
    top = float(weights[live].max())
    dropped = [r for r, w, on in zip(parts, weights, live, strict=True) if on and w <= 0.01 * top]
    if dropped:
        return Outcome(
            "fail",
            expected=expected,
            observed=(
                f"the total leaves out {', '.join(dropped)} (fitted weights {shown}): it is computed "
                "and reported, but never trained"
            ),
            values={"weights": dict(zip(parts, weights.tolist(), strict=True))},
        )
    return Outcome.ok(info=f"total = {shown}")


def _close(a: np.ndarray, b: np.ndarray, rtol: float, atol: float) -> bool:
    """Equal within tolerance, NaN matching NaN and inf matching the same inf."""
    if np.isfinite(a).all() and np.isfinite(b).all():
        # The usual case, without float64 copies of megabytes of gradients: |a - b| in the
        # arrays' precision (exact where they are this close), the bound in float64, as
        # np.isclose with the atol below.
        scale = max(float(np.abs(a).max(initial=0.0)), float(np.abs(b).max(initial=0.0)))
        with np.errstate(over="ignore"):
            bound = np.abs(b).astype(np.float64) * rtol + (atol + rtol * scale)
            return bool((np.abs(a - b) <= bound).all())
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    same = (np.isnan(a) & np.isnan(b)) | (np.isinf(a) & (a == b))
    finite = np.isfinite(a) & np.isfinite(b)
    scale = max(
        float(np.abs(a[finite]).max(initial=0.0)), float(np.abs(b[finite]).max(initial=0.0))
    )
    with np.errstate(invalid="ignore", over="ignore"):
        ok = np.isclose(a, b, rtol=rtol, atol=atol + rtol * scale) | same
    return bool(ok.all())


@prop(
    "graph_parity",
    components=("total",),
    draws=lambda ctx, c: st.fixed_dictionaries(
        {
            "scene": scene_draws(ctx, min_objects=0, max_objects=3, crowded=None),
            "seed": ls.noise_seeds(),
            "extreme": st.booleans(),
        }
    ),
    total_only_when_scalar=False,
    bugs=(13, 28),
)
def graph_parity(ctx: Context, role: str, d: dict[str, Any]) -> Outcome:
    """Values and gradients agree eagerly, under tf.function and under XLA (jit_compile=True)
    where the loss compiles; a loss that breaks in graph mode fails with its error.

    Python side effects and ``.numpy()`` inside a loss work eagerly and break when traced.
    """
    if ctx.adapter.graph_error:
        return Outcome(
            "fail",
            expected="the loss runs under tf.function as it does eagerly",
            observed=f"tracing under tf.function fails: {ctx.adapter.graph_error}",
        )
    case = sc.noisy(d["scene"], ctx.codec, seed=d["seed"])
    if d["extreme"]:
        case = sc.extreme(case, value=sc.EXTREME, where="empty", channels="all", codec=ctx.codec)
    eager, err_e = ctx.adapter.try_mode(case, "eager")
    graph, err_g = ctx.adapter.try_mode(case, "graph")
    if graph is None or eager is None:
        which = "eagerly" if eager is None else "under tf.function"
        return Outcome(
            "fail",
            expected="the loss runs eagerly and under tf.function",
            observed=f"it fails {which} on {case.label}: {err_e or err_g}",
        )
    xla, err_x = ctx.adapter.try_mode(case, "xla")
    notes = [] if xla is not None else [f"XLA: does not compile ({err_x}); not compared"]
    modes = [("tf.function", graph, 1e-4, 1e-6)]
    if xla is not None:
        modes.append(("XLA", xla, 1e-3, 1e-5))
    for name, ev, rtol, atol in modes:
        for r in ctx.roles:
            pairs = [
                ("", eager.values[r], ev.values[r]),
                ("gradient of ", eager.grads[r], ev.grads[r]),
            ]
            for what, x, y in pairs:
                if d["extreme"]:
                    # At logits of +-100 graph rewrites legitimately change rounding (Keras
                    # recovers logits from a sigmoid under tf.function, not eagerly); what must
                    # agree there is where the values are finite.
                    same = bool((np.isfinite(x) == np.isfinite(y)).all())
                else:
                    same = _close(x, y, rtol, atol)
                if not same:
                    shown = (
                        f"{fmt(float(x))} eagerly, {fmt(float(y))} under {name}"
                        if not what
                        else "they differ"
                    )
                    return Outcome(
                        "fail",
                        expected=f"{what}{r} the same eagerly and under {name} (rtol={rtol:g})",
                        observed=f"{what}{r}: {shown} on {case.label}",
                    )
    return Outcome.ok(info="; ".join(notes))


def _transpose_applies(ctx: Context, role: str) -> str | None:
    if not ctx.codec.symmetric_anchors and not ctx.adapter.hands_anchors:
        return (
            "the anchors are not square and the loss keeps its own, so a transposed scene "
            "needs other anchors (a layout that hands the loss its anchors, or --factory, "
            "swaps them)"
        )
    return None


@prop(
    "transpose_invariant",
    components=("total",),
    draws=_scene_seed,
    applies=_transpose_applies,
    total_only_when_scalar=False,
    bugs=(16,),
)
def transpose_invariant(ctx: Context, role: str, d: dict[str, Any]) -> Outcome:
    """Transposing the grid (rows with columns, x with y, w with h, in truth and predictions
    together, and anchor widths with heights where the loss is handed its anchors) changes no
    component: no row/column confusion and no square-grid assumption."""
    case = sc.noisy(d["scene"], ctx.codec, seed=d["seed"])
    flipped = sc.transposed(case)
    try:
        ev_t = ctx.evaluate(flipped)
    except LossError as exc:
        return Outcome(
            "fail",
            expected=f"the loss runs on the transposed {ctx.spec.W}x{ctx.spec.H} grid",
            observed=f"it fails there: {exc}",
        )
    changed = _first_changed(ctx, ctx.evaluate(case).values, ev_t.values)
    if changed is not None:
        r, a, b = changed
        return Outcome(
            "fail",
            expected=f"{r} unchanged when the scene is transposed (rtol=1e-4)",
            observed=(
                f"{r} = {fmt(a)} on the {ctx.spec.H}x{ctx.spec.W} grid, {fmt(b)} on its "
                f"transpose ({ctx.spec.W}x{ctx.spec.H})"
            ),
            values={"original": a, "transposed": b},
        )
    return Outcome.ok()


def _first_changed(
    ctx: Context, before: dict[str, float], after: dict[str, float]
) -> tuple[str, float, float] | None:
    """The first role whose value moved beyond ``rtol=1e-4`` between two evaluations of what
    should be the same scene (non-finite values are other properties' concern)."""
    for r in ctx.roles:
        a, b = before[r], after[r]
        if np.isfinite(a) and np.isfinite(b) and abs(a - b) > tol(a, atol=1e-5, rtol=1e-4):
            return r, a, b
    return None


@prop(
    "mirror_invariant",
    components=("total",),
    draws=lambda ctx, role: st.fixed_dictionaries(
        {
            "scene": scene_draws(ctx, min_objects=1, max_objects=3, crowded=None),
            "seed": ls.noise_seeds(),
            "axis": st.sampled_from(("x", "y")),
        }
    ),
    total_only_when_scalar=False,
    bugs=(16, 19),
)
def mirror_invariant(ctx: Context, role: str, d: dict[str, Any]) -> Outcome:
    """Mirroring the image left-right (or upside down), in truth and predictions together,
    changes no component: a box left of its truth costs what the mirrored box right of it
    costs. A smoothed ``|d|`` without its ``abs``, an offset measured from the wrong edge of the
    cell or a grid built in reverse makes one side cheaper than the other."""
    case = sc.noisy(d["scene"], ctx.codec, seed=d["seed"])
    flipped = sc.mirrored(case, ctx.codec, d["axis"])
    changed = _first_changed(ctx, ctx.evaluate(case).values, ctx.evaluate(flipped).values)
    if changed is not None:
        r, a, b = changed
        side = "left-right" if d["axis"] == "x" else "upside down"
        return Outcome(
            "fail",
            expected=f"{r} unchanged when the scene is mirrored {side} (rtol=1e-4)",
            observed=(
                f"{r} = {fmt(a)} on the scene, {fmt(b)} on its mirror image: the loss "
                f"treats the two sides of a box differently along {d['axis']}"
            ),
            values={"original": a, "mirrored": b},
        )
    return Outcome.ok()


def _other_grid(ctx: Context) -> Any:
    # A square-only convention (yolov3-tf2) gets another square grid.
    return ctx.spec.replace(
        H=ctx.spec.H + 1, W=ctx.spec.W + (1 if ctx.adapter.layout.square else 2)
    )


def _other_grid_draws(ctx: Context, role: str) -> st.SearchStrategy[Any]:
    return converge_draws(ls.scenes(_other_grid(ctx), min_objects=1, max_objects=3))


def _other_grid_applies(ctx: Context, role: str) -> str | None:
    if len(ctx.adapter.frame.scales) > 1:
        return "a multi-scale loss's grids are tied to each other and to its input size"
    return None


@prop(
    "other_grid_size",
    components=("total",),
    draws=_other_grid_draws,
    applies=_other_grid_applies,
    total_only_when_scalar=False,
    bugs=(24,),
)
def other_grid_size(ctx: Context, role: str, d: dict[str, Any]) -> Outcome:
    """The loss runs at another grid size (H+1, W+2; H+1, W+1 for a square-only layout) and
    its boxes still converge there: no hard-coded input size, grid or anchor normalisation."""
    spec = d["scene"].spec
    cases, steps = converge_path(ctx, d)
    target = "coordinates" if "coordinates" in ctx.roles else "total"
    try:
        values = [ctx.value(c, target) for c in cases]
    except LossError as exc:
        return Outcome(
            "fail",
            expected=f"the loss runs on a {spec.H}x{spec.W} grid as on {ctx.spec.H}x{ctx.spec.W}",
            observed=f"it fails there: {exc}",
        )
    out = path_outcome(
        values,
        steps,
        expected=f"on a {spec.H}x{spec.W} grid, {target} never increases as boxes return to the truth, and ends lower",
    )
    return out


#: The channel groups whose gradients must scale alike when the batch is repeated.
_GROUPS = (
    ("x, y", slice(0, 2)),
    ("w, h", slice(2, 4)),
    ("obj", slice(4, 5)),
    ("classes", slice(5, None)),
)


def _uneven_gradients(
    g1: dict[str, np.ndarray], g2: dict[str, np.ndarray], ratios: dict[str, float]
) -> Outcome | None:
    """Within each component, the gradient on every channel group scales with the repeated
    batch as the value does (per element: x1 for a batch sum, x0.5 for a mean). A component
    whose x, y part is a mean over every anchor while its w, h part is a batch sum has a value
    ratio within tolerance of x2, yet its x, y gradient halves."""
    for r, k in ratios.items():
        b = g1[r].shape[0]
        norms = {
            label: (
                float(np.linalg.norm(g1[r][..., sl])),
                float(np.linalg.norm(g2[r][:b][..., sl])),
            )
            for label, sl in _GROUPS
        }
        largest = max(n1 for n1, _ in norms.values())
        factors = {
            label: n2 / n1 for label, (n1, n2) in norms.items() if n1 > 1e-4 * largest + ZERO_GRAD
        }
        want = k / 2
        off = {label: f for label, f in factors.items() if abs(f - want) > 1e-2 * want}
        if off:
            shown = ", ".join(f"{label} x{fmt(f)}" for label, f in factors.items())
            return Outcome(
                "fail",
                expected=(
                    f"a batch repeated twice scales the gradient of every channel of {r} alike, "
                    f"as its value (x{fmt(k)}: x{fmt(want)} per element)"
                ),
                observed=(
                    f"the gradient of {r} per element scales by {shown}: its parts reduce over the "
                    "batch differently (one is a mean where the others are sums), so their "
                    "gradients depend on the batch size differently"
                ),
                values={"ratio": k, "gradient_factors": factors},
            )
    return None


def _reduction_draws(ctx: Context, role: str) -> st.SearchStrategy[Any]:
    return st.fixed_dictionaries(
        {
            "scene": scene_draws(ctx, min_objects=1, max_objects=3, crowded=None),
            "seed": ls.noise_seeds(),
        }
    )


@prop(
    "reduction_consistent",
    components=("total",),
    draws=_reduction_draws,
    total_only_when_scalar=False,
    bugs=(20,),
)
def reduction_consistent(ctx: Context, role: str, d: dict[str, Any]) -> Outcome:
    """A batch repeated twice gives every component 2x its value (a sum over the batch) or 1x
    (a mean), the same factor for all components and as declared (``reduction``); and within
    each component the gradient of every channel group (x, y; w, h; obj; classes) scales alike,
    so a part that is a mean among sums shows even when its share of the value is too small to
    move the value's factor."""
    case = sc.noisy(d["scene"], ctx.codec, seed=d["seed"])
    twice = sc.repeated(case, 2)
    e1, e2 = ctx.evaluate(case), ctx.evaluate(twice)
    v1, v2 = e1.values, e2.values
    ratios = {}
    for r in ctx.roles:
        if not (np.isfinite(v1[r]) and np.isfinite(v2[r])):
            raise NonFinite(r, case.label, v1[r])
        if abs(v1[r]) > 1e-4:
            ratios[r] = v2[r] / v1[r]
    if not ratios:
        return Outcome.ok(info="every component is ~0 here")
    declared = ctx.settings.reduction
    allowed = {"sum": (2.0,), "mean": (1.0,), "auto": (1.0, 2.0)}[declared]
    shown = ", ".join(f"{r} x{fmt(k)}" for r, k in ratios.items())
    off = {r: k for r, k in ratios.items() if not any(abs(k - a) <= 1e-3 * a for a in allowed)}
    kinds = {round(k) for k in ratios.values() if not off}
    if not off and len(kinds) == 1:
        uneven = _uneven_gradients(e1.grads, e2.grads, ratios)
        if uneven is not None:
            return uneven
    if off or len(kinds) > 1:
        want = {
            "sum": "2x (a sum over the batch)",
            "mean": "1x (a mean over the batch)",
            "auto": "all 1x or all 2x",
        }[declared]
        return Outcome(
            "fail",
            expected=f"a batch repeated twice scales every component by {want}",
            observed=f"factors {shown}: the components reduce over the batch differently",
            values={"ratios": ratios},
        )
    return Outcome.ok(info=f"batch {'sum' if 2 in kinds else 'mean'} ({shown})", ratios=ratios)
