"""How long an audit takes at real shapes, where the time goes, and how far it is from the floor.

Run::

    python benchmarks/bench_audit.py                     # seed + mse reference, four shapes
    python benchmarks/bench_audit.py --shapes 3x4x2x1 --targets seed --repeat 3
    python benchmarks/bench_audit.py --json runs.json    # also keep the raw runs
    python benchmarks/bench_audit.py --preset three-scales   # keras-yolo3, 13,26,52 vs 52 alone

A shape is ``HxWxANCHORSxCLASSES`` (batch 2, as ``lossaudit report``). A target is ``seed`` (the
bundled seed loss, the default target), ``mse`` or ``bce`` (``fixtures/losses/references.py``,
correct references, sigmoid classes) or ``path.py:name`` (default codec).

A loss in a public convention is run through its layout, with ``lossaudit report``'s layout
options instead of ``--shapes``::

    python benchmarks/bench_audit.py --targets fixtures/losses/keras_yolo3_style.py:yolo_loss \
        --layout keras-yolo3 --scales 13,26,52 \
        --anchors-file fixtures/anchors/keras_yolo3_coco_416px.txt [--only-scale 2] [--classes 80]

``--preset three-scales`` runs that audit twice, every scale and then the finest alone
(``--only-scale 2``), and prints the ratio of their times (issue 10: a three-scale audit should
stay within 3x the audit of its finest scale). ``--classes`` applies to it too.

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
(adapter evaluations and training steps), timed on the same shape in the same process; for a
multi-scale loss, per audited scale (its calls timed at its own grid), summed.
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
#: ``--preset three-scales``: the keras-yolo3-style fixture at keras-yolo3's own three grids
#: and COCO anchors (its ``model_data/yolo_anchors.txt``, input pixels of a 416 input).
THREE_SCALES = {
    "target": "fixtures/losses/keras_yolo3_style.py:yolo_loss",
    "layout": "keras-yolo3",
    "scales": "13,26,52",
    "anchors-file": "fixtures/anchors/keras_yolo3_coco_416px.txt",
    "finest": 2,
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
audit_module = sys.modules["lossaudit.audit"]  # lossaudit.audit is the function
from lossaudit.options import LossOptions
from lossaudit.properties import registry
from lossaudit.settings import resolve
from lossaudit.spec import Codec, GridSpec
from lossaudit.targets import load_target

t2 = time.perf_counter(); loss, target = load_target(args["target"] or None)
t_load = time.perf_counter() - t2
if args["table"]:  # a layout's options, as [tool.lossaudit] gives them
    options = LossOptions.from_table(args["table"], where="benchmark")
else:
    h, w, a, c = args["shape"]
    options = LossOptions(GridSpec(batch=2, H=h, W=w, anchors=a, classes=c), Codec(**args["codec"]))

seconds = {k: 0.0 for k in ("trace", "evals", "shrink", "train", "hypo", "props", "analysis")}
counts = {"trace": 0, "evals": 0, "shrink_calls": 0, "train_steps": 0}
per_scale = {}  # calls made while auditing each scale, for its floor
current = {"scale": 0}
stack = []  # [key, seconds spent in nested regions]

def count_call(n=1):
    per_scale[current["scale"]] = per_scale.get(current["scale"], 0) + n

def region(key, fn, count=None):
    def wrapped(*a, **k):
        if count == "evals":
            count_call()
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
    count_call(k.get("steps", 60) + 2)
    return original_train(*a, **k)
training_module.train = region("train", counted_train)
analysis_module.analyse = region("analysis", analysis_module.analyse)
engine.ConjectureRunner.run = region("hypo", engine.ConjectureRunner.run)
engine.ConjectureRunner.shrink_interesting_test_cases = region(
    "shrink", engine.ConjectureRunner.shrink_interesting_test_cases
)
for p in registry._REGISTRY.values():
    object.__setattr__(p, "check", region("props", p.check))
original_frame = audit_module._audit_frame
def framed(loss, frame, *a, **k):
    current["scale"] = frame.scale
    return original_frame(loss, frame, *a, **k)
audit_module._audit_frame = framed

t3 = time.perf_counter()
if args["floor_only"]:
    report = None
else:
    report = audit(
        loss,
        options.spec,
        options.codec,
        settings=resolve(args["profile"]),
        target=target,
        components=options.components,
        **options.calling(),
    )
t_audit = time.perf_counter() - t3

# The floor: per audited scale, one trace, then compiled calls on prepared inputs at its shape.
floor, t_trace1, call_seconds = 0.0, 0.0, 0.0
frames = options.scale_frames()
for frame in frames:
    floor_adapter = Adapter.calling(loss, options, frame)
    case = sc.noisy(sc.training_scene(frame.spec), frame.codec, seed=0)
    run = floor_adapter._runner("graph")
    truth = {k: tf.constant(v) for k, v in floor_adapter.inputs(case.scene).items()}
    y_pred = tf.constant(case.y_pred)
    start = time.perf_counter(); float(run(truth, y_pred, False)[0]["total"])
    traced = time.perf_counter() - start
    times = []
    for _ in range(args["floor_calls"]):
        start = time.perf_counter()
        float(run(truth, y_pred, False)[0]["total"])
        times.append(time.perf_counter() - start)
    calls = per_scale.get(frame.scale, 0) or args["floor_only"] // len(frames)
    t_trace1 += traced
    call_seconds += calls * statistics.median(times)
    floor += traced + calls * statistics.median(times)
n_calls = counts["trace"] + counts["evals"] + counts["shrink_calls"] + counts["train_steps"]
n_calls = n_calls or args["floor_only"]
t_call = call_seconds / max(n_calls, 1)
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
    target: str,
    codec: dict,
    shape: tuple | None,
    profile: str,
    floor_calls: int,
    floor_only: int,
    table: dict | None = None,
) -> dict:
    args = {
        "target": target,
        "codec": codec,
        "shape": shape,
        "table": table,
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
        raise SystemExit(
            f"benchmark child failed ({target or 'seed'} {shape or table}):\n{out.stderr}"
        )
    run = json.loads(out.stdout.strip().splitlines()[-1])
    run["process"] = time.perf_counter() - start
    return run


def _layout_table(args: argparse.Namespace, only_scale: int | None) -> dict:
    """``[tool.lossaudit]``-style options of a layout run (paths relative to the repository)."""
    table: dict = {"layout": args.layout, "scales": args.scales}
    if args.anchors_file:
        table["anchors-file"] = str((ROOT / args.anchors_file).resolve())
    if args.classes is not None:
        table["classes"] = args.classes
    if only_scale is not None:
        table["only-scale"] = only_scale
    return table


def _jobs(args: argparse.Namespace) -> list[dict]:
    """What to run: ``(name, label, target, codec, shape, table)`` per row."""
    if args.preset == "three-scales":
        args.layout, args.scales = THREE_SCALES["layout"], THREE_SCALES["scales"]
        args.anchors_file = THREE_SCALES["anchors-file"]
        target = THREE_SCALES["target"]
        finest = int(THREE_SCALES["finest"])
        return [
            {
                "name": "ky3",
                "label": label,
                "target": target,
                "codec": {},
                "shape": None,
                "table": _layout_table(args, only),
            }
            for label, only in ((args.scales, None), (f"{args.scales}@{finest}", finest))
        ]
    jobs = []
    for name in args.targets.split(","):
        target, codec = TARGETS.get(name, (name, {}))
        short = name if name in TARGETS else Path(name.split(":")[-1]).name[:6]
        if args.layout:
            label = args.scales + (f"@{args.only_scale}" if args.only_scale is not None else "")
            table = _layout_table(args, args.only_scale)
            jobs.append(
                {
                    "name": short,
                    "label": label,
                    "target": target,
                    "codec": {},
                    "shape": None,
                    "table": table,
                }
            )
            continue
        for shape in (_shape(s) for s in args.shapes.split(",") if s):
            label = "x".join(str(v) for v in shape)
            jobs.append(
                {
                    "name": short,
                    "label": label,
                    "target": target,
                    "codec": codec,
                    "shape": shape,
                    "table": None,
                }
            )
    return jobs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--targets", default="seed,mse", help="comma-separated: seed, mse, bce, file:name"
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
    lay = parser.add_argument_group("a loss in a public convention (replaces --shapes)")
    lay.add_argument("--layout", help="the loss's layout, as lossaudit report --layout")
    lay.add_argument("--scales", help="every grid of a multi-scale loss, e.g. 13,26,52")
    lay.add_argument("--anchors-file", metavar="PATH", help="anchors in the layout's unit")
    lay.add_argument("--only-scale", type=int, metavar="K", help="audit one scale only")
    lay.add_argument("--classes", type=int, metavar="C", help="number of classes (default 1)")
    parser.add_argument(
        "--preset",
        choices=("three-scales",),
        help="three-scales: the keras-yolo3-style fixture at 13,26,52 with keras-yolo3's COCO "
        "anchors, every scale and then the 52 grid alone, and the ratio of their times",
    )
    parser.add_argument("--json", metavar="FILE", help="also write the raw runs here")
    args = parser.parse_args()
    if args.layout and not args.scales and not args.preset:
        parser.error("--layout needs --scales (a single-scale layout: --scales 13)")

    jobs = _jobs(args)
    rows = []
    header = f"{'target':6} {'shape':15} " + " ".join(f"{label:>7}" for _, label in COLUMNS)
    load = os.getloadavg()
    print(
        f"profile {args.profile}; median of {args.repeat}; seconds; load at start "
        f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; {os.cpu_count()} CPUs"
    )
    print(header + "   calls  ms/call  tf-import  summary")
    for job in jobs:
        runs = [
            _run(
                job["target"],
                job["codec"],
                job["shape"],
                args.profile,
                args.floor_calls,
                args.floor_only,
                job["table"],
            )
            for _ in range(args.repeat)
        ]
        runs.sort(key=lambda r: r["audit"])
        mid = runs[len(runs) // 2]
        rows.append({**job, "runs": runs})
        cells = " ".join(f"{mid[k]:7.2f}" for k, _ in COLUMNS)
        summary = ", ".join(f"{k} {v}" for k, v in mid["summary"].items() if v)
        print(
            f"{job['name']:6} {job['label']:15} {cells} {mid['n_calls']:7d} "
            f"{mid['call_ms']:8.2f} {mid['import_tensorflow']:9.2f}  {summary}",
            flush=True,
        )
    load = os.getloadavg()
    print(f"load at end {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    if args.preset == "three-scales" and not args.floor_only:
        every, finest = (row["runs"][len(row["runs"]) // 2]["audit"] for row in rows)
        print(
            f"three scales ({jobs[0]['label']}) / finest scale alone ({jobs[1]['label']}): "
            f"{every:.1f} s / {finest:.1f} s = {every / finest:.2f} (issue 10 asks for <= 3)"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
