"""``[tool.lossaudit]`` in ``pyproject.toml``: settings, the gate's keys and the losses.

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

A loss table's keys are the ``lossaudit report`` flags under the same names
(:data:`lossaudit.options.OPTIONS`). :func:`load_project` reads and checks the whole table,
the same way for ``lossaudit report``, ``check``, ``baseline`` and the pytest plugin: a bad key
or value is reported with where it is (which table) and what is allowed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lossaudit.components import COMPONENTS
from lossaudit.errors import InvalidSpec, did_you_mean
from lossaudit.options import LossOptions, unknown_key
from lossaudit.settings import load_config, resolve

__all__ = [
    "TOP_KEYS",
    "LossConfig",
    "Project",
    "configured_losses",
    "load_project",
    "parse_losses",
    "validate_table",
]

#: Keys allowed directly under ``[tool.lossaudit]``.
TOP_KEYS = ("profile", "max_examples", "time_limit", "reduction", "baseline", "tolerance", "losses")


@dataclass(frozen=True)
class LossConfig:
    """One configured loss: what to load and how to audit it."""

    target: str
    options: LossOptions = field(default_factory=LossOptions)
    #: Where it was configured, for messages: ``pyproject.toml [[tool.lossaudit.losses]] #1``.
    origin: str = ""


@dataclass(frozen=True)
class Project:
    """A checked ``[tool.lossaudit]`` table (``{}`` when there is none) and its losses."""

    table: dict[str, Any] = field(default_factory=dict)
    losses: tuple[LossConfig, ...] = ()


def _check_tolerance(tolerance: Any, source: str) -> None:
    where = f"{source} [tool.lossaudit.tolerance]"
    if not isinstance(tolerance, dict) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) and v >= 0
        for v in tolerance.values()
    ):
        raise InvalidSpec(
            f"{where}: expected component = relative tolerance (a number >= 0); "
            f"received {tolerance!r}. Write e.g. coordinates = 1e-3."
        )
    for key in tolerance:
        if key not in COMPONENTS:
            raise InvalidSpec(
                f"{where}: unknown component {key!r}: expected one of "
                f"{', '.join(COMPONENTS)}." + did_you_mean(str(key), COMPONENTS)
            )


def validate_table(
    table: dict[str, Any], *, source: str = "pyproject.toml"
) -> tuple[LossConfig, ...]:
    """Check every key of a ``[tool.lossaudit]`` table, its settings and its losses; return the
    losses. Errors name the file and key and list what is allowed."""
    for key in table:
        if key not in TOP_KEYS:
            raise unknown_key(f"{source} [tool.lossaudit]", key, TOP_KEYS)
    try:
        resolve(None, environ={}, config=table)
    except InvalidSpec as exc:
        raise InvalidSpec(f"{source} [tool.lossaudit]: {exc}") from None
    if "baseline" in table and (
        not isinstance(table["baseline"], str) or not table["baseline"].strip()
    ):
        raise InvalidSpec(
            f"{source} [tool.lossaudit] baseline: expected a path (a string); received "
            f'{table["baseline"]!r}. Write e.g. baseline = "lossaudit-baseline.json".'
        )
    if "tolerance" in table:
        _check_tolerance(table["tolerance"], source)
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
    out: list[LossConfig] = []
    first: dict[str, int] = {}
    for index, entry in enumerate(losses, start=1):
        where = f"{source} [[tool.lossaudit.losses]] #{index}"
        options = LossOptions.from_table(entry, where=where, also=("target",))
        target = entry.get("target")
        if not isinstance(target, str) or ":" not in target:
            raise InvalidSpec(
                f'{where}: target: expected "path/to/file.py:name" or "package.module:name"; '
                f"received {target!r}. Name the loss to audit."
            )
        if target in first:
            raise InvalidSpec(
                f"{where}: target {target!r} is configured twice (tables #{first[target]} and "
                f"#{index}): expected each target once; received it again. The baseline keeps one "
                "entry per target, so two tables would overwrite each other's values and the gate "
                "could never pass. Keep one table for it."
            )
        first[target] = index
        out.append(LossConfig(target=target, options=options, origin=where))
    return tuple(out)


def load_project(directory: Any = None, *, filename: str = "pyproject.toml") -> Project:
    """Read and check ``[tool.lossaudit]`` of ``filename`` in ``directory`` (default: the current
    directory's ``pyproject.toml``): the one reader behind every command and the pytest plugin,
    so a misspelt key is refused everywhere alike."""
    table = load_config(directory, filename=filename)
    return Project(table, validate_table(table, source=filename))


def configured_losses(directory: Any = None) -> tuple[LossConfig, ...]:
    """The losses configured in ``pyproject.toml`` of ``directory`` (default: current directory)."""
    return load_project(directory).losses
