"""Every way of calling lossaudit wrongly, in one table: each raises under the root exception
with a message saying what was wrong, what was expected and what was received."""

from __future__ import annotations

import pytest

from lossaudit import audit, errors
from lossaudit.adapter import Adapter
from lossaudit.properties import get, select
from lossaudit.settings import Settings, get_profile
from lossaudit.spec import Codec, GridSpec, Obj, Scene
from lossaudit.targets import load_target

CASES = [
    ("grid batch 0", lambda: GridSpec(batch=0), errors.InvalidSpec, "batch=0"),
    ("grid H not int", lambda: GridSpec(H=2.5), errors.InvalidSpec, "H=2.5"),
    ("codec xy typo", lambda: Codec(xy="sigmod"), errors.InvalidSpec, "xy='sigmod'"),
    ("codec wh", lambda: Codec(wh="log"), errors.InvalidSpec, "identity | exp | square"),
    (
        "anchor size negative",
        lambda: Codec(anchor_sizes=((-1.0, 0.2),)),
        errors.InvalidSpec,
        "(-1.0, 0.2)",
    ),
    (
        "anchor count",
        lambda: Codec(anchor_sizes=((0.2, 0.2),)).check_against(GridSpec(anchors=2)),
        errors.InvalidSpec,
        "1 pairs",
    ),
    (
        "object outside grid",
        lambda: Scene(GridSpec(), (Obj(0, 9, 0, 0, 0.5, 0.5, 0.1, 0.1),)),
        errors.InvalidSpec,
        "i=9",
    ),
    (
        "class out of range",
        lambda: Scene(GridSpec(), (Obj(0, 0, 0, 0, 0.5, 0.5, 0.1, 0.1, 3),)),
        errors.InvalidSpec,
        "cls=3",
    ),
    (
        "two objects one slot",
        lambda: Scene(
            GridSpec(), (Obj(0, 0, 0, 0, 0.5, 0.5, 0.1, 0.1), Obj(0, 0, 0, 0, 0.2, 0.2, 0.1, 0.1))
        ),
        errors.InvalidSpec,
        "share one anchor slot",
    ),
    (
        "unknown profile",
        lambda: get_profile("thorugh"),
        errors.InvalidSpec,
        "Did you mean 'thorough'",
    ),
    ("max_examples 0", lambda: Settings(max_examples=0), errors.InvalidSpec, "max_examples=0"),
    ("reduction", lambda: Settings(reduction="avg"), errors.InvalidSpec, "auto | sum | mean"),
    (
        "unknown property",
        lambda: get("coordinates.finit"),
        errors.InvalidArgument,
        "Did you mean 'coordinates.finite'",
    ),
    (
        "unknown component filter",
        lambda: select(components=["coords"]),
        errors.InvalidArgument,
        "coords",
    ),
    ("not callable loss", lambda: Adapter(42), errors.InvalidArgument, "int"),
    (
        "spec as a tuple",
        lambda: audit(lambda t, p: t, (2, 3, 4, 2, 1)),
        errors.InvalidArgument,
        "spec=(2, 3, 4, 2, 1)",
    ),
    (
        "codec as a string",
        lambda: audit(lambda t, p: t, codec="sigmoid"),
        errors.InvalidArgument,
        "codec='sigmoid'",
    ),
    (
        "infinite time limit",
        lambda: Settings(time_limit=float("inf")),
        errors.InvalidSpec,
        "time_limit=inf",
    ),
    (
        "max_examples as text",
        lambda: Settings(max_examples="5"),
        errors.InvalidSpec,
        "max_examples='5'",
    ),
    (
        "bad role",
        lambda: Adapter(lambda a, b: a, components={"xy": "coords"}),
        errors.InvalidArgument,
        "xy=coords",
    ),
    (
        "target without name",
        lambda: load_target("fixtures/losses/references.py"),
        errors.TargetError,
        ":name",
    ),
    (
        "missing file",
        lambda: load_target("no/such/file.py:loss"),
        errors.TargetError,
        "no such file",
    ),
    (
        "misspelt attribute",
        lambda: load_target("lossaudit.examples.seed:seed_los"),
        errors.TargetError,
        "seed_loss",
    ),
    (
        "missing module",
        lambda: load_target("no_such_pkg.mod:loss"),
        errors.TargetError,
        "no_such_pkg",
    ),
    (
        "not a loss",
        lambda: load_target("lossaudit.examples.seed:OBJECT_SCALE"),
        errors.TargetError,
        "not a loss",
    ),
]


@pytest.mark.parametrize("build,exc,fragment", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_wrong_call_raises_clear_error(build, exc, fragment):
    with pytest.raises(exc) as info:
        build()
    assert isinstance(info.value, errors.LossAuditError)
    assert fragment in str(info.value)
