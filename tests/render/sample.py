"""A fixed report, built by hand, for golden renderer tests."""

from __future__ import annotations

from lossaudit.report import Counterexample, Report, Result


def sample_report() -> Report:
    cx = Counterexample(
        spec={"batch": 1, "H": 2, "W": 2, "anchors": 1, "classes": 1},
        scene=[{"b": 0, "i": 1, "j": 0, "a": 0, "x": 0.5, "y": 0.5, "w": 0.2, "h": 0.25, "cls": 0}],
        code=(
            "spec  = GridSpec(batch=1, H=2, W=2, anchors=1, classes=1)\n"
            "scene = [Obj(b=0, i=1, j=0, a=0, x=0.5, y=0.5, w=0.2, h=0.25, cls=0)]"
        ),
        params={"move": "shift", "dx": 0.2, "dy": 0.05},
        observed={"path": {"s=1": 0.01, "s=0": 0.0731}},
        case="perfect | shifted(dx=0.2, dy=0.05)",
        predicted=[
            {
                "b": 0,
                "i": 1,
                "j": 0,
                "a": 0,
                "x": 0.7,
                "y": 0.55,
                "w": 0.2,
                "h": 0.25,
                "obj": 0.99,
                "kind": "object",
            },
            {
                "b": 0,
                "i": 0,
                "j": 1,
                "a": 0,
                "x": 0.5,
                "y": 0.5,
                "w": 0.1,
                "h": 0.1,
                "obj": 0.01,
                "kind": "offending",
            },
        ],
    )
    results = (
        Result(
            "coordinates.finite",
            "coordinates",
            "pass",
            "finite",
            bugs=[6],
            examples=12,
            seconds=0.2,
        ),
        Result(
            "coordinates.decreases_as_boxes_converge",
            "coordinates",
            "fail",
            "rises from 0.0000 to 0.0731 on the step s=0.25 -> s=0 [1 / 4 object anchors]",
            expected="coordinates never increases as boxes return to the truth (atol=1e-6)",
            observed="rises from 0.0000 to 0.0731 on the step s=0.25 -> s=0",
            cells=[[0, 1, 0, 0]],
            cells_count=1,
            cells_of=4,
            cells_what="object anchors",
            counterexample=cx,
            reproduce="lossaudit report my_pkg.losses:yolo_loss --only coordinates.decreases_as_boxes_converge --profile ci",
            bugs=[3, 19],
            examples=40,
            seconds=1.5,
        ),
        Result(
            "objects.gradient_flows",
            "objects",
            "error",
            "RuntimeError: boom (at losses.py:12)",
            reproduce="lossaudit report x.py:l --only objects.gradient_flows --profile ci",
        ),
        Result(
            "classification.single_class",
            "classification",
            "warn",
            "classification is 0 everywhere",
            expected="a term that can train",
            observed="classification is 0 on every prediction tried (3)",
        ),
        Result(
            "classification.gradient_flows", "classification", "skip", "one class under softmax"
        ),
        Result("total.pure", "total", "pass", "pure", info=""),
    )
    return Report(
        target="my_pkg.losses:yolo_loss",
        spec={"batch": 1, "H": 2, "W": 2, "anchors": 1, "classes": 1},
        codec={
            "xy": "sigmoid",
            "wh": "exp",
            "obj": "sigmoid",
            "cls": "softmax",
            "anchor_sizes": [],
        },
        results=results,
        settings={"profile": "ci", "derandomize": True, "seed": None, "max_examples": 12},
        components={
            "coordinates": ["box_loss"],
            "objects": ["obj_loss"],
            "classification": ["cls_loss"],
            "total": ["<returned value>"],
        },
        notes=(
            "reported values not audited (no role matched; map them with --component NAME=ROLE): lr",
        ),
        stats={"examples": 52, "loss_evaluations": 300, "seconds": 3.25},
        analysis=sample_analysis(),
    )


def sample_analysis() -> dict:
    """Curves, gradients, balance and training as :mod:`lossaudit.analysis` records them."""
    x = [0.4, 0.2, 0.0]
    curves = [
        {
            "path": "box shift",
            "component": "coordinates",
            "x_label": "centre shift (cells)",
            "x": x,
            "y": [0.0, 0.02, 0.0731],
            "expected": "falls",
            "observed": "rises",
        },
        {
            "path": "box shift",
            "component": "total",
            "x_label": "centre shift (cells)",
            "x": x,
            "y": [1.0, 0.5, 0.1],
            "expected": "falls",
            "observed": "falls",
        },
        {
            "path": "true-class logit",
            "component": "classification",
            "x_label": "true-class logit",
            "x": [-6.0, 0.0, 3.0],
            "y": [0.0, 0.0, 0.0],
            "expected": "flat",
            "observed": "flat",
        },
    ]
    columns = ["x, y @ object", "x, y @ empty", "obj @ object", "obj @ empty"]
    gradients = {
        "columns": columns,
        "rows": [
            {
                "component": "coordinates",
                "connected": True,
                "norms": dict(zip(columns, [0.5, 0.0, 0.0, 0.0], strict=True)),
            },
            {
                "component": "objects",
                "connected": True,
                "norms": dict(zip(columns, [0.0, 0.0, 0.3, 0.0], strict=True)),
            },
        ],
        "at": "typical untrained predictions on the fixed scene",
    }
    balance = {
        "rows": [
            {
                "component": "coordinates",
                "value": 2.5,
                "weight": 1.0,
                "share": 0.9,
                "share_if_doubled": 0.947,
            },
            {
                "component": "objects",
                "value": 0.75,
                "weight": 5.0,
                "share": 0.1,
                "share_if_doubled": 0.182,
            },
            {
                "component": "classification",
                "value": 0.0,
                "weight": None,
                "share": 0.0,
                "share_if_doubled": 0.0,
            },
        ],
        "total": 3.25,
        "at": "typical untrained predictions (noisy seed 0) on 1 objects in 1 x 2 x 2 x 1 anchors",
        "note": "coordinates takes 90% of the gradient and objects 10%; doubling the objects term's "
        "weight would give it 18%; classification: no gradient at all, so no weight can make it "
        "train",
        "weights_fitted": True,
    }
    training = {
        "free predictions": {
            "values": {
                "coordinates": [2.5, 1.0, 0.1],
                "objects": [0.75, 0.75, 0.75],
                "total": [3.25, 1.75, 0.85],
            },
            "error": None,
        }
    }
    return {"curves": curves, "gradients": gradients, "balance": balance, "training": training}
