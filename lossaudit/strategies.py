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

from hypothesis import strategies as st

from lossaudit.spec import GridSpec, Obj, Scene

__all__ = ["grid_specs", "noise_seeds", "objects", "scenes", "shifts"]

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
