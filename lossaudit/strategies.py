"""Hypothesis strategies for scenes: a few objects per image on a sparse grid.

Strategies draw objects (image, cell, anchor, class, offsets, size) and encode them into grids,
never raw grids element by element, so a failure shrinks to one object in the first cell.
Values stay physically meaningful: centres inside their cell, sizes inside the image.

Example:
    >>> from hypothesis import given
    >>> from lossaudit.spec import GridSpec
    >>> @given(scenes(GridSpec(batch=1, H=2, W=2, anchors=1, classes=1), max_objects=2))
    ... def test_truth_is_one_hot(scene):
    ...     assert (scene.truth()[..., 5:].sum(-1) <= 1).all()
"""

from __future__ import annotations

import dataclasses

from hypothesis import strategies as st

from lossaudit.spec import GridSpec, Obj, Scene

__all__ = [
    "degenerate_objects",
    "degenerate_scenes",
    "grid_specs",
    "noise_seeds",
    "objects",
    "scenes",
    "shifts",
]

#: Box centre offsets stay this far from the cell border, so a sigmoid codec's logit is finite.
CENTRE_RANGE = (0.05, 0.95)
SIZE_RANGE = (0.05, 1.0)
TINY_RANGE = (1e-4, 1e-3)


def _rounded(lo: float, hi: float, digits: int = 2) -> st.SearchStrategy[float]:
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False).map(
        lambda v: min(max(round(v, digits), lo), hi)
    )


def objects(
    spec: GridSpec,
    *,
    tiny: bool = False,
    images: tuple[int, ...] | None = None,
    cell: tuple[int, int] | None = None,
) -> st.SearchStrategy[Obj]:
    """One object somewhere in ``spec``'s grid.

    ``tiny`` draws boxes of 1e-4 to 1e-3 of the image; ``images`` restricts the image index;
    ``cell`` pins the object to one ``(i, j)`` cell (crowded scenes).
    """
    size = (
        st.floats(*TINY_RANGE, allow_nan=False).map(lambda v: float(f"{v:.2g}"))
        if tiny
        else _rounded(*SIZE_RANGE)
    )
    b = st.sampled_from(images) if images else st.integers(0, spec.batch - 1)
    i = st.just(cell[0]) if cell else st.integers(0, spec.H - 1)
    j = st.just(cell[1]) if cell else st.integers(0, spec.W - 1)
    return st.builds(
        Obj,
        b=b,
        i=i,
        j=j,
        a=st.integers(0, spec.anchors - 1),
        x=_rounded(*CENTRE_RANGE),
        y=_rounded(*CENTRE_RANGE),
        w=size,
        h=size,
        cls=st.integers(0, spec.classes - 1),
    )


def scenes(
    spec: GridSpec,
    *,
    min_objects: int = 1,
    max_objects: int = 4,
    tiny: bool = False,
    crowded: bool = False,
    images: tuple[int, ...] | None = None,
) -> st.SearchStrategy[Scene]:
    """Scenes of ``min_objects`` to ``max_objects`` objects, each in its own anchor slot.

    ``crowded`` puts every object in cell (0, 0) of its image, so used anchors sit beside
    unused anchors of the same cell.
    """
    if crowded:
        max_objects = min(max_objects, spec.anchors * spec.batch)
    max_objects = min(max_objects, spec.batch * spec.H * spec.W * spec.anchors)
    min_objects = min(min_objects, max_objects)
    objs = st.lists(
        objects(spec, tiny=tiny, images=images, cell=(0, 0) if crowded else None),
        min_size=min_objects,
        max_size=max_objects,
        unique_by=lambda o: o.slot,
    )
    return objs.map(lambda found: Scene(spec, tuple(sorted(found, key=lambda o: o.slot))))


#: Sizes of a degenerate box: rounded away by a resize, or nearly so.
DEGENERATE_SIZES = (0.0, 1e-7)
#: How a degenerate box sits along one axis (x with w, or y with h), simplest first:
#: ``zero`` and ``tiny`` sizes; squashed to size 0 on the start (left, top) or end (right,
#: bottom) border of the image, its centre on the border line (cell offset 0 in the first
#: cell, 1.0 in the last, as a pipeline that clamps the cell index writes it); reaching
#: exactly to the start or end edge; or ``ordinary``.
AXIS_MODES = (
    "zero",
    "tiny",
    "on_start_border",
    "on_end_border",
    "to_start_edge",
    "to_end_edge",
    "ordinary",
)


def _place(
    mode: str, cells: int, cell: int, offset: float, size: float
) -> tuple[int, float, float]:
    """``(cell, offset, size)`` along one axis of ``cells`` cells for ``mode`` (AXIS_MODES)."""
    if mode == "zero":
        return cell, offset, DEGENERATE_SIZES[0]
    if mode == "tiny":
        return cell, offset, DEGENERATE_SIZES[1]
    if mode == "on_start_border":
        return 0, 0.0, 0.0
    if mode == "on_end_border":
        return cells - 1, 1.0, 0.0
    if mode in ("to_start_edge", "to_end_edge"):
        centre = size / 2 if mode == "to_start_edge" else 1.0 - size / 2
        at = min(int(centre * cells), cells - 1)
        return at, centre * cells - at, size
    return cell, offset, size


@st.composite
def _degenerate(draw: st.DrawFn, spec: GridSpec, images: tuple[int, ...] | None) -> Obj:
    base = draw(objects(spec, images=images))
    modes = draw(
        st.tuples(st.sampled_from(AXIS_MODES), st.sampled_from(AXIS_MODES)).filter(
            lambda m: m != ("ordinary", "ordinary")
        )
    )
    j, x, w = _place(modes[0], spec.W, base.j, base.x, base.w)
    i, y, h = _place(modes[1], spec.H, base.i, base.y, base.h)
    return dataclasses.replace(base, i=i, j=j, x=x, y=y, w=w, h=h)


def degenerate_objects(
    spec: GridSpec, *, images: tuple[int, ...] | None = None
) -> st.SearchStrategy[Obj]:
    """One truth box as resizing and cropping leave them (BUG-CLASSES #11, #12): along x and
    along y independently (not both ordinary), a size of 0 or 1e-7, squashed to size 0 on the
    image border (a cell offset of 0 in the first cell or 1.0 in the last), reaching exactly to
    the image's edge, or ordinary. Shrinks toward a box of width 0.

    These break the contract of :func:`objects` (sizes in (0, 1], offsets in [0, 1)) on
    purpose: only the opt-in scenario ``--degenerate-boxes`` draws them.
    """
    return _degenerate(spec, images)


def degenerate_scenes(
    spec: GridSpec, *, max_objects: int = 3, images: tuple[int, ...] | None = None
) -> st.SearchStrategy[Scene]:
    """Scenes of 1 to ``max_objects`` objects, each in its own anchor slot, the first a
    :func:`degenerate_objects` box and the others ordinary or degenerate."""
    max_objects = max(1, min(max_objects, spec.batch * spec.H * spec.W * spec.anchors))
    first = degenerate_objects(spec, images=images)
    other = st.one_of(objects(spec, images=images), degenerate_objects(spec, images=images))
    rest = st.lists(other, max_size=max_objects - 1)

    def build(drawn: tuple[Obj, list[Obj]]) -> Scene:
        by_slot: dict[tuple[int, int, int, int], Obj] = {}
        for o in (drawn[0], *drawn[1]):
            by_slot.setdefault(o.slot, o)
        return Scene(spec, tuple(sorted(by_slot.values(), key=lambda o: o.slot)))

    return st.tuples(first, rest).map(build)


def grid_specs(
    *,
    max_batch: int = 3,
    max_grid: int = 5,
    max_anchors: int = 3,
    max_classes: int = 4,
) -> st.SearchStrategy[GridSpec]:
    """Small grid specs, square and not; shrinks toward one image, a 1x1 grid, one class."""
    return st.builds(
        GridSpec,
        batch=st.integers(1, max_batch),
        H=st.integers(1, max_grid),
        W=st.integers(1, max_grid),
        anchors=st.integers(1, max_anchors),
        classes=st.integers(1, max_classes),
    )


def noise_seeds() -> st.SearchStrategy[int]:
    """Seeds for the typical random predictions scenarios build (small, so they print well)."""
    return st.integers(0, 2**16 - 1)


def shifts(*, low: float = 0.05, high: float = 0.4) -> st.SearchStrategy[float]:
    """A signed shift of ``low`` to ``high`` (cell units for centres, log-scale for sizes)."""
    mag = _rounded(low, high)
    return st.tuples(mag, st.booleans()).map(lambda t: -t[0] if t[1] else t[0])
