from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from lossaudit import strategies as ls
from lossaudit.spec import GridSpec

SPEC = GridSpec(batch=2, H=3, W=4, anchors=2, classes=3)


@settings(max_examples=50, deadline=None)
@given(ls.scenes(SPEC, min_objects=0, max_objects=5))
def test_scenes_are_valid_sparse_grids(scene):
    y = scene.truth()
    obj = y[..., 4]
    assert set(np.unique(obj)) <= {0.0, 1.0}
    assert obj.sum() == len(scene.objects) <= 5
    present = obj > 0
    assert ((y[..., 0:2] >= 0) & (y[..., 0:2] < 1)).all()
    assert ((y[..., 2:4][present] > 0) & (y[..., 2:4][present] <= 1)).all()
    np.testing.assert_array_equal(y[..., 5:].sum(-1), obj)


@settings(max_examples=30, deadline=None)
@given(ls.scenes(SPEC, min_objects=1, crowded=True))
def test_crowded_scenes_share_one_cell(scene):
    assert {(o.i, o.j) for o in scene.objects} == {(0, 0)}


@settings(max_examples=30, deadline=None)
@given(ls.scenes(SPEC, tiny=True))
def test_tiny_boxes_are_tiny(scene):
    assert all(1e-4 <= o.w <= 1e-3 for o in scene.objects)


@settings(max_examples=30, deadline=None)
@given(ls.grid_specs())
def test_grid_specs_are_small(spec):
    assert spec.H <= 5 and spec.W <= 5 and spec.classes <= 4


def test_failures_shrink_to_one_object_in_the_first_cell():
    from hypothesis import find

    scene = find(ls.scenes(SPEC, min_objects=1), lambda s: len(s.objects) >= 1)
    assert len(scene.objects) == 1
    o = scene.objects[0]
    assert (o.b, o.i, o.j, o.a, o.cls) == (0, 0, 0, 0, 0)


@given(ls.shifts())
def test_shifts_are_never_zero(d):
    assert 0.05 <= abs(d) <= 0.4


def test_images_restricts_the_image_index():
    from hypothesis import find

    scene = find(ls.scenes(SPEC, min_objects=2, images=(1,)), lambda s: True)
    assert {o.b for o in scene.objects} == {1}
    _ = st  # strategies module is public API


def _axis_degenerate(cell, offset, size, cells):
    """Along one axis: a size of 0 or 1e-7, a centre on the image border, or a box reaching
    exactly to an edge."""
    centre = (cell + offset) / cells
    return (
        size in ls.DEGENERATE_SIZES
        or centre in (0.0, 1.0)
        or abs(centre - size / 2) < 1e-9
        or abs(centre + size / 2 - 1) < 1e-9
    )


@settings(max_examples=80, deadline=None)
@given(ls.degenerate_scenes(SPEC))
def test_degenerate_scenes_hold_a_degenerate_box_inside_the_image(scene):
    assert 1 <= len(scene.objects) <= 3
    first = [o for o in scene.objects if _axis_degenerate(o.j, o.x, o.w, SPEC.W)]
    first += [o for o in scene.objects if _axis_degenerate(o.i, o.y, o.h, SPEC.H)]
    assert first
    for o in scene.objects:
        assert 0 <= o.x <= 1 and 0 <= o.y <= 1 and 0 <= o.w <= 1 and 0 <= o.h <= 1
        # An offset of 1.0 only in the last cell: the box's centre on the image's end border.
        assert o.x < 1 or o.j == SPEC.W - 1
        assert o.y < 1 or o.i == SPEC.H - 1
    y = scene.truth()
    assert np.isfinite(y).all() and y[..., 4].sum() == len(scene.objects)


def test_degenerate_boxes_shrink_to_width_zero_in_the_first_cell():
    from hypothesis import find

    scene = find(ls.degenerate_scenes(SPEC), lambda s: True)
    (o,) = scene.objects
    assert (o.b, o.i, o.j, o.a, o.w) == (0, 0, 0, 0, 0.0)


def test_every_kind_of_degenerate_box_is_drawn():
    from hypothesis import Phase, find

    # Drawn is all this asks: no shrinking toward a minimal box (it took 20 s of 20.1).
    drawn = settings(phases=[Phase.generate], database=None, max_examples=2000)

    for check in (
        lambda o: o.w == 0 and o.h > 0,
        lambda o: o.h == 1e-7,
        lambda o: o.j == 0 and o.x == 0 and o.w == 0,
        lambda o: o.i == SPEC.H - 1 and o.y == 1.0,
        lambda o: o.w > 0.05 and abs((o.j + o.x) / SPEC.W + o.w / 2 - 1) < 1e-9,
        lambda o: o.h > 0.05 and abs((o.i + o.y) / SPEC.H - o.h / 2) < 1e-9,
    ):
        find(ls.degenerate_objects(SPEC), check, settings=drawn)
