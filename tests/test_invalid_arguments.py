"""Every way of calling lossaudit wrongly, in one table: each raises under the root exception
with a message saying what was wrong, what was expected and what was received."""

from __future__ import annotations

from pathlib import Path

import pytest

from lossaudit import audit, errors
from lossaudit.adapter import Adapter
from lossaudit.cli import build_parser
from lossaudit.config import parse_losses, validate_table
from lossaudit.options import LossOptions
from lossaudit.properties import get, select
from lossaudit.pytest_plugin import audit_loss
from lossaudit.settings import Settings, get_profile
from lossaudit.spec import Codec, GridSpec, Obj, Scene
from lossaudit.targets import load_target


def flags(*argv: str):
    """The loss options of ``lossaudit report ARGV`` (exit code 2 when this raises)."""
    return lambda: LossOptions.from_cli(build_parser().parse_args(["report", *argv]))


def toml(**entry):
    """One ``[[tool.lossaudit.losses]]`` table; ``anchor_sizes`` is the key ``anchor-sizes``."""
    entry = {k.replace("_", "-"): v for k, v in entry.items()}
    return lambda: parse_losses({"losses": [{"target": "a.py:loss", **entry}]})


def keywords(**kw):
    return lambda: audit_loss("a.py:loss", **kw)


TOML = "pyproject.toml [[tool.lossaudit.losses]] #1: "
_ROOT = Path(__file__).resolve().parents[1]
_PYPROJECT = str(_ROOT / "pyproject.toml")
_ANCHORS = str(_ROOT / "fixtures" / "anchors" / "voc_grid_cells.txt")
#: Every loss option, wrong, through each front end: one message, spelt as the user spelt it.
OPTIONS = [
    ("--grid", flags("--grid", "3y4"), errors.InvalidSpec, "--grid: expected H or HxW"),
    ("grid key", toml(grid="3y4"), errors.InvalidSpec, TOML + "grid: expected H or HxW"),
    ("grid=", keywords(grid=(3, 0)), errors.InvalidSpec, "grid: expected H or HxW"),
    ("--anchors", flags("--anchors", "0"), errors.InvalidSpec, "--anchors: expected a positive"),
    ("anchors key", toml(anchors=0), errors.InvalidSpec, "anchors: expected a positive integer"),
    ("anchors=", keywords(anchors=1.5), errors.InvalidSpec, "received 1.5"),
    ("--classes", flags("--classes", "two"), errors.InvalidSpec, "received 'two'"),
    ("classes key", toml(classes=True), errors.InvalidSpec, "classes: expected a positive"),
    ("classes=", keywords(classes=0), errors.InvalidSpec, "Pass e.g. classes=1"),
    ("--batch", flags("--batch", "-1"), errors.InvalidSpec, "Pass e.g. --batch 2"),
    ("batch key", toml(batch=0), errors.InvalidSpec, "Write e.g. batch = 2"),
    ("batch=", keywords(batch=0), errors.InvalidSpec, "batch: expected a positive integer"),
    ("--xy", flags("--xy", "sigmod"), errors.InvalidSpec, "Did you mean 'sigmoid'"),
    ("xy key", toml(xy="sigmod"), errors.InvalidSpec, "Did you mean 'sigmoid'"),
    ("xy=", keywords(xy="sigmod"), errors.InvalidSpec, "Did you mean 'sigmoid'"),
    ("--wh", flags("--wh", "log"), errors.InvalidSpec, "identity | exp | square"),
    ("wh key", toml(wh="log"), errors.InvalidSpec, "identity | exp | square"),
    ("wh=", keywords(wh="log"), errors.InvalidSpec, "identity | exp | square"),
    ("--obj", flags("--obj", "softmax"), errors.InvalidSpec, "sigmoid | identity"),
    ("obj key", toml(obj="softmax"), errors.InvalidSpec, "sigmoid | identity"),
    ("obj=", keywords(obj="softmax"), errors.InvalidSpec, "sigmoid | identity"),
    ("--cls", flags("--cls", "softmx"), errors.InvalidSpec, "Did you mean 'softmax'"),
    ("cls key", toml(cls="softmx"), errors.InvalidSpec, "Did you mean 'softmax'"),
    ("cls=", keywords(cls="softmx"), errors.InvalidSpec, "Did you mean 'softmax'"),
    ("--anchor-sizes", flags("--anchor-sizes", "0.2"), errors.InvalidSpec, "received '0.2'"),
    ("anchor-sizes key", toml(anchor_sizes="0.1,0.1"), errors.InvalidSpec, "W,H pairs"),
    ("anchor_sizes=", keywords(anchor_sizes=[(0, 0.2)]), errors.InvalidSpec, "positive W,H pairs"),
    (
        "anchor-sizes out of range",
        flags("--anchor-sizes", "11,0.2"),
        errors.InvalidSpec,
        "sizes up to 10 images wide, given in image fractions",
    ),
    ("--anchors-file", flags("--anchors-file", _PYPROJECT), errors.InvalidSpec, "numbers only"),
    ("--anchors-file missing", flags("--anchors-file", "no.txt"), errors.InvalidSpec, "readable"),
    (
        "--anchors-file with --anchor-sizes",
        flags("--anchors-file", _ANCHORS, "--anchor-sizes", "0.1,0.1"),
        errors.InvalidSpec,
        "anchor sizes from one place",
    ),
    ("--layout", flags("--layout", "yad2"), errors.InvalidSpec, "Did you mean 'yad2k'"),
    ("layout key", toml(layout="nowhere"), errors.InvalidSpec, "a built-in layout"),
    (
        "layout=",
        keywords(layout="os:path"),
        errors.InvalidSpec,
        "'os:path' is a module, not a Layout",
    ),
    ("--input-size", flags("--input-size", "0"), errors.InvalidSpec, "input size in pixels"),
    ("--loss-arg", flags("--loss-arg", "1x=2"), errors.InvalidSpec, "NAME=VALUE"),
    ("component_names=", keywords(component_names="a,a"), errors.InvalidSpec, "distinct"),
    (
        "--anchor-sizes count",
        flags("--anchors", "3", "--anchor-sizes", "0.1,0.1"),
        errors.InvalidSpec,
        "expected 3 W,H pairs, one per anchor (--anchors is 3)",
    ),
    (
        "anchor-sizes key count",
        toml(anchors=2, anchor_sizes=["0.1,0.1"]),
        errors.InvalidSpec,
        "expected 2 W,H pairs, one per anchor (anchors is 2)",
    ),
    (
        "anchor_sizes= count",
        keywords(anchors=1, anchor_sizes=["0.1,0.1", "0.2,0.2"]),
        errors.InvalidSpec,
        "expected 1 W,H pairs, one per anchor (anchors is 1); received 2 pairs",
    ),
    (
        "--component",
        flags("--component", "xy=coords"),
        errors.InvalidArgument,
        "--component: 'xy' is mapped to an unknown role",
    ),
    (
        "component key",
        toml(component=["xy=coords"]),
        errors.InvalidArgument,
        TOML + "component: 'xy' is mapped to an unknown role",
    ),
    (
        "components=",
        keywords(components={"xy": "coords"}),
        errors.InvalidArgument,
        "audit_loss(): components: 'xy' is mapped to an unknown role",
    ),
    ("--reduction", flags("--reduction", "avg"), errors.InvalidSpec, "auto | sum | mean"),
    ("reduction key", toml(reduction="avg"), errors.InvalidSpec, "auto | sum | mean"),
    ("reduction=", keywords(reduction="avg"), errors.InvalidSpec, "auto | sum | mean"),
    (
        "misspelt loss key",
        toml(clases=3),
        errors.InvalidSpec,
        "unknown key 'clases': expected one of target, grid, anchors, classes",
    ),
    (
        "misspelt keyword",
        keywords(anchor_size=[]),
        errors.InvalidArgument,
        "unknown keyword 'anchor_size'",
    ),
    (
        "misspelt top-level key",
        lambda: validate_table({"profle": "ci"}),
        errors.InvalidSpec,
        "[tool.lossaudit]: unknown key 'profle'",
    ),
    (
        "target without name",
        toml(target="losses.py"),
        errors.InvalidSpec,
        "#1: target: expected",
    ),
    (
        "misspelt tolerance",
        lambda: validate_table({"tolerance": {"coordinate": 1e-3}}),
        errors.InvalidSpec,
        "Did you mean 'coordinates'",
    ),
]

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
    *OPTIONS,
]


@pytest.mark.parametrize("build,exc,fragment", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_wrong_call_raises_clear_error(build, exc, fragment):
    with pytest.raises(exc) as info:
        build()
    assert isinstance(info.value, errors.LossAuditError)
    assert fragment in str(info.value)
