"""The property registry: one place that knows every property's name, component and docs.

A property is a small function ``check(ctx, component, drawn) -> Outcome`` plus metadata. The
:func:`prop` decorator registers one entry per component it applies to, named
``<component>.<behaviour>`` (``coordinates.minimal_at_truth``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from lossaudit.components import COMPONENTS
from lossaudit.errors import InvalidArgument, InvalidSpec, did_you_mean, invalid
from lossaudit.spec import Codec, GridSpec
from lossaudit.status import Status

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy

    from lossaudit.adapter import Adapter, Evaluation
    from lossaudit.scenarios import Case
    from lossaudit.settings import Settings

__all__ = [
    "COMPONENTS",
    "Context",
    "NonFinite",
    "Outcome",
    "Property",
    "get",
    "names",
    "prop",
    "select",
    "unregister",
]


class NonFinite(Exception):
    """A non-finite value met by a property that is not about finiteness (reported as error)."""

    def __init__(self, role: str, label: str, value: float, *, gradient: bool = False):
        if gradient:
            what = f"the gradient of {role} is non-finite"
        else:
            what = f"the loss returned {value} for {role}"
        super().__init__(
            f"{what} on {label}; see {role}.finite for where non-finite values come from"
        )


@dataclass(frozen=True)
class Outcome:
    """What one check saw on one drawn example.

    ``status`` is a :class:`~lossaudit.status.Status` (``"pass"``, ``"fail"``, ``"warn"`` or
    ``"skip"`` are accepted and converted); ``expected`` states the relation and tolerance;
    ``observed`` what was seen; ``cells`` the offending ``(b, i, j, a)`` anchors out of ``of``;
    ``values`` the numbers behind the verdict; ``info`` a note kept even on a pass; ``cause``
    the typed cause a diagnostic found (its kind goes into the result as ``Result.cause``).
    """

    status: Status
    expected: str = ""
    observed: str = ""
    cells: tuple[tuple[int, int, int, int], ...] = ()
    of: int = 0
    of_what: str = "anchors"
    values: dict[str, Any] = field(default_factory=dict)
    info: str = ""
    cause: Any = None

    def __post_init__(self) -> None:
        status = Status.parse(self.status)
        if status is Status.ERROR:
            raise invalid(
                "a property returned an error outcome",
                "pass, fail, warn or skip (a loss's own errors are raised, as LossError)",
                "status='error'",
                "Raise lossaudit.errors.LossError for a loss that misbehaves.",
                cls=InvalidSpec,
            )
        object.__setattr__(self, "status", status)

    @classmethod
    def ok(cls, info: str = "", **values: Any) -> Outcome:
        return cls(Status.PASS, info=info, values=values)


@dataclass
class Context:
    """Everything a check needs: the adapter, the spec and codec, and what the probe found."""

    adapter: Adapter
    spec: GridSpec
    codec: Codec
    settings: Settings
    roles: tuple[str, ...] = ()
    total_given: bool = True
    examples: int = 0
    #: Work shared by several properties of one audit (a training run), keyed by its name.
    cache: dict[str, Any] = field(default_factory=dict)
    #: Cases evaluated for the current example, first ones first (to draw a counterexample).
    seen: list[Case] = field(default_factory=list)
    #: The opt-in scenarios switched on for this audit, by option name (``degenerate-boxes``).
    opt_in: frozenset[str] = frozenset()

    def evaluate(self, case: Case) -> Evaluation:
        if len(self.seen) < 16:
            self.seen.append(case)
        return self.adapter.evaluate(case)

    def value(self, case: Case, role: str, *, finite: bool = True) -> float:
        """``role``'s value on ``case`` (no gradient computed for it when none is at hand)."""
        if len(self.seen) < 16:
            self.seen.append(case)
        v = self.adapter.values(case)[role]
        if finite and not np.isfinite(v):
            raise NonFinite(role, case.label, v)
        return v

    def nonfinite(self, case: Case) -> dict[str, tuple[float, np.ndarray]]:
        """Per component on ``case``: ``(value, mask of the anchors whose gradient is not
        finite)``. Kept per case, so every component's ``finite`` reads a case's gradients
        once."""
        if len(self.seen) < 16:
            self.seen.append(case)
        out = {}
        for role, (value, packed, shape) in self.adapter.derived(
            case, "nonfinite", _nonfinite
        ).items():
            size = int(np.prod(shape))
            bits = np.zeros(size, bool) if packed is None else np.unpackbits(packed, count=size)
            out[role] = (value, bits.astype(bool).reshape(shape))
        return out

    @property
    def components(self) -> tuple[str, ...]:
        """Reported components other than total."""
        return tuple(r for r in self.roles if r != "total")


def _nonfinite(ev: Evaluation) -> dict[str, tuple[float, np.ndarray | None, tuple[int, ...]]]:
    """Per role: its value, the anchors whose gradient is not finite as packed bits (``None``
    when there are none) and the anchors' shape. Bits, not indices: a gradient that is NaN
    everywhere would otherwise keep a megabyte of indices per case."""
    out: dict[str, tuple[float, np.ndarray | None, tuple[int, ...]]] = {}
    for role, grad in ev.grads.items():
        shape = grad.shape[:-1]
        with np.errstate(over="ignore", invalid="ignore"):
            # A sum is finite only when every entry is (one that overflows is checked below).
            clean = bool(np.isfinite(grad.sum()))
        bad = None if clean else ~np.isfinite(grad).all(axis=-1)
        packed = np.packbits(bad) if bad is not None and bad.any() else None
        out[role] = (ev.values[role], packed, shape)
    return out


Applies = Callable[[Context, str], "str | None"]
Draws = Callable[[Context, str], "SearchStrategy[Any]"]
Check = Callable[[Context, str, Any], Outcome]


@dataclass(frozen=True)
class Property:
    """One registered property: ``check`` runs on values drawn from ``draws``."""

    name: str
    component: str
    behaviour: str
    doc: str
    bugs: tuple[int, ...]
    draws: Draws
    check: Check
    applies: Applies
    #: The option that switches this property on (``degenerate-boxes``); empty: always runs.
    #: An opt-in property is left out of an audit unless its option is on or ``only`` names it.
    opt_in: str = ""

    @property
    def summary(self) -> str:
        """The docstring's first sentence, on one line."""
        first = self.doc.strip().split("\n\n", 1)[0]
        text = " ".join(first.split())
        end = text.find(". ")
        return text if end < 0 else text[: end + 1]

    def skip_reason(self, ctx: Context) -> str | None:
        """Why this property does not apply to the audited loss, or ``None`` when it does."""
        return self.applies(ctx, self.component)


_REGISTRY: dict[str, Property] = {}


def _always(ctx: Context, component: str) -> str | None:
    return None


def opt_in_reason(option: str) -> str:
    """Why an opt-in property did not run: its option is off, and how to switch it on."""
    keyword = option.replace("-", "_")
    return (
        f"an opt-in scenario, off: switch it on with --{option} ({option} = true in "
        f"[tool.lossaudit], {keyword}=True from Python)"
    )


def component_present(ctx: Context, component: str) -> str | None:
    """Default applicability: the loss reports the component (total variants of per-component
    behaviours only when the loss reports no components at all)."""
    if component == "total":
        return None
    if component not in ctx.roles:
        return f"the loss reports no {component} component"
    if component == "confidence" and "objects" in ctx.roles and "no_objects" in ctx.roles:
        return "objects and no_objects are reported separately and audited instead"
    return None


def prop(
    behaviour: str,
    *,
    components: Iterable[str],
    draws: Draws,
    bugs: Iterable[int] = (),
    applies: Applies | None = None,
    total_only_when_scalar: bool = True,
    opt_in: str = "",
) -> Callable[[Check], Check]:
    """Register ``check`` as ``<component>.<behaviour>`` for each component.

    ``total_only_when_scalar`` keeps a per-component behaviour's ``total`` variant for losses
    that report no components (scalar-only losses get every property checkable on the total).
    ``opt_in`` names the loss option that switches the property on (``degenerate-boxes``):
    without it the property is left out of audits (and skipped, saying how to switch it on,
    when ``only`` names it).
    """

    def decorate(check: Check) -> Check:
        doc = inspect.getdoc(check) or ""
        extra = applies or _always

        def applicability(ctx: Context, component: str) -> str | None:
            if opt_in and opt_in not in ctx.opt_in:
                return opt_in_reason(opt_in)
            reason = component_present(ctx, component)
            if (
                reason is None
                and component == "total"
                and total_only_when_scalar
                and ctx.components
            ):
                reason = "the loss reports components; they are audited instead of the total"
            return reason or extra(ctx, component)

        for component in components:
            if component not in COMPONENTS:
                raise invalid(
                    f"prop({behaviour!r}) names an unknown component",
                    " | ".join(COMPONENTS),
                    f"{component!r}",
                    "Register the property for canonical components."
                    + did_you_mean(str(component), COMPONENTS),
                    cls=InvalidArgument,
                )
            name = f"{component}.{behaviour}"
            if name in _REGISTRY:
                raise invalid(
                    f"property {name} is registered twice",
                    "one registration per name",
                    f"a second @prop({behaviour!r}) for {component}",
                    "Rename the behaviour, or unregister the first with "
                    "lossaudit.properties.unregister(name).",
                    cls=InvalidArgument,
                )
            _REGISTRY[name] = Property(
                name=name,
                component=component,
                behaviour=behaviour,
                doc=doc,
                bugs=tuple(bugs),
                draws=draws,
                check=check,
                applies=applicability,
                opt_in=opt_in,
            )
        return check

    return decorate


def unregister(name: str) -> None:
    """Remove a property (one registered for a test or a one-off audit)."""
    get(name)
    del _REGISTRY[name]


def names() -> tuple[str, ...]:
    """Every registered property name, in registration order."""
    return tuple(_REGISTRY)


def get(name: str) -> Property:
    """The property called ``name``; unknown names get close matches."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise invalid(
            "unknown property",
            "a registered name such as coordinates.minimal_at_truth",
            f"{name!r}",
            "List them with `lossaudit report --list`." + did_you_mean(name, _REGISTRY),
            cls=InvalidArgument,
        ) from None


def select(
    *, only: Iterable[str] | None = None, components: Iterable[str] | None = None
) -> tuple[Property, ...]:
    """Registered properties, filtered by exact names (``only``) and/or components."""
    chosen = list(_REGISTRY.values())
    if only:
        wanted = [get(n).name for n in only]
        chosen = [p for p in chosen if p.name in wanted]
    if components:
        comps = set(components)
        for c in comps:
            if c not in COMPONENTS:
                raise invalid(
                    "unknown component",
                    " | ".join(COMPONENTS),
                    f"{c!r}",
                    "Filter by a canonical component name." + did_you_mean(c, COMPONENTS),
                    cls=InvalidArgument,
                )
        chosen = [p for p in chosen if p.component in comps]
    return tuple(chosen)


def listing() -> str:
    """Every registered property with its one-line summary, sorted by name (``--list``)."""
    lines = [f"{name:48} {prop.summary}" for name, prop in _REGISTRY.items()]
    return "\n".join(sorted(lines)) + "\n"
