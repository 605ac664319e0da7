"""The losses configured in ``[tool.lossaudit]``: one ``[[tool.lossaudit.losses]]`` table each.

```toml
[tool.lossaudit]
profile = "ci"

[[tool.lossaudit.losses]]
target = "my_pkg/losses.py:yolo_loss"
grid = "13x9"
anchors = 3
classes = 4
cls = "sigmoid"
anchor-sizes = ["0.1,0.1", "0.3,0.3", "0.6,0.6"]
component = ["xy_loss=coordinates", "wh_loss=coordinates"]
```

Keys are the ``lossaudit report`` flags under the same names. A bad key or value is reported with
where it is (which table) and what is allowed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lossaudit.errors import InvalidSpec, did_you_mean
from lossaudit.settings import load_config
from lossaudit.spec import CLS_CHOICES, OBJ_CHOICES, WH_CHOICES, XY_CHOICES, Codec, GridSpec

__all__ = [
    "LOSS_KEYS",
    "TOP_KEYS",
    "LossConfig",
    "configured_losses",
    "parse_losses",
    "validate_table",
]

#: Keys allowed directly under ``[tool.lossaudit]``.
TOP_KEYS = ("profile", "max_examples", "time_limit", "reduction", "baseline", "tolerance", "losses")

LOSS_KEYS = (
    "target",
    "grid",
    "anchors",
    "classes",
    "batch",
    "xy",
    "wh",
    "obj",
    "cls",
    "anchor-sizes",
    "component",
    "reduction",
)


@dataclass(frozen=True)
class LossConfig:
    """One configured loss: what to load and how to audit it."""

    target: str
    spec: GridSpec = field(default_factory=GridSpec)
    codec: Codec = field(default_factory=Codec)
    components: dict[str, str] = field(default_factory=dict)
    reduction: str = "auto"
    #: Where it was configured, for messages: ``pyproject.toml [[tool.lossaudit.losses]] #1``.
    origin: str = ""


def _fail(where: str, key: str, expected: str, received: Any, fix: str) -> InvalidSpec:
    return InvalidSpec(f"{where}: {key}: expected {expected}; received {received!r}. {fix}")


def _grid(where: str, value: Any) -> tuple[int, int]:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value, value
    if isinstance(value, str):
        parts = value.lower().split("x")
        if len(parts) in (1, 2) and all(p.strip().isdigit() and int(p) > 0 for p in parts):
            return int(parts[0]), int(parts[-1])
    raise _fail(
        where, "grid", 'a positive int or "HxW" (e.g. "13x9")', value, 'Write grid = "13x9".'
    )


def _positive(where: str, key: str, value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    raise _fail(where, key, "a positive integer", value, f"Write {key} = 2.")


def _choice(where: str, key: str, value: Any, choices: tuple[str, ...]) -> str:
    if value in choices:
        return value
    hint = did_you_mean(str(value), choices)
    raise _fail(where, key, " | ".join(choices), value, f"Pick one of {', '.join(choices)}.{hint}")


def _anchor_sizes(where: str, value: Any) -> tuple[tuple[float, float], ...]:
    fix = 'Write anchor-sizes = ["0.1,0.1", "0.3,0.3"] (one W,H per anchor, image fractions).'
    if not isinstance(value, list):
        raise _fail(where, "anchor-sizes", 'a list of "W,H" strings', value, fix)
    sizes = []
    for item in value:
        try:
            pair = (
                [float(v) for v in item.split(",")]
                if isinstance(item, str)
                else [float(v) for v in item]
            )
        except (TypeError, ValueError, AttributeError):
            raise _fail(where, "anchor-sizes", '"W,H" entries', item, fix) from None
        if len(pair) != 2:
            raise _fail(where, "anchor-sizes", '"W,H" entries', item, fix)
        sizes.append((pair[0], pair[1]))
    return tuple(sizes)


def _components(where: str, value: Any) -> dict[str, str]:
    from lossaudit.components import MAPPABLE as ROLES

    fix = 'Write component = ["xy_loss=coordinates"] or component = { xy_loss = "coordinates" }.'
    if isinstance(value, dict):
        pairs = list(value.items())
    elif isinstance(value, list) and all(isinstance(v, str) and "=" in v for v in value):
        pairs = [tuple(v.split("=", 1)) for v in value]
    else:
        raise _fail(where, "component", "NAME=ROLE strings or a table", value, fix)
    out = {}
    for name, role in pairs:
        if role not in ROLES:
            raise _fail(
                where,
                f"component {name}",
                " | ".join(ROLES),
                role,
                fix + did_you_mean(str(role), ROLES),
            )
        out[str(name)] = str(role)
    return out


def validate_table(
    table: dict[str, Any], *, source: str = "pyproject.toml"
) -> tuple[LossConfig, ...]:
    """Check every key of a ``[tool.lossaudit]`` table, its settings and its losses; return the
    losses. Errors name the file and key and list what is allowed."""
    from lossaudit.settings import resolve

    for key in table:
        if key not in TOP_KEYS:
            raise InvalidSpec(
                f"{source} [tool.lossaudit]: unknown key {key!r}: expected one of {', '.join(TOP_KEYS)}."
                + did_you_mean(key, TOP_KEYS)
            )
    try:
        resolve(None, environ={}, config=table)
    except InvalidSpec as exc:
        raise InvalidSpec(f"{source} [tool.lossaudit]: {exc}") from None
    return parse_losses(table, source=source)


def parse_losses(
    table: dict[str, Any], *, source: str = "pyproject.toml"
) -> tuple[LossConfig, ...]:
    """The ``losses`` array of a ``[tool.lossaudit]`` table, validated."""
    losses = table.get("losses", [])
    if not isinstance(losses, list) or not all(isinstance(x, dict) for x in losses):
        raise InvalidSpec(
            f"{source}: [tool.lossaudit] losses: expected [[tool.lossaudit.losses]] tables; "
            f"received {losses!r}. Write one [[tool.lossaudit.losses]] table per loss."
        )
    out = []
    for index, entry in enumerate(losses, start=1):
        where = f"{source} [[tool.lossaudit.losses]] #{index}"
        for key in entry:
            if key not in LOSS_KEYS:
                raise InvalidSpec(
                    f"{where}: unknown key {key!r}: expected one of {', '.join(LOSS_KEYS)}."
                    + did_you_mean(key, LOSS_KEYS)
                )
        target = entry.get("target")
        if not isinstance(target, str) or ":" not in target:
            raise _fail(
                where,
                "target",
                '"path/to/file.py:name" or "package.module:name"',
                target,
                "Name the loss to audit.",
            )
        defaults = GridSpec()
        h, w = _grid(where, entry["grid"]) if "grid" in entry else (defaults.H, defaults.W)
        spec = GridSpec(
            batch=_positive(where, "batch", entry.get("batch", defaults.batch)),
            H=h,
            W=w,
            anchors=_positive(where, "anchors", entry.get("anchors", defaults.anchors)),
            classes=_positive(where, "classes", entry.get("classes", defaults.classes)),
        )
        d = Codec()
        codec = Codec(
            xy=_choice(where, "xy", entry.get("xy", d.xy), XY_CHOICES),  # type: ignore[arg-type]
            wh=_choice(where, "wh", entry.get("wh", d.wh), WH_CHOICES),  # type: ignore[arg-type]
            obj=_choice(where, "obj", entry.get("obj", d.obj), OBJ_CHOICES),  # type: ignore[arg-type]
            cls=_choice(where, "cls", entry.get("cls", d.cls), CLS_CHOICES),  # type: ignore[arg-type]
            anchor_sizes=_anchor_sizes(where, entry["anchor-sizes"])
            if "anchor-sizes" in entry
            else (),
        )
        try:
            codec.check_against(spec)
        except InvalidSpec as exc:
            raise InvalidSpec(f"{where}: {exc}") from None
        out.append(
            LossConfig(
                target=target,
                spec=spec,
                codec=codec,
                components=_components(where, entry["component"]) if "component" in entry else {},
                reduction=_choice(
                    where, "reduction", entry.get("reduction", "auto"), ("auto", "sum", "mean")
                ),
                origin=where,
            )
        )
    return tuple(out)


def configured_losses(directory: Any = None) -> tuple[LossConfig, ...]:
    """The losses configured in ``pyproject.toml`` of ``directory`` (default: current directory)."""
    return parse_losses(load_config(directory))
