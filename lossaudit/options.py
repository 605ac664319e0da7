"""The loss options: one table read by every front end and written back by the reproduce line.

Each :class:`Option` is spelt three ways, by one rule: the ``lossaudit report`` flag
``--anchor-sizes``, the ``[[tool.lossaudit.losses]]`` key ``anchor-sizes`` and the
``audit_loss(...)`` keyword ``anchor_sizes`` (dashes become underscores; ``--component`` is the
keyword ``components``, since it takes the whole mapping). One parser per option accepts what
the command line gives (text) and what TOML or Python gives (numbers, lists, tables), so a value
is validated once, with one message whichever front end it came from.

:class:`LossOptions` is the result: the built :class:`~lossaudit.spec.GridSpec` and
:class:`~lossaudit.spec.Codec`, the component mapping and the declared reduction.

- :meth:`LossOptions.from_cli`: a parsed ``argparse`` namespace (see :func:`add_arguments`);
- :meth:`LossOptions.from_table`: one ``[[tool.lossaudit.losses]]`` table;
- :meth:`LossOptions.from_keywords`: ``audit_loss(...)`` keywords;
- :meth:`LossOptions.to_flags`: the flags that rebuild it (non-defaults only), for reproduce lines.

Adding an option is one entry in :data:`OPTIONS` (plus where its value goes in :func:`_build`):
the CLI help, the TOML and keyword validation and the reproduce line all iterate the table.

Example:
    >>> opts = LossOptions.from_table({"grid": "13x9", "cls": "sigmoid"}, where="pyproject.toml")
    >>> opts.spec.H, opts.spec.W, opts.to_flags()
    (13, 9, ['--grid', '13x9', '--cls', 'sigmoid'])
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import shlex
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from numbers import Integral, Real
from typing import TYPE_CHECKING, Any, Literal

from lossaudit.components import MAPPABLE, check_mapping
from lossaudit.errors import InvalidArgument, InvalidSpec, LossAuditError, did_you_mean
from lossaudit.layouts import BUILT_IN, CANONICAL, Frame, Layout, get_layout
from lossaudit.references import is_reference
from lossaudit.settings import REDUCTIONS
from lossaudit.spec import CLS_CHOICES, OBJ_CHOICES, WH_CHOICES, XY_CHOICES, Codec, GridSpec

if TYPE_CHECKING:
    import argparse

__all__ = ["OPTIONS", "LossOptions", "Option", "add_arguments", "unknown_key"]


class _Rejected(Exception):
    """A parser's verdict on one value; the caller words it for the front end it came from."""

    def __init__(self, expected: str, received: Any, hint: str = ""):
        super().__init__(expected)
        self.expected, self.received, self.hint = expected, received, hint


@dataclass(frozen=True)
class Option:
    """One loss option: its name, how to read it, its default and how to write it back.

    ``parse(value, name)`` takes the command line's text or a TOML/Python value and returns
    the option's value (``name``: the option as the user spelt it, for messages); ``get``
    reads that value back from a :class:`LossOptions`; ``words`` turns it into command-line
    words. ``example`` is a TOML/Python value shown in the "how to fix" part of messages.
    """

    name: str
    parse: Callable[[Any, str], Any]
    default: Any
    help: str
    get: Callable[[LossOptions], Any]
    words: Callable[[Any], list[str]]
    group: str
    metavar: str
    example: Any
    #: ``one`` value per flag, ``several`` after one flag, or a ``repeat``-able flag.
    arity: Literal["one", "several", "repeat"] = "one"
    #: The ``audit_loss`` keyword, when it is not the name with dashes as underscores.
    keyword: str = ""

    @property
    def flag(self) -> str:
        return f"--{self.name}"

    @property
    def dest(self) -> str:
        """The ``audit_loss`` keyword, also the ``argparse`` destination."""
        return self.keyword or self.name.replace("-", "_")

    def flags(self, value: Any) -> list[str]:
        """The command-line arguments that give this option ``value``."""
        words = self.words(value)
        if self.arity == "repeat":
            return [w for word in words for w in (self.flag, word)]
        return [self.flag, *words]


# -- parsers: command-line text or a TOML/Python value -> the option's value ------------------
def _integer(value: Any) -> int | None:
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return None
    if isinstance(value, Integral) and not isinstance(value, bool):
        return int(value)
    return None


def _grid(value: Any, name: str) -> tuple[int, int]:
    if isinstance(value, str):
        parts: list[Any] = value.lower().replace("*", "x").split("x")
    elif isinstance(value, list | tuple):
        parts = list(value)
    else:
        parts = [value]
    sizes = [_integer(p) for p in parts]
    if len(sizes) not in (1, 2) or any(s is None or s < 1 for s in sizes):
        raise _Rejected("H or HxW with positive integers (e.g. 13 or 13x9)", value)
    return (sizes[0], sizes[-1])  # type: ignore[return-value]


def _positive(value: Any, name: str) -> int:
    number = _integer(value)
    if number is None or number < 1:
        raise _Rejected("a positive integer", value)
    return number


def _choice(choices: tuple[str, ...]) -> Callable[[Any, str], str]:
    def parse(value: Any, name: str) -> str:
        if value not in choices:
            raise _Rejected(" | ".join(choices), value, did_you_mean(str(value), choices))
        return value

    return parse


def _pair(item: Any) -> tuple[float, float] | None:
    try:
        if isinstance(item, str):
            pair = tuple(float(v) for v in item.split(","))
        elif isinstance(item, list | tuple) and all(
            isinstance(v, Real) and not isinstance(v, bool) for v in item
        ):
            pair = tuple(float(v) for v in item)
        else:
            return None
    except ValueError:
        return None
    if len(pair) != 2 or not all(math.isfinite(v) and v > 0 for v in pair):
        return None
    return pair  # type: ignore[return-value]


def _anchor_sizes(value: Any, name: str) -> tuple[tuple[float, float], ...]:
    expected = (
        "positive W,H pairs, one per anchor, in the layout's unit (image fractions for "
        "canonical, e.g. 0.2,0.3)"
    )
    if not isinstance(value, list | tuple):
        raise _Rejected(expected, value)
    sizes = []
    for item in value:
        pair = _pair(item)
        if pair is None:
            raise _Rejected(expected, item)
        sizes.append(pair)
    return tuple(sizes)


def _anchors_file(value: Any, name: str) -> tuple[tuple[float, float], ...]:
    """The anchors in a text file as YAD2K and keras-yolo3 ship them (``model_data/*.txt``):
    numbers separated by commas, spaces or new lines, read as W,H pairs."""
    from pathlib import Path

    if not isinstance(value, str) or not value:
        raise _Rejected("the path of a text file of W,H anchor pairs", value)
    try:
        text = Path(value).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise _Rejected(
            "a readable text file of W,H anchor pairs",
            value,
            f" ({exc.strerror or type(exc).__name__})" if isinstance(exc, OSError) else "",
        ) from None
    words = [w for w in re.split(r"[\s,]+", text.strip()) if w]
    try:
        numbers = [float(w) for w in words]
    except ValueError:
        raise _Rejected("numbers only (W,H pairs, e.g. 10,13, 16,30)", value) from None
    if not numbers or len(numbers) % 2 or not all(math.isfinite(v) and v > 0 for v in numbers):
        raise _Rejected("an even count of positive numbers (W,H pairs)", value)
    return tuple((numbers[k], numbers[k + 1]) for k in range(0, len(numbers), 2))


def _layout(value: Any, name: str) -> Layout:
    if isinstance(value, Layout):
        return value
    if not isinstance(value, str) or not (value in BUILT_IN or is_reference(value)):
        raise _Rejected(
            f"a built-in layout ({' | '.join(BUILT_IN)}) or module:name of a Layout",
            value,
            did_you_mean(str(value), BUILT_IN),
        )
    found = get_layout(value)
    # A user-defined layout is written back as the reference that found it.
    return found if value in BUILT_IN else dataclasses.replace(found, name=value)


def _scales(value: Any, name: str) -> tuple[tuple[int, int], ...]:
    items = value.split(",") if isinstance(value, str) else value
    if isinstance(items, int) or not isinstance(items, list | tuple) or not items:
        raise _Rejected("grids separated by commas, H or HxW each (e.g. 13,26,52)", value)
    try:
        return tuple(_grid(item, name) for item in items)
    except _Rejected:
        raise _Rejected("grids separated by commas, H or HxW each (e.g. 13,26,52)", value) from None


def _scale_index(value: Any, name: str) -> int:
    number = _integer(value)
    if number is None or number < 0:
        raise _Rejected("a scale's index, 0 for the first in --scales", value)
    return number


def _input_size(value: Any, name: str) -> tuple[int, int]:
    try:
        return _grid(value, name)
    except _Rejected:
        raise _Rejected("the input size in pixels, H or HxW (e.g. 416)", value) from None


def _keyword_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _loss_args(value: Any, name: str) -> dict[str, Any]:
    expected = "NAME=VALUE (VALUE read as JSON, else text), e.g. rescore_confidence=true"
    if isinstance(value, Mapping):
        pairs = list(value.items())
    elif isinstance(value, list | tuple) and all(isinstance(v, str) and "=" in v for v in value):
        pairs = [(k, _keyword_value(v)) for k, v in (item.split("=", 1) for item in value)]
    else:
        raise _Rejected(expected, value)
    for key, _ in pairs:
        if not isinstance(key, str) or not key.isidentifier():
            raise _Rejected(expected, key)
    return dict(pairs)


def _names(value: Any, name: str) -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(v, str) for v in items):
        raise _Rejected("names separated by commas, e.g. giou,conf,prob", value)
    names = tuple(v.strip() for v in items)
    if not names or not all(names) or len(set(names)) != len(names):
        raise _Rejected("distinct, non-empty names, e.g. giou,conf,prob", value)
    return names


def _components(value: Any, name: str) -> dict[str, str]:
    return check_mapping(value, source=name)


def _text(value: Any) -> list[str]:
    return [str(value)]


_SPEC, _CODEC = GridSpec(), Codec()
_GRID = "grid"
_ACTIVATIONS = "codec: the activations the loss applies to raw outputs"
_LAYOUT = "layout: how the loss is called (its convention, frames and units)"


def _count(name: str, metavar: str, what: str) -> Option:
    default = getattr(_SPEC, name)
    return Option(
        name,
        _positive,
        default,
        f"{what} (default {default})",
        get=lambda o: getattr(o.spec, name),
        words=_text,
        group=_GRID,
        metavar=metavar,
        example=default,
    )


def _activation(name: str, choices: tuple[str, ...], what: str) -> Option:
    default = getattr(_CODEC, name)
    return Option(
        name,
        _choice(choices),
        default,
        f"{what} (default {default})",
        get=lambda o: getattr(o.codec, name),
        words=_text,
        group=_ACTIVATIONS,
        metavar="{" + ",".join(choices) + "}",
        example=default,
    )


#: Every loss option, in the order of ``--help`` and of the reproduce line.
OPTIONS: dict[str, Option] = {
    o.name: o
    for o in (
        Option(
            "grid",
            _grid,
            (_SPEC.H, _SPEC.W),
            f"grid size (default {_SPEC.H}x{_SPEC.W})",
            get=lambda o: (o.spec.H, o.spec.W),
            words=lambda hw: [f"{hw[0]}x{hw[1]}" if hw[0] != hw[1] else str(hw[0])],
            group=_GRID,
            metavar="H|HxW",
            example="13x9",
        ),
        _count("anchors", "B", "anchors per cell"),
        _count("classes", "C", "number of classes"),
        _count("batch", "N", "images per batch"),
        _activation("xy", XY_CHOICES, "centre offsets"),
        _activation("wh", WH_CHOICES, "box sizes"),
        _activation("obj", OBJ_CHOICES, "objectness"),
        _activation("cls", CLS_CHOICES, "classes"),
        Option(
            "anchor-sizes",
            _anchor_sizes,
            (),
            "one W,H per anchor in the layout's unit ("
            + ", ".join(f"{n}: {layout.anchor_unit}" for n, layout in BUILT_IN.items())
            + "; default 1.0 image each); sets --anchors when it is not given",
            get=lambda o: o.anchor_values(),
            words=lambda sizes: [f"{w!r},{h!r}" for w, h in sizes],
            group=_ACTIVATIONS,
            metavar="W,H",
            example=["0.1,0.1", "0.3,0.3"],
            arity="several",
        ),
        Option(
            "anchors-file",
            _anchors_file,
            None,
            "read --anchor-sizes from a text file of W,H pairs (YAD2K's and keras-yolo3's "
            "model_data/*_anchors.txt)",
            get=lambda o: None,  # written back as --anchor-sizes
            words=_text,
            group=_ACTIVATIONS,
            metavar="PATH",
            example="model_data/yolo_anchors.txt",
        ),
        Option(
            "component",
            _components,
            {},
            f"map a reported component name to a role ({', '.join(MAPPABLE)}); repeatable",
            get=lambda o: dict(o.components),
            words=lambda mapping: [f"{n}={r}" for n, r in mapping.items()],
            group=_ACTIVATIONS,
            metavar="NAME=ROLE",
            example=["xy_loss=coordinates"],
            arity="repeat",
            keyword="components",
        ),
        Option(
            "layout",
            _layout,
            CANONICAL,
            f"the loss's calling convention: {', '.join(BUILT_IN)} (default canonical), or "
            "module:name of your own Layout. yolov3-tf2's target is the factory "
            "(models.py:YoloLoss) and keras-yolo2's the method on its class "
            "(frontend.py:YOLO.custom_loss): the layout builds the loss from these options",
            get=lambda o: o.layout,
            words=lambda layout: [layout.name],
            group=_LAYOUT,
            metavar="NAME",
            example="yad2k",
        ),
        Option(
            "scales",
            _scales,
            (),
            "every grid of a multi-scale loss, in the loss's own order (e.g. 13,26,52); "
            "replaces --grid; --anchor-sizes then lists every scale's anchors",
            get=lambda o: o.scales,
            words=lambda grids: [",".join(f"{h}x{w}" if h != w else str(h) for h, w in grids)],
            group=_LAYOUT,
            metavar="G,G,..",
            example="13,26,52",
        ),
        Option(
            "only-scale",
            _scale_index,
            None,
            "audit one scale of a multi-scale loss (its index in --scales, from 0)",
            get=lambda o: o.only_scale,
            words=lambda k: [str(k)],
            group=_LAYOUT,
            metavar="K",
            example=0,
        ),
        Option(
            "input-size",
            _input_size,
            None,
            "network input in pixels, H or HxW, for layouts in pixel units (default 32 per cell)",
            get=lambda o: o.input_size,
            words=lambda hw: [f"{hw[0]}x{hw[1]}" if hw[0] != hw[1] else str(hw[0])],
            group=_LAYOUT,
            metavar="PX",
            example=416,
        ),
        Option(
            "loss-arg",
            _loss_args,
            {},
            "an extra keyword argument for the loss, NAME=VALUE (VALUE as JSON; the factory's "
            "for yolov3-tf2, an attribute of the object for keras-yolo2); repeatable",
            get=lambda o: dict(o.loss_kwargs),
            words=lambda kw: [f"{k}={json.dumps(v)}" for k, v in kw.items()],
            group=_LAYOUT,
            metavar="NAME=VALUE",
            example=["rescore_confidence=true"],
            arity="repeat",
            keyword="loss_kwargs",
        ),
        Option(
            "component-names",
            _names,
            (),
            "names of the values a loss returns as a tuple, in order (e.g. giou,conf,prob)",
            get=lambda o: o.component_names,
            words=lambda names: [",".join(names)],
            group=_LAYOUT,
            metavar="A,B,..",
            example="giou,conf,prob",
        ),
        Option(
            "reduction",
            _choice(REDUCTIONS),
            "auto",
            "how the loss reduces over the batch (default auto: a sum or a mean)",
            get=lambda o: o.reduction,
            words=_text,
            group=_ACTIVATIONS,
            metavar="{" + ",".join(REDUCTIONS) + "}",
            example="auto",
        ),
    )
}


@dataclass(frozen=True)
class _Source:
    """Where values came from, so a message names the option as the user spelt it."""

    where: str
    kind: Literal["cli", "table", "keywords"]

    def name(self, option: Option) -> str:
        return {"cli": option.flag, "table": option.name, "keywords": option.dest}[self.kind]

    def label(self, option: Option) -> str:
        return f"{self.where}: {self.name(option)}" if self.where else self.name(option)

    def example(self, option: Option) -> str:
        if self.kind == "cli":
            try:
                value = option.parse(option.example, "")
            except _Rejected:  # an example path need not exist here
                value = option.example
            return "Pass e.g. " + shlex.join(option.flags(value))
        if self.kind == "table":
            return f"Write e.g. {option.name} = {json.dumps(option.example)}"
        return f"Pass e.g. {option.dest}={option.example!r}"

    def reject(
        self, option: Option, expected: str, received: str, fix: str | None = None
    ) -> InvalidSpec:
        fix = f"{self.example(option)}." if fix is None else fix
        return InvalidSpec(f"{self.label(option)}: expected {expected}; received {received}. {fix}")

    def parse(self, option: Option, value: Any) -> Any:
        try:
            return option.parse(value, self.name(option))
        except _Rejected as bad:
            fix = f"{self.example(option)}.{bad.hint}"
            raise self.reject(option, bad.expected, repr(bad.received), fix) from None
        except LossAuditError as exc:  # a check shared with other callers (check_mapping)
            if not self.where:
                raise
            raise type(exc)(f"{self.where}: {exc}") from None


def unknown_key(
    where: str,
    key: str,
    allowed: Iterable[str],
    *,
    kind: str = "key",
    cls: type[LossAuditError] = InvalidSpec,
) -> LossAuditError:
    """The one message for a misspelt key or keyword, with close matches."""
    allowed = list(allowed)
    return cls(
        f"{where}: unknown {kind} {key!r}: expected one of {', '.join(allowed)}. "
        f"Fix its spelling or remove it.{did_you_mean(str(key), allowed)}"
    )


@dataclass(frozen=True)
class LossOptions:
    """The loss options of one audit, validated: grid spec, codec, component mapping,
    reduction, and how the loss is called (layout, input size, extra keyword arguments, names
    of a tuple return).

    Build it with :meth:`from_cli`, :meth:`from_table` or :meth:`from_keywords`; equal options
    compare equal whichever front end they came from. The codec's anchor sizes are image
    fractions whatever unit the layout reads them in (see :meth:`anchor_values`).
    """

    spec: GridSpec = field(default_factory=GridSpec)
    codec: Codec = field(default_factory=Codec)
    components: dict[str, str] = field(default_factory=dict)
    reduction: str = "auto"
    layout: Layout = CANONICAL
    input_size: tuple[int, int] | None = None
    loss_kwargs: dict[str, Any] = field(default_factory=dict)
    component_names: tuple[str, ...] = ()
    #: Every grid of a multi-scale loss (empty: one grid, ``spec``'s); ``spec`` then has the
    #: first scale's grid and anchors per scale, and ``codec.anchor_sizes`` every anchor.
    scales: tuple[tuple[int, int], ...] = ()
    only_scale: int | None = None

    def scale_frames(self) -> list[Frame]:
        """One frame per scale to audit: its grid, its anchors and how it sits among the
        others (one frame for a single-scale loss)."""
        if not self.scales:
            return [self.frame()]
        sizes = self.codec.anchor_sizes
        groups = self.layout.anchor_groups(len(sizes), len(self.scales)) if sizes else ()
        frames = []
        for k, (h, w) in enumerate(self.scales):
            own = tuple(sizes[i] for i in groups[k]) if groups else ()
            spec = self.spec.replace(H=h, W=w, anchors=len(own) or self.spec.anchors)
            frames.append(
                Frame(
                    spec,
                    dataclasses.replace(self.codec, anchor_sizes=own),
                    self.input_size or (0, 0),
                    dict(self.loss_kwargs),
                    scales=self.scales,
                    scale=k,
                    anchor_list=sizes,
                    groups=groups,
                )
            )
        if self.only_scale is not None:
            return [frames[self.only_scale]]
        return frames

    def calling(self) -> dict[str, Any]:
        """How the loss is called, as :func:`lossaudit.audit` keywords (``layout``,
        ``input_size``, ``loss_kwargs``, ``component_names``)."""
        return {
            "layout": self.layout,
            "input_size": self.input_size,
            "loss_kwargs": dict(self.loss_kwargs),
            "component_names": self.component_names,
            "scales": self.scales,
            "only_scale": self.only_scale,
        }

    def frame(self) -> Frame:
        """Frames and units the layout calls the loss with (the first scale's, for a
        multi-scale loss; see :meth:`scale_frames`)."""
        if self.scales:
            return self.scale_frames()[0]
        return Frame(self.spec, self.codec, self.input_size or (0, 0), dict(self.loss_kwargs))

    def anchor_values(self) -> tuple[tuple[float, float], ...]:
        """The anchor sizes in the layout's unit, as the user gives them (none: 1.0 image)."""
        scales = _anchor_scales(
            self.layout, self.frame(), self.scales, len(self.codec.anchor_sizes)
        )
        if all(k == (1.0, 1.0) for k in scales):
            return self.codec.anchor_sizes
        # Converted back from image fractions: 12 digits drop the conversion's rounding noise.
        return tuple(
            (float(f"{w * across:.12g}"), float(f"{h * down:.12g}"))
            for (w, h), (across, down) in zip(self.codec.anchor_sizes, scales, strict=True)
        )

    @classmethod
    def from_cli(cls, namespace: argparse.Namespace) -> LossOptions:
        """From ``argparse`` values added by :func:`add_arguments` (``None``: not given)."""
        values = {name: getattr(namespace, o.dest, None) for name, o in OPTIONS.items()}
        given = {name: value for name, value in values.items() if value is not None}
        return _collect(_Source("", "cli"), given)

    @classmethod
    def from_table(
        cls, table: Mapping[str, Any], *, where: str, also: Iterable[str] = ()
    ) -> LossOptions:
        """From one ``[[tool.lossaudit.losses]]`` table; ``also`` names keys the caller reads
        (such as ``target``), every other unknown key is refused with close matches."""
        allowed = (*also, *OPTIONS)
        for key in table:
            if key not in allowed:
                raise unknown_key(where, key, allowed)
        given = {k: v for k, v in table.items() if k in OPTIONS}
        return _collect(_Source(where, "table"), given)

    @classmethod
    def from_keywords(
        cls, keywords: Mapping[str, Any], *, where: str = "audit_loss()"
    ) -> LossOptions:
        """From ``audit_loss(...)`` keywords (``None``: not given)."""
        by_keyword = {option.dest: option for option in OPTIONS.values()}
        for key in keywords:
            if key not in by_keyword:
                raise unknown_key(where, key, by_keyword, kind="keyword", cls=InvalidArgument)
        given = {by_keyword[k].name: v for k, v in keywords.items() if v is not None}
        return _collect(_Source(where, "keywords"), given)

    def to_flags(self) -> list[str]:
        """The ``lossaudit report`` flags that rebuild these options (non-defaults only).

        Example:
            >>> LossOptions(GridSpec(H=5, W=5, anchors=1), Codec(cls="sigmoid")).to_flags()
            ['--grid', '5', '--anchors', '1', '--cls', 'sigmoid']
        """
        flags: list[str] = []
        for option in OPTIONS.values():
            if self.scales and option.name == "grid":
                continue  # --scales gives every grid
            if self.scales and option.name == "anchors" and self.codec.anchor_sizes:
                continue  # the anchor sizes give the count per scale
            value = option.get(self)
            if value != option.default:
                flags += option.flags(value)
        return flags

    def record(self) -> dict[str, Any]:
        """The grid spec and codec as plain data, as a baseline file stores them."""
        return {
            "spec": {k: getattr(self.spec, k) for k in ("batch", "H", "W", "anchors", "classes")},
            "codec": {
                "xy": self.codec.xy,
                "wh": self.codec.wh,
                "obj": self.codec.obj,
                "cls": self.codec.cls,
                "anchor_sizes": [list(p) for p in self.codec.anchor_sizes],
            },
            **({} if self.layout is CANONICAL else {"layout": self.layout.name}),
        }


def _collect(source: _Source, given: Mapping[str, Any]) -> LossOptions:
    """Parse every given option (the rest take their defaults), check them against each other
    and build the result."""
    values = {
        name: source.parse(option, given[name]) if name in given else option.default
        for name, option in OPTIONS.items()
    }
    layout: Layout = values["layout"]
    for name in ("xy", "wh", "obj", "cls"):
        if name not in given and name in layout.codec:
            values[name] = layout.codec[name]
    if values["anchors-file"] is not None:
        if "anchor-sizes" in given:
            raise source.reject(
                OPTIONS["anchors-file"],
                "anchor sizes from one place",
                f"both {source.name(OPTIONS['anchor-sizes'])} and "
                f"{source.name(OPTIONS['anchors-file'])}",
                "Give one of them.",
            )
        values["anchor-sizes"] = values["anchors-file"]
    sizes = values["anchor-sizes"]
    scales = values["scales"]
    if scales:
        _check_scales(source, layout, given, values)
    elif 1 not in layout.scales:
        counts = " or ".join(str(n) for n in layout.scales)
        raise source.reject(
            OPTIONS["scales"],
            f"the {counts} grids layout {layout.name!r} takes at once",
            "none",
            f"Pass e.g. {source.name(OPTIONS['scales'])} 13,26,52 (for a 416-pixel input).",
        )
    elif sizes and "anchors" not in given:
        values["anchors"] = len(sizes)
    if layout.square:
        _check_square(source, layout, given, values)
    anchors = values["anchors"]
    if sizes and not scales and len(sizes) != anchors:
        raise source.reject(
            OPTIONS["anchor-sizes"],
            f"{anchors} W,H pairs, one per anchor ({source.name(OPTIONS['anchors'])} is {anchors})",
            f"{len(sizes)} pair{'s' if len(sizes) != 1 else ''}",
            "Give one W,H per anchor, or none for 1.0 each.",
        )
    try:
        return _build(values)
    except InvalidSpec as exc:  # the parsers check each value; this is a backstop
        raise InvalidSpec(f"{source.where}: {exc}" if source.where else str(exc)) from None


def _check_square(
    source: _Source, layout: Layout, given: Mapping[str, Any], values: dict[str, Any]
) -> None:
    """A convention that assumes square grids gets a square default grid, and a clear error
    for a non-square one (instead of a shape error from inside the loss)."""
    option = OPTIONS["scales"] if values["scales"] else OPTIONS["grid"]
    grids = values["scales"] or [values["grid"]]
    if option.name == "grid" and "grid" not in given:
        side = max(values["grid"])
        values["grid"] = (side, side)
        return
    if any(h != w for h, w in grids):
        side = max(max(g) for g in grids)
        raise source.reject(
            option,
            f"square grids: layout {layout.name!r} assumes square grids (it reads one size for "
            "rows and columns)",
            ", ".join(f"{h}x{w}" for h, w in grids),
            f"Pass e.g. {source.name(option)} {side}.",
        )


def _check_scales(
    source: _Source, layout: Layout, given: Mapping[str, Any], values: dict[str, Any]
) -> None:
    """A multi-scale loss's options: scales the layout takes, no --grid beside them, the
    anchors split evenly over the scales (setting anchors per scale)."""
    scales, sizes = values["scales"], values["anchor-sizes"]
    option = OPTIONS["scales"]
    if len(scales) not in layout.scales:
        counts = " or ".join(str(n) for n in layout.scales)
        raise source.reject(
            option,
            f"{counts} grid{'s' if layout.scales != (1,) else ''} for layout {layout.name!r}",
            f"{len(scales)}",
            "Give as many grids as the loss has outputs.",
        )
    if "grid" in given:
        raise source.reject(
            OPTIONS["grid"],
            f"the grids in {source.name(option)} only",
            f"both {source.name(OPTIONS['grid'])} and {source.name(option)}",
            f"Drop {source.name(OPTIONS['grid'])}.",
        )
    if values["only-scale"] is not None and values["only-scale"] >= len(scales):
        raise source.reject(
            OPTIONS["only-scale"],
            f"an index below {len(scales)} (the number of scales)",
            str(values["only-scale"]),
            "Count scales from 0 in the order of --scales.",
        )
    if sizes:
        try:
            groups = layout.anchor_groups(len(sizes), len(scales))
        except LossAuditError as exc:
            raise source.reject(
                OPTIONS["anchor-sizes"], "anchors for every scale", str(exc), ""
            ) from None
        values["anchors"] = len(groups[0])
    values["grid"] = scales[0]


def _unit_scale(layout: Layout, frame: Frame) -> tuple[float, float]:
    """``(across, down)``: one image in the layout's anchor unit."""
    return {
        "image": (1.0, 1.0),
        "grid": (float(frame.spec.W), float(frame.spec.H)),
        "pixels": (float(frame.input_size[1]), float(frame.input_size[0])),
    }[layout.anchor_unit]


def _anchor_scales(
    layout: Layout, frame: Frame, scales: tuple[tuple[int, int], ...], count: int
) -> list[tuple[float, float]]:
    """``(across, down)`` per anchor: one image in the layout's unit, at the anchor's own scale
    (grid units differ per scale; an anchor two scales share takes the first one's)."""
    if not scales or layout.anchor_unit != "grid":
        return [_unit_scale(layout, frame)] * count
    owner = {}
    for k, group in enumerate(layout.anchor_groups(count, len(scales))):
        for i in group:
            owner.setdefault(i, k)
    return [
        (float(scales[owner.get(i, 0)][1]), float(scales[owner.get(i, 0)][0])) for i in range(count)
    ]


def _image_fractions(
    sizes: tuple[tuple[float, float], ...],
    layout: Layout,
    frame: Frame,
    scales: tuple[tuple[int, int], ...] = (),
) -> tuple[tuple[float, float], ...]:
    """Anchor sizes given in the layout's unit, as image fractions."""
    units = _anchor_scales(layout, frame, scales, len(sizes))
    return tuple((w / a, h / d) for (w, h), (a, d) in zip(sizes, units, strict=True))


def _build(values: Mapping[str, Any]) -> LossOptions:
    """Where each option's value goes."""
    h, w = values["grid"]
    spec = GridSpec(
        batch=values["batch"],
        H=h,
        W=w,
        anchors=values["anchors"],
        classes=values["classes"],
    )
    layout: Layout = values["layout"]
    scales = tuple(values["scales"])
    frame = Frame(spec, Codec(), values["input-size"] or (0, 0), scales=scales)
    fractions = _image_fractions(values["anchor-sizes"], layout, frame, scales)
    if not all(0 < v <= 10 for pair in fractions for v in pair):
        unit = {"image": "image fractions", "grid": "grid cells", "pixels": "pixels"}
        raise InvalidSpec(
            f"anchor sizes out of range: expected sizes up to 10 images wide, given in "
            f"{unit[layout.anchor_unit]} (the unit of layout {layout.name!r}); received "
            f"{list(values['anchor-sizes'])}. Give the anchors in {unit[layout.anchor_unit]}."
        )
    codec = Codec(
        xy=values["xy"],
        wh=values["wh"],
        obj=values["obj"],
        cls=values["cls"],
        anchor_sizes=fractions,
    )
    return LossOptions(
        spec,
        codec,
        dict(values["component"]),
        values["reduction"],
        layout=layout,
        input_size=values["input-size"],
        loss_kwargs=dict(values["loss-arg"]),
        component_names=tuple(values["component-names"]),
        scales=scales,
        only_scale=values["only-scale"],
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add every option to ``parser``, in argument groups, as text for :meth:`LossOptions.from_cli`
    to parse (so the command line gets the same checks and messages as the other front ends)."""
    groups: dict[str, Any] = {}
    for option in OPTIONS.values():
        if option.group not in groups:
            groups[option.group] = parser.add_argument_group(option.group)
        extra: dict[str, Any] = {}
        if option.arity == "several":
            extra["nargs"] = "+"
        elif option.arity == "repeat":
            extra["action"] = "append"
        groups[option.group].add_argument(
            option.flag, dest=option.dest, metavar=option.metavar, help=option.help, **extra
        )
