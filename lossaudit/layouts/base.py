"""What a layout is: the bridge between lossaudit's scenes and a loss's own arguments.

lossaudit generates one thing, scenes (:class:`~lossaudit.spec.Scene`), and raw predictions
in the canonical layout ``(batch, H, W, anchors, 5 + C)``. A :class:`Layout` turns both into
the arguments of the audited loss and calls it:

- ``encode(scene, frame)`` returns the truth-side inputs as named numpy arrays (a padded list
  of true boxes, detector masks, matching boxes, a label grid in pixels...). It runs outside
  TensorFlow, once per case;
- ``call(loss, truth, y_pred, frame)`` calls the loss with those inputs (now tensors) and the
  raw predictions (a tensor, canonical shape), rearranged as the loss expects (flattened to
  ``(batch, H, W, anchors * (5 + C))``, decoded, split). It runs inside the traced
  computation, so gradients flow back to the canonical predictions and properties keep
  speaking scenes and roles, never argument positions.

A :class:`Frame` carries what a layout needs beyond the scene: the grid, the codec (anchor
sizes as image fractions), the input size in pixels, the anchors in any unit and the extra
keyword arguments the user gave for the loss. Everything here is numpy; TensorFlow is imported
inside the functions that build tensors.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from lossaudit.errors import TargetError, invalid
from lossaudit.spec import CLS0, Codec, GridSpec, Scene

__all__ = [
    "ANCHOR_UNITS",
    "Frame",
    "Layout",
    "accepts",
    "anchor_scales",
    "box_list",
    "consecutive_groups",
    "detector_mask",
    "factory_keywords",
    "flat",
    "from_factory",
    "image_boxes",
    "image_fractions",
    "loss_keywords",
    "unit_scale",
]

AnchorUnit = Literal["image", "grid", "pixels"]
#: Units a layout's anchors are given in: image fractions, grid cells or input pixels.
ANCHOR_UNITS: tuple[str, ...] = ("image", "grid", "pixels")
#: Input pixels per grid cell when no input size is given (every YOLO backbone's stride).
STRIDE = 32


@dataclass(frozen=True)
class Frame:
    """Frames and units of one evaluation: grid, codec, input size, anchors, loss keywords,
    and for a multi-scale loss every scale's grid and anchors.

    ``input_size`` is ``(height, width)`` in pixels (default 32 pixels per cell of the coarsest
    grid); ``keywords`` the extra keyword arguments the user gave for the loss
    (``--loss-arg``). A multi-scale frame lists every scale's grid ``(H, W)`` in ``scales``
    (in the loss's own order), every anchor as image fractions in ``anchor_list`` (in the
    user's order) and the indices of each scale's anchors in ``groups``; ``scale`` is the
    scale whose predictions are audited (``spec`` and ``codec`` are that scale's).

    Example:
        >>> frame = Frame(GridSpec(1, 13, 13, 2, 1), Codec(anchor_sizes=((0.1, 0.2), (0.5, 0.5))))
        >>> frame.input_size, frame.anchors("grid").astype(float).round(2).tolist()[0], frame.anchors("pixels")[1]
        ((416, 416), [1.3, 2.6], array([208., 208.], dtype=float32))
    """

    spec: GridSpec
    codec: Codec = field(default_factory=Codec)
    input_size: tuple[int, int] = (0, 0)
    keywords: Mapping[str, Any] = field(default_factory=dict)
    scales: tuple[tuple[int, int], ...] = ()
    scale: int = 0
    anchor_list: tuple[tuple[float, float], ...] = ()
    groups: tuple[tuple[int, ...], ...] = ()

    def __post_init__(self) -> None:
        if not self.scales:
            object.__setattr__(self, "scales", ((self.spec.H, self.spec.W),))
        if self.input_size == (0, 0):
            coarsest = min(self.scales)
            object.__setattr__(self, "input_size", (STRIDE * coarsest[0], STRIDE * coarsest[1]))

    @property
    def stride(self) -> tuple[float, float]:
        """Input pixels per cell of the audited grid, ``(down, across)``."""
        return (self.input_size[0] / self.spec.H, self.input_size[1] / self.spec.W)

    def at(self, shape: tuple[int, ...]) -> Frame:
        """The same frame for predictions of ``shape``. Another grid keeps the stride, so the
        input size follows the grid, and anchors stay the same fraction of the image."""
        batch, h, w, anchors, channels = (int(v) for v in shape)
        spec = GridSpec(batch, h, w, anchors, channels - 5)
        if spec == self.spec:
            return self
        down, across = self.stride
        size = (max(1, round(down * h)), max(1, round(across * w)))
        scales = list(self.scales)
        scales[self.scale] = (h, w)
        return dataclasses.replace(self, spec=spec, input_size=size, scales=tuple(scales))

    def flipped(self) -> Frame:
        """The frame of a transposed scene (after :meth:`at` its transposed shape): every
        anchor's width and height swapped, and the other scales' grids transposed."""
        codec = dataclasses.replace(
            self.codec, anchor_sizes=tuple((h, w) for w, h in self.codec.anchor_sizes)
        )
        scales = tuple(
            grid if k == self.scale else (grid[1], grid[0]) for k, grid in enumerate(self.scales)
        )
        return dataclasses.replace(
            self,
            codec=codec,
            scales=scales,
            anchor_list=tuple((h, w) for w, h in self.anchor_list),
        )

    def anchors(self, unit: str = "image") -> np.ndarray:
        """The audited scale's anchors, one ``(w, h)`` row each, float32, in ``unit``:
        ``image`` fractions, ``grid`` cells or input ``pixels``."""
        image = np.array(
            [self.codec.anchor(a) for a in range(self.spec.anchors)], dtype=np.float64
        ).reshape(self.spec.anchors, 2)
        return self._in(image, unit, self.scales[self.scale])

    def all_anchors(self, unit: str = "image") -> np.ndarray:
        """Every anchor of every scale, in the user's order, in ``unit`` (``grid``: cells of
        the coarsest grid); the audited scale's anchors alone for a single-scale frame."""
        if not self.anchor_list:
            return self.anchors(unit)
        image = np.array(self.anchor_list, dtype=np.float64).reshape(-1, 2)
        return self._in(image, unit, min(self.scales))

    def anchors_of(self, k: int, unit: str = "image") -> np.ndarray:
        """The anchors of scale ``k`` in ``unit``."""
        if k == self.scale or not self.groups:
            return self.anchors(unit)
        image = np.array([self.anchor_list[i] for i in self.groups[k]], dtype=np.float64)
        return self._in(image.reshape(-1, 2), unit, self.scales[k])

    def _in(self, image: np.ndarray, unit: str, grid: tuple[int, int]) -> np.ndarray:
        scale = {
            "image": (1.0, 1.0),
            "grid": (grid[1], grid[0]),
            "pixels": (self.input_size[1], self.input_size[0]),
        }[unit]
        return (image * np.array(scale)).astype(np.float32)

    def spec_of(self, k: int) -> GridSpec:
        """The grid of scale ``k`` (the audited batch, anchors per scale and classes)."""
        h, w = self.scales[k]
        return self.spec.replace(H=h, W=w, anchors=len(self.anchors_of(k)))

    def empty_outputs(self, k: int) -> np.ndarray:
        """Raw predictions of scale ``k`` for a scale with no objects, as the perfect
        prediction of an empty scene gives them: confident "no object" everywhere."""
        from lossaudit.scenarios import empty_scene, perfect

        sizes = tuple(tuple(float(v) for v in row) for row in self.anchors_of(k, "image"))
        codec = dataclasses.replace(self.codec, anchor_sizes=sizes)
        return perfect(empty_scene(self.spec_of(k)), codec).y_pred


def image_boxes(scene: Scene) -> np.ndarray:
    """Every object as ``(b, x, y, w, h, class)`` with x, y the image-relative centre and w, h
    image fractions, one row per object, in scene order; shape ``(n, 6)``, float64."""
    spec = scene.spec
    rows = [
        (o.b, (o.j + o.x) / spec.W, (o.i + o.y) / spec.H, o.w, o.h, o.cls) for o in scene.objects
    ]
    return np.array(rows, dtype=np.float64).reshape(len(rows), 6)


def box_list(
    scene: Scene, max_boxes: int, *, corners: bool = False, scale: tuple[float, float] = (1, 1)
) -> np.ndarray:
    """The padded list of true boxes per image, ``(batch, max_boxes, 5)``, float32: centre
    x, y and size w, h (or corners x1, y1, x2, y2) times ``scale`` = ``(across, down)``, then
    the class index; rows past an image's last box are zero. ``max_boxes`` must hold the
    busiest image (scenes never place more objects than anchor slots)."""
    out = np.zeros((scene.spec.batch, max_boxes, 5), dtype=np.float32)
    counts = np.zeros(scene.spec.batch, dtype=int)
    sx, sy = scale
    for b, x, y, w, h, c in image_boxes(scene):
        b = int(b)
        if counts[b] >= max_boxes:
            raise invalid(
                "an image has more objects than the true-box list holds",
                f"at most {max_boxes} boxes per image",
                f"more in image {b}",
                "Raise max_boxes for this layout.",
            )
        box = (x - w / 2, y - h / 2, x + w / 2, y + h / 2) if corners else (x, y, w, h)
        out[b, counts[b], :4] = np.array(box) * (sx, sy, sx, sy)
        out[b, counts[b], 4] = c
        counts[b] += 1
    return out


def detector_mask(scene: Scene) -> np.ndarray:
    """``(batch, H, W, anchors, 1)`` float32: 1 where an anchor is responsible for an object."""
    return scene.object_mask()[..., None].astype(np.float32)


def one_hot(scene: Scene) -> np.ndarray:
    """The class channels of the canonical truth, ``(batch, H, W, anchors, C)``."""
    return scene.truth()[..., CLS0:]


def flat(y_pred: Any) -> Any:
    """Raw predictions ``(batch, H, W, anchors, 5 + C)`` as one conv output
    ``(batch, H, W, anchors * (5 + C))`` (a tensor; the reshape passes gradients back)."""
    import tensorflow as tf

    batch, h, w, anchors, channels = (int(v) for v in y_pred.shape)
    return tf.reshape(y_pred, [batch, h, w, anchors * channels])


def loss_keywords(loss: Callable[..., Any], frame: Frame, **defaults: Any) -> dict[str, Any]:
    """The keyword arguments to call ``loss`` with: the user's (``--loss-arg``), then each of
    ``defaults`` the loss takes (``print_loss=True`` to read its terms)."""
    keywords = dict(frame.keywords)
    for name, value in defaults.items():
        if accepts(loss, name):
            keywords.setdefault(name, value)
    return keywords


def accepts(fn: Callable[..., Any], name: str) -> bool:
    """True when ``fn`` takes a keyword argument ``name`` (or any keyword, via ``**kw``)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == name or p.kind is p.VAR_KEYWORD for p in params)


Encode = Callable[[Scene, Frame], Mapping[str, np.ndarray]]
Call = Callable[[Callable[..., Any], Mapping[str, Any], Any, Frame], Any]
Build = Callable[[Any, Frame], Any]


def as_given(target: Any, frame: Frame) -> Any:
    """The default :attr:`Layout.build`: the target the user pointed at is the loss itself."""
    return target


#: Keyword arguments a factory target (``--factory``) is given, each when it takes it: the
#: anchors as ``--anchor-sizes`` gives them (every scale's for a multi-scale loss) in the
#: layout's unit, the class count (as ``classes`` or ``num_classes``), the audited grid
#: ``(H, W)``, every scale's grid and the input size ``(H, W)`` in pixels.
FACTORY_KEYWORDS = ("anchors", "classes", "num_classes", "grid", "scales", "input_size")


def factory_keywords(factory: Callable[..., Any], frame: Frame, unit: str) -> dict[str, Any]:
    """What :func:`from_factory` passes ``factory`` for ``frame``: each of
    :data:`FACTORY_KEYWORDS` its signature names. Only named ones: a ``**kwargs`` is often
    passed on to something else (a Keras ``Loss`` subclass hands it to ``Loss.__init__``)."""
    values = {
        "anchors": frame.all_anchors(unit),
        "classes": frame.spec.classes,
        "num_classes": frame.spec.classes,
        "grid": (frame.spec.H, frame.spec.W),
        "scales": frame.scales,
        "input_size": frame.input_size,
    }
    try:
        named = {
            p.name
            for p in inspect.signature(factory).parameters.values()
            if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        }
    except (TypeError, ValueError):
        named = set()
    return {name: value for name, value in values.items() if name in named}


def from_factory(
    factory: Callable[..., Any], frame: Frame, unit: str, keywords: Mapping[str, Any]
) -> Any:
    """The loss a factory target makes for ``frame`` (``--factory``): ``factory`` called with
    :func:`factory_keywords` and the user's ``keywords`` (``--loss-arg``, which win), so the
    loss's own configuration (anchors, classes, grid) comes from the audit's options alone.

    Raises :class:`~lossaudit.errors.TargetError` when the factory raises or returns something
    that cannot be called.
    """
    given = {**factory_keywords(factory, frame, unit), **keywords}
    name = getattr(factory, "__qualname__", type(factory).__name__)
    shown = ", ".join(
        f"{k}={np.asarray(v, np.float64).round(4).tolist() if isinstance(v, np.ndarray) else v!r}"
        for k, v in given.items()
    )
    how = f"{name}({shown})"
    try:
        loss = factory(**given)
    except Exception as exc:
        raise TargetError(
            f"--factory: the target is called as {how} to make the loss: that raised "
            f"{type(exc).__name__}: {exc}. Expected a factory taking keyword arguments among "
            f"{', '.join(FACTORY_KEYWORDS)} (each given when its signature names it), plus "
            "--loss-arg ones. Point at such a factory, or drop --factory for a loss itself."
        ) from exc
    if not callable(loss):
        raise TargetError(
            f"--factory: the target is called as {how} to make the loss: expected it to return "
            f"a loss (a function or a Keras Loss); received a {type(loss).__name__}. Point at "
            "the factory, or drop --factory for a loss itself."
        )
    return loss


Groups = Callable[[int, int], tuple[tuple[int, ...], ...]]


def consecutive_groups(anchors: int, scales: int) -> tuple[tuple[int, ...], ...]:
    """Anchors split into equal consecutive groups, the first group for the first scale."""
    if scales < 1 or anchors % scales:
        raise invalid(
            "the anchors do not split evenly over the scales",
            f"a multiple of {scales} anchors, the same count per scale",
            f"{anchors} anchors",
            "Give every scale's anchors (e.g. 9 for 3 scales of 3).",
        )
    per = anchors // scales
    return tuple(tuple(range(k * per, (k + 1) * per)) for k in range(scales))


@dataclass(frozen=True)
class Layout:
    """How a loss wants its inputs, and how to read what it returns.

    - ``encode(scene, frame) -> {name: array}``: the truth-side inputs (numpy);
    - ``call(loss, truth, y_pred, frame)``: call ``loss`` with ``truth`` (the same names, now
      tensors) and ``y_pred`` (canonical raw predictions, a tensor) and return what it returns;
    - ``returns``: names for the values of a tuple or list return, in order (each named by
      the component heuristic or ``components``);
    - ``components``: ``{reported name: role}`` defaults for the names this convention uses;
    - ``anchor_unit``: the unit of ``--anchor-sizes`` under this layout (``image``, ``grid``
      or ``pixels``);
    - ``codec``: the activations the convention applies (``{"cls": "sigmoid"}``...), used
      where the user gave none;
    - ``square``: the convention assumes square grids (an audit on an H != W grid is refused
      with a usage error that suggests a square ``--grid``);
    - ``summary``: one line for ``--help`` and the README's table;
    - ``anchor_groups(anchors, scales)``: which anchors (indices in the user's order) each
      scale uses (default: equal consecutive groups);
    - ``scales``: the scale counts the convention accepts (``(1,)``: one grid per call);
    - ``print_names``: names of the values the loss prints under a message that does not
      name them (``tf.print("loss: ", total, xy, wh, ...)``); repeated prints are summed;
    - ``hands_anchors``: ``call`` gives the loss its anchors from the frame, so a transposed
      scene can be audited with its anchors transposed too (``total.transpose_invariant``
      with non-square anchors);
    - ``build(target, frame)``: the loss to call, made once per audit from the object the user
      pointed at (default: the target itself). A convention whose loss comes from a factory
      (``YoloLoss(anchors, classes)``) or lives on an object (a ``custom_loss`` method) builds
      it here from the frame, so anchors and classes are declared once, in the options.

    Example (a made-up convention: truth as a list of boxes, predictions flattened):
        >>> from lossaudit.layouts import Layout, box_list, flat
        >>> mine = Layout(
        ...     "mine",
        ...     encode=lambda scene, frame: {"boxes": box_list(scene, 8)},
        ...     call=lambda loss, truth, y_pred, frame: loss(truth["boxes"], flat(y_pred)),
        ...     returns=("box", "obj", "cls"),
        ... )
    """

    name: str
    encode: Encode
    call: Call
    returns: tuple[str, ...] = ()
    components: Mapping[str, str] = field(default_factory=dict)
    anchor_unit: str = "image"
    codec: Mapping[str, str] = field(default_factory=dict)
    square: bool = False
    summary: str = ""
    anchor_groups: Groups = consecutive_groups
    scales: tuple[int, ...] = (1,)
    print_names: tuple[str, ...] = ()
    hands_anchors: bool = False
    build: Build = as_given

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise invalid("a layout has no name", "a non-empty str", repr(self.name), "Name it.")
        for what in ("encode", "call", "build"):
            if not callable(getattr(self, what)):
                raise invalid(
                    f"Layout.{what} is not callable",
                    "encode(scene, frame) -> {name: array}, "
                    "call(loss, truth, y_pred, frame) -> what the loss returns and "
                    "build(target, frame) -> the loss",
                    f"{what}={getattr(self, what)!r}",
                    "Pass functions (see lossaudit.layouts.Layout).",
                )
        if self.anchor_unit not in ANCHOR_UNITS:
            raise invalid(
                "Layout.anchor_unit is not a known unit",
                " | ".join(ANCHOR_UNITS),
                repr(self.anchor_unit),
                "Say whether the loss's anchors are image fractions, grid cells or pixels.",
            )
        unknown = set(self.codec) - {"xy", "wh", "obj", "cls"}
        if unknown:
            raise invalid(
                "Layout.codec names an unknown channel",
                "keys among xy, wh, obj, cls",
                ", ".join(sorted(unknown)),
                'Pass e.g. codec={"cls": "sigmoid"}.',
            )
        object.__setattr__(self, "returns", tuple(str(n) for n in self.returns))
        object.__setattr__(self, "print_names", tuple(str(n) for n in self.print_names))
        object.__setattr__(self, "scales", tuple(int(n) for n in self.scales))
        object.__setattr__(self, "components", dict(self.components))
        object.__setattr__(self, "codec", dict(self.codec))

    def check_grid(self, spec: GridSpec) -> None:
        """Refuse a grid the convention cannot take (:class:`~lossaudit.errors.InvalidSpec`):
        an H != W grid for a square-only convention, with a square grid to use instead."""
        if self.square and spec.H != spec.W:
            side = max(spec.H, spec.W)
            raise invalid(
                f"layout {self.name!r} assumes square grids (the loss reads one grid size "
                "from its input's shape)",
                "a square grid, H = W",
                f"grid {spec.H}x{spec.W}",
                f"Pass a square grid, e.g. --grid {side} (grid = {side} in [tool.lossaudit], "
                f"GridSpec(H={side}, W={side}) in Python).",
            )


def unit_scale(layout: Layout, frame: Frame) -> tuple[float, float]:
    """``(across, down)``: one image in the layout's anchor unit."""
    return {
        "image": (1.0, 1.0),
        "grid": (float(frame.spec.W), float(frame.spec.H)),
        "pixels": (float(frame.input_size[1]), float(frame.input_size[0])),
    }[layout.anchor_unit]


def anchor_scales(
    layout: Layout, frame: Frame, scales: tuple[tuple[int, int], ...], count: int
) -> list[tuple[float, float]]:
    """``(across, down)`` per anchor: one image in the layout's unit, at the anchor's own scale
    (grid units differ per scale; an anchor two scales share takes the first one's)."""
    if not scales or layout.anchor_unit != "grid":
        return [unit_scale(layout, frame)] * count
    owner = {}
    for k, group in enumerate(layout.anchor_groups(count, len(scales))):
        for i in group:
            owner.setdefault(i, k)
    return [
        (float(scales[owner.get(i, 0)][1]), float(scales[owner.get(i, 0)][0])) for i in range(count)
    ]


def image_fractions(
    sizes: tuple[tuple[float, float], ...],
    layout: Layout,
    frame: Frame,
    scales: tuple[tuple[int, int], ...] = (),
) -> tuple[tuple[float, float], ...]:
    """Anchor sizes given in the layout's unit, as image fractions."""
    units = anchor_scales(layout, frame, scales, len(sizes))
    return tuple((w / a, h / d) for (w, h), (a, d) in zip(sizes, units, strict=True))
