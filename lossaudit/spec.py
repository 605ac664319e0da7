"""The canonical grid lossaudit generates, and the codec that maps raw outputs to truth space.

Truth and raw predictions share the shape ``(batch, H, W, anchors, 5 + C)`` with channels
``x, y, w, h, obj, class_0 .. class_{C-1}``:

- ``x, y``: box centre offset inside its cell, in [0, 1);
- ``w, h``: box size as a fraction of the image, in (0, 1];
- ``obj``: 1 where that anchor is responsible for an object, else 0;
- one-hot classes. Every channel of a non-responsible anchor is 0.

The :class:`Codec` states how the audited loss turns raw outputs into that space, so lossaudit
can build perfect, shifted and opposite raw predictions. Everything here is numpy; no TensorFlow.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from lossaudit.errors import invalid

XY = Literal["identity", "sigmoid"]
WH = Literal["identity", "exp", "square"]
OBJ = Literal["sigmoid", "identity"]
CLS = Literal["softmax", "sigmoid", "identity"]

XY_CHOICES = ("identity", "sigmoid")
WH_CHOICES = ("identity", "exp", "square")
OBJ_CHOICES = ("sigmoid", "identity")
CLS_CHOICES = ("softmax", "sigmoid", "identity")

#: Channel indices in the last axis.
X, Y, W, H, OBJ_CH = 0, 1, 2, 3, 4
CLS0 = 5

#: Raw logit lossaudit uses for "certainly yes" on saturating activations (sigmoid(12) = 0.999994).
CONFIDENT_LOGIT = 12.0
#: Smallest and largest xy offset a sigmoid codec can encode without an infinite logit.
_XY_EPS = 1e-4
#: Size of the box an empty anchor predicts in a perfect prediction (image fraction): small
#: enough that no ignore-by-IoU rule ever fires on it.
EMPTY_BOX = 0.01


@dataclass(frozen=True)
class GridSpec:
    """Shape of the canonical grid: ``(batch, H, W, anchors, 5 + classes)``.

    Example:
        >>> GridSpec(batch=2, H=3, W=4, anchors=2, classes=1).shape
        (2, 3, 4, 2, 6)
    """

    batch: int = 2
    H: int = 3
    W: int = 4
    anchors: int = 2
    classes: int = 1

    def __post_init__(self) -> None:
        for name in ("batch", "H", "W", "anchors", "classes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
                raise invalid(
                    f"GridSpec.{name} is not a positive integer",
                    "an int >= 1",
                    f"{name}={value!r}",
                    f"Pass e.g. GridSpec({name}=2).",
                )

    @property
    def shape(self) -> tuple[int, int, int, int, int]:
        return (self.batch, self.H, self.W, self.anchors, 5 + self.classes)

    @property
    def channels(self) -> int:
        return 5 + self.classes

    def replace(self, **changes: int) -> GridSpec:
        values = {k: getattr(self, k) for k in ("batch", "H", "W", "anchors", "classes")}
        values.update(changes)
        return GridSpec(**values)

    def __repr__(self) -> str:
        return (
            f"GridSpec(batch={self.batch}, H={self.H}, W={self.W}, "
            f"anchors={self.anchors}, classes={self.classes})"
        )


@dataclass(frozen=True)
class Codec:
    """How the audited loss maps raw outputs to truth space (its activations).

    - ``xy``: ``identity`` (x = t) or ``sigmoid`` (x = sigmoid(t));
    - ``wh``: ``identity`` (w = t), ``exp`` (w = anchor_w * exp(t)) or ``square`` (w = t * t);
    - ``obj``: ``sigmoid`` or ``identity``;
    - ``cls``: ``softmax``, ``sigmoid`` or ``identity``;
    - ``anchor_sizes``: one ``(w, h)`` per anchor as image fractions, used by ``wh="exp"``;
      empty means 1.0 for every anchor.

    Example:
        >>> Codec(xy="sigmoid", wh="exp", anchor_sizes=((0.2, 0.3), (0.5, 0.5))).anchor(1)
        (0.5, 0.5)
    """

    xy: XY = "sigmoid"
    wh: WH = "exp"
    obj: OBJ = "sigmoid"
    cls: CLS = "softmax"
    anchor_sizes: tuple[tuple[float, float], ...] = field(default=())

    def __post_init__(self) -> None:
        for name, choices in (
            ("xy", XY_CHOICES),
            ("wh", WH_CHOICES),
            ("obj", OBJ_CHOICES),
            ("cls", CLS_CHOICES),
        ):
            value = getattr(self, name)
            if value not in choices:
                raise invalid(
                    f"Codec.{name} is not a known activation",
                    " | ".join(choices),
                    f"{name}={value!r}",
                    f"Pick one of {', '.join(choices)}.",
                )
        sizes = tuple(tuple(float(v) for v in pair) for pair in self.anchor_sizes)
        for pair in sizes:
            if len(pair) != 2 or not all(0 < v <= 10 for v in pair):
                raise invalid(
                    "Codec.anchor_sizes has a bad entry",
                    "pairs (w, h) of image fractions in (0, 10]",
                    f"{pair!r}",
                    "Give anchor sizes as fractions of the image, e.g. ((0.2, 0.3), (0.5, 0.5)).",
                )
        object.__setattr__(self, "anchor_sizes", sizes)

    def anchor(self, a: int) -> tuple[float, float]:
        """Size ``(w, h)`` of anchor ``a`` as image fractions (1.0 when none were given)."""
        if not self.anchor_sizes:
            return (1.0, 1.0)
        return self.anchor_sizes[a % len(self.anchor_sizes)]

    def check_against(self, spec: GridSpec) -> None:
        """Raise when the anchor sizes do not match the spec's anchor count."""
        if self.anchor_sizes and len(self.anchor_sizes) != spec.anchors:
            raise invalid(
                "Codec.anchor_sizes does not match GridSpec.anchors",
                f"{spec.anchors} (w, h) pairs, one per anchor",
                f"{len(self.anchor_sizes)} pairs",
                "Give one --anchor-sizes W,H per anchor, or none for 1.0.",
            )

    @property
    def symmetric_anchors(self) -> bool:
        """True when every anchor is square, so transposing a scene transposes its encoding."""
        return all(abs(w - h) < 1e-12 for w, h in self.anchor_sizes)

    def anchor_grid(self, spec: GridSpec) -> np.ndarray:
        """Anchor sizes broadcastable to ``(batch, H, W, anchors, 2)``."""
        sizes = np.array([self.anchor(a) for a in range(spec.anchors)], dtype=np.float64)
        return sizes.reshape(1, 1, 1, spec.anchors, 2)

    # -- truth space -> raw ------------------------------------------------------------------
    def encode_xy(self, xy: np.ndarray) -> np.ndarray:
        if self.xy == "identity":
            return xy
        p = np.clip(xy, _XY_EPS, 1 - _XY_EPS)
        return np.log(p) - np.log1p(-p)

    def encode_wh(self, wh: np.ndarray, anchors: np.ndarray) -> np.ndarray:
        if self.wh == "identity":
            return wh
        if self.wh == "square":
            return np.sqrt(np.maximum(wh, 0.0))
        return np.log(np.maximum(wh, 1e-12) / anchors)

    def obj_logit(self, present: np.ndarray, *, confidence: float = CONFIDENT_LOGIT) -> np.ndarray:
        """Raw obj output meaning ``present`` (0 or 1); ``confidence`` is the saturating logit."""
        if self.obj == "identity":
            return present.astype(np.float64)
        return np.where(present > 0.5, confidence, -confidence)

    def class_logits(
        self, onehot: np.ndarray, *, confidence: float = CONFIDENT_LOGIT
    ) -> np.ndarray:
        """Raw class outputs whose activation gives ``onehot`` (up to saturation)."""
        if self.cls == "identity":
            return onehot.astype(np.float64)
        if self.cls == "softmax":
            return onehot * confidence
        return np.where(onehot > 0.5, confidence, -confidence)

    def clamp(self, raw: np.ndarray) -> np.ndarray:
        """Raw outputs limited to what each identity-coded channel can mean: centres, obj and
        class scores in [0, 1], sizes >= 0. A loss fed probabilities (its head applies the
        activation) is never probed with values no such head can produce. Saturating codecs
        accept any raw value and are left alone: with no identity-coded channel, ``raw`` itself
        is returned (no copy), else a float64 copy."""
        if "identity" not in (self.xy, self.wh, self.obj, self.cls):
            return raw
        out = np.array(raw, dtype=np.float64, copy=True)
        if self.xy == "identity":
            out[..., 0:2] = np.clip(out[..., 0:2], 0.0, 1.0)
        if self.wh == "identity":
            out[..., 2:4] = np.maximum(out[..., 2:4], 0.0)
        if self.obj == "identity":
            out[..., OBJ_CH] = np.clip(out[..., OBJ_CH], 0.0, 1.0)
        if self.cls == "identity":
            out[..., CLS0:] = np.clip(out[..., CLS0:], 0.0, 1.0)
        return out

    # -- raw -> truth space ------------------------------------------------------------------
    def decode(self, raw: np.ndarray, spec: GridSpec) -> dict[str, np.ndarray]:
        """What raw outputs ``(batch, H, W, anchors, 5 + C)`` mean: ``xy`` cell offsets and
        ``wh`` image fractions ``(..., 2)``, ``obj`` and ``cls`` as probabilities (for drawing
        predicted boxes; identity codecs pass values through)."""
        raw = np.asarray(raw, dtype=np.float64)
        with np.errstate(over="ignore", invalid="ignore"):
            xy = raw[..., 0:2] if self.xy == "identity" else 1.0 / (1.0 + np.exp(-raw[..., 0:2]))
            if self.wh == "identity":
                wh = raw[..., 2:4]
            elif self.wh == "square":
                wh = np.square(raw[..., 2:4])
            else:
                wh = np.exp(np.clip(raw[..., 2:4], -50, 50)) * self.anchor_grid(spec)
            o = raw[..., OBJ_CH]
            obj = o if self.obj == "identity" else 1.0 / (1.0 + np.exp(-o))
            c = raw[..., CLS0:]
            if self.cls == "identity":
                cls = c
            elif self.cls == "softmax":
                e = np.exp(c - c.max(axis=-1, keepdims=True))
                cls = e / e.sum(axis=-1, keepdims=True)
            else:
                cls = 1.0 / (1.0 + np.exp(-c))
        return {"xy": xy, "wh": wh, "obj": obj, "cls": cls}

    @property
    def saturating_obj(self) -> bool:
        return self.obj != "identity"

    @property
    def saturating_cls(self) -> bool:
        return self.cls != "identity"


@dataclass(frozen=True)
class Obj:
    """One object: image ``b``, cell row ``i`` and column ``j``, anchor ``a``, box and class.

    ``x, y`` are the centre offset inside the cell in [0, 1); ``w, h`` image fractions.
    """

    b: int
    i: int
    j: int
    a: int
    x: float
    y: float
    w: float
    h: float
    cls: int = 0

    @property
    def slot(self) -> tuple[int, int, int, int]:
        return (self.b, self.i, self.j, self.a)

    def __repr__(self) -> str:
        return (
            f"Obj(b={self.b}, i={self.i}, j={self.j}, a={self.a}, x={self.x:.3g}, "
            f"y={self.y:.3g}, w={self.w:.3g}, h={self.h:.3g}, cls={self.cls})"
        )


@dataclass(frozen=True)
class Scene:
    """A grid spec plus a few objects, each in its own anchor slot.

    ``flipped`` marks a transposed scene (see :meth:`transposed`): its anchors' widths and
    heights are swapped too, for a loss that is handed its anchors.
    """

    spec: GridSpec
    objects: tuple[Obj, ...] = ()
    flipped: bool = False

    def __post_init__(self) -> None:
        seen: set[tuple[int, int, int, int]] = set()
        s = self.spec
        for o in self.objects:
            if not (
                0 <= o.b < s.batch and 0 <= o.i < s.H and 0 <= o.j < s.W and 0 <= o.a < s.anchors
            ):
                raise invalid(
                    "an object lies outside the grid",
                    f"b < {s.batch}, i < {s.H}, j < {s.W}, a < {s.anchors}",
                    repr(o),
                    "Place objects inside the spec's grid.",
                )
            if not 0 <= o.cls < s.classes:
                raise invalid(
                    "an object's class is out of range",
                    f"0 <= cls < {s.classes}",
                    repr(o),
                    "Use a class index below GridSpec.classes.",
                )
            if o.slot in seen:
                raise invalid(
                    "two objects share one anchor slot",
                    "at most one object per (b, i, j, a)",
                    repr(o),
                    "Move one object to another anchor or cell.",
                )
            seen.add(o.slot)

    def truth(self) -> np.ndarray:
        """The canonical ``y_true`` of shape ``(batch, H, W, anchors, 5 + C)``, float32."""
        y = np.zeros(self.spec.shape, dtype=np.float32)
        for o in self.objects:
            y[o.slot][:5] = (o.x, o.y, o.w, o.h, 1.0)
            y[(*o.slot, CLS0 + o.cls)] = 1.0
        return y

    def object_mask(self) -> np.ndarray:
        """Boolean ``(batch, H, W, anchors)``: True where an anchor is responsible for an object."""
        m = np.zeros(self.spec.shape[:4], dtype=bool)
        for o in self.objects:
            m[o.slot] = True
        return m

    def transposed(self) -> Scene:
        """The same scene with rows and columns, x and y, w and h swapped."""
        spec = self.spec.replace(H=self.spec.W, W=self.spec.H)
        objs = tuple(Obj(o.b, o.j, o.i, o.a, o.y, o.x, o.h, o.w, o.cls) for o in self.objects)
        return Scene(spec, objs, not self.flipped)

    def mirrored(self, axis: str) -> Scene:
        """The same scene mirrored left-right (``axis="x"``: columns reversed, ``x`` to
        ``1 - x``) or upside down (``axis="y"``: rows reversed, ``y`` to ``1 - y``)."""
        s = self.spec
        if axis == "x":
            objs = tuple(dataclasses.replace(o, j=s.W - 1 - o.j, x=1.0 - o.x) for o in self.objects)
        else:
            objs = tuple(dataclasses.replace(o, i=s.H - 1 - o.i, y=1.0 - o.y) for o in self.objects)
        return Scene(s, objs, self.flipped)

    def __repr__(self) -> str:
        inner = ", ".join(repr(o) for o in self.objects)
        return f"[{inner}]"
