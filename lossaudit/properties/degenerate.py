"""Opt-in: degenerate truth boxes, as resizing and cropping leave them (``--degenerate-boxes``).

A data pipeline that resizes or crops images can round a small box to width or height 0, or
clip a box to a line on the image border. A loss that takes ``log(w)`` of the truth, or divides
by a box's area, guarded in empty anchors (where ``w = 0`` always) but not at object anchors,
then returns inf or NaN on the first such image, and training diverges (BUG-CLASSES #11, #12;
qqwweee/keras-yolo3#171). The default scenes never hold such boxes (sizes of 1e-4 and up,
centres inside their cell), so the property here runs only when its option is on.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st

from lossaudit import scenarios as sc
from lossaudit import strategies as ls
from lossaudit.properties._helpers import cells_where, fmt
from lossaudit.properties.registry import Context, NonFinite, Outcome, prop
from lossaudit.spec import GridSpec, Obj

#: How far a component may rise over its value with ordinary boxes before it counts as
#: blown up: ``|value| <= BLOWUP * (1 + |ordinary value|)``. A floored log
#: (``log(max(w, 1e-9))``) stays within a few hundred times; a division by a floored size
#: (``1 / max(w, 1e-12)``) does not. Gradients need only be finite: the gradient of any
#: guarded ratio (an IoU with an epsilon) grows like 1 / epsilon as both boxes collapse.
BLOWUP = 1e6
_BLOWUP_TEXT = "1e6"
#: Degenerate boxes named in a failure, at most.
SHOWN = 3


def _draws(ctx: Context, role: str) -> st.SearchStrategy[Any]:
    return st.fixed_dictionaries(
        {"scene": ls.degenerate_scenes(ctx.spec), "seed": ls.noise_seeds()}
    )


def _degenerate(o: Obj, spec: GridSpec) -> bool:
    """A box of size below 0.05, centred near its cell's border, or reaching to the image's
    edge (the boxes :func:`lossaudit.strategies.degenerate_objects` draws)."""
    lo, hi = sc.ORDINARY_CENTRE
    for cell, offset, size, cells in ((o.j, o.x, o.w, spec.W), (o.i, o.y, o.h, spec.H)):
        centre = (cell + offset) / cells
        if size < sc.ORDINARY_SIZE or not lo <= offset <= hi:
            return True
        if min(abs(centre - size / 2), abs(centre + size / 2 - 1)) < 1e-9:
            return True
    return False


def _cases(ctx: Context, d: dict[str, Any]) -> list[sc.Case]:
    """Typical predictions, the perfect prediction (boxes of size 0 predicted as size 0 where
    the codec can say it) and boxes near the truth, so IoU terms are in their working range."""
    typical = sc.noisy(d["scene"], ctx.codec, seed=d["seed"])
    return [
        typical,
        sc.perfect(d["scene"], ctx.codec),
        sc.boxes_near_truth(typical, ctx.codec, seed=d["seed"]),
    ]


@prop(
    "finite_on_degenerate_boxes",
    components=("total",),
    draws=_draws,
    total_only_when_scalar=False,
    bugs=(11, 12),
    opt_in="degenerate-boxes",
)
def finite_on_degenerate_boxes(ctx: Context, role: str, d: dict[str, Any]) -> Outcome:
    """Every reported component and its gradient stay finite, and do not blow up, when truth
    boxes are degenerate: w or h of 0 or 1e-7, squashed onto the image border (a cell offset of
    0 or 1), or reaching exactly to the image's edge.

    An opt-in scenario (``--degenerate-boxes``): resizing and cropping leave such boxes, and a
    ``log(w)`` or a division by a box's area guarded only in empty anchors turns them into inf
    or NaN. Checked on typical, perfect and near-truth predictions; "does not blow up" means a
    value at most 1e6 x (1 + the component's value on the same predictions with ordinary boxes
    in the same anchors). A loss that rejects such boxes with an error is reported as an error
    with its own message.
    """
    scene = d["scene"]
    bad_boxes = [o for o in scene.objects if _degenerate(o, scene.spec)]
    shown = ", ".join(repr(o) for o in bad_boxes[:SHOWN])
    if len(bad_boxes) > SHOWN:
        shown += f" and {len(bad_boxes) - SHOWN} more"
    expected = (
        f"every component and its gradient finite, and at most {_BLOWUP_TEXT} x (1 + its "
        "value with ordinary boxes), when truth boxes have w or h of "
        "0 or 1e-7 or lie on the image border"
    )
    hint = (
        f"; degenerate truth boxes: {shown}. Usual cause: log(w) or a division by a box's "
        "size or area, guarded in empty anchors but not at object anchors; floor the truth "
        "size (tf.maximum(w, 1e-9)) or drop boxes of size 0 before the loss"
    )
    slots = np.zeros(ctx.spec.shape[:4], dtype=bool)
    for o in bad_boxes:
        slots[o.slot] = True
    ordinary = sc.noisy(sc.ordinary_boxes(scene), ctx.codec, seed=d["seed"])
    reference = ctx.evaluate(ordinary)
    for r in ctx.roles:
        # Non-finite with ordinary boxes too: not this scenario's finding, but *.finite's.
        label = f"{ordinary.label} with the boxes made ordinary"
        if not np.isfinite(reference.values[r]):
            raise NonFinite(r, label, reference.values[r])
        if not np.isfinite(reference.grads[r]).all():
            raise NonFinite(r, label, reference.values[r], gradient=True)
    for case in _cases(ctx, d):
        ev = ctx.evaluate(case)
        for r in ctx.roles:
            v = ev.values[r]
            bad = ~np.isfinite(ev.grads[r]).all(axis=-1)
            if not np.isfinite(v):
                observed = f"{r} = {v} on {case.label}"
                cells = slots
            elif bad.any():
                observed = f"{r} = {fmt(v)} but its gradient is non-finite on {case.label}"
                cells = bad
            elif abs(v) > BLOWUP * (1 + abs(reference.values[r])):
                observed = (
                    f"{r} = {fmt(v)} on {case.label}, against {fmt(reference.values[r])} with "
                    "ordinary boxes: it blows up"
                )
                cells = slots
            else:
                continue
            return Outcome(
                "fail",
                expected=expected,
                observed=observed + hint,
                cells=cells_where(cells),
                of=int(cells.size),
                of_what="anchors",
                values={"value": v, "component": r},
            )
    return Outcome.ok()
