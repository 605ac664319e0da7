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
