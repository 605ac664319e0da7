"""How long a default audit takes, and where the time goes.

Run: ``python benchmarks/bench_audit.py [TARGET] [--profile ci] [--repeat 3] [--json]``

Splits one audit's wall time into: TensorFlow import, loading the target, tracing (calls that
traced a new shape, XLA compiles included), steady-state loss evaluations, the two short
training runs behind ``*.trains`` and the balance table, and everything else (Hypothesis
generation and shrinking, the properties' numpy work, report building). The analysis step
(response curves, gradient view, balance) is shown on its own line; its loss evaluations are
also counted above. Each run is
a fresh process, so TensorFlow's import is measured cold every time. Numbers are printed, never
asserted.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

_CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import lossaudit
t_pkg = time.perf_counter() - t0
from lossaudit.adapter import Adapter, import_tensorflow
t1 = time.perf_counter(); import_tensorflow(); t_tf = time.perf_counter() - t1
from lossaudit.audit import audit
from lossaudit.settings import resolve
from lossaudit.targets import load_target
t2 = time.perf_counter(); loss, target = load_target(sys.argv[1] or None); t_load = time.perf_counter() - t2

timing = {"trace": 0.0, "eval": 0.0, "trace_calls": 0, "eval_calls": 0}
original = Adapter._call

def timed(self, mode, y_true, y_pred, *rest):
    fresh = (mode, tuple(y_pred.shape), bool(rest and rest[0])) not in self._trace_info
    start = time.perf_counter()
    try:
        return original(self, mode, y_true, y_pred, *rest)
    finally:
        kind = "trace" if fresh else "eval"
        timing[kind] += time.perf_counter() - start
        timing[kind + "_calls"] += 1

Adapter._call = timed

import lossaudit.analysis as analysis_module
import lossaudit.properties.training as training_module

def timer(fn, key):
    def wrapped(*a, **k):
        start = time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            timing[key] = timing.get(key, 0.0) + time.perf_counter() - start
    return wrapped

training_module.train = timer(training_module.train, "training")
analysis_module.analyse = timer(analysis_module.analyse, "analysis")
t3 = time.perf_counter()
report = audit(loss, settings=resolve(sys.argv[2]), target=target)
t_audit = time.perf_counter() - t3
print(json.dumps({
    "import_lossaudit": t_pkg, "import_tensorflow": t_tf, "load_target": t_load,
    "audit": t_audit, "tracing": timing["trace"], "loss_evaluations": timing["eval"],
    "training": timing.get("training", 0.0), "analysis": timing.get("analysis", 0.0),
    "other": t_audit - timing["trace"] - timing["eval"] - timing.get("training", 0.0),
    "trace_calls": timing["trace_calls"], "eval_calls": timing["eval_calls"],
    "examples": report.stats["examples"], "summary": report.summary,
}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", nargs="?", default="", help="default: the bundled seed loss")
    parser.add_argument("--profile", default="ci")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print the raw runs as JSON")
    args = parser.parse_args()

    runs = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-c", _CHILD, args.target, args.profile],
            capture_output=True,
            text=True,
            check=True,
        )
        run = json.loads(out.stdout.strip().splitlines()[-1])
        run["process"] = time.perf_counter() - start
        runs.append(run)
    if args.json:
        print(json.dumps(runs, indent=2))
        return
    keys = [
        ("process", "whole process (wall)"),
        ("import_lossaudit", "import lossaudit"),
        ("import_tensorflow", "import TensorFlow"),
        ("load_target", "load the target"),
        ("audit", "audit()"),
        ("tracing", "  tracing new shapes (incl. XLA)"),
        ("loss_evaluations", "  loss evaluations"),
        ("training", "  training runs (*.trains, balance)"),
        ("other", "  Hypothesis + properties + report"),
        ("analysis", "  (analysis step, its evaluations incl.)"),
    ]
    print(
        f"target: {args.target or 'bundled seed loss'}; profile {args.profile}; {args.repeat} runs (median, min)"
    )
    for key, label in keys:
        values = [r[key] for r in runs]
        print(f"{label:36} {statistics.median(values):8.3f}s {min(values):8.3f}s")
    last = runs[-1]
    per_call = last["loss_evaluations"] / max(last["eval_calls"], 1) * 1000
    print(
        f"{last['examples']} examples, {last['trace_calls']} tracing calls, {last['eval_calls']} "
        f"evaluations ({per_call:.2f} ms each); summary {last['summary']}"
    )


if __name__ == "__main__":
    main()
