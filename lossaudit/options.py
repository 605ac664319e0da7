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
import shlex
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from lossaudit import parsers as parse
from lossaudit.components import MAPPABLE
from lossaudit.errors import InvalidArgument, InvalidSpec, LossAuditError, did_you_mean
from lossaudit.layouts import BUILT_IN, CANONICAL, Frame, Layout
from lossaudit.layouts.base import FACTORY_KEYWORDS, anchor_scales, as_given, image_fractions
from lossaudit.settings import REDUCTIONS
from lossaudit.spec import CLS_CHOICES, OBJ_CHOICES, WH_CHOICES, XY_CHOICES, Codec, GridSpec

if TYPE_CHECKING:
    import argparse

__all__ = ["OPTIONS", "LossOptions", "Option", "add_arguments", "unknown_key"]


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
    #: ``one`` value per flag, ``several`` after one flag, a ``repeat``-able flag, or a
    #: ``switch``: a flag without a value that turns the option on (``true`` in TOML).
    arity: Literal["one", "several", "repeat", "switch"] = "one"
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
        if self.arity == "switch":
            return [self.flag] if value else []
        words = self.words(value)
        if self.arity == "repeat":
            return [w for word in words for w in (self.flag, word)]
        return [self.flag, *words]


_SPEC, _CODEC = GridSpec(), Codec()
_GRID = "grid"
_ACTIVATIONS = "codec: the activations the loss applies to raw outputs"
_LAYOUT = "layout: how the loss is called (its convention, frames and units)"
_SCENES = "scenes: opt-in scenarios beyond the default ones"


def _count(name: str, metavar: str, what: str) -> Option:
    default = getattr(_SPEC, name)
    return Option(
        name,
        parse.positive,
        default,
        f"{what} (default {default})",
        get=lambda o: getattr(o.spec, name),
        words=parse.text,
        group=_GRID,
        metavar=metavar,
        example=default,
    )


def _activation(name: str, choices: tuple[str, ...], what: str) -> Option:
    default = getattr(_CODEC, name)
    return Option(
        name,
        parse.choice(choices),
        default,
        f"{what} (default {default})",
        get=lambda o: getattr(o.codec, name),
        words=parse.text,
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
            parse.grid,
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
            parse.anchor_sizes,
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
            parse.anchors_file,
            None,
            "read --anchor-sizes from a text file of W,H pairs (YAD2K's and keras-yolo3's "
            "model_data/*_anchors.txt)",
            get=lambda o: None,  # written back as --anchor-sizes
            words=parse.text,
            group=_ACTIVATIONS,
            metavar="PATH",
            example="model_data/yolo_anchors.txt",
        ),
        Option(
            "component",
            parse.components,
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
            parse.layout,
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
            parse.scales,
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
            parse.scale_index,
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
            parse.input_size,
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
            parse.loss_args,
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
            parse.names,
            (),
            "names of the values a loss returns as a tuple, in order (e.g. giou,conf,prob)",
            get=lambda o: o.component_names,
            words=lambda names: [",".join(names)],
            group=_LAYOUT,
            metavar="A,B,..",
            example="giou,conf,prob",
        ),
        Option(
            "factory",
            parse.switch,
            False,
            "the target makes the loss: it is called with the keyword arguments it names among "
            f"{', '.join(FACTORY_KEYWORDS)} (from these options; anchors in the layout's "
            "unit) and --loss-arg, and the loss it returns is audited, remade for every grid "
            "the audit uses",
            get=lambda o: o.factory,
            words=lambda on: [],
            group=_LAYOUT,
            metavar="",
            example=True,
            arity="switch",
        ),
        Option(
            "reduction",
            parse.choice(REDUCTIONS),
            "auto",
            "how the loss reduces over the batch (default auto: a sum or a mean)",
            get=lambda o: o.reduction,
            words=parse.text,
            group=_ACTIVATIONS,
            metavar="{" + ",".join(REDUCTIONS) + "}",
            example="auto",
        ),
        Option(
            "degenerate-boxes",
            parse.switch,
            False,
            "also audit scenes whose truth boxes have w or h = 0 (or 1e-7), or lie on the "
            "image border, as resizing and cropping leave them: every component and its "
            "gradient must stay finite (total.finite_on_degenerate_boxes; off by default)",
            get=lambda o: o.degenerate_boxes,
            words=lambda on: [],
            group=_SCENES,
            metavar="",
            example=True,
            arity="switch",
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
            except parse.Rejected:  # an example path need not exist here
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
        except parse.Rejected as bad:
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
    #: Also audit truth boxes of zero or tiny size and boxes on the image border (an opt-in
    #: scenario: ``total.finite_on_degenerate_boxes``).
    degenerate_boxes: bool = False
    #: The target is a factory that makes the loss from these options (``--factory``).
    factory: bool = False

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

    @property
    def opt_in(self) -> frozenset[str]:
        """The opt-in scenarios these options switch on: the name of every scenario switch
        that is on (``degenerate-boxes``), as properties name them (``Property.opt_in``)."""
        return frozenset(
            o.name
            for o in OPTIONS.values()
            if o.arity == "switch" and o.group == _SCENES and o.get(self)
        )

    def calling(self) -> dict[str, Any]:
        """How the loss is called and which opt-in scenarios run, as :func:`lossaudit.audit`
        keywords (``layout``, ``input_size``, ``loss_kwargs``, ``component_names``, ``scales``,
        ``only_scale``, ``factory``, ``degenerate_boxes``)."""
        return {
            "layout": self.layout,
            "input_size": self.input_size,
            "loss_kwargs": dict(self.loss_kwargs),
            "component_names": self.component_names,
            "scales": self.scales,
            "only_scale": self.only_scale,
            "factory": self.factory,
            "degenerate_boxes": self.degenerate_boxes,
        }

    def frame(self) -> Frame:
        """Frames and units the layout calls the loss with (the first scale's, for a
        multi-scale loss; see :meth:`scale_frames`)."""
        if self.scales:
            return self.scale_frames()[0]
        return Frame(self.spec, self.codec, self.input_size or (0, 0), dict(self.loss_kwargs))

    def anchor_values(self) -> tuple[tuple[float, float], ...]:
        """The anchor sizes in the layout's unit, as the user gives them (none: 1.0 image)."""
        scales = anchor_scales(self.layout, self.frame(), self.scales, len(self.codec.anchor_sizes))
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
    if values["factory"] and layout.build is not as_given:
        raise source.reject(
            OPTIONS["factory"],
            "a layout that calls the target as the loss",
            f"layout {layout.name!r}, which builds the loss from the target itself",
            f"Drop {source.name(OPTIONS['factory'])}: this layout already makes the loss "
            "from the options.",
        )
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
    fractions = image_fractions(values["anchor-sizes"], layout, frame, scales)
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
        degenerate_boxes=values["degenerate-boxes"],
        factory=values["factory"],
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add every option to ``parser``, in argument groups, as text for :meth:`LossOptions.from_cli`
    to parse (so the command line gets the same checks and messages as the other front ends)."""
    groups: dict[str, Any] = {}
    for option in OPTIONS.values():
        if option.group not in groups:
            groups[option.group] = parser.add_argument_group(option.group)
        extra: dict[str, Any] = {"metavar": option.metavar}
        if option.arity == "switch":
            # Absent is None (not given), as for every other flag: the default is the table's.
            extra = {"action": "store_true", "default": None}
        elif option.arity == "several":
            extra["nargs"] = "+"
        elif option.arity == "repeat":
            extra["action"] = "append"
        groups[option.group].add_argument(option.flag, dest=option.dest, help=option.help, **extra)
