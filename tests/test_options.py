"""The loss-options table: three front ends read it, the reproduce line writes it back."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lossaudit import parsers
from lossaudit.audit import reproduce_command
from lossaudit.cli import build_parser, main
from lossaudit.config import parse_losses
from lossaudit.errors import LossAuditError
from lossaudit.layouts import get_layout
from lossaudit.options import OPTIONS, LossOptions, Option
from lossaudit.pytest_plugin import audit_loss
from lossaudit.settings import PROFILES
from lossaudit.spec import CLS_CHOICES, OBJ_CHOICES, WH_CHOICES, XY_CHOICES, Codec, GridSpec


def parse(flags: list[str]) -> LossOptions:
    return LossOptions.from_cli(build_parser().parse_args(["report", *flags]))


def keywords(table: dict) -> dict:
    """A ``[[tool.lossaudit.losses]]`` table as ``audit_loss`` keywords."""
    return {OPTIONS[key].dest: value for key, value in table.items()}


#: Non-default option sets as TOML tables, with the flags the reproduce line has always had.
TABLES = [
    ({}, []),
    (
        {
            "grid": "13x9",
            "anchors": 3,
            "cls": "sigmoid",
            "anchor-sizes": ["0.1,0.1", "0.3,0.3", "0.6,0.6"],
        },
        "--grid 13x9 --anchors 3 --cls sigmoid --anchor-sizes 0.1,0.1 0.3,0.3 0.6,0.6",
    ),
    (
        {
            "grid": 5,
            "classes": 4,
            "batch": 1,
            "xy": "identity",
            "wh": "square",
            "obj": "identity",
            "cls": "identity",
        },
        "--grid 5 --classes 4 --batch 1 --xy identity --wh square --obj identity --cls identity",
    ),
    (
        {"component": ["box=coordinates", "lr=ignore"], "reduction": "sum"},
        "--component box=coordinates --component lr=ignore --reduction sum",
    ),
    (
        {
            "grid": [2, 7],
            "anchors": 1,
            "anchor-sizes": [[0.25, 0.5]],
            "component": {"conf": "confidence"},
            "reduction": "mean",
        },
        "--grid 2x7 --anchors 1 --anchor-sizes 0.25,0.5 --component conf=confidence "
        "--reduction mean",
    ),
    ({"degenerate-boxes": True, "classes": 2}, "--classes 2 --degenerate-boxes"),
    ({"degenerate-boxes": False}, []),
    ({"factory": True, "anchors": 1}, "--anchors 1 --factory"),
]


@pytest.mark.parametrize("table,flags", TABLES)
def test_every_front_end_builds_the_same_options_and_flags_round_trip(table, flags):
    x = LossOptions.from_table(table, where="pyproject.toml")
    assert x.to_flags() == (flags.split() if flags else [])
    assert parse(x.to_flags()) == x
    assert LossOptions.from_keywords(keywords(table)) == x
    (configured,) = parse_losses({"losses": [{"target": "a.py:loss", **table}]})
    assert configured.options == x
    loss = audit_loss("a.py:loss", **keywords(table))
    assert (loss.spec, loss.codec, loss.components, loss.reduction) == (
        x.spec,
        x.codec,
        x.components,
        x.reduction,
    )


def test_the_reproduce_line_renders_the_options_as_before():
    settings = PROFILES["ci"].replace(reduction="sum")
    spec, codec = GridSpec(H=13, W=9, anchors=1), Codec(cls="sigmoid", anchor_sizes=((0.1, 0.2),))
    assert reproduce_command(
        "t.py:loss", spec, codec, settings, components={"box": "coordinates"}
    ) == (
        "lossaudit report t.py:loss --grid 13x9 --anchors 1 --cls sigmoid --anchor-sizes 0.1,0.2 "
        "--component box=coordinates --reduction sum --profile ci"
    )


_names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_/0123456789", min_size=1, max_size=8)


@st.composite
def loss_options(draw: st.DrawFn) -> LossOptions:
    anchors = draw(st.integers(1, 4))
    spec = GridSpec(
        batch=draw(st.integers(1, 3)),
        H=draw(st.integers(1, 20)),
        W=draw(st.integers(1, 20)),
        anchors=anchors,
        classes=draw(st.integers(1, 5)),
    )
    size = st.floats(min_value=0, max_value=10, exclude_min=True)
    sizes = draw(st.just(()) | st.lists(st.tuples(size, size), min_size=anchors, max_size=anchors))
    codec = Codec(
        xy=draw(st.sampled_from(XY_CHOICES)),
        wh=draw(st.sampled_from(WH_CHOICES)),
        obj=draw(st.sampled_from(OBJ_CHOICES)),
        cls=draw(st.sampled_from(CLS_CHOICES)),
        anchor_sizes=tuple(sizes),
    )
    roles = st.sampled_from(("coordinates", "objects", "no_objects", "total", "ignore"))
    components = draw(st.dictionaries(_names, roles, max_size=3))
    reduction = draw(st.sampled_from(("auto", "sum", "mean")))
    return LossOptions(spec, codec, components, reduction, degenerate_boxes=draw(st.booleans()))


@given(loss_options())
def test_from_cli_of_to_flags_is_the_identity(x):
    assert parse(x.to_flags()) == x


@given(
    loss_options(),
    st.sampled_from(("canonical", "yad2k")),
    st.none() | st.integers(32, 1024),
    st.dictionaries(st.sampled_from(("a", "rescore_confidence")), st.booleans() | st.integers()),
    st.just(())
    | st.lists(_names.filter(lambda n: "," not in n), min_size=1, max_size=3, unique=True),
)
def test_layout_options_survive_the_reproduce_line(x, layout, size, kwargs, names):
    x = dataclasses.replace(
        x,
        layout=get_layout(layout),
        input_size=None if size is None else (size, size),
        loss_kwargs=kwargs,
        component_names=tuple(names),
    )
    again = parse(x.to_flags())
    assert again.to_flags() == x.to_flags()
    assert (again.layout, again.input_size, again.loss_kwargs, again.component_names) == (
        x.layout,
        x.input_size,
        x.loss_kwargs,
        x.component_names,
    )
    np.testing.assert_allclose(again.codec.anchor_sizes or 0, x.codec.anchor_sizes or 0, rtol=1e-9)


@pytest.mark.parametrize("name", list(OPTIONS))
def test_every_option_is_a_flag_a_key_and_a_keyword(name, capsys):
    option = OPTIONS[name]
    with pytest.raises(SystemExit):
        main(["report", "--help"])
    usage = option.flag if option.arity == "switch" else f"{option.flag} {option.metavar}"
    assert usage in capsys.readouterr().out
    with pytest.raises(LossAuditError, match=rf"#1: {name}\b"):
        parse_losses({"losses": [{"target": "a.py:l", name: object()}]})
    with pytest.raises(LossAuditError, match=rf"audit_loss\(\): {option.dest}\b"):
        audit_loss("a.py:l", **{option.dest: object()})


def test_an_option_added_to_the_table_reaches_every_front_end(monkeypatch, capsys):
    """The CLI help, the TOML and keyword checks and the reproduce line iterate OPTIONS."""

    def parse_colour(value, name):
        if value not in ("red", "blue"):
            raise parsers.Rejected("red | blue", value)
        return value

    colour = Option(
        "box-colour",
        parse_colour,
        "red",
        "colour of drawn boxes (default red)",
        get=lambda o: "blue",
        words=lambda v: [v],
        group="drawing",
        metavar="{red,blue}",
        example="red",
    )
    monkeypatch.setitem(OPTIONS, "box-colour", colour)
    with pytest.raises(SystemExit):
        main(["report", "--help"])
    assert "--box-colour {red,blue}" in capsys.readouterr().out
    LossOptions.from_table({"box-colour": "blue"}, where="t")
    LossOptions.from_keywords({"box_colour": "blue"})
    with pytest.raises(LossAuditError, match="Did you mean 'box-colour'"):
        LossOptions.from_table({"box-color": "blue"}, where="t")
    with pytest.raises(LossAuditError, match=re.escape("box_colour: expected red | blue;")):
        LossOptions.from_keywords({"box_colour": "green"})
    with pytest.raises(LossAuditError, match=re.escape("--box-colour: expected red | blue;")):
        parse(["--box-colour", "green"])
    line = reproduce_command("t.py:loss", GridSpec(), Codec(), PROFILES["ci"])
    assert "--box-colour blue" in line


BAD = [
    ("grid", "3y4", "H or HxW with positive integers (e.g. 13 or 13x9)"),
    ("anchors", "0", "a positive integer"),
    ("classes", "two", "a positive integer"),
    ("batch", "-1", "a positive integer"),
    ("xy", "sigmod", "identity | sigmoid"),
    ("wh", "log", "identity | exp | square"),
    ("obj", "softmax", "sigmoid | identity"),
    ("cls", "softmx", "softmax | sigmoid | identity"),
    ("reduction", "avg", "auto | sum | mean"),
]


@pytest.mark.parametrize("name,text,expected", BAD)
def test_one_message_whichever_front_end_gave_the_value(name, text, expected):
    option = OPTIONS[name]
    messages = []
    for build in (
        lambda: parse([option.flag, text]),
        lambda: LossOptions.from_table({name: text}, where="pyproject.toml"),
        lambda: LossOptions.from_keywords({option.dest: text}),
    ):
        with pytest.raises(LossAuditError) as info:
            build()
        messages.append(str(info.value))
    tail = f"expected {expected}; received {text!r}."
    assert all(tail in m for m in messages), messages
    assert messages[0].startswith(f"{option.flag}: ")
    assert messages[1].startswith(f"pyproject.toml: {name}: ")
    assert messages[2].startswith(f"audit_loss(): {option.dest}: ")


def test_a_switch_is_a_flag_without_a_value_and_true_or_false_elsewhere():
    """``--degenerate-boxes`` (an opt-in scenario): present or absent on the command line,
    ``true``/``false`` in TOML and Python, anything else refused with one message."""
    on = parse(["--degenerate-boxes"])
    assert on.degenerate_boxes and on.to_flags() == ["--degenerate-boxes"]
    assert not parse([]).degenerate_boxes
    assert LossOptions.from_table({"degenerate-boxes": True}, where="t") == on
    assert LossOptions.from_keywords({"degenerate_boxes": True}) == on
    assert audit_loss("a.py:l", degenerate_boxes=True).options == on
    (configured,) = parse_losses({"losses": [{"target": "a.py:l", "degenerate-boxes": True}]})
    assert configured.options == on
    assert on.calling()["degenerate_boxes"] is True
    messages = []
    for build in (
        lambda: LossOptions.from_table({"degenerate-boxes": "yes"}, where="pyproject.toml"),
        lambda: LossOptions.from_keywords({"degenerate_boxes": 1}),
    ):
        with pytest.raises(LossAuditError) as info:
            build()
        messages.append(str(info.value))
    assert messages[0] == (
        "pyproject.toml: degenerate-boxes: expected true or false; received 'yes'. "
        "Write e.g. degenerate-boxes = true."
    )
    assert messages[1] == (
        "audit_loss(): degenerate_boxes: expected true or false; received 1. "
        "Pass e.g. degenerate_boxes=True."
    )
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["report", "--degenerate-boxes=yes"])
    assert exited.value.code == 2


def test_the_reproduce_line_keeps_an_opt_in_scenario():
    line = reproduce_command(
        "t.py:loss",
        GridSpec(),
        Codec(),
        PROFILES["ci"],
        only="total.finite_on_degenerate_boxes",
        calling=LossOptions(degenerate_boxes=True),
    )
    assert line == (
        "lossaudit report t.py:loss --degenerate-boxes --only total.finite_on_degenerate_boxes "
        "--profile ci"
    )
