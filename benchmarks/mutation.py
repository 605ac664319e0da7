"""Mutation benchmark: how many small wrong edits of the correct fixture losses the audit catches.

Run::

    python benchmarks/mutation.py                          # 15 per loss (stable), 240: ~2 h
    python benchmarks/mutation.py --json out.json --resume # the same, kept and continued if stopped
    python benchmarks/mutation.py --per-loss 0 --json all.json --resume   # all 3979, ~30 h
    python benchmarks/mutation.py --losses yad2k/yolo_loss,keras-yolo3/yolo_loss  # these only
    python benchmarks/mutation.py --per-loss 0 --sample 40 --seed 1       # another stable slice
    python benchmarks/mutation.py --list --losses mse_loss # the mutants and their ids, nothing run
    python benchmarks/mutation.py --only ID                # one mutant (ids as --list prints them)

Not run in CI. Each correct fixture loss (the canonical ones of ``fixtures.catalog.CORRECT``, then
the layout ones, below) is parsed with the standard library's ``ast``; every function its entry
point reaches inside its own module (helpers it calls, their helpers, default arguments, and
module-level numeric constants they read, ``A, B = 5, 1`` included; an entry that is a method,
``YOLO.custom_loss``, reaches its whole class) is mutated one first-order edit at a time:

- ``binop``: ``+ <-> -``, ``* <-> /``;
- ``drop_term``: ``a + b -> a`` and ``-> b`` (``a - b -> a`` and ``-> -b``);
- ``drop_factor``: ``a * b -> a`` and ``-> b``, ``a / b -> a`` (a mask, weight or normaliser);
- ``reduce_swap``: ``reduce_sum <-> reduce_mean``, ``reduce_max <-> reduce_min`` (and the
  ``sum/mean/max/min`` of ``K.*`` and ``keras.ops``);
- ``reduce_axis``: an ``axis`` argument removed, or changed (``k -> k + 1``, ``-k -> -k - 1``, a
  list loses its last axis);
- ``swap_args``: the first two arguments of a binary call swapped (``labels=``/``logits=``,
  ``binary_crossentropy``, ``squared_difference``, ``divide_no_nan``, the module's own helpers),
  and the two branches of ``tf.where``;
- ``activation``: ``sigmoid``, ``softmax``, ``exp``, ``relu``, ``tanh``, ``sqrt``, ``square``,
  ``log``, ``abs`` replaced by a sibling or by the identity;
- ``constant``: a numeric literal ``0 -> 1``, ``1 -> 0`` and ``-> 2``, else ``x -> 2x`` and
  ``-> x + 1`` (slice bounds and channel indices included);
- ``compare``: ``< <-> <=``, ``> <-> >=``, ``== <-> !=``, and the direction flipped.

**Layout fixtures**, correct losses written in a public repository's own calling convention
(``fixtures.catalog.LAYOUT_CORRECT``: YAD2K's, its Keras 2 spelling, yolov3-tf2's factory,
keras-yolo2's method, YunYang's; and keras-yolo3's ``KERAS_YOLO3_CORRECT``), are mutated the same
way. Each is named ``LAYOUT/NAME`` (``yad2k/yolo_loss``, ``yad2k/keras2.yolo_loss``,
``yolov3-tf2/YoloLoss``, ``keras-yolo3/yolo_loss``: no canonical name has a slash) and carries
its options table, as ``tests/test_layouts.py`` audits it (``layout``, anchors or
``anchors-file``, ``scales``, ``only-scale``, ``loss-arg``). At ``C`` classes the options are that
table with ``classes = C``, and with more than one class ``grid = 4`` (the test's ``{}`` and
``{"grid": 4, "classes": 3}``: 3x4, or the table's own grid, at 1 class and 4x4 at 3; a
multi-scale fixture keeps its scales' grids). The equivalence check and the audit both call the
loss through its layout with those options (:class:`~lossaudit.options.LossOptions`: frames,
anchors in the layout's unit, the loss built by the layout from a factory or a method); the
mutated module is loaded as the original is, by ``lossaudit.targets.load_target``, so the TF1 /
Keras 2 bridge mends the Keras 2 spelling of each mutant too.

A mutant is one (fixture, edit) pair: an edit of a helper shared by several fixtures is run
against every fixture that reaches it, so per-loss rows are comparable (a ``_prepare`` edit counts
once per loss). Its id is ``FIXTURE/FILESTEM:FUNCTION:LINE:COL-END_LINE:END_COL:OPERATOR:VARIANT``
(the span of the edited expression in the original file; a layout fixture's ``FIXTURE`` has a
slash of its own), stable across runs; ``--only ID`` reruns one. The mutated module is the
original text with that one expression replaced (parenthesised when the parse needs it; checked
by comparing the parsed tree with the mutated one), relative imports made absolute, written to a
temporary directory and loaded as a ``file.py:name`` target.

For each class count of ``--classes`` (default 1 and 3) a mutant is first checked for
**equivalence**: the original and the mutant are evaluated by lossaudit's adapter (graph mode) on
the same fixed set of canonical cases (two grids, 2x3x4x2 and 3x2x5x3; scenes of 0 to 4 objects
with normal and tiny boxes; typical untrained, perfect, near-truth, uniform in [-4, 4], +-100
saturated predictions, and empty anchors predicting a truth's box so an ignore-by-IoU rule
fires; 96 cases; a layout fixture: the same scenes and predictions on each frame its audit
audits, see below), comparing every reported component's value, its gradient with respect to
``y_pred`` and whether that gradient is connected, with
``|a - b| <= 1e-5 * |b| + 1e-6 * max(1, max |b|)`` (NaN matching NaN). Equal everywhere means
``equivalent`` at that class count: it behaves as the original on the domain the audit draws
from (differences only outside it, such as a log floor of 1e-9 never reached by boxes of at
least 1e-4, cannot be caught by any property). A mutant that raises in the check is not
equivalent. A non-equivalent mutant is audited with the fixture's codec, ``GridSpec(classes=C)``
(batch 2, 3x4 grid, 2 anchors), the ``ci`` profile (15 derandomized examples) with shrinking off,
and without the analysis step (curves, gradient view, balance: it decides no verdict; measured
below). A 1-class audit of a softmax-class fixture is run too.

A layout fixture's check runs on every frame its audit audits (each scale of a multi-scale loss,
in turn with the others empty, or its ``only-scale``): on each, the cases above with the frame's
anchors and codec on two grids the layout takes, the frame's grid at batch 2 and at batch 3 one
row less and one column more (3x4 -> 2x5; a square-only layout: 4x4 -> 3x3; a scale of a
multi-scale loss: its own grid again), 96 cases per frame (yunyang's one scale: 96;
keras-yolo3's three: 288). Its audit is ``lossaudit.audit`` with the options at ``C`` classes
(spec, codec, layout, scales...), the same ``ci`` settings, and its baseline is the original's
audit with the same options. A mutant whose factory or method the layout cannot build raises in
the check (not equivalent) and errors in the audit.

Each audit is compared with the original fixture's own audit at the same class count (the
*baseline*, run once per fixture and class count): a correct fixture warns by design in places
(``mse_loss``'s saturated squared error, a one-class softmax), so only verdicts the original does
not have count. Columns:

- ``mutants``: (fixture, edit) pairs selected;
- ``equivalent``: equivalent at every class count (never audited);
- ``killed``: a property the original passes fails at some class count;
- ``error``: no new failure, but the audit reports an error the original does not have (the
  mutant raises, returns NaN or something unusable, cannot be imported or built);
- ``warned``: only new warnings (warnings are not kills);
- ``survived``: every verdict as the original's at every audited class count;
- ``kill rate``: (killed + error) / (mutants - equivalent).

A mutant's overall status is the worst over its class counts in the order killed, error, warned,
survived, equivalent (equivalent at 1 class and killed at 3 is killed). The JSON (``--json``,
written atomically after every mutant; ``--resume`` continues from it) keeps every mutant's id,
loss, operator, description, diff line(s), per-class result (equivalence check, failed, warned
and errored properties, seconds) and the baselines. The printed report ends with every survivor,
warned-only and equivalent mutant and its diff; a survivor's reason (what the edit changes and
which behaviour of the loss it breaks, if any) is read from ``benchmarks/mutation_survivors.toml``
by edit site, and the run says how many survivors have none.

Audits run in a worker process (``--jobs`` of them, default 1) that imports TensorFlow once and is
replaced every ``--restart-every`` tasks to bound its memory; this module imports no TensorFlow.

Cost, measured on the shared 2-core machine at a load average of 2.5 to 5, one job, niced: 17 s
per mutant on average over the canonical fixtures' default 120 (27 s over a 40-mutant slice under
more load), both class counts: about 1 s for the equivalence check, 7 to 25 s per audit (the
IoU-masked ``bce_loss``, ``smoothed_bce_loss`` and ``giou_loss`` the slowest), 1 to 10 s for a
mutant that raises on its first call; plus one baseline audit per loss and class count (16
audits, about 5 minutes). Those 120 took 38.5 minutes; their 1442 would take 7 to 11 hours, hence
the default stable sample of 15 per loss. The analysis step would add 2 to 4 s per audit
(``identity_mse_loss``: 10 to 12 s per audit with it, 7 to 11 s without).

Layout fixtures, measured on 6 mutants (load 0.6 to 2, one job, niced): a single-scale one 17 to
36 s per audited mutant (check 1 to 2 s, audit 7 to 15 s per class count), 1.5 s for an
equivalent one, baselines 9 to 16 s per audit; keras-yolo3, audited scale by scale, 138 s per
mutant (check 8 to 16 s and audit 52 to 54 s per class count) and 68 to 76 s per baseline audit.
From these, the default sample's 120 layout mutants should add about 70 minutes (keras-yolo3's
15 about half of it) to the canonical 38.5, and all 2537 about 20 to 25 hours: estimates, not a
measured run.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import copy
import datetime
import difflib
import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

OPERATORS = (
    "binop",
    "drop_term",
    "drop_factor",
    "reduce_swap",
    "reduce_axis",
    "swap_args",
    "activation",
    "constant",
    "compare",
)
#: Default cap of mutants per loss: every mutant (3979, about 30 hours at 1 and 3 classes on one
#: shared core; the canonical fixtures' 1442, 7 to 11 hours) is ``--per-loss 0``; 15 per loss
#: (240; the canonical 120 ran in 38.5 minutes) about 2 hours.
PER_LOSS = 15
#: Overall statuses, worst (for the loss: best caught) first; see the module docstring.
STATUSES = ("killed", "error", "warned", "survived", "equivalent")


# -- the mutator ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Edit:
    """One first-order edit of a module: the expression at ``line:col .. end_line:end_col`` (1-based
    lines, 0-based columns, as ``ast`` gives them) replaced by ``replacement`` (source text)."""

    file: str
    function: str
    line: int
    col: int
    end_line: int
    end_col: int
    operator: str
    variant: str
    description: str
    replacement: str

    @property
    def site(self) -> str:
        """Stable id of the edit: ``FILESTEM:FUNCTION:LINE:COL-END_LINE:END_COL:OPERATOR:VARIANT``
        (the span of the original expression: two edits may start at the same place)."""
        stem = Path(self.file).stem
        span = f"{self.line}:{self.col}-{self.end_line}:{self.end_col}"
        return f"{stem}:{self.function}:{span}:{self.operator}:{self.variant}"


#: Pairs a binary operator is swapped with.
_BINOP_SWAP = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult}
_OP_NAME = {ast.Add: "Add", ast.Sub: "Sub", ast.Mult: "Mult", ast.Div: "Div"}
_REDUCE_SWAP = {
    "reduce_sum": "reduce_mean",
    "reduce_mean": "reduce_sum",
    "reduce_max": "reduce_min",
    "reduce_min": "reduce_max",
}
#: ``K.sum`` / ``keras.ops.sum`` spellings (never a ``tf.*`` name: ``tf.math.sum`` does not exist).
_KERAS_REDUCE_SWAP = {"sum": "mean", "mean": "sum", "max": "min", "min": "max"}
#: Calls whose ``axis`` (keyword or second positional argument) is a reduction axis.
_AXIS_CALLS = {
    *_REDUCE_SWAP,
    *_KERAS_REDUCE_SWAP,
    "reduce_prod",
    "reduce_logsumexp",
    "reduce_any",
    "reduce_all",
    "prod",
    "logsumexp",
    "softmax",
    "log_softmax",
    "argmax",
    "argmin",
    "norm",
}
#: Calls whose first two positional arguments play different roles.
_BINARY_CALLS = {
    "binary_crossentropy",
    "categorical_crossentropy",
    "sparse_categorical_crossentropy",
    "binary_focal_crossentropy",
    "squared_difference",
    "mean_squared_error",
    "mean_absolute_error",
    "divide_no_nan",
    "divide",
    "truediv",
    "subtract",
    "pow",
    "huber",
    "log_loss",
}
#: Keyword pairs swapped as the first two arguments of a binary loss.
_KEYWORD_PAIRS = (("labels", "logits"), ("y_true", "y_pred"), ("target", "output"))
#: Each activation's replacements (``identity`` keeps the argument).
_ACTIVATIONS = {
    "sigmoid": ("softmax", "exp", "identity"),
    "softmax": ("sigmoid", "identity"),
    "exp": ("sigmoid", "identity"),
    "relu": ("abs", "identity"),
    "tanh": ("sigmoid", "identity"),
    "softplus": ("relu", "identity"),
    "sqrt": ("square", "identity"),
    "square": ("abs", "identity"),
    "log": ("identity",),
    "abs": ("square", "identity"),
}
#: TensorFlow spelling of each activation (after the module's own name for tensorflow).
_TF_SPELLING = {
    "sigmoid": "sigmoid",
    "softmax": "nn.softmax",
    "exp": "exp",
    "relu": "nn.relu",
    "tanh": "tanh",
    "softplus": "nn.softplus",
    "sqrt": "sqrt",
    "square": "square",
    "log": "math.log",
    "abs": "abs",
}
_COMPARE_BOUNDARY = {
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
}
_COMPARE_FLIP = {ast.Lt: ast.Gt, ast.LtE: ast.GtE, ast.Gt: ast.Lt, ast.GtE: ast.LtE}
_COMPARE_TEXT = {
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.Eq: "==",
    ast.NotEq: "!=",
}

#: A generator's output: ``(variant, new expression)``.
Variants = list[tuple[str, ast.expr]]


def describe(old: ast.AST, new: ast.AST, limit: int = 60, context: int = 12) -> str:
    """``old -> new`` as source, long sides cut to the part that changed (with some context)."""
    a, b = ast.unparse(old), ast.unparse(new)
    if max(len(a), len(b)) <= limit:
        return f"{a} -> {b}"
    start = 0
    while start < min(len(a), len(b)) and a[start] == b[start]:
        start += 1
    end = 0
    while end < min(len(a), len(b)) - start and a[-1 - end] == b[-1 - end]:
        end += 1
    lo = max(0, start - context)
    cut_a, cut_b = a[lo : len(a) - max(0, end - context)], b[lo : len(b) - max(0, end - context)]
    head = "..." if lo else ""
    tail_a = "..." if end > context else ""
    return f"{head}{cut_a}{tail_a} -> {head}{cut_b}{tail_a}"


def _callee(call: ast.Call) -> tuple[str, list[str]]:
    """``(last name, dotted receiver parts)`` of a call: ``tf.nn.softmax`` -> ``("softmax",
    ["tf", "nn"])``; a bare name has no receiver; anything else gives ``("", [])``."""
    func = call.func
    if isinstance(func, ast.Name):
        return func.id, []
    parts: list[str] = []
    node: ast.expr = func
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return "", []
    parts.append(node.id)
    parts.reverse()
    return parts[-1], parts[:-1]


def _is_sequence_literal(node: ast.expr) -> bool:
    return isinstance(node, ast.List | ast.Tuple | ast.JoinedStr) or (
        isinstance(node, ast.Constant) and isinstance(node.value, str | bytes)
    )


def _binop(node: ast.AST, ctx: _Context) -> Variants:
    if not isinstance(node, ast.BinOp) or type(node.op) not in _BINOP_SWAP:
        return []
    if _is_sequence_literal(node.left) or _is_sequence_literal(node.right):
        return []
    new = _BINOP_SWAP[type(node.op)]
    variant = f"{_OP_NAME[type(node.op)]}->{_OP_NAME[new]}"
    return [(variant, ast.BinOp(node.left, new(), node.right))]


def _drop_term(node: ast.AST, ctx: _Context) -> Variants:
    if not isinstance(node, ast.BinOp) or not isinstance(node.op, ast.Add | ast.Sub):
        return []
    if _is_sequence_literal(node.left) or _is_sequence_literal(node.right):
        return []
    right = node.right if isinstance(node.op, ast.Add) else ast.UnaryOp(ast.USub(), node.right)
    return [("left", node.left), ("right", right)]


def _drop_factor(node: ast.AST, ctx: _Context) -> Variants:
    if not isinstance(node, ast.BinOp) or not isinstance(node.op, ast.Mult | ast.Div):
        return []
    if _is_sequence_literal(node.left) or _is_sequence_literal(node.right):
        return []
    if isinstance(node.op, ast.Div):
        return [("left", node.left)]
    return [("left", node.left), ("right", node.right)]


def _with_func(call: ast.Call, func: ast.expr, **changes: Any) -> ast.Call:
    return ast.Call(
        func=func,
        args=changes.get("args", call.args),
        keywords=changes.get("keywords", call.keywords),
    )


def _reduce_swap(node: ast.AST, ctx: _Context) -> Variants:
    if not isinstance(node, ast.Call):
        return []
    name, receiver = _callee(node)
    if name in _REDUCE_SWAP:
        new = _REDUCE_SWAP[name]
    elif name in _KERAS_REDUCE_SWAP and receiver and receiver[-1] in ctx.keras_receivers:
        new = _KERAS_REDUCE_SWAP[name]
    else:
        return []
    func = node.func
    new_func = (
        ast.Name(new, ast.Load())
        if isinstance(func, ast.Name)
        else ast.Attribute(func.value, new, ast.Load())  # type: ignore[attr-defined]
    )
    return [(f"{name}->{new}", _with_func(node, new_func))]


def _axis_changed(axis: ast.expr) -> ast.expr | None:
    """``axis`` moved by one (``k -> k + 1``, ``-k -> -k - 1``), a list without its last axis, or
    None when it is not a literal."""
    value = _literal_int(axis)
    if value is not None:
        moved = value + 1 if value >= 0 else value - 1
        return ast.Constant(moved) if moved >= 0 else ast.UnaryOp(ast.USub(), ast.Constant(-moved))
    if isinstance(axis, ast.List | ast.Tuple) and len(axis.elts) > 1:
        return type(axis)(elts=axis.elts[:-1], ctx=ast.Load())
    return None


def _literal_int(node: ast.expr) -> int | None:
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    if (
        isinstance(node, ast.UnaryOp)
        and isinstance(node.op, ast.USub)
        and isinstance(node.operand, ast.Constant)
        and type(node.operand.value) is int
    ):
        return -node.operand.value
    return None


def _reduce_axis(node: ast.AST, ctx: _Context) -> Variants:
    if not isinstance(node, ast.Call):
        return []
    name, receiver = _callee(node)
    if name not in _AXIS_CALLS:
        return []
    if name in _KERAS_REDUCE_SWAP and not (receiver and receiver[-1] in ctx.keras_receivers):
        return []
    out: Variants = []
    keyword = next((k for k in node.keywords if k.arg == "axis"), None)
    if keyword is not None:
        rest = [k for k in node.keywords if k is not keyword]
        out.append(("removed", _with_func(node, node.func, keywords=rest)))
        changed = _axis_changed(keyword.value)
        if changed is not None:
            keywords = [ast.keyword("axis", changed) if k is keyword else k for k in node.keywords]
            out.append(("changed", _with_func(node, node.func, keywords=keywords)))
    elif len(node.args) >= 2:
        out.append(("removed", _with_func(node, node.func, args=node.args[:1])))
        changed = _axis_changed(node.args[1])
        if changed is not None:
            args = [node.args[0], changed, *node.args[2:]]
            out.append(("changed", _with_func(node, node.func, args=args)))
    return out


def _swap_args(node: ast.AST, ctx: _Context) -> Variants:
    if not isinstance(node, ast.Call):
        return []
    name, receiver = _callee(node)
    out: Variants = []
    by_name = {k.arg: k for k in node.keywords}
    for first, second in _KEYWORD_PAIRS:
        if first in by_name and second in by_name:
            a, b = by_name[first], by_name[second]
            keywords = [
                ast.keyword(first, b.value)
                if k is a
                else ast.keyword(second, a.value)
                if k is b
                else k
                for k in node.keywords
            ]
            out.append((f"{first}<->{second}", _with_func(node, node.func, keywords=keywords)))
    starred = any(isinstance(a, ast.Starred) for a in node.args)
    local = not receiver and name in ctx.local_functions
    if (name in _BINARY_CALLS or local) and len(node.args) >= 2 and not starred:
        args = [node.args[1], node.args[0], *node.args[2:]]
        out.append(("args", _with_func(node, node.func, args=args)))
    if name == "where" and len(node.args) == 3 and not starred:
        args = [node.args[0], node.args[2], node.args[1]]
        out.append(("where", _with_func(node, node.func, args=args)))
    return out


def _activation_call(call: ast.Call, receiver: list[str], new: str, ctx: _Context) -> ast.expr:
    """``new(x)`` spelt as the module spells its activations."""
    arg = call.args[0]
    if new == "identity":
        return arg
    if receiver and receiver[0] in ctx.tf_names:
        func: ast.expr = ast.Name(receiver[0], ast.Load())
        for part in _TF_SPELLING[new].split("."):
            func = ast.Attribute(func, part, ast.Load())
    else:
        func = ast.Attribute(call.func.value, new, ast.Load())  # type: ignore[attr-defined]
    return ast.Call(func=func, args=[arg], keywords=[])


def _activation(node: ast.AST, ctx: _Context) -> Variants:
    if not isinstance(node, ast.Call) or len(node.args) != 1:
        return []
    if isinstance(node.args[0], ast.Starred):
        return []
    name, receiver = _callee(node)
    if name not in _ACTIVATIONS or not receiver:
        return []
    known = receiver[0] in ctx.tf_names or receiver[-1] in ctx.keras_receivers
    if not known:
        return []
    if any(k.arg not in ("axis", "name") for k in node.keywords):
        return []
    return [
        (f"{name}->{new}", _activation_call(node, receiver, new, ctx)) for new in _ACTIVATIONS[name]
    ]


def _number(value: int | float) -> ast.expr:
    return ast.Constant(value) if value >= 0 else ast.UnaryOp(ast.USub(), ast.Constant(-value))


def _constant(node: ast.AST, ctx: _Context) -> Variants:
    if not isinstance(node, ast.expr) or id(node) in ctx.negated:
        return []  # the literal of ``-k`` is mutated as ``-k``, at its UnaryOp
    v = _literal_number(node)
    if v is None or isinstance(v, bool):
        return []
    if v == 0:
        news = [("1", type(v)(1))]
    elif v == 1:
        news = [("0", type(v)(0)), ("2", type(v)(2))]
    else:
        news = [("x2", v * 2), ("+1", v + 1)]
    return [(tag, _number(new)) for tag, new in news]


def _compare(node: ast.AST, ctx: _Context) -> Variants:
    if not isinstance(node, ast.Compare) or len(node.ops) != 1:
        return []
    op = type(node.ops[0])
    out: Variants = []
    for table in (_COMPARE_BOUNDARY, _COMPARE_FLIP):
        if op in table:
            new = table[op]
            variant = f"{_COMPARE_TEXT[op]}->{_COMPARE_TEXT[new]}"
            out.append((variant, ast.Compare(node.left, [new()], node.comparators)))
    return out


GENERATORS: dict[str, Callable[[ast.AST, _Context], Variants]] = {
    "binop": _binop,
    "drop_term": _drop_term,
    "drop_factor": _drop_factor,
    "reduce_swap": _reduce_swap,
    "reduce_axis": _reduce_axis,
    "swap_args": _swap_args,
    "activation": _activation,
    "constant": _constant,
    "compare": _compare,
}
assert tuple(GENERATORS) == OPERATORS


@dataclass(frozen=True)
class _Context:
    """What the generators need to know about the module: its names for tensorflow, the
    receivers of ``K.*``/``keras.ops`` calls and its own top-level functions."""

    tf_names: frozenset[str]
    keras_receivers: frozenset[str]
    local_functions: frozenset[str]
    #: ``id()`` of the numeric literals under a unary minus (``-1`` is one constant, not two).
    negated: frozenset[int] = frozenset()


def _module_context(tree: ast.Module) -> _Context:
    tf_names = {"tf"}
    keras = {"K", "backend", "ops"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "tensorflow":
                    tf_names.add(alias.asname or "tensorflow")
        elif isinstance(node, ast.ImportFrom) and node.module in ("keras", "tensorflow.keras"):
            for alias in node.names:
                if alias.name in ("backend", "ops"):
                    keras.add(alias.asname or alias.name)
    functions = {
        n.name
        for n in tree.body
        if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
    }
    negated = {
        id(n.operand)
        for n in ast.walk(tree)
        if isinstance(n, ast.UnaryOp) and isinstance(n.op, ast.USub)
    }
    return _Context(frozenset(tf_names), frozenset(keras), frozenset(functions), frozenset(negated))


# -- which code a fixture reaches ----------------------------------------------------------------


def _top_level(tree: ast.Module) -> dict[str, ast.stmt]:
    """Top-level functions, classes and assignments by name (each name of ``A, B = 1, 2``)."""
    out: dict[str, ast.stmt] = {}
    for node in tree.body:
        for name in _definition_names(node):
            out[name] = node
    return out


def _is_numeric_constant(node: ast.stmt) -> bool:
    """``NAME = number`` or ``A, B = number, number`` (the weights of a YAD2K-style loss)."""
    value = node.value if isinstance(node, ast.Assign | ast.AnnAssign) else None
    if value is None:
        return False
    if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Tuple):
        return isinstance(value, ast.Tuple) and all(
            _literal_number(v) is not None for v in value.elts
        )
    return _literal_number(value) is not None


def _literal_number(node: ast.expr) -> int | float | None:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = _literal_number(node.operand)
        return None if inner is None else -inner
    return None


def _names_used(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def reachable(tree: ast.Module, entry: str) -> list[str]:
    """Top-level names the definition ``entry`` reaches within its module (itself included), in
    file order: functions and classes it uses, theirs, and numeric constants any of them read."""
    top = _top_level(tree)
    if entry not in top:
        raise KeyError(f"{entry!r} is not defined at the top level of the module")
    seen: set[str] = set()
    todo = [entry]
    while todo:
        name = todo.pop()
        if name in seen or name not in top:
            continue
        node = top[name]
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            if _is_numeric_constant(node):
                seen.add(name)
            continue
        seen.add(name)
        todo.extend(_names_used(node))
    order = {n: i for i, n in enumerate(top)}
    return sorted(seen, key=order.__getitem__)


# -- walking and splicing ------------------------------------------------------------------------

#: ``(field, index or None)`` steps from the module to a node.
Path_ = tuple[tuple[str, int | None], ...]


def _children(node: ast.AST) -> Iterator[tuple[str, int | None, ast.AST]]:
    for name, value in ast.iter_fields(node):
        if isinstance(value, ast.AST):
            yield name, None, value
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, ast.AST):
                    yield name, i, item


#: Fields never mutated: annotations (not evaluated under ``from __future__ import
#: annotations``), decorators, base classes.
_SKIPPED_FIELDS = {"annotation", "returns", "decorator_list", "bases", "type_comment"}


def _is_docstring(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    )


def _walk(node: ast.AST, path: Path_, qualname: str) -> Iterator[tuple[ast.AST, Path_, str]]:
    """Every mutable node under ``node`` with its path and enclosing function's qualified name."""
    for name, index, child in _children(node):
        if name in _SKIPPED_FIELDS or _is_docstring(child) or isinstance(child, ast.JoinedStr):
            continue
        step = (*path, (name, index))
        inner = qualname
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            inner = f"{qualname}.{child.name}"
        yield child, step, inner
        yield from _walk(child, step, inner)


def _get(tree: ast.AST, path: Path_) -> ast.AST:
    node = tree
    for name, index in path:
        value = getattr(node, name)
        node = value if index is None else value[index]
    return node


def _replaced(stmt: ast.stmt, path: Path_, new: ast.AST) -> ast.stmt:
    """A copy of the top-level statement ``stmt`` with the node at ``path`` (relative to it)
    replaced by ``new``."""
    copied = copy.deepcopy(stmt)
    parent = _get(copied, path[:-1])
    name, index = path[-1]
    if index is None:
        setattr(parent, name, new)
    else:
        getattr(parent, name)[index] = new
    return copied


def _offsets(source: str) -> list[int]:
    """Character offset of the start of each line (index 0 is line 1)."""
    starts, total = [], 0
    for line in source.splitlines(keepends=True):
        starts.append(total)
        total += len(line)
    starts.append(total)
    return starts


def _char(source_lines: list[str], starts: list[int], line: int, col: int) -> int:
    """Character offset of ``(line, col)``: ``ast``'s columns count UTF-8 bytes."""
    text = source_lines[line - 1].encode("utf-8")[:col].decode("utf-8")
    return starts[line - 1] + len(text)


def splice_at(source: str, start: tuple[int, int], end: tuple[int, int], text: str) -> str:
    """``source`` with the span ``start .. end`` (``(line, col)`` as ``ast`` gives them) replaced
    by ``text``."""
    lines = source.splitlines(keepends=True)
    starts = _offsets(source)
    a = _char(lines, starts, *start)
    b = _char(lines, starts, *end)
    return source[:a] + text + source[b:]


def splice(source: str, edit: Edit) -> str:
    """``source`` with the edited expression replaced by ``edit.replacement``."""
    return splice_at(source, (edit.line, edit.col), (edit.end_line, edit.end_col), edit.replacement)


def _span(node: ast.AST) -> tuple[tuple[int, int], tuple[int, int]]:
    start = (node.lineno, node.col_offset)  # type: ignore[attr-defined]
    end = (node.end_lineno, node.end_col_offset)  # type: ignore[attr-defined]
    return start, end


def _replacement(source: str, stmt: ast.stmt, node: ast.AST, path: Path_, new: ast.AST) -> str:
    """The text to put in place of ``node`` so the top-level statement ``stmt`` (``path`` leads
    from it to ``node``) parses to the mutated tree: the bare unparse, else in parentheses (the
    context binds tighter than the new expression). Only the statement's own lines are parsed."""
    expected = ast.dump(_replaced(stmt, path, new))
    first = min([stmt.lineno, *(d.lineno for d in getattr(stmt, "decorator_list", ()))])
    lines = source.splitlines(keepends=True)[first - 1 : stmt.end_lineno]
    snippet = "".join(lines)
    (line, col), (end_line, end_col) = _span(node)
    text = ast.unparse(new)
    for candidate in (text, f"({text})"):
        spliced = splice_at(
            snippet, (line - first + 1, col), (end_line - first + 1, end_col), candidate
        )
        try:
            parsed = ast.parse(spliced)
        except SyntaxError:
            continue
        if len(parsed.body) == 1 and ast.dump(parsed.body[0]) == expected:
            return candidate
    raise ValueError(f"cannot splice {text!r} in place of line {line}")


def _definition_names(stmt: ast.stmt) -> list[str]:
    """The names a top-level statement defines: a function's, a class's, an assignment's to one
    name or to a tuple of names (``A, B = 1, 2``)."""
    if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return [stmt.name]
    if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
        target = stmt.targets[0]
        if isinstance(target, ast.Name):
            return [target.id]
        if isinstance(target, ast.Tuple) and all(isinstance(t, ast.Name) for t in target.elts):
            return [t.id for t in target.elts]  # type: ignore[attr-defined]
        return []
    if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
        return [stmt.target.id]
    return []


def _constant_owner(stmt: ast.Assign | ast.AnnAssign, path: Path_) -> str:
    """The name a literal at ``path`` (from the statement) of a numeric constant's assignment
    gives a value to: the one name, or in ``A, B = 1, 2`` the name at the literal's place."""
    target = stmt.targets[0] if isinstance(stmt, ast.Assign) else stmt.target
    if isinstance(target, ast.Tuple):
        (_, index) = path[1]  # ("value", None), ("elts", index), ...
        return target.elts[index or 0].id  # type: ignore[attr-defined]
    return target.id  # type: ignore[attr-defined]


def mutations(
    source: str,
    file: str,
    names: Iterable[str] | None = None,
    operators: Iterable[str] = OPERATORS,
) -> list[Edit]:
    """Every edit of ``source`` by ``operators`` inside the top-level definitions ``names``
    (default: all), in file order. ``file`` is how edits name the file (repo-relative path)."""
    tree = ast.parse(source)
    ctx = _module_context(tree)
    wanted = set(names) if names is not None else None
    selected = [op for op in OPERATORS if op in set(operators)]
    edits: list[Edit] = []
    for stmt in tree.body:
        defined = _definition_names(stmt)
        if not defined or (wanted is not None and wanted.isdisjoint(defined)):
            continue
        step: Path_ = ()
        if isinstance(stmt, ast.Assign | ast.AnnAssign):
            if not _is_numeric_constant(stmt):
                continue
            nodes: Iterable[tuple[ast.AST, Path_, str]] = [
                (child, p, _constant_owner(stmt, p))
                for child, p, _ in _walk(stmt, step, defined[0])
                if isinstance(child, ast.Constant | ast.UnaryOp)
            ]
            nodes = [n for n in nodes if wanted is None or n[2] in wanted]
        else:
            nodes = _walk(stmt, step, defined[0])
        for node, path, qualname in nodes:
            if not isinstance(node, ast.expr):
                continue
            for operator in selected:
                for variant, new in GENERATORS[operator](node, ctx):
                    text = _replacement(source, stmt, node, path, new)
                    edits.append(
                        Edit(
                            file=file,
                            function=qualname,
                            line=node.lineno,
                            col=node.col_offset,
                            end_line=node.end_lineno or node.lineno,
                            end_col=node.end_col_offset or node.col_offset,
                            operator=operator,
                            variant=variant,
                            description=describe(node, new),
                            replacement=text,
                        )
                    )
    return edits


def absolute_imports(source: str, module: str) -> str:
    """``source`` with relative imports rewritten as absolute ones from ``module``'s package
    (``fixtures.losses.references``), so a copy in another directory imports the same names."""
    tree = ast.parse(source)
    package = module.split(".")[:-1]
    for node in sorted(
        (n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level),
        key=lambda n: (n.lineno, n.col_offset),
        reverse=True,
    ):
        base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
        target = ".".join([*base, *([node.module] if node.module else [])])
        new = ast.ImportFrom(module=target, names=node.names, level=0)
        source = splice_at(source, *_span(node), ast.unparse(new))
    return source


def diff_lines(original: str, mutated: str) -> list[str]:
    """The changed lines as ``-`` / ``+`` lines (no context)."""
    return [
        line.rstrip("\n")
        for line in difflib.unified_diff(
            original.splitlines(keepends=True), mutated.splitlines(keepends=True), n=0
        )
        if line[:1] in "-+" and not line.startswith(("---", "+++"))
    ]


# -- mutants of the fixture catalogue ------------------------------------------------------------


@dataclass(frozen=True)
class Mutant:
    """One edit run against one fixture loss."""

    fixture: str
    entry: str
    codec: tuple[tuple[str, str], ...]
    edit: Edit

    @property
    def id(self) -> str:
        return f"{self.fixture}/{self.edit.site}"


def _module_name(file: str) -> str:
    return ".".join(Path(file).with_suffix("").parts)


@dataclass(frozen=True)
class Loss:
    """A correct loss the benchmark mutates: a canonical fixture, audited with its ``codec``, or
    a layout fixture, audited through its layout with its ``options`` table (``layout``,
    anchors, scales... as ``[[tool.lossaudit.losses]]`` spells them)."""

    name: str
    target: str
    codec: dict[str, str] = field(default_factory=dict, hash=False)
    #: A layout fixture's options table; None for a canonical fixture.
    options: dict[str, Any] | None = field(default=None, hash=False)

    @property
    def entry(self) -> str:
        """The attribute the target names in its file (``YOLO.custom_loss``, ``mse_loss``)."""
        return self.target.rsplit(":", 1)[1]


def layout_name(layout: str, name: str) -> str:
    """A layout fixture's name in this benchmark, ``LAYOUT/NAME`` (``yad2k/yolo_loss``), the
    catalogue name without a prefix that repeats the layout (``yolov3_tf2.YoloLoss`` ->
    ``yolov3-tf2/YoloLoss``): unambiguous beside the canonical names, which have no slash."""
    prefix = layout.replace("-", "_") + "."
    return f"{layout}/{name.removeprefix(prefix)}"


def all_losses() -> list[Loss]:
    """Every correct fixture, in catalogue order: the canonical ones (``CORRECT``), then the
    layout ones (``LAYOUT_CORRECT`` and keras-yolo3's, ``KERAS_YOLO3_CORRECT``)."""
    from fixtures.catalog import CORRECT, KERAS_YOLO3_CORRECT, LAYOUT_CORRECT

    out = [Loss(f.name, f.target, codec=dict(f.codec)) for f in CORRECT]
    for f in (*LAYOUT_CORRECT, KERAS_YOLO3_CORRECT):
        layout = str(f.options["layout"])
        out.append(Loss(layout_name(layout, f.name), f.target, options=dict(f.options)))
    return out


def _fixtures(names: Iterable[str] | None = None) -> list[Loss]:
    every = all_losses()
    known = {f.name: f for f in every}
    if names is None:
        return every
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"unknown loss(es) {unknown}; correct fixtures: {', '.join(known)}")
    return [known[n] for n in names]


def enumerate_mutants(
    fixtures: Iterable[Loss], operators: Iterable[str] = OPERATORS
) -> tuple[list[Mutant], dict[str, str]]:
    """Every mutant of ``fixtures`` by ``operators``, in catalogue then file order, and the
    original source of each file. An entry that is an attribute (``YOLO.custom_loss``) reaches
    what its top-level definition (the whole class ``YOLO``) reaches."""
    fixtures = list(fixtures)
    sources: dict[str, str] = {}
    reach: dict[str, list[str]] = {}
    for fixture in fixtures:
        file, entry = fixture.target.rsplit(":", 1)
        if file not in sources:
            sources[file] = (ROOT / file).read_text(encoding="utf-8")
        reach[fixture.name] = reachable(ast.parse(sources[file]), entry.split(".")[0])
    per_file: dict[str, list[Edit]] = {}
    for file, source in sources.items():
        names = {n for f in fixtures if f.target.startswith(file + ":") for n in reach[f.name]}
        per_file[file] = mutations(source, file, names, operators)
    out = []
    for fixture in fixtures:
        file, entry = fixture.target.rsplit(":", 1)
        names = set(reach[fixture.name])
        codec = tuple(sorted(fixture.codec.items()))
        out += [
            Mutant(fixture.name, entry, codec, e)
            for e in per_file[file]
            if e.function.split(".")[0] in names
        ]
    return out, sources


def mutated_source(mutant: Mutant, sources: dict[str, str]) -> str:
    """The mutant's module text: the edit applied, relative imports made absolute."""
    file = mutant.edit.file
    return absolute_imports(splice(sources[file], mutant.edit), _module_name(file))


def _rank(seed: int, mutant_id: str) -> str:
    """A stable pseudo-random key: a mutant's place in a sample does not depend on the others."""
    return hashlib.sha256(f"{seed}:{mutant_id}".encode()).hexdigest()


def select(
    mutants: list[Mutant],
    *,
    only: Iterable[str] = (),
    sample: int | None = None,
    per_loss: int | None = None,
    seed: int = 0,
    limit: int | None = None,
) -> list[Mutant]:
    """The mutants to run, in their original order: ``only`` these ids, else a stable sample of
    at most ``per_loss`` per fixture and ``sample`` in all (lowest ``sha256(seed:id)`` first),
    then the first ``limit``."""
    only = list(only)
    if only:
        by_id = {m.id: m for m in mutants}
        missing = [i for i in only if i not in by_id]
        if missing:
            import difflib as _difflib

            close = {i: _difflib.get_close_matches(i, by_id, n=3, cutoff=0.5) for i in missing}
            raise SystemExit(f"unknown mutant id(s): {close}")
        wanted = set(only)
        return [m for m in mutants if m.id in wanted]
    chosen = list(mutants)
    if per_loss is not None:
        kept: set[str] = set()
        for fixture in dict.fromkeys(m.fixture for m in mutants):
            own = sorted(
                (m for m in mutants if m.fixture == fixture), key=lambda m: _rank(seed, m.id)
            )
            kept.update(m.id for m in own[:per_loss])
        chosen = [m for m in chosen if m.id in kept]
    if sample is not None:
        kept = {m.id for m in sorted(chosen, key=lambda m: _rank(seed, m.id))[:sample]}
        chosen = [m for m in chosen if m.id in kept]
    if limit is not None:
        chosen = chosen[:limit]
    return chosen


# -- the worker (the only code that imports TensorFlow, inside its functions) -------------------

#: Equivalence tolerance: ``|a - b| <= RTOL * |b| + ATOL * max(1, max |b|)``.
RTOL, ATOL = 1e-5, 1e-6
#: Grids of the equivalence check (batch, H, W, anchors); classes come from the class count.
CHECK_GRIDS = ((2, 3, 4, 2), (3, 2, 5, 3))
#: Scenes per grid in the equivalence check (0 to 4 objects; two of them with tiny boxes).
CHECK_SCENES = 8
#: Predictions per scene (see :func:`check_cases`).
CASES_PER_SCENE = 6

_STATE: dict[str, Any] = {}


def _setup_worker() -> None:
    if _STATE:
        return
    import atexit
    import shutil
    import tempfile

    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    os.chdir(ROOT)
    from lossaudit.settings import private_hypothesis_home

    private_hypothesis_home()
    tmp = tempfile.mkdtemp(prefix="lossaudit-mutants-")
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    _STATE.update(tmp=Path(tmp), originals={}, cases={}, reference={})


def _random_scene(rng: Any, spec: Any, count: int, tiny: bool) -> Any:
    from lossaudit.spec import Obj, Scene

    slots = spec.batch * spec.H * spec.W * spec.anchors
    objs = []
    for flat in sorted(rng.choice(slots, size=min(count, slots), replace=False)):
        b, rest = divmod(int(flat), spec.H * spec.W * spec.anchors)
        i, rest = divmod(rest, spec.W * spec.anchors)
        j, a = divmod(rest, spec.anchors)
        lo, hi = (1e-4, 1e-3) if tiny else (0.05, 1.0)
        x, y = (round(float(v), 2) for v in rng.uniform(0.05, 0.95, 2))
        w, h = (float(f"{v:.3g}") for v in rng.uniform(lo, hi, 2))
        objs.append(Obj(b, i, j, a, x, y, w, h, int(rng.integers(spec.classes))))
    return Scene(spec, tuple(objs))


def check_cases(codec: dict[str, str], classes: int) -> list[Any]:
    """The fixed cases of the equivalence check of a canonical fixture (see the module
    docstring)."""
    key = (tuple(sorted(codec.items())), classes)
    if key in _STATE.get("cases", {}):
        return _STATE["cases"][key]
    from lossaudit.spec import Codec, GridSpec

    specs = [GridSpec(batch=b, H=h, W=w, anchors=a, classes=classes) for b, h, w, a in CHECK_GRIDS]
    cases = _cases(Codec(**codec), specs, classes)
    _STATE.setdefault("cases", {})[key] = cases
    return cases


def _cases(c: Any, specs: list[Any], classes: int) -> list[Any]:
    """``CHECK_SCENES`` scenes on each grid of ``specs`` (one random stream, seeded by the class
    count), each with ``CASES_PER_SCENE`` predictions made with the codec ``c``."""
    import numpy as np

    from lossaudit import scenarios as sc

    rng = np.random.default_rng(20_240 + classes)
    cases = []
    for spec in specs:
        for k in range(CHECK_SCENES):
            scene = _random_scene(rng, spec, k % 5, tiny=k in (3, 6))
            seed = int(rng.integers(2**16))
            noisy = sc.noisy(scene, c, seed=seed)
            perfect = sc.perfect(scene, c)
            uniform = rng.uniform(-4.0, 4.0, spec.shape).astype(np.float32)
            value = 100.0 if k % 2 == 0 else -100.0
            where = ("empty", "objects", "all")[k % 3]
            channels = ("all", "wh", "obj", "cls", "xy")[k % 5]
            cases += [
                noisy,
                perfect,
                sc.boxes_near_truth(perfect, c, seed=seed),
                sc.Case(scene, uniform, f"uniform(-4, 4) #{k}"),
                sc.extreme(noisy, value=value, where=where, channels=channels, codec=c),
                _lookalike(noisy, c),
            ]
    return cases


def layout_options(table: dict[str, Any], classes: int) -> Any:
    """The :class:`~lossaudit.options.LossOptions` a layout fixture is checked and audited with
    at ``classes``: its options table with that class count, and with more than one class on
    the 4x4 grid, as ``tests/test_layouts.py`` audits the layout fixtures (``{}`` and ``{"grid":
    4, "classes": 3}``; a multi-scale fixture keeps its scales' grids)."""
    from lossaudit.options import LossOptions

    full: dict[str, Any] = {**table, "classes": classes}
    if classes > 1 and "scales" not in table:
        full["grid"] = 4
    if "anchors-file" in full:
        full["anchors-file"] = str(ROOT / str(full["anchors-file"]))
    return LossOptions.from_table(full, where=f"layout fixture at {classes} classes")


def layout_check_grids(spec: Any, *, square: bool, multi_scale: bool) -> list[Any]:
    """The two grids of a layout fixture's equivalence check on one frame whose grid is
    ``spec``'s: that grid at batch 2, then at batch 3 the same grid (a scale of a multi-scale
    loss has its grid), one row less and one column more (3x4 -> 2x5, as the canonical check),
    or for a square-only layout a square one cell smaller (4x4 -> 3x3; 2x2 -> 3x3)."""
    h, w = spec.H, spec.W
    if multi_scale:
        other = (h, w)
    elif square:
        side = h - 1 if h > 2 else h + 1
        other = (side, side)
    else:
        other = (max(1, h - 1), w + 1)
    return [spec.replace(batch=2), spec.replace(batch=3, H=other[0], W=other[1])]


def layout_check(table: dict[str, Any], classes: int) -> tuple[Any, list[tuple[Any, list[Any]]]]:
    """A layout fixture's equivalence check at ``classes``: its options (:func:`layout_options`)
    and, for each frame the audit audits (every scale of a multi-scale loss, or its
    ``only-scale``), the frame and its fixed cases on :func:`layout_check_grids`."""
    key = (json.dumps(table, sort_keys=True), classes)
    if key in _STATE.get("layout_cases", {}):
        return _STATE["layout_cases"][key]
    options = layout_options(table, classes)
    groups = []
    for frame in options.scale_frames():
        specs = layout_check_grids(
            frame.spec, square=options.layout.square, multi_scale=bool(options.scales)
        )
        groups.append((frame, _cases(frame.codec, specs, classes)))
    out = (options, groups)
    _STATE.setdefault("layout_cases", {})[key] = out
    return out


def _lookalike(case: Any, codec: Any) -> Any:
    """``case`` with every empty anchor predicting its image's first truth box (offset in its
    own cell): boxes that overlap a truth, so an ignore-by-IoU rule is exercised."""
    import numpy as np

    raw = np.array(case.y_pred, dtype=np.float64)
    anchors = codec.anchor_grid(case.spec)
    empty = ~case.scene.object_mask()
    for b in sorted({o.b for o in case.scene.objects}):
        o = next(o for o in case.scene.objects if o.b == b)
        xy = codec.encode_xy(np.array([o.x, o.y]))
        wh = codec.encode_wh(np.broadcast_to([o.w, o.h], anchors.shape), anchors)[0, 0, 0]
        raw[b, ..., 0:2] = np.where(empty[b][..., None], xy, raw[b, ..., 0:2])
        raw[b, ..., 2:4] = np.where(empty[b][..., None], wh, raw[b, ..., 2:4])
    return case.derive(codec.clamp(raw).astype(np.float32), "lookalike boxes at empty anchors")


def _evaluate_all(loss: Any, cases: list[Any], options: Any = None, frame: Any = None) -> list[Any]:
    """Each case's evaluation (values, gradients, connected), or the loss's error message; with
    a layout fixture's ``options``, called through its layout in ``frame``."""
    from lossaudit.adapter import Adapter
    from lossaudit.errors import LossError

    if options is None:
        adapter = Adapter(loss)
    else:
        try:
            adapter = Adapter.calling(loss, options, frame)
        except Exception as exc:  # the layout builds the loss: a mutated factory may raise
            message = f"building the loss raised {type(exc).__name__}: {exc}"[:300]
            return [message] * len(cases)
    out: list[Any] = []
    for case in cases:
        try:
            out.append(adapter.evaluate(case))
        except LossError as exc:
            out.append(str(exc)[:300])
    return out


def _close(a: Any, b: Any) -> bool:
    import numpy as np

    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return False
    nan_a, nan_b = np.isnan(a), np.isnan(b)
    if not np.array_equal(nan_a, nan_b):
        return False
    inf_a, inf_b = np.isinf(a), np.isinf(b)
    if not np.array_equal(inf_a, inf_b) or not np.array_equal(a[inf_a], b[inf_b]):
        return False
    finite = ~(nan_b | inf_b)
    fa, fb = a[finite], b[finite]
    scale = max(1.0, float(np.max(np.abs(fb)))) if fb.size else 1.0
    return bool(np.all(np.abs(fa - fb) <= RTOL * np.abs(fb) + ATOL * scale))


def compare_evaluations(mutant: list[Any], original: list[Any], cases: list[Any]) -> str:
    """The first difference between two runs of :func:`_evaluate_all`, or "" when equal."""
    for m, o, case in zip(mutant, original, cases, strict=True):
        where = f"{case.spec!r} {case.label}"
        if isinstance(o, str) or isinstance(m, str):
            if isinstance(o, str) and isinstance(m, str):
                continue
            what = m if isinstance(m, str) else "no error"
            return f"{where}: mutant {'raised ' + what if isinstance(m, str) else what}"
        if set(m.values) != set(o.values):
            return f"{where}: components {sorted(m.values)} vs {sorted(o.values)}"
        for role in o.values:
            if not _close(m.values[role], o.values[role]):
                return f"{where}: {role} {m.values[role]:.6g} vs {o.values[role]:.6g}"
            if m.connected.get(role) != o.connected.get(role):
                return f"{where}: {role} gradient connected {m.connected.get(role)}"
            if not _close(m.grads[role], o.grads[role]):
                return f"{where}: gradient of {role} differs"
    return ""


def _audit(loss: Any, target: str, task: dict, classes: int, opts: dict) -> dict:
    """The audit of ``loss`` at ``classes``: a canonical fixture's with its codec on
    ``GridSpec(classes=C)``, a layout fixture's with its options (:func:`layout_options`)."""
    from lossaudit.audit import audit
    from lossaudit.settings import resolve
    from lossaudit.spec import Codec, GridSpec

    started = time.perf_counter()
    settings = resolve("ci", shrink=False, time_limit=opts["time_limit"])
    if task.get("layout"):
        options = layout_options(task["layout"], classes)
        spec, codec = options.spec, options.codec
        calling: dict[str, Any] = {"components": options.components, **options.calling()}
    else:
        spec, codec, calling = GridSpec(classes=classes), Codec(**task["codec"]), {}
    report = audit(
        loss,
        spec,
        codec,
        settings=settings,
        target=target,
        analyse_loss=opts["analyse"],
        **calling,
    )
    verdicts = {r.property: str(r.status) for r in report.results}
    messages = {
        r.property: r.message[:300] for r in report.results if str(r.status) in ("fail", "error")
    }
    return {
        "verdicts": verdicts,
        "messages": messages,
        "seconds_audit": round(time.perf_counter() - started, 2),
    }


def _load(path: str) -> tuple[Any, str]:
    from lossaudit.targets import load_target

    return load_target(path)


def _original(fixture: str, target: str) -> Any:
    if fixture not in _STATE["originals"]:
        _STATE["originals"][fixture] = _load(target)[0]
    return _STATE["originals"][fixture]


def _check(task: dict, classes: int) -> tuple[list[Any], Callable[[Any], list[Any]]]:
    """The equivalence check's cases at ``classes`` and how to evaluate a loss on all of them
    (through the fixture's layout, frame by frame, for a layout fixture)."""
    if not task.get("layout"):
        cases = check_cases(task["codec"], classes)
        return cases, lambda loss: _evaluate_all(loss, cases)
    options, groups = layout_check(task["layout"], classes)

    def evaluate(loss: Any) -> list[Any]:
        return [e for frame, own in groups for e in _evaluate_all(loss, own, options, frame)]

    return [case for _, own in groups for case in own], evaluate


def run_task(task: dict) -> dict:
    """Run one task in the worker: a fixture's ``baseline`` audit at one class count, or a
    ``mutant`` (equivalence check, then audit) at each of its class counts."""
    import tempfile

    _setup_worker()
    started = time.perf_counter()
    opts = task["options"]
    if task["kind"] == "baseline":
        loss = _original(task["fixture"], task["target"])
        out = _audit(loss, task["target"], task, task["classes"], opts)
        import tensorflow as tf

        import lossaudit

        out["versions"] = {"tensorflow": tf.__version__, "lossaudit": lossaudit.__version__}
        out["lossaudit_path"] = str(Path(lossaudit.__file__).parent)
        return out
    directory = Path(tempfile.mkdtemp(dir=_STATE["tmp"]))
    path = directory / Path(task["file"]).name
    path.write_text(task["source"], encoding="utf-8")
    saved_path, saved_modules = list(sys.path), set(sys.modules)
    per_class: dict[str, dict] = {}
    try:
        try:
            loss, _ = _load(f"{path}:{task['entry']}")
        except Exception as exc:
            message = f"{type(exc).__name__}: {exc}"[:300]
            for c in task["classes"]:
                per_class[str(c)] = {"load_error": message}
            return {"classes": per_class, "seconds": round(time.perf_counter() - started, 2)}
        original = _original(task["fixture"], task["target"])
        for c in task["classes"]:
            t0 = time.perf_counter()
            cases, evaluate = _check(task, c)
            key = (task["fixture"], c)
            if key not in _STATE["reference"]:
                _STATE["reference"][key] = evaluate(original)
            difference = compare_evaluations(evaluate(loss), _STATE["reference"][key], cases)
            result: dict[str, Any] = {
                "equivalent": not difference,
                "check": difference or f"equal on {len(cases)} cases",
                "seconds_check": round(time.perf_counter() - t0, 2),
            }
            if difference:
                result.update(_audit(loss, task["file"] + ":" + task["entry"], task, c, opts))
            per_class[str(c)] = result
    finally:
        sys.path[:] = saved_path
        for name in set(sys.modules) - saved_modules:
            if name.startswith("lossaudit_target_"):
                del sys.modules[name]
    return {"classes": per_class, "seconds": round(time.perf_counter() - started, 2)}


# -- classification and the report --------------------------------------------------------------


def classify_class(result: dict, baseline: dict | None) -> tuple[str, dict[str, list[str]]]:
    """One class count's status and the properties behind it (new failures, errors, warnings
    relative to the original fixture's audit ``baseline``)."""
    if result.get("equivalent"):
        return "equivalent", {}
    if "load_error" in result:
        return "error", {"error": ["(module)"]}
    before = (baseline or {}).get("verdicts", {})
    new: dict[str, list[str]] = {"fail": [], "error": [], "warn": []}
    for prop, status in result["verdicts"].items():
        old = before.get(prop, "pass")
        if status == "fail" and old != "fail":
            new["fail"].append(prop)
        elif status == "error" and old not in ("error", "fail"):
            new["error"].append(prop)
        elif status == "warn" and old in ("pass", "skip"):
            new["warn"].append(prop)
    new = {k: v for k, v in new.items() if v}
    if "fail" in new:
        return "killed", new
    if "error" in new:
        return "error", new
    if "warn" in new:
        return "warned", new
    return "survived", new


def classify(record: dict, baselines: dict) -> str:
    """A mutant's overall status: the best-caught over its class counts (see the docstring)."""
    statuses = [
        classify_class(r, baselines.get(record["loss"], {}).get(c))[0]
        for c, r in record["classes"].items()
    ]
    return min(statuses, key=STATUSES.index) if statuses else "survived"


def summarise(records: list[dict], baselines: dict) -> dict[str, dict[str, dict[str, Any]]]:
    """Counts per loss, per operator and in total."""
    tables: dict[str, dict[str, dict[str, Any]]] = {"loss": {}, "operator": {}, "total": {}}
    for record in records:
        status = classify(record, baselines)
        for table, key in (
            ("loss", record["loss"]),
            ("operator", record["operator"]),
            ("total", "all"),
        ):
            row = tables[table].setdefault(key, {"mutants": 0, **{s: 0 for s in STATUSES}})
            row["mutants"] += 1
            row[status] += 1
    for rows in tables.values():
        for row in rows.values():
            live = row["mutants"] - row["equivalent"]
            row["kill_rate"] = round((row["killed"] + row["error"]) / live, 4) if live else None
    return tables


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def render_table(tables: dict, title: str) -> str:
    head = ["mutants", "equivalent", "killed", "error", "warned", "survived"]
    lines = [
        f"| {title} | " + " | ".join(head) + " | kill rate |",
        "|---" * (len(head) + 2) + "|",
    ]
    for key, row in tables.items():
        cells = " | ".join(str(row[h]) for h in head)
        lines.append(f"| {key} | {cells} | {_rate(row['kill_rate'])} |")
    return "\n".join(lines)


def _class_notes(record: dict, baselines: dict) -> str:
    parts = []
    for c, r in record["classes"].items():
        status, props = classify_class(r, baselines.get(record["loss"], {}).get(c))
        detail = "; ".join(f"{k}: {', '.join(v)}" for k, v in props.items())
        if status == "equivalent":
            detail = r.get("check", "")
        parts.append(f"C={c} {status}" + (f" ({detail})" if detail else ""))
    return "; ".join(parts)


#: Why known survivors survive, by edit site (see the file's header).
REASONS_FILE = ROOT / "benchmarks" / "mutation_survivors.toml"


def load_reasons(path: Path = REASONS_FILE) -> dict[str, str]:
    """``{edit site: reason}`` from ``path`` (``[reasons]`` table), or ``{}`` without the file."""
    import tomllib

    if not path.is_file():
        return {}
    return dict(tomllib.loads(path.read_text(encoding="utf-8")).get("reasons", {}))


def _site(record: dict) -> str:
    """The edit site of a mutant's record: its id without the ``LOSS/`` prefix (a layout
    fixture's name has a slash of its own)."""
    return record["id"].removeprefix(record["loss"] + "/")


def render(data: dict, reasons: dict[str, str] | None = None) -> str:
    """The markdown report of a run: tables, then every survivor, warned and equivalent mutant
    (a survivor's or warned mutant's reason from ``reasons`` by edit site)."""
    reasons = load_reasons() if reasons is None else reasons
    records = list(data["mutants"].values())
    baselines = data.get("baselines", {})
    tables = summarise(records, baselines)
    out = [
        render_table(tables["loss"] | {"**all**": tables["total"].get("all", {})}, "loss")
        if records
        else "(no mutants)",
        "",
        render_table(tables["operator"], "operator") if records else "",
        "",
    ]
    for status, title in (
        ("survived", "Survivors"),
        ("warned", "Warned only"),
        ("equivalent", "Equivalent"),
    ):
        chosen = [r for r in records if classify(r, baselines) == status]
        out.append(f"## {title} ({len(chosen)})")
        out.append("")
        for r in chosen:
            out.append(f"- `{r['id']}` ({r['operator']}: {r['description']})")
            out += [f"      {line}" for line in r["diff"]]
            out.append(f"      {_class_notes(r, baselines)}")
            if status != "equivalent":
                why = reasons.get(_site(r), f"(no reason recorded in {REASONS_FILE.name})")
                out.append(f"      reason: {why}")
        out.append("")
    return "\n".join(out)


# -- running -------------------------------------------------------------------------------------


def _write_atomic(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except OSError:
        return ""


def _record(mutant: Mutant, sources: dict[str, str]) -> dict:
    source = sources[mutant.edit.file]
    return {
        "id": mutant.id,
        "loss": mutant.fixture,
        "file": mutant.edit.file,
        "function": mutant.edit.function,
        "line": mutant.edit.line,
        "col": mutant.edit.col,
        "operator": mutant.edit.operator,
        "variant": mutant.edit.variant,
        "description": mutant.edit.description,
        "replacement": mutant.edit.replacement,
        "diff": diff_lines(source, splice(source, mutant.edit)),
        "classes": {},
    }


def _done(record: dict | None, mutant: Mutant, classes: list[int]) -> bool:
    return (
        record is not None
        and record.get("replacement") == mutant.edit.replacement
        and all(str(c) in record.get("classes", {}) for c in classes)
    )


@contextlib.contextmanager
def _quiet_worker_env(log: str) -> Iterator[None]:
    """TensorFlow's start-up logging off in the workers; their output goes to ``log``."""
    saved = {k: os.environ.get(k) for k in ("TF_CPP_MIN_LOG_LEVEL", "LOSSAUDIT_MUTATION_LOG")}
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    os.environ["LOSSAUDIT_MUTATION_LOG"] = log
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _init_worker() -> None:
    log = os.environ.get("LOSSAUDIT_MUTATION_LOG", os.devnull)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    sys.stdout = open(1, "w", buffering=1, closefd=False)
    sys.stderr = open(2, "w", buffering=1, closefd=False)


def _run_tasks(
    tasks: list[dict], jobs: int, restart_every: int, log: str, on_result: Callable
) -> None:
    """Run ``tasks`` in worker processes; ``on_result(task, result)`` in this process as each
    finishes. Fresh workers take every ``restart_every * jobs`` tasks (not the executor's
    ``max_tasks_per_child``: on Python 3.11 it can hang when it replaces a worker). A task whose
    worker dies twice gets ``{"crashed": message}``."""
    import concurrent.futures as cf
    import multiprocessing

    attempts: dict[int, int] = {}
    failed: list[str] = []
    pending = list(enumerate(tasks))
    chunk = max(1, restart_every) * jobs
    with _quiet_worker_env(log):
        while pending:
            batch, pending = pending[:chunk], pending[chunk:]
            executor = cf.ProcessPoolExecutor(
                max_workers=jobs,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker,
            )
            futures = {executor.submit(run_task, task): (i, task) for i, task in batch}
            retry = []
            try:
                for future in cf.as_completed(futures):
                    i, task = futures[future]
                    try:
                        result = future.result()
                    except cf.process.BrokenProcessPool as exc:
                        attempts[i] = attempts.get(i, 0) + 1
                        if attempts[i] >= 2:
                            on_result(task, {"crashed": f"worker died: {exc}"[:300]})
                        else:
                            retry.append((i, task))
                        continue
                    except Exception as exc:  # a bug in this benchmark: say so, keep going
                        failed.append(task.get("id") or f"baseline {task['fixture']}")
                        print(
                            f"internal error on {failed[-1]} (not recorded; --resume retries "
                            f"it): {type(exc).__name__}: {exc}",
                            file=sys.stderr,
                            flush=True,
                        )
                        continue
                    on_result(task, result)
            except BaseException:
                for process in list(getattr(executor, "_processes", {}).values()):
                    process.terminate()
                executor.shutdown(wait=False, cancel_futures=True)
                raise
            executor.shutdown(wait=True)
            pending = sorted(retry) + pending
    if failed:
        print(f"{len(failed)} task(s) hit an internal error of the benchmark and are not recorded")


def _options(args: argparse.Namespace) -> dict:
    return {"analyse": args.analyse, "time_limit": args.time_limit}


def _print_progress(
    index: int, total: int, record: dict, baselines: dict, seconds: float, eta: float
) -> None:
    status = classify(record, baselines)
    print(
        f"[{index}/{total}] {status:10} {seconds:6.1f}s eta {eta / 60:5.1f}m  {record['id']}  "
        f"{_class_notes(record, baselines)[:160]}",
        flush=True,
    )


def run(args: argparse.Namespace) -> dict:
    fixtures = _fixtures(args.losses.split(",") if args.losses else None)
    operators = args.operators.split(",") if args.operators else list(OPERATORS)
    unknown = [o for o in operators if o not in OPERATORS]
    if unknown:
        raise SystemExit(f"unknown operator(s) {unknown}; known: {', '.join(OPERATORS)}")
    classes = [int(c) for c in args.classes.split(",") if c]
    every, sources = enumerate_mutants(fixtures, operators)
    chosen = select(
        every,
        only=args.only or (),
        sample=args.sample,
        per_loss=args.per_loss or None,
        seed=args.seed,
        limit=args.limit,
    )
    counts = {f.name: sum(m.fixture == f.name for m in every) for f in fixtures}
    print(
        f"{len(every)} mutants of {len(fixtures)} losses "
        f"({', '.join(f'{k} {v}' for k, v in counts.items())}); {len(chosen)} selected; "
        f"classes {classes}; profile ci, no shrinking, analysis {'on' if args.analyse else 'off'}",
        flush=True,
    )
    if args.list:
        for m in chosen:
            print(f"{m.id}\t{m.edit.description}")
        return {}
    json_path = Path(args.json) if args.json else None
    data: dict[str, Any] = {}
    if args.resume and json_path is not None and json_path.exists():
        data = json.loads(json_path.read_text(encoding="utf-8"))
        print(f"resuming from {json_path}: {len(data.get('mutants', {}))} mutants recorded")
    data.setdefault("schema", 1)
    data["meta"] = {
        "updated": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "commit": _git_commit(),
        "argv": sys.argv[1:],
        "classes": classes,
        "settings": {
            "profile": "ci",
            "shrink": False,
            **_options(args),
            "layout_fixtures": "their options table with classes = C, and grid = 4 at more than "
            "one class (a multi-scale fixture keeps its scales)",
        },
        "equivalence": {
            "rtol": RTOL,
            "atol": ATOL,
            "grids": CHECK_GRIDS,
            "scenes_per_grid": CHECK_SCENES,
            "cases": len(CHECK_GRIDS) * CHECK_SCENES * CASES_PER_SCENE,
            "layout_fixtures": "the same scenes and predictions on each audited frame: its grid "
            "at batch 2, then at batch 3 one row less and one column more (square-only "
            "layouts: one cell smaller; a scale of a multi-scale loss: its own grid)",
        },
        "universe": {"mutants": len(every), "per_loss": counts},
        **{k: v for k, v in data.get("meta", {}).items() if k in ("versions", "lossaudit_path")},
    }
    baselines: dict[str, dict[str, dict]] = data.setdefault("baselines", {})
    records: dict[str, dict] = data.setdefault("mutants", {})
    # Only the selected mutants are reported (a resumed file may hold more).
    todo = [m for m in chosen if not _done(records.get(m.id), m, classes)]
    options = _options(args)
    tasks: list[dict] = []
    for fixture in fixtures:
        if not any(m.fixture == fixture.name for m in todo):
            continue
        for c in classes:
            if str(c) not in baselines.get(fixture.name, {}):
                tasks.append(
                    {
                        "kind": "baseline",
                        "fixture": fixture.name,
                        "target": fixture.target,
                        "codec": fixture.codec,
                        "layout": fixture.options,
                        "classes": c,
                        "options": options,
                    }
                )
    by_id = {m.id: m for m in todo}
    by_name = {f.name: f for f in fixtures}
    for m in todo:
        tasks.append(
            {
                "kind": "mutant",
                "id": m.id,
                "fixture": m.fixture,
                "target": by_name[m.fixture].target,
                "entry": m.entry,
                "file": m.edit.file,
                "source": mutated_source(m, sources),
                "codec": dict(m.codec),
                "layout": by_name[m.fixture].options,
                "classes": classes,
                "options": options,
            }
        )
    print(f"{len(todo)} mutants to run ({len(chosen) - len(todo)} already recorded)", flush=True)
    timings: list[float] = []
    started = time.perf_counter()
    done = [0]

    def on_result(task: dict, result: dict) -> None:
        if task["kind"] == "baseline":
            entry = baselines.setdefault(task["fixture"], {})
            entry[str(task["classes"])] = result
            if "versions" in result:
                data["meta"]["versions"] = result["versions"]
                data["meta"]["lossaudit_path"] = result["lossaudit_path"]
            summary = {
                k: v for k, v in result.get("verdicts", {}).items() if v not in ("pass", "skip")
            }
            print(
                f"baseline {task['fixture']} C={task['classes']}: "
                f"{result.get('seconds_audit', '?')}s, not passing: {summary or 'none'}"
                + (f" ({result['crashed']})" if "crashed" in result else ""),
                flush=True,
            )
        else:
            mutant = by_id[task["id"]]
            record = _record(mutant, sources)
            if "crashed" in result:
                for c in classes:
                    record["classes"][str(c)] = {"load_error": result["crashed"]}
                record["seconds"] = None
            else:
                record["classes"] = result["classes"]
                record["seconds"] = result["seconds"]
                timings.append(result["seconds"])
            records[mutant.id] = record
            done[0] += 1
            mean = sum(timings) / len(timings) if timings else 0.0
            eta = mean * (len(todo) - done[0]) / args.jobs
            _print_progress(done[0], len(todo), record, baselines, record["seconds"] or 0.0, eta)
        if json_path is not None:
            data["summary"] = summarise(
                [records[m.id] for m in chosen if m.id in records], baselines
            )
            _write_atomic(json_path, data)

    log = args.worker_log or (str(json_path) + ".log" if json_path else os.devnull)
    if tasks:
        _run_tasks(tasks, args.jobs, args.restart_every, log, on_result)
    elapsed = time.perf_counter() - started
    selected = {m.id: records[m.id] for m in chosen if m.id in records}
    report = {**data, "mutants": selected}
    if json_path is not None:
        data["summary"] = summarise(list(selected.values()), baselines)
        _write_atomic(json_path, data)
    print()
    print(render(report))
    reasons = load_reasons()
    unexplained = [
        r["id"]
        for r in selected.values()
        if classify(r, baselines) in ("survived", "warned") and _site(r) not in reasons
    ]
    if unexplained:
        print(f"{len(unexplained)} survivor(s) or warned mutant(s) with no recorded reason")
    measured = [r["seconds"] for r in selected.values() if r.get("seconds")]
    if measured:
        mean = sum(measured) / len(measured)
        full = mean * len(every) / args.jobs
        print(
            f"{len(timings)} mutants run now in {elapsed / 60:.1f} min (baselines included); "
            f"{mean:.1f}s per mutant on average over the {len(measured)} recorded; all "
            f"{len(every)} mutants at classes {classes} would take about {full / 3600:.1f} h "
            f"with {args.jobs} job(s)"
        )
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--losses",
        help="comma-separated correct fixtures (default: all), a layout fixture as LAYOUT/NAME "
        "(yad2k/yolo_loss, keras-yolo3/yolo_loss; --list names them all)",
    )
    parser.add_argument("--operators", help=f"comma-separated, of: {', '.join(OPERATORS)}")
    parser.add_argument("--classes", default="1,3", help="class counts to audit (default 1,3)")
    parser.add_argument("--only", action="append", metavar="ID", help="run this mutant only")
    parser.add_argument("--sample", type=int, help="a stable sample of N mutants (see --seed)")
    parser.add_argument(
        "--per-loss",
        type=int,
        default=PER_LOSS,
        help=f"at most N mutants per loss, a stable sample (default {PER_LOSS}; 0: all)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of --sample/--per-loss")
    parser.add_argument("--limit", type=int, help="the first N selected mutants")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument("--json", metavar="PATH", help="write the results here (atomically)")
    parser.add_argument("--resume", action="store_true", help="skip mutants --json has")
    parser.add_argument("--list", action="store_true", help="list the selected mutants only")
    parser.add_argument(
        "--analyse", action="store_true", help="run the audit's analysis step too (off: faster)"
    )
    parser.add_argument("--time-limit", type=float, default=120.0, help="seconds per property")
    parser.add_argument(
        "--restart-every", type=int, default=25, help="replace a worker after N tasks"
    )
    parser.add_argument("--worker-log", help="workers' output (default: JSON path + .log)")
    args = parser.parse_args(argv)
    if args.resume and not args.json:
        parser.error("--resume needs --json PATH")
    run(args)


if __name__ == "__main__":
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    main()
