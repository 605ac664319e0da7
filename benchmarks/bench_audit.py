"""How long an audit takes at real shapes, where the time goes, and how far it is from the floor.

Run::

    python benchmarks/bench_audit.py                     # seed + mse reference, four shapes
    python benchmarks/bench_audit.py --shapes 3x4x2x1 --targets seed --repeat 3
    python benchmarks/bench_audit.py --json runs.json    # also keep the raw runs

A shape is ``HxWxANCHORSxCLASSES`` (batch 2, as ``lossaudit report``). A target is ``seed`` (the
bundled seed loss, the default target), ``mse`` or ``bce`` (``fixtures/losses/references.py``,
correct references, sigmoid classes) or ``path.py:name`` (default codec).

Each run is a fresh process. Its audit's wall time (after TensorFlow's import) is split into
exclusive parts:

- ``trace``: loss calls that traced a new shape (XLA compiles included);
- ``evals``: the other loss-and-gradient evaluations through the adapter, host copies included;
- ``shrink``: everything Hypothesis's shrink phase did, its loss evaluations included;
- ``train``: the two training runs behind ``*.trains`` and the balance table;
- ``hypo``: Hypothesis generating examples (and its bookkeeping) outside the property;
- ``props``: the properties' own Python and numpy work around the loss calls;
- ``other``: the first probe's bookkeeping, the analysis step outside its evaluations, the report.

The *floor* is what the same work would cost if only the loss ran: one trace plus as many
compiled loss-and-gradient calls on prepared (already converted) inputs as the audit made
(adapter evaluations and training steps), timed on the same shape in the same process.
``audit / floor`` is the overhead factor. Numbers are printed, never asserted; on a shared
machine read them as proportions and note the load (printed from ``os.getloadavg``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHAPES = ("3x4x2x1", "13x13x5x20", "26x26x3x80", "52x52x3x80")
TARGETS = {
    "seed": ("", {}),
    "mse": ("fixtures/losses/references.py:mse_loss", {"cls": "sigmoid"}),
    "bce": ("fixtures/losses/references.py:bce_loss", {"cls": "sigmoid"}),
}

_CHILD = r"""
import json, statistics, sys, time
args = json.loads(sys.argv[1])
t0 = time.perf_counter()
import lossaudit
t_pkg = time.perf_counter() - t0
from lossaudit.adapter import Adapter, import_tensorflow
t1 = time.perf_counter(); tf = import_tensorflow(); t_tf = time.perf_counter() - t1
import numpy as np
from hypothesis.internal.conjecture import engine
import lossaudit.analysis as analysis_module
import lossaudit.properties.training as training_module
from lossaudit import scenarios as sc
from lossaudit.audit import audit
from lossaudit.properties import registry
from lossaudit.settings import resolve
from lossaudit.spec import Codec, GridSpec
from lossaudit.targets import load_target

t2 = time.perf_counter(); loss, target = load_target(args["target"] or None)
t_load = time.perf_counter() - t2
h, w, a, c = args["shape"]
spec = GridSpec(batch=2, H=h, W=w, anchors=a, classes=c)
codec = Codec(**args["codec"])

seconds = {k: 0.0 for k in ("trace", "evals", "shrink", "train", "hypo", "props", "analysis")}
counts = {"trace": 0, "evals": 0, "shrink_calls": 0, "train_steps": 0}
stack = []  # [key, seconds spent in nested regions]

def region(key, fn, count=None):
    def wrapped(*a, **k):
        if stack and stack[-1][0] == "shrink":
            # Inside the shrink phase everything belongs to shrinking.
            if count == "evals":
                counts["shrink_calls"] += 1
            return fn(*a, **k)
        name = key(*a) if callable(key) else key
        start = time.perf_counter()
        stack.append([name, 0.0])
        try:
            return fn(*a, **k)
        finally:
            _, nested = stack.pop()
            elapsed = time.perf_counter() - start
            seconds[name] += elapsed - nested
            if name in counts:
                counts[name] += 1
            if stack:
                stack[-1][1] += elapsed
    return wrapped

def _kind(self, mode, y_true, y_pred, flipped=False):
    return "evals" if (mode, tuple(y_pred.shape), bool(flipped)) in self._trace_info else "trace"

Adapter._call = region(_kind, Adapter._call, count="evals")
original_train = training_module.train
def counted_train(*a, **k):
    counts["train_steps"] += k.get("steps", 60) + 2
    return original_train(*a, **k)
training_module.train = region("train", counted_train)
analysis_module.analyse = region("analysis", analysis_module.analyse)
engine.ConjectureRunner.run = region("hypo", engine.ConjectureRunner.run)
engine.ConjectureRunner.shrink_interesting_test_cases = region(
    "shrink", engine.ConjectureRunner.shrink_interesting_test_cases
)
for p in registry._REGISTRY.values():
    object.__setattr__(p, "check", region("props", p.check))

t3 = time.perf_counter()
if args["floor_only"]:
    report = None
else:
    report = audit(loss, spec, codec, settings=resolve(args["profile"]), target=target)
t_audit = time.perf_counter() - t3

# The floor: one trace, then compiled calls on prepared inputs at the audited shape.
floor_adapter = Adapter(loss)
case = sc.noisy(sc.training_scene(spec), codec, seed=0)
run = floor_adapter._runner("graph")
truth = {k: tf.constant(v) for k, v in floor_adapter.inputs(case.scene).items()}
y_pred = tf.constant(case.y_pred)
start = time.perf_counter(); float(run(truth, y_pred, False)[0]["total"]); t_trace1 = time.perf_counter() - start
times = []
for _ in range(args["floor_calls"]):
    start = time.perf_counter()
    float(run(truth, y_pred, False)[0]["total"])
    times.append(time.perf_counter() - start)
t_call = statistics.median(times)
n_calls = counts["trace"] + counts["evals"] + counts["shrink_calls"] + counts["train_steps"]
n_calls = n_calls or args["floor_only"]
floor = t_trace1 + n_calls * t_call
accounted = sum(seconds.values())
print(json.dumps({
    "import_lossaudit": t_pkg, "import_tensorflow": t_tf, "load_target": t_load,
    "audit": t_audit, **seconds, "other": t_audit - accounted + seconds["analysis"],
    **{"n_" + k: v for k, v in counts.items()},
    "n_calls": n_calls, "call_ms": t_call * 1000, "first_trace": t_trace1, "floor": floor,
    "ratio": t_audit / floor if report else float("nan"),
    "examples": report.stats["examples"] if report else 0,
    "summary": report.summary if report else {"floor only": 1},
    "verdicts": {r.property: str(r.status) for r in report.results} if report else {},
    "truncated_shrinks": sum("not fully minimised" in r.info for r in report.results)
    if report else 0,
}))
"""

COLUMNS = (
    ("audit", "audit"),
    ("trace", "trace"),
    ("evals", "evals"),
    ("shrink", "shrink"),
    ("train", "train"),
    ("hypo", "hypo"),
    ("props", "props"),
    ("other", "other"),
    ("floor", "floor"),
    ("ratio", "ratio"),
)


def _shape(text: str) -> tuple[int, int, int, int]:
    parts = [int(p) for p in text.lower().split("x")]
    if len(parts) != 4:
        raise argparse.ArgumentTypeError(f"expected HxWxANCHORSxCLASSES, got {text!r}")
    return parts[0], parts[1], parts[2], parts[3]


def _run(
    target: str, codec: dict, shape: tuple, profile: str, floor_calls: int, floor_only: int
) -> dict:
    args = {
        "target": target,
        "codec": codec,
        "shape": shape,
        "profile": profile,
        "floor_calls": floor_calls,
        "floor_only": floor_only,
    }
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, json.dumps(args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"benchmark child failed ({target or 'seed'} {shape}):\n{out.stderr}")
    run = json.loads(out.stdout.strip().splitlines()[-1])
    run["process"] = time.perf_counter() - start
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--targets", default="seed,mse", help="comma-separated: seed, bce, file:name"
    )
    parser.add_argument("--shapes", default=",".join(SHAPES), help="comma-separated HxWxAxC")
    parser.add_argument("--profile", default="ci")
    parser.add_argument("--repeat", type=int, default=1, help="runs per row (median shown)")
    parser.add_argument("--floor-calls", type=int, default=15)
    parser.add_argument(
        "--floor-only",
        type=int,
        default=0,
        metavar="CALLS",
        help="skip the audit; print the floor of CALLS evaluations (for shapes where one "
        "evaluation of the loss takes seconds)",
    )
    parser.add_argument("--json", metavar="FILE", help="also write the raw runs here")
    args = parser.parse_args()

    shapes = [_shape(s) for s in args.shapes.split(",") if s]
    rows = []
    header = f"{'target':6} {'shape':12} " + " ".join(f"{label:>7}" for _, label in COLUMNS)
    load = os.getloadavg()
    print(
        f"profile {args.profile}; median of {args.repeat}; seconds; load at start "
        f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; {os.cpu_count()} CPUs"
    )
    print(header + "   calls  ms/call  tf-import  summary")
    for name in args.targets.split(","):
        target, codec = TARGETS.get(name, (name, {}))
        for shape in shapes:
            runs = [
                _run(target, codec, shape, args.profile, args.floor_calls, args.floor_only)
                for _ in range(args.repeat)
            ]
            runs.sort(key=lambda r: r["audit"])
            mid = runs[len(runs) // 2]
            rows.append({"target": name, "shape": shape, "runs": runs})
            cells = " ".join(f"{mid[k]:7.2f}" for k, _ in COLUMNS)
            label = "x".join(str(v) for v in shape)
            summary = ", ".join(f"{k} {v}" for k, v in mid["summary"].items() if v)
            print(
                f"{name:6} {label:12} {cells} {mid['n_calls']:7d} {mid['call_ms']:8.2f} "
                f"{mid['import_tensorflow']:9.2f}  {summary}",
                flush=True,
            )
    load = os.getloadavg()
    print(f"load at end {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
