"""The mutation benchmark's mutator (``benchmarks/mutation.py``): no TensorFlow, no audits."""

from __future__ import annotations

import ast
import functools
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks" / "mutation.py"


def _load():
    spec = importlib.util.spec_from_file_location("mutation_bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


mb = _load()

SNIPPET = '''\
"""A loss."""

import tensorflow as tf

from .helpers import thing
from .. import other

SCALE = 5.0


def _bce(labels, logits):
    return tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits)


def unused(y):
    return y * 3


def loss(y_true, y_pred):
    """Docstring with 1 number."""
    mask = tf.cast(y_true[..., 4] > 0.5, tf.float32)
    conf = tf.sigmoid(y_pred[..., 4])
    err = tf.reduce_sum(tf.square(y_pred[..., 0:2] - y_true[..., 0:2]), axis=-1)
    box = tf.where(mask > 0, err, 0.0)
    return SCALE * tf.reduce_mean(mask * box) + _bce(mask, conf) - x - a * (b + c)
'''


@functools.cache
def _all() -> tuple:
    return tuple(mb.mutations(SNIPPET, "pkg/snippet.py"))


def _edits(operator: str) -> dict[str, str]:
    """``variant@line:col-end_line:end_col -> mutated line`` for one operator on the
    snippet's ``loss``."""
    out = {}
    for edit in mb.mutations(SNIPPET, "pkg/snippet.py", ["loss"], [operator]):
        line = mb.splice(SNIPPET, edit).splitlines()[edit.line - 1].strip()
        span = f"{edit.line}:{edit.col}-{edit.end_line}:{edit.end_col}"
        out[f"{edit.variant}@{span}"] = line
    return out


def test_binop_swaps_operators():
    lines = _edits("binop")
    assert lines["Mult->Div@25:11-25:45"].startswith("return SCALE / tf.reduce_mean(mask * box)")
    assert "tf.reduce_mean(mask / box)" in lines["Mult->Div@25:34-25:44"]
    assert lines["Add->Sub@25:11-25:64"].endswith("box) - _bce(mask, conf) - x - a * (b + c)")
    assert lines["Sub->Add@25:11-25:82"].endswith("- x + a * (b + c)")


def test_drop_term_and_factor_keep_one_side_with_parentheses_when_needed():
    terms = _edits("drop_term")
    assert terms["left@25:76-25:81"].endswith("- x - a * (b)")  # the source's own parentheses stay
    assert terms["right@25:11-25:68"] == "return -x - a * (b + c)"
    # a - b drops b, or keeps -b
    assert terms["right@23:34-23:69"].startswith("err = tf.reduce_sum(tf.square(-y_true[..., 0:2])")
    factors = _edits("drop_factor")
    # a * (b + c) -> (b + c): its parentheses come back, else "- b + c" would parse otherwise
    assert factors["right@25:71-25:82"].endswith("- x - (b + c)")
    assert factors["left@25:11-25:45"] == "return SCALE + _bce(mask, conf) - x - a * (b + c)"


def test_reduce_swap_and_axis():
    swaps = _edits("reduce_swap")
    assert any("tf.reduce_mean(tf.square(" in line for line in swaps.values())
    assert any("SCALE * tf.reduce_sum(mask * box)" in line for line in swaps.values())
    axes = _edits("reduce_axis")
    assert sorted(k.split("@")[0] for k in axes) == ["changed", "removed"]
    assert any(line.endswith("axis=-2)") for line in axes.values())
    assert any(line.endswith("y_true[..., 0:2]))") for line in axes.values())


def test_swap_args_keywords_helpers_and_where():
    swaps = _edits("swap_args")
    assert any("_bce(conf, mask)" in line for line in swaps.values())
    assert any("tf.where(mask > 0, 0.0, err)" in line for line in swaps.values())
    helper = mb.mutations(SNIPPET, "pkg/snippet.py", ["_bce"], ["swap_args"])
    assert [e.variant for e in helper] == ["labels<->logits"]
    assert "labels=logits, logits=labels" in mb.splice(SNIPPET, helper[0])


def test_activation_replacements_keep_the_tensorflow_spelling():
    lines = _edits("activation")
    conf = {k.split("@")[0]: v for k, v in lines.items() if v.startswith("conf =")}
    assert conf == {
        "sigmoid->softmax": "conf = tf.nn.softmax(y_pred[..., 4])",
        "sigmoid->exp": "conf = tf.exp(y_pred[..., 4])",
        "sigmoid->identity": "conf = y_pred[..., 4]",
    }
    assert "square->abs" in {k.split("@")[0] for k in lines}


def test_constants_compare_and_module_constants():
    constants = mb.mutations(SNIPPET, "pkg/snippet.py", ["loss", "SCALE"], ["constant"])
    by_where = {(e.function, e.variant, e.description) for e in constants}
    assert ("SCALE", "x2", "5.0 -> 10.0") in by_where
    assert ("loss", "x2", "0.5 -> 1.0") in by_where and ("loss", "1", "0 -> 1") in by_where
    assert ("loss", "x2", "-1 -> -2") in by_where and ("loss", "+1", "-1 -> 0") in by_where
    assert not any(d == "1 -> 0" for _, _, d in by_where)  # the docstring's 1 is not code
    compares = {e.variant for e in mb.mutations(SNIPPET, "s.py", ["loss"], ["compare"])}
    assert compares == {">->>=", ">-><"}


def test_every_mutant_parses_to_the_mutated_tree_and_ids_are_stable():
    first = _all()
    again = mb.mutations(SNIPPET, "pkg/snippet.py")
    assert [e.site for e in first] == [e.site for e in again]
    assert first == tuple(again)
    assert len({e.site for e in first}) == len(first)
    one = mb.mutations(SNIPPET, "pkg/snippet.py", operators=["constant"])
    assert {e.site for e in one} <= {e.site for e in first}
    for edit in first:
        mutated = mb.splice(SNIPPET, edit)
        compile(mutated, "mutant.py", "exec")
        assert mutated != SNIPPET
    assert all(e.site.startswith("snippet:") for e in first)


def test_reachable_follows_helpers_and_constants_only():
    tree = ast.parse(SNIPPET)
    assert mb.reachable(tree, "loss") == ["SCALE", "_bce", "loss"]
    with pytest.raises(KeyError):
        mb.reachable(tree, "missing")


def test_relative_imports_become_absolute():
    out = mb.absolute_imports(SNIPPET, "fixtures.losses.snippet")
    assert "from fixtures.losses.helpers import thing" in out
    assert "from fixtures import other" in out
    compile(out, "x.py", "exec")


def test_sampling_is_stable_per_mutant():
    edits = _all()
    mutants = [mb.Mutant("a", "loss", (), e) for e in edits] + [
        mb.Mutant("b", "loss", (), e) for e in edits
    ]
    picked = mb.select(mutants, sample=5, seed=3)
    assert len(picked) == 5 and picked == mb.select(list(reversed(mutants)), sample=5, seed=3)[::-1]
    per = mb.select(mutants, per_loss=2, seed=3)
    assert sorted(m.fixture for m in per) == ["a", "a", "b", "b"]
    assert mb.select(mutants, only=[mutants[7].id]) == [mutants[7]]


def test_classification_is_relative_to_the_original():
    baseline = {"verdicts": {"a": "pass", "b": "warn", "c": "pass"}}
    assert mb.classify_class({"verdicts": {"a": "fail", "b": "warn"}}, baseline)[0] == "killed"
    assert mb.classify_class({"verdicts": {"a": "pass", "b": "warn"}}, baseline)[0] == "survived"
    assert mb.classify_class({"verdicts": {"c": "warn"}}, baseline) == ("warned", {"warn": ["c"]})
    assert mb.classify_class({"verdicts": {"c": "error"}}, baseline)[0] == "error"
    assert mb.classify_class({"equivalent": True}, baseline)[0] == "equivalent"
    record = {"loss": "l", "classes": {"1": {"equivalent": True}, "3": {"verdicts": {"a": "fail"}}}}
    assert mb.classify(record, {"l": {"3": baseline}}) == "killed"


def test_importing_the_benchmark_does_not_import_tensorflow():
    code = (
        "import importlib.util, sys; "
        f"s = importlib.util.spec_from_file_location('m', {str(BENCH)!r}); "
        "m = importlib.util.module_from_spec(s); sys.modules['m'] = m; s.loader.exec_module(m); "
        "assert 'tensorflow' not in sys.modules and 'numpy' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


# -- layout fixtures ---------------------------------------------------------------------------
def test_layout_fixtures_are_selected_by_unambiguous_names():
    names = [f.name for f in mb.all_losses()]
    assert len(set(names)) == len(names)
    canonical = [n for n in names if "/" not in n]
    assert "mse_loss" in canonical and "yolo_loss" not in canonical
    assert {
        "yad2k/yolo_loss",
        "yad2k/yolo_loss_rescored",
        "yad2k/keras2.yolo_loss",
        "yolov3-tf2/YoloLoss",
        "keras-yolo2/YOLO",
        "yunyang/compute_loss",
        "keras-yolo3/yolo_loss",
    } <= set(names)
    (ky3,) = mb._fixtures(["keras-yolo3/yolo_loss"])
    assert ky3.options["scales"] == "2,4,8" and ky3.entry == "yolo_loss" and not ky3.codec
    with pytest.raises(SystemExit, match="unknown loss"):
        mb._fixtures(["yolo_loss"])


def test_a_method_entry_reaches_its_class_and_layout_ids_are_stable():
    (yolo,) = mb._fixtures(["keras-yolo2/YOLO"])
    first, sources = mb.enumerate_mutants([yolo], ["compare"])
    again, _ = mb.enumerate_mutants([yolo], ["compare"])
    assert [m.id for m in first] == [m.id for m in again]
    assert len({m.id for m in first}) == len(first)
    assert {m.edit.function for m in first} == {"YOLO._loss"}
    tree = ast.parse(sources[yolo.target.split(":")[0]])
    assert mb.reachable(tree, "YOLO") == ["IGNORE_IOU", "WH_CLIP", "_iou", "YOLO"]
    assert all(m.id.startswith("keras-yolo2/YOLO/keras_yolo2_style:") for m in first)
    assert {m.entry for m in first} == {"YOLO.custom_loss"}
    # The reasons file is keyed by site: the loss's own slash stays out of it.
    assert mb._site({"id": first[0].id, "loss": yolo.name}) == first[0].edit.site
    for m in first:
        compile(mb.mutated_source(m, sources), "mutant.py", "exec")


def test_tuple_constants_are_mutated_under_each_name():
    source = "A, B = 5.0, 1.0\n\n\ndef loss(x):\n    return A * x\n"
    assert mb.reachable(ast.parse(source), "loss") == ["A", "loss"]
    edits = mb.mutations(source, "s.py", ["A", "loss"], ["constant"])
    assert {(e.function, e.description) for e in edits} == {
        ("A", "5.0 -> 10.0"),
        ("A", "5.0 -> 6.0"),
    }
    assert mb.splice(source, edits[0]).startswith("A, B = 10.0, 1.0\n")
    assert {e.function for e in mb.mutations(source, "s.py", operators=["constant"])} == {"A", "B"}


def test_layout_check_grids_are_grids_the_layout_takes():
    from lossaudit.spec import GridSpec

    spec = GridSpec(batch=2, H=3, W=4, anchors=2, classes=1)
    grids = mb.layout_check_grids(spec, square=False, multi_scale=False)
    assert [(g.batch, g.H, g.W, g.anchors) for g in grids] == [(2, 3, 4, 2), (3, 2, 5, 2)]
    square = spec.replace(H=4, W=4)
    grids = mb.layout_check_grids(square, square=True, multi_scale=False)
    assert [(g.H, g.W) for g in grids] == [(4, 4), (3, 3)]
    grids = mb.layout_check_grids(spec.replace(H=8, W=8), square=False, multi_scale=True)
    assert [(g.batch, g.H, g.W) for g in grids] == [(2, 8, 8), (3, 8, 8)]


@pytest.mark.slow
def test_a_layout_mutant_is_checked_through_its_layout(tmp_path):
    """The equivalence check of yolov3-tf2's factory (built by its layout, square grids): an edit
    in a branch only a bug takes is equivalent, one in the xy term is not."""
    (loss,) = mb._fixtures(["yolov3-tf2/YoloLoss"])
    mutants, sources = mb.enumerate_mutants([loss], ["binop"])
    by_site = {m.edit.site.split(":", 2)[2]: m for m in mutants}
    original = mb._load(loss.target)[0]
    task = {"layout": loss.options, "codec": {}}
    cases, evaluate = mb._check(task, 1)
    assert {(c.spec.H, c.spec.W) for c in cases} == {(4, 4), (3, 3)}
    reference = evaluate(original)
    outcome = {}
    for where in ("85:33-85:69:binop:Sub->Add", "83:65-83:82:binop:Sub->Add"):
        mutant = by_site[where]
        path = tmp_path / where.replace(":", "_").replace(">", "") / "yolov3_tf2_style.py"
        path.parent.mkdir()
        path.write_text(mb.mutated_source(mutant, sources), encoding="utf-8")
        outcome[where] = mb.compare_evaluations(
            evaluate(mb._load(f"{path}:{mutant.entry}")[0]), reference, cases
        )
    assert outcome["85:33-85:69:binop:Sub->Add"] == ""  # the exp_sizes branch is never taken
    assert "total" in outcome["83:65-83:82:binop:Sub->Add"]
