"""Input layouts: encodings that round-trip to the scene, a user-defined layout end to end,
the yad2k fixture losses audited as they are written (slow tier), and every way to get a
layout wrong."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fixtures.catalog import KERAS_YOLO3_CORRECT, LAYOUT_BUGS, LAYOUT_CORRECT, YAD2K_ANCHORS
from lossaudit.calling import printed_values
from lossaudit.cli import build_parser
from lossaudit.errors import InvalidSpec
from lossaudit.layouts import BUILT_IN, Frame, Layout, box_list, flat, get_layout
from lossaudit.layouts.keras_yolo2 import KERAS_YOLO2
from lossaudit.layouts.yad2k import YAD2K
from lossaudit.layouts.yolov3_tf2 import YOLOV3_TF2
from lossaudit.options import LossOptions
from lossaudit.spec import Codec, GridSpec, Obj, Scene
from lossaudit.strategies import degenerate_scenes, grid_specs, scenes

ROOT = Path(__file__).resolve().parents[1]
KY3_ANCHORS_FILE = "fixtures/anchors/keras_yolo3_64px.txt"


def _frame(spec: GridSpec) -> Frame:
    rng = np.random.default_rng(spec.anchors)
    sizes = tuple(tuple(float(v) for v in rng.uniform(0.05, 0.9, 2)) for _ in range(spec.anchors))
    return Frame(spec, Codec(anchor_sizes=sizes))


@st.composite
def framed_scenes(draw: st.DrawFn) -> tuple[Scene, Frame]:
    spec = draw(grid_specs())
    return draw(scenes(spec, max_objects=6)), _frame(spec)


# -- encodings round-trip to the scene ---------------------------------------------------------
@given(framed_scenes())
def test_canonical_encodes_the_canonical_truth(drawn):
    scene, frame = drawn
    encoded = BUILT_IN["canonical"].encode(scene, frame)
    np.testing.assert_array_equal(encoded["y_true"], scene.truth())


@given(framed_scenes())
def test_yad2k_truth_decodes_back_to_the_scene(drawn):
    scene, frame = drawn
    spec = scene.spec
    encoded = YAD2K.encode(scene, frame)
    np.testing.assert_array_equal(encoded["detectors_mask"][..., 0], scene.object_mask())
    anchors = frame.anchors("grid").astype(np.float64)
    recovered = []
    for b, i, j, a in zip(*np.nonzero(encoded["detectors_mask"][..., 0]), strict=True):
        x, y, tw, th, cls = encoded["matching_true_boxes"][b, i, j, a].astype(np.float64)
        w = np.exp(tw) * anchors[a, 0] / spec.W
        h = np.exp(th) * anchors[a, 1] / spec.H
        recovered.append(Obj(int(b), int(i), int(j), int(a), x, y, w, h, int(cls)))
    _same_objects(recovered, scene.objects)
    # The padded list holds each image's boxes, image-relative, then zero rows.
    boxes = encoded["true_boxes"]
    for b in range(spec.batch):
        mine = [o for o in scene.objects if o.b == b]
        rows = boxes[b, : len(mine)]
        expected = [((o.j + o.x) / spec.W, (o.i + o.y) / spec.H, o.w, o.h, o.cls) for o in mine]
        np.testing.assert_allclose(rows, np.array(expected).reshape(-1, 5), rtol=1e-5, atol=1e-6)
        assert not boxes[b, len(mine) :].any()


def _same_objects(got: list[Obj], want: tuple[Obj, ...]) -> None:
    def key(o: Obj) -> tuple[int, ...]:
        return o.slot

    assert [o.slot for o in sorted(got, key=key)] == [o.slot for o in sorted(want, key=key)]
    for g, w in zip(sorted(got, key=key), sorted(want, key=key), strict=True):
        np.testing.assert_allclose(
            (g.x, g.y, g.w, g.h, g.cls), (w.x, w.y, w.w, w.h, w.cls), rtol=1e-5, atol=1e-6
        )


def test_box_list_corners_and_pixels():
    scene = Scene(GridSpec(1, 2, 4, 1, 3), (Obj(0, 1, 2, 0, 0.5, 0.5, 0.25, 0.5, 2),))
    rows = box_list(scene, 2, corners=True, scale=(100, 50))
    np.testing.assert_allclose(rows[0, 0], [50.0, 25.0, 75.0, 50.0, 2.0])
    assert not rows[0, 1].any()


def test_frame_converts_anchor_units_and_follows_the_grid():
    frame = Frame(GridSpec(1, 13, 13, 1, 1), Codec(anchor_sizes=((0.25, 0.5),)), (416, 416))
    np.testing.assert_allclose(frame.anchors("grid"), [[3.25, 6.5]])
    np.testing.assert_allclose(frame.anchors("pixels"), [[104.0, 208.0]])
    other = frame.at((1, 26, 13, 1, 6))
    assert other.input_size == (832, 416) and other.spec.classes == 1
    np.testing.assert_allclose(other.anchors("image"), [[0.25, 0.5]])


# -- what a loss prints is captured by name ---------------------------------------------------
@pytest.mark.parametrize(
    "inputs, names",
    [
        (
            ("yolo_loss, conf_loss, class_loss:", 1.0, 2.0, 3.0),
            ["yolo_loss", "conf_loss", "class_loss"],
        ),
        (("conf:", 1.0, "cls =", 2.0), ["conf", "cls"]),
        (("step", 3.0, np.zeros((2, 3))), ["step"]),  # a whole tensor is not a component
        (("a, b:", 1.0), ["a, b"]),  # more names than values: read as one label
    ],
)
def test_printed_values_are_named_by_the_message(inputs, names):
    assert [n for n, _ in printed_values(inputs)] == names


# -- a user-defined layout, end to end --------------------------------------------------------
def _boxes_and_flat_loss(labels, conv):
    """A made-up convention: truth as a padded box list in pixels plus a cell mask,
    predictions flattened; returns (box, obj, noobj) as a tuple."""
    import tensorflow as tf

    mask, boxes = labels["mask"], labels["boxes"]
    n, h, w, _ = conv.shape
    pred = tf.reshape(conv, [n, h, w, -1, 6])
    decoded = tf.concat([tf.sigmoid(pred[..., 0:2]), pred[..., 2:4]], axis=-1)
    box = tf.reduce_sum(mask[..., None] * tf.square(decoded - boxes))
    obj = tf.reduce_sum(
        mask * tf.nn.sigmoid_cross_entropy_with_logits(tf.ones_like(mask), pred[..., 4])
    )
    noobj = tf.reduce_sum(
        (1 - mask) * tf.nn.sigmoid_cross_entropy_with_logits(tf.zeros_like(mask), pred[..., 4])
    )
    return box, obj, noobj


def _encode_made_up(scene, frame):
    """Cell-offset centres and log sizes (anchors 1.0) where an object is, zero elsewhere."""
    truth = scene.truth()
    mask = truth[..., 4]
    log_wh = np.log(np.where(mask[..., None] > 0, truth[..., 2:4], 1.0))
    return {"mask": mask, "boxes": np.concatenate([truth[..., 0:2], log_wh], axis=-1)}


MADE_UP = Layout(
    "made-up",
    encode=_encode_made_up,
    call=lambda loss, truth, y_pred, frame: loss(truth, flat(y_pred)),
    returns=("xy_loss", "obj_loss", "noobj_loss"),
    codec={"cls": "sigmoid"},
)


def test_a_user_defined_layout_audits_a_loss_in_its_own_convention():
    from lossaudit import audit
    from lossaudit.settings import resolve

    report = audit(
        _boxes_and_flat_loss,
        GridSpec(batch=2, H=3, W=4, anchors=2, classes=1),
        settings=resolve("ci").replace(max_examples=10),
        layout=MADE_UP,
        only=[
            "coordinates.decreases_as_boxes_converge",
            "coordinates.gradient_flows",
            "objects.decreases_as_confidence_rises",
            "no_objects.ignores_object_anchors",
        ],
    )
    assert {r: report.components[r] for r in ("coordinates", "objects", "no_objects")} == {
        "coordinates": ["xy_loss"],
        "objects": ["obj_loss"],
        "no_objects": ["noobj_loss"],
    }
    assert {r.property: str(r.status) for r in report.results} == {
        "coordinates.decreases_as_boxes_converge": "pass",
        "coordinates.gradient_flows": "pass",
        "objects.decreases_as_confidence_rises": "pass",
        "no_objects.ignores_object_anchors": "pass",
    }
    assert any("called through layout 'made-up'" in note for note in report.notes)


def test_an_encoding_tensorflow_cannot_take_is_the_losses_error_not_a_crash():
    """The truth goes to TensorFlow once per scene, outside the loss call: an encoded value it
    cannot convert is still one error result, as any other failure of the first call."""
    from lossaudit import audit
    from lossaudit.settings import resolve

    def encode(scene, frame):
        return {**_encode_made_up(scene, frame), "extra": None}

    broken = dataclasses.replace(MADE_UP, name="made-up-broken", encode=encode)
    report = audit(
        _boxes_and_flat_loss,
        GridSpec(batch=2, H=3, W=4, anchors=2, classes=1),
        settings=resolve("ci").replace(max_examples=2),
        layout=broken,
    )
    (result,) = report.results
    assert str(result.status) == "error" and "the loss cannot be evaluated" in result.message
    assert "NoneType" in result.message


def test_a_tuple_return_without_names_says_how_to_name_it():
    from lossaudit import audit

    report = audit(
        _boxes_and_flat_loss,
        GridSpec(batch=1, H=2, W=2, anchors=1, classes=1),
        layout=dataclasses.replace(MADE_UP, returns=()),
        only=["total.finite"],
    )
    (result,) = report.results
    assert str(result.status) == "error"
    assert "--component-names" in result.message


# -- choosing a layout wrongly ----------------------------------------------------------------
def test_get_layout_names_the_built_in_ones():
    with pytest.raises(
        InvalidSpec, match="canonical, yad2k, keras-yolo3, yunyang, yolov3-tf2, keras-yolo2"
    ):
        get_layout("yad3k")
    with pytest.raises(InvalidSpec, match="not a Layout"):
        get_layout("os.path:join")


def test_a_layout_by_reference_is_written_back_as_that_reference(tmp_path, monkeypatch):
    (tmp_path / "my_layouts.py").write_text(
        "from lossaudit.layouts import Layout, flat\n"
        "mine = Layout('mine', lambda s, f: {'t': s.truth()},\n"
        "              lambda loss, t, p, f: loss(t['t'], flat(p)))\n"
    )
    monkeypatch.chdir(tmp_path)
    options = LossOptions.from_table({"layout": "my_layouts:mine"}, where="pyproject.toml")
    assert options.layout.name == "my_layouts:mine"
    assert options.to_flags() == ["--layout", "my_layouts:mine"]


def test_anchors_in_the_layouts_unit_from_a_file():
    options = LossOptions.from_table(
        {"layout": "yad2k", "grid": 13, "anchors-file": str(ROOT / YAD2K_ANCHORS)}, where="t"
    )
    assert options.spec.anchors == 5
    np.testing.assert_allclose(options.codec.anchor(0), (1.08 / 13, 1.19 / 13))
    assert options.to_flags()[:4] == ["--grid", "13", "--anchors", "5"]
    assert "1.08,1.19" in options.to_flags()


def _report_json(tmp_path, target, *flags):
    """``lossaudit report TARGET FLAGS --profile ci --format json`` in a subprocess, as a user
    runs it from another directory; the report as a dict (exit code 0 asserted)."""
    import json

    out = tmp_path / "report.json"
    argv = [sys.executable, "-m", "lossaudit.cli", "report", target, *flags]
    argv += ["--profile", "ci", "--format", "json", "--out", str(out)]
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(out.read_text())


@pytest.mark.slow  # an audit in a subprocess
def test_yad2k_cli_without_a_wrapper(tmp_path):
    """The done-means command: a YAD2K-style file audited as it is, per component."""
    report = _report_json(
        tmp_path,
        f"{ROOT / 'fixtures/losses/yad2k_style.py'}:yolo_loss",
        *("--layout", "yad2k", "--grid", "5", "--anchors-file", str(ROOT / YAD2K_ANCHORS)),
        *("--only", "coordinates.decreases_as_boxes_converge"),
        *("--only", "confidence.decreases_as_confidence_rises", "--max-examples", "5"),
    )
    assert report["components"]["coordinates"] == ["box_coord_loss"]
    assert report["components"]["confidence"] == ["conf_loss"]
    assert report["spec"]["anchors"] == 5


# -- degenerate truth boxes: every built-in encoding stays finite ----------------------------------
#: Options that make a frame for each built-in layout (a multi-scale one at its middle scale).
LAYOUT_FRAMES = {
    "canonical": {},
    "yad2k": {"anchor-sizes": ["1.08,1.19", "3.42,4.41"]},
    "keras-yolo3": {"scales": "2x3,4x6,8x12", "anchors-file": str(ROOT / KY3_ANCHORS_FILE)},
    "yunyang": {
        "scales": "8,4,2",
        "anchors-file": str(ROOT / "fixtures/anchors/yunyang_grid_cells.txt"),
    },
    "yolov3-tf2": {"grid": 4, "anchor-sizes": ["0.2,0.3", "0.5,0.4"]},
    "keras-yolo2": {"anchor-sizes": ["1.08,1.19", "3.42,4.41"]},
}


@pytest.mark.parametrize("name", list(BUILT_IN))
def test_every_layout_encodes_degenerate_boxes_without_dividing_by_zero(name):
    """A truth box of size 0 or on the image border (``--degenerate-boxes``) is encoded as
    finite numbers by every built-in convention: YAD2K's matching box holds log(w * W /
    anchor), which its own preprocessing leaves at -inf for w = 0; the layout floors w at
    1e-12 grid cells, so what is audited is the loss, not the encoding."""
    from hypothesis import HealthCheck, settings

    table = {"layout": name, **LAYOUT_FRAMES[name]}
    options = LossOptions.from_table(table, where=name)
    frames = options.scale_frames()
    frame = frames[len(frames) // 2]

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(degenerate_scenes(frame.spec))
    def encodes_finite(scene):
        encoded = BUILT_IN[name].encode(scene, frame)
        for key, array in encoded.items():
            assert np.isfinite(array).all(), (key, scene)

    encodes_finite()


# -- the yad2k fixtures, audited as written (slow) -----------------------------------------------
def _audit_fixture(fixture, only=None, **changes):
    from lossaudit import audit
    from lossaudit.settings import resolve
    from lossaudit.targets import load_target

    if "scales" in fixture.options:  # its grids are in the scales
        changes.pop("grid", None)
    table = {**fixture.options, **changes}
    if "anchors-file" in table:
        table["anchors-file"] = str(ROOT / table["anchors-file"])
    options = LossOptions.from_table(table, where=fixture.name)
    path, name = fixture.target.split(":")
    loss, target = load_target(f"{ROOT / path}:{name}")
    return audit(
        loss,
        options.spec,
        options.codec,
        settings=resolve("ci").replace(shrink=False),
        target=target,
        analyse_loss=False,
        only=only,
        **options.calling(),
    )


@pytest.mark.slow
@pytest.mark.parametrize("fixture", LAYOUT_CORRECT, ids=lambda f: f"{f.options['layout']}-{f.name}")
@pytest.mark.parametrize("shape", [{}, {"grid": 4, "classes": 3}], ids=["3x4-C1", "4x4-C3"])
def test_correct_layout_fixtures_raise_no_false_alarm(fixture, shape):
    report = _audit_fixture(fixture, **shape)
    bad = {r.property: r.message for r in report.results if str(r.status) in ("fail", "error")}
    assert not bad, bad
    warned = {r.property for r in report.results if str(r.status) == "warn"}
    by_design = set(fixture.warns) | {
        "classification.trains",
        "classification.single_class",
        "total.single_class",
    }
    assert warned <= by_design, warned - by_design


DEGENERATE = "total.finite_on_degenerate_boxes"
#: keras-yolo3's correct fixture, beside the catalogue's: it is audited on every scale.
KY3_CORRECT = KERAS_YOLO3_CORRECT


@pytest.mark.slow
@pytest.mark.parametrize(
    "fixture", [*LAYOUT_CORRECT, KY3_CORRECT], ids=lambda f: f"{f.options['layout']}-{f.name}"
)
@pytest.mark.parametrize("shape", [{}, {"grid": 4, "classes": 3}], ids=["3x4-C1", "4x4-C3"])
def test_correct_layout_fixtures_stay_finite_on_degenerate_boxes(fixture, shape):
    report = _audit_fixture(fixture, only=[DEGENERATE], **shape, **{"degenerate-boxes": True})
    (result,) = report.results
    assert str(result.status) == "pass", result.message


@pytest.mark.slow
@pytest.mark.parametrize("fixture", LAYOUT_BUGS, ids=lambda f: f"{f.options['layout']}-{f.name}")
def test_broken_layout_fixtures_fail_on_the_right_component(fixture):
    """Only the property that must catch the bug runs (the correct fixtures show that no other
    property raises a false alarm)."""
    report = _audit_fixture(fixture, only=[fixture.catches])
    status = {r.property: str(r.status) for r in report.results}
    assert status[fixture.catches] == "fail", {p: s for p, s in status.items() if s != "pass"}


# -- multi-scale: keras-yolo3 --------------------------------------------------------------------
KY3_ANCHORS = ROOT / KY3_ANCHORS_FILE


def _ky3(**table):
    return LossOptions.from_table(
        {"layout": "keras-yolo3", "anchors-file": str(KY3_ANCHORS), **table}, where="t"
    )


def test_keras_yolo3_frames_follow_the_repositorys_anchor_masks():
    options = _ky3(scales="2,4,8", classes=3)
    frames = options.scale_frames()
    assert [f.spec.H for f in frames] == [2, 4, 8] and {f.input_size for f in frames} == {(64, 64)}
    pixels = [f.anchors("pixels").round(3).tolist() for f in frames]
    assert pixels == [
        [[20, 18], [28, 30], [50, 45]],
        [[6, 9], [10, 8], [12, 16]],
        [[2, 3], [3, 5], [4, 4]],
    ]
    np.testing.assert_allclose(frames[2].all_anchors("pixels")[0], [2, 3], rtol=1e-6)
    assert options.spec.anchors == 3 and options.only_scale is None
    assert "--grid" not in options.to_flags() and "--scales" in options.to_flags()
    assert [f.spec.H for f in _ky3(scales="2,4,8", **{"only-scale": 2}).scale_frames()] == [8]


@given(st.data())
def test_keras_yolo3_truth_decodes_back_to_the_scene_on_its_scale(data):
    frames = _ky3(scales="2x3,4x6,8x12", classes=2, batch=2).scale_frames()
    frame = data.draw(st.sampled_from(frames))
    scene = data.draw(scenes(frame.spec, max_objects=5))
    encoded = BUILT_IN["keras-yolo3"].encode(scene, frame)
    assert sorted(encoded) == ["y_true_0", "y_true_1", "y_true_2"]
    for k in range(3):
        assert encoded[f"y_true_{k}"].shape == frame.spec_of(k).shape
        if k != frame.scale:
            assert not encoded[f"y_true_{k}"].any()
    y = encoded[f"y_true_{frame.scale}"]
    recovered = []
    for b, i, j, a in zip(*np.nonzero(y[..., 4]), strict=True):
        cx, cy, w, h = y[b, i, j, a, :4].astype(np.float64)
        cls = int(np.argmax(y[b, i, j, a, 5:]))
        spec = frame.spec
        recovered.append(
            Obj(int(b), int(i), int(j), int(a), cx * spec.W - j, cy * spec.H - i, w, h, cls)
        )
    _same_objects(recovered, scene.objects)


@pytest.mark.parametrize(
    "table, fragment",
    [
        ({}, "the 2 or 3 grids layout 'keras-yolo3' takes at once"),
        ({"scales": "13"}, "2 or 3 grids for layout 'keras-yolo3'"),
        ({"scales": "2,4,8", "grid": 4}, "the grids in scales only"),
        ({"scales": "2,4,8", "only-scale": 3}, "an index below 3"),
        ({"scales": "2,4", "anchors-file": None, "anchor-sizes": ["1,1"] * 4}, "9 anchors for 3"),
    ],
)
def test_multi_scale_options_wrong(table, fragment):
    table = {"layout": "keras-yolo3", "anchors-file": str(KY3_ANCHORS), **table}
    table = {k: v for k, v in table.items() if v is not None}
    with pytest.raises(InvalidSpec, match=re.escape(fragment)):
        LossOptions.from_table(table, where="t")


def test_canonical_takes_one_grid():
    with pytest.raises(InvalidSpec, match="1 grid for layout 'canonical'"):
        LossOptions.from_table({"scales": "13,26"}, where="t")


@pytest.mark.slow
@pytest.mark.parametrize(
    "table",
    [{"scales": "2,4,8"}, {"scales": "2x3,4x6,8x12", "classes": 3, "only-scale": 2}],
    ids=["square-C1-every-scale", "non-square-C3-finest"],
)
def test_keras_yolo3_correct_fixture_raises_no_false_alarm_on_any_scale(table):
    from lossaudit import audit
    from lossaudit.settings import resolve
    from lossaudit.targets import load_target

    options = _ky3(**table)
    loss, target = load_target(f"{ROOT / 'fixtures/losses/keras_yolo3_style.py'}:yolo_loss")
    report = audit(
        loss,
        options.spec,
        options.codec,
        settings=resolve("ci").replace(shrink=False, max_examples=8),
        target=target,
        analyse_loss=False,
        **options.calling(),
    )
    bad = {r.property: r.message for r in report.results if str(r.status) in ("fail", "error")}
    assert not bad, bad
    assert report.components["coordinates"] == ["xy_loss", "wh_loss"]
    assert report.notes[0].startswith("audited scale by scale")


# -- yunyang: one scale per call, pixels, label smoothing -------------------------------------------
YY_ANCHORS = ROOT / "fixtures" / "anchors" / "yunyang_grid_cells.txt"


@given(st.data())
def test_yunyang_label_decodes_back_to_the_scene(data):
    frames = LossOptions.from_table(
        {"layout": "yunyang", "scales": "8,4,2", "anchors-file": str(YY_ANCHORS), "classes": 3},
        where="t",
    ).scale_frames()
    frame = data.draw(st.sampled_from(frames))
    scene = data.draw(scenes(frame.spec, max_objects=5))
    encoded = BUILT_IN["yunyang"].encode(scene, frame)
    label, boxes = encoded["label"], encoded["bboxes"]
    stride = 64 / frame.spec.W
    recovered = []
    for b, i, j, a in zip(*np.nonzero(label[..., 4]), strict=True):
        x, y, w, h = label[b, i, j, a, :4].astype(np.float64)
        probs = label[b, i, j, a, 5:]
        assert abs(probs.sum() - 1.0) < 1e-5 and probs.max() == pytest.approx(0.99 + 0.01 / 3)
        cls = int(np.argmax(probs))
        recovered.append(
            Obj(int(b), int(i), int(j), int(a), x / stride - j, y / stride - i, w / 64, h / 64, cls)
        )
    _same_objects(recovered, scene.objects)
    assert boxes.shape == (frame.spec.batch, 150, 4)
    assert np.count_nonzero(boxes.any(axis=-1)) == len(scene.objects)


def test_yunyang_anchors_are_each_scales_grid_cells():
    frames = LossOptions.from_table(
        {"layout": "yunyang", "scales": "8,4,2", "anchors-file": str(YY_ANCHORS)}, where="t"
    ).scale_frames()
    assert [f.stride for f in frames] == [(8.0, 8.0), (16.0, 16.0), (32.0, 32.0)]
    np.testing.assert_allclose(frames[0].anchors("grid")[0], [1.25, 1.625])
    np.testing.assert_allclose(frames[2].anchors("pixels")[2], [11.65625 * 32, 10.1875 * 32])


def test_a_square_convention_gets_a_square_grid_or_a_clear_error():
    assert LossOptions.from_table({"layout": "yunyang"}, where="t").spec.H == 4
    with pytest.raises(
        InvalidSpec, match=r"layout 'yunyang' assumes square grids.*Pass e\.g\. --grid 5"
    ):
        LossOptions.from_cli(
            build_parser().parse_args(["report", "--layout", "yunyang", "--grid", "3x5"])
        )


# -- yolov3-tf2 and keras-yolo2 ------------------------------------------------------------------
@given(framed_scenes())
def test_yolov3_tf2_truth_decodes_back_to_the_scene(drawn):
    scene, frame = drawn
    spec = scene.spec
    y_true = YOLOV3_TF2.encode(scene, frame)["y_true"].astype(np.float64)
    assert y_true.shape == (*spec.shape[:4], 6)
    np.testing.assert_array_equal(y_true[..., 4], scene.object_mask())
    recovered = []
    for b, i, j, a in zip(*np.nonzero(y_true[..., 4]), strict=True):
        x1, y1, x2, y2, _, cls = y_true[b, i, j, a]
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        # The repository's own cell: the centre floor-divided by the cell size.
        assert (int(cx // (1 / spec.W)), int(cy // (1 / spec.H))) == (j, i)
        x, y = cx * spec.W - j, cy * spec.H - i
        recovered.append(Obj(int(b), int(i), int(j), int(a), x, y, x2 - x1, y2 - y1, int(cls)))
    _same_objects(recovered, scene.objects)
    assert not y_true[scene.object_mask() == 0].any()


@given(framed_scenes())
def test_keras_yolo2_truth_decodes_back_to_the_scene(drawn):
    scene, frame = drawn
    spec = scene.spec
    encoded = KERAS_YOLO2.encode(scene, frame)
    y_true = encoded["y_true"].astype(np.float64)
    assert y_true.shape == spec.shape
    np.testing.assert_array_equal(y_true[..., 4], scene.object_mask())
    recovered = []
    for b, i, j, a in zip(*np.nonzero(y_true[..., 4]), strict=True):
        gx, gy, gw, gh = y_true[b, i, j, a, :4]
        assert (int(np.floor(gx)), int(np.floor(gy))) == (j, i)  # absolute grid units
        cls = int(np.argmax(y_true[b, i, j, a, 5:]))
        assert y_true[b, i, j, a, 5:].sum() == 1
        recovered.append(
            Obj(int(b), int(i), int(j), int(a), gx - j, gy - i, gw / spec.W, gh / spec.H, cls)
        )
    _same_objects(recovered, scene.objects)
    # true_boxes: each image's boxes in grid units, in scene order, then zero rows.
    boxes = encoded["true_boxes"]
    assert boxes.shape[:4] == (spec.batch, 1, 1, 1) and boxes.shape[-1] == 4
    for b in range(spec.batch):
        mine = [o for o in scene.objects if o.b == b]
        expected = [(o.j + o.x, o.i + o.y, o.w * spec.W, o.h * spec.H) for o in mine]
        rows = boxes[b, 0, 0, 0]
        np.testing.assert_allclose(
            rows[: len(mine)], np.array(expected).reshape(-1, 4), rtol=1e-5, atol=1e-5
        )
        assert not rows[len(mine) :].any()


def test_yolov3_tf2_builds_the_loss_from_the_factory_once():
    made = []

    def YoloLoss(anchors, classes=80, ignore_thresh=0.5):
        made.append((np.asarray(anchors).tolist(), classes, ignore_thresh))
        return lambda y_true, y_pred: y_true

    frame = Frame(
        GridSpec(1, 4, 4, 2, 3),
        Codec(anchor_sizes=((0.25, 0.5), (0.5, 0.75))),
        keywords={"ignore_thresh": 0.7},
    )
    loss = YOLOV3_TF2.build(YoloLoss, frame)
    assert made == [([[0.25, 0.5], [0.5, 0.75]], 3, 0.7)]
    assert loss("t", None) == "t"
    built = made[0]

    def already_built(y_true, y_pred):
        return built

    assert YOLOV3_TF2.build(already_built, frame) is already_built  # used as it is


@pytest.mark.parametrize(
    "target, message",
    [
        (lambda anchors, classes: 3, "expected it to return loss"),
        (lambda anchors: None, "raised TypeError"),
    ],
    ids=["returns-a-number", "wrong-signature"],
)
def test_yolov3_tf2_says_what_to_point_at(target, message):
    from lossaudit.errors import TargetError

    with pytest.raises(TargetError, match=message) as info:
        YOLOV3_TF2.build(target, Frame(GridSpec(1, 4, 4, 1, 1)))
    assert "YoloLoss" in str(info.value)


def test_a_square_only_layout_refuses_a_non_square_grid():
    from lossaudit import audit

    with pytest.raises(InvalidSpec, match=r"assumes square grids.*received grid 3x4.*--grid 4"):
        audit(lambda y_true, y_pred: y_true, GridSpec(H=3, W=4), layout="yolov3-tf2")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "lossaudit.cli",
            "report",
            f"{ROOT / 'fixtures/losses/yolov3_tf2_style.py'}:YoloLoss",
            "--layout",
            "yolov3-tf2",
            "--grid",
            "13x9",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "assumes square grids" in proc.stderr and "--grid 13" in proc.stderr


class _NoConstructor:
    """A keras-yolo2-style model whose constructor must never run (it builds the network)."""

    coord_scale = 2.0  # the class's own value is kept

    def __init__(self):
        raise AssertionError("the constructor builds the network: never called")

    def custom_loss(self, y_true, y_pred):
        import tensorflow as tf

        return tf.reduce_sum(self.true_boxes) + 0 * tf.reduce_sum(y_pred)


def test_keras_yolo2_sets_the_objects_attributes_without_its_constructor():
    import tensorflow as tf

    frame = Frame(
        GridSpec(2, 3, 4, 2, 1),
        Codec(anchor_sizes=((0.25, 0.5), (0.5, 1.0))),
        keywords={"warmup_bs": 7},
    )
    loss = KERAS_YOLO2.build(_NoConstructor.custom_loss, frame)
    owner = loss.__self__
    assert isinstance(owner, _NoConstructor)
    assert (owner.coord_scale, owner.object_scale, owner.warmup_bs, owner.debug) == (
        2.0,
        5.0,
        7,
        True,
    )
    scene = Scene(frame.spec, (Obj(1, 2, 3, 0, 0.5, 0.5, 0.25, 1 / 3, 0),))
    truth = {k: tf.constant(v) for k, v in KERAS_YOLO2.encode(scene, frame).items()}
    value = KERAS_YOLO2.call(loss, truth, tf.zeros(frame.spec.shape), frame)
    assert float(value) == pytest.approx(3.5 + 2.5 + 1.0 + 1.0)
    assert (owner.grid_h, owner.grid_w, owner.nb_box, owner.nb_class, owner.batch_size) == (
        3,
        4,
        2,
        1,
        2,
    )
    np.testing.assert_allclose(owner.anchors, [1.0, 1.5, 2.0, 3.0])  # grid cells, flat
    np.testing.assert_array_equal(owner.class_wt, [1.0])


def test_keras_yolo2_wants_a_method():
    from lossaudit.errors import TargetError

    with pytest.raises(TargetError, match=r"Class\.custom_loss"):
        KERAS_YOLO2.build(lambda y_true, y_pred: y_true, Frame(GridSpec()))


def test_keras_yolo2_square_only_loss_says_to_use_a_square_grid():
    """The repository's transposed cell grid fails on H != W: the error says why and what to do."""
    from lossaudit import audit
    from lossaudit.targets import load_target

    loss, _ = load_target(
        f"{ROOT / 'fixtures/losses/keras_yolo2_style.py'}:SquareCellGrid.custom_loss"
    )
    report = audit(
        loss,
        GridSpec(batch=1, H=3, W=4, anchors=1, classes=1),
        layout="keras-yolo2",
        only=["total.finite"],
    )
    (result,) = report.results
    assert str(result.status) == "error"
    assert "assumes a square grid" in result.message and "--grid 4" in result.message
    # TensorFlow's own error, not AutoGraph's "in user code" rewrite of it
    assert "Dimension 1 in both shapes must be equal" in result.message


@pytest.mark.slow  # an audit in a subprocess
def test_yolov3_tf2_cli_without_a_wrapper(tmp_path):
    """The done-means command for yolov3-tf2: the factory audited as it is, anchors once."""
    report = _report_json(
        tmp_path,
        f"{ROOT / 'fixtures/losses/yolov3_tf2_style.py'}:YoloLoss",
        *("--layout", "yolov3-tf2", "--grid", "13"),
        *("--anchor-sizes", "0.0240,0.0312", "0.0385,0.0721", "0.0793,0.0553"),
        *("--only", "total.decreases_as_boxes_converge", "--max-examples", "3"),
    )
    assert report["spec"]["anchors"] == 3 and report["spec"]["H"] == report["spec"]["W"] == 13
    assert [r["status"] for r in report["results"]] == ["pass"]
