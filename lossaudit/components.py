"""The one vocabulary of loss components: roles, their order, names and grouping.

Every part of lossaudit that talks about a loss's components (the adapter, the Keras metrics,
the TensorBoard diagnosis, the config and CLI, the registry and the report) reads it from here,
so an audit and ``lossaudit.keras`` always agree on what ``coordinates`` is.

- :data:`BASE_ROLES`: the terms whose sum is the whole loss;
- :data:`COMPONENTS`: every role a verdict is given for, in report order;
- :data:`MAPPABLE`: every role a reported name can be mapped to (``ignore`` drops it);
- :func:`role_for_name`: a reported name's role, by explicit mapping, then a name heuristic;
- :func:`check_mapping`: one validation of a ``{name: role}`` mapping, one set of messages;
- :func:`group`: what a loss reported, grouped by role (the one grouping every caller uses).

Nothing here imports TensorFlow or numpy: values are passed through untouched.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lossaudit.errors import InvalidArgument, did_you_mean, invalid

__all__ = [
    "BASE_ROLES",
    "COMPONENTS",
    "MAPPABLE",
    "RETURNED",
    "Grouped",
    "base_roles",
    "check_mapping",
    "group",
    "order_key",
    "role_for_name",
]

#: Terms whose sum is the whole loss, in the canonical order.
BASE_ROLES = ("coordinates", "objects", "no_objects", "classification")
#: Every component a verdict is given for, in report order. ``confidence`` is objects and
#: no_objects combined; ``total`` is what the loss returns (or the sum of its components).
COMPONENTS = (*BASE_ROLES, "confidence", "total")
#: Every role a reported name can be mapped to; ``ignore`` drops a logged value from the audit.
MAPPABLE = (*COMPONENTS, "ignore")
#: The name a loss's returned (non-mapping) value is reported under.
RETURNED = "<returned value>"

_HEURISTIC: tuple[tuple[str, str], ...] = (
    # Checked in order: the no-object patterns must win over the object ones.
    (r"^(no_?obj|non_?obj|noobj|no_objects?|nonobject)", "no_objects"),
    (r"^(xy|wh|box|bbox|giou|ciou|diou|iou|coord|loc)", "coordinates"),
    (r"^(cls|class|prob)", "classification"),
    (r"^(obj|has_obj)", "objects"),
    (r"^conf", "confidence"),
    (r"^(total|loss$|sum$)", "total"),
)


def order_key(role: str) -> int:
    """Sort key putting roles in report order (unknown names last)."""
    return COMPONENTS.index(role) if role in COMPONENTS else len(COMPONENTS)


def base_roles(roles: Iterable[str]) -> list[str]:
    """The roles whose sum is the whole loss: every base component, with a combined confidence
    standing in for objects and no_objects unless both are reported separately."""
    present = set(roles)
    base = [r for r in BASE_ROLES if r in present]
    if "confidence" in present and not ("objects" in present and "no_objects" in present):
        base = [r for r in base if r not in ("objects", "no_objects")] + ["confidence"]
    return base


def role_for_name(name: str, explicit: Mapping[str, str] | None = None) -> str | None:
    """Canonical role of a component name, by explicit mapping first, then the heuristic.

    The heuristic (documented in the README) lower-cases the name, drops a leading
    ``loss_``/``loss/`` and matches its start: ``noobj*``, ``no_object*`` -> no_objects;
    ``xy*``, ``wh*``, ``box*``, ``giou*``, ``coord*`` -> coordinates; ``cls*``, ``class*``,
    ``prob*`` -> classification; ``obj*`` -> objects; ``conf*`` -> confidence (objects and
    no_objects combined); ``total*`` -> total. Anything else is ``None`` (not audited).

    Example:
        >>> role_for_name("no_objects_loss_sum"), role_for_name("xy_loss"), role_for_name("conf")
        ('no_objects', 'coordinates', 'confidence')
    """
    if explicit and name in explicit:
        return explicit[name]
    n = name.strip().lower().replace("-", "_").replace(" ", "_")
    n = re.sub(r"^(loss[_/])", "", n).split("/")[-1]
    if n in MAPPABLE:
        return n
    for pattern, role in _HEURISTIC:
        if re.match(pattern, n):
            return role
    return None


def check_mapping(mapping: Any, *, source: str = "components") -> dict[str, str]:
    """``mapping`` validated as ``{reported name: role}``, or :class:`InvalidArgument`.

    ``source`` names where it came from in the message (``components``, ``--component``,
    ``[tool.lossaudit.losses.x] component``). Accepts a mapping or ``NAME=ROLE`` strings.
    """
    if mapping is None:
        return {}
    pairs: list[tuple[Any, Any]]
    if isinstance(mapping, Mapping):
        pairs = list(mapping.items())
    elif isinstance(mapping, list | tuple) and all(
        isinstance(v, str) and "=" in v for v in mapping
    ):
        pairs = [tuple(v.split("=", 1)) for v in mapping]
    else:
        raise invalid(
            f"{source} is not a mapping of reported names to roles",
            'a dict {reported_name: role} or NAME=ROLE strings, e.g. {"xy_loss": "coordinates"}',
            f"{source}={mapping!r}",
            'Pass e.g. {"xy_loss": "coordinates", "lr": "ignore"} (--component xy_loss=coordinates).',
            cls=InvalidArgument,
        )
    out: dict[str, str] = {}
    for name, role in pairs:
        if (
            not isinstance(name, str)
            or not name
            or not isinstance(role, str)
            or role not in MAPPABLE
        ):
            raise invalid(
                f"{source}: {name!r} is mapped to an unknown role",
                "NAME=ROLE with ROLE one of " + " | ".join(MAPPABLE),
                f"{name}={role}" if isinstance(name, str) else f"{name!r}={role!r}",
                "Map each reported name to a canonical role (NAME=ROLE)."
                + (did_you_mean(role, MAPPABLE) if isinstance(role, str) else ""),
                cls=InvalidArgument,
            )
        out[name] = role
    return out


@dataclass(frozen=True)
class Grouped:
    """What a loss reported, by role.

    ``parts[role]`` lists ``(reported name, value)`` in report order; a returned non-mapping
    value is the ``total`` (it replaces any logged total); ``unmapped`` keeps the values no role
    matched, by name; names mapped to ``ignore`` are dropped.
    """

    parts: dict[str, list[tuple[str, Any]]] = field(default_factory=dict)
    unmapped: dict[str, Any] = field(default_factory=dict)

    @property
    def names(self) -> dict[str, tuple[str, ...]]:
        """Reported names per role."""
        return {r: tuple(n for n, _ in p) for r, p in self.parts.items()}

    @property
    def total_given(self) -> bool:
        """Whether the loss gave its own total (returned or reported under a total name)."""
        return "total" in self.parts

    @property
    def roles(self) -> tuple[str, ...]:
        """Roles present, in report order."""
        return tuple(sorted(self.parts, key=order_key))


def group(named: Mapping[str, Any], mapping: Mapping[str, str] | None = None) -> Grouped:
    """Group ``{name: value}`` (as :func:`lossaudit.adapter.reported` gives it) by role.

    Example:
        >>> g = group({"xy_loss": 1.0, "wh_loss": 2.0, "lr": 0.1, RETURNED: 3.0})
        >>> g.names, sorted(g.unmapped)
        ({'coordinates': ('xy_loss', 'wh_loss'), 'total': ('<returned value>',)}, ['lr'])
    """
    parts: dict[str, list[tuple[str, Any]]] = {}
    unmapped: dict[str, Any] = {}
    for name, value in named.items():
        if name == RETURNED:
            continue
        role = role_for_name(name, mapping)
        if role == "ignore":
            continue
        if role is None:
            unmapped[name] = value
            continue
        parts.setdefault(role, []).append((name, value))
    if RETURNED in named:
        parts["total"] = [(RETURNED, named[RETURNED])]
    return Grouped(parts, unmapped)
