"""Runs the properties against one loss with Hypothesis and collects a :class:`Report`.

The audit never prints and never crashes: a property the loss violates is a ``fail``, a loss
that raises, hangs or returns something unusable is an ``error`` carrying the loss's own
message, and a bug inside lossaudit itself is an ``error`` that says so.
"""

from __future__ import annotations

import dataclasses
import functools
import random
import shlex
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict
from typing import Any

from lossaudit import properties as props
from lossaudit.adapter import Adapter, describe_exception, import_tensorflow
from lossaudit.components import BASE_ROLES, order_key
from lossaudit.counterexamples import MAX_CELLS, counterexample
from lossaudit.errors import InvalidArgument, LossError, invalid
from lossaudit.findings import Analysis
from lossaudit.layouts import Frame, get_layout
from lossaudit.legacy import notes as legacy_notes
from lossaudit.options import LossOptions
from lossaudit.properties._helpers import measure_one_class
from lossaudit.properties.registry import Context, NonFinite, Outcome, Property
from lossaudit.report import Report, Result
from lossaudit.scenarios import Case, noisy, perfect
from lossaudit.settings import PROFILES, Settings, resolve
from lossaudit.spec import Codec, GridSpec, Obj, Scene
from lossaudit.status import Status
from lossaudit.worker import Worker

__all__ = ["audit", "report_header", "reproduce_command"]

Progress = Callable[[int, int, str], None]


class _Falsified(Exception):
    def __init__(self, outcome: Outcome, drawn: Any, cases: list[Case]):
        super().__init__(outcome.observed)
        self.outcome = outcome
        self.drawn = drawn
        self.cases = cases


class _Errored(Exception):
    def __init__(self, message: str, drawn: Any):
        super().__init__(message)
        self.message = message
        self.drawn = drawn


def reproduce_command(
    target: str,
    spec: GridSpec,
    codec: Codec,
    settings: Settings,
    *,
    only: str | None = None,
    components: Mapping[str, str] | None = None,
    calling: LossOptions | None = None,
) -> str:
    """The ``lossaudit report`` command that reruns an audit (or one property) identically;
    ``calling`` gives the layout options (the rest of it is ignored)."""
    argv = ["lossaudit", "report"]
    if target:
        argv.append(target)
    options = calling or LossOptions()
    if not options.scales:  # a multi-scale loss keeps every scale's grid and anchors
        options = dataclasses.replace(options, spec=spec, codec=codec)
    options = dataclasses.replace(
        options, components=dict(components or {}), reduction=settings.reduction
    )
    argv += options.to_flags()
    if only:
        argv += ["--only", only]
    argv += ["--profile", settings.profile]
    if not settings.derandomize and settings.seed is not None:
        argv += ["--seed", str(settings.seed)]
    base = PROFILES.get(settings.profile)
    if base is not None and settings.max_examples != base.max_examples:
        argv += ["--max-examples", str(settings.max_examples)]
    if base is not None and settings.time_limit != base.time_limit:
        argv += ["--time-limit", f"{settings.time_limit:g}"]
    if not settings.shrink:
        argv.append("--no-shrink")
    elif settings.full_shrink and not (base is not None and base.full_shrink):
        argv.append("--full-shrink")
    return shlex.join(argv)


def _message(outcome: Outcome) -> str:
    head = outcome.observed or outcome.info or outcome.status
    if outcome.cells:
        head += f" [{len(outcome.cells)} / {outcome.of} {outcome.of_what}]"
    return head


@dataclasses.dataclass(frozen=True)
class _Verdict:
    """What Hypothesis found for one property: the status, the outcome behind it (a failure's
    or warning's, or a pass's first), the values drawn and cases evaluated for a failure or an
    error, and the loss's error message."""

    status: Status
    outcome: Outcome | None = None
    drawn: Any = None
    cases: tuple[Case, ...] = ()
    error: str = ""


class _ShrinkSpent(BaseException):
    """Raised inside Hypothesis's shrink phase once its budget is spent. A BaseException, so
    Hypothesis does not take it for a failure of the property and lets it out unchanged."""


class _ShrinkBudget:
    """When to stop minimising a counterexample (see :func:`_run_property`).

    Shrinking replaces the examples Hypothesis would have run had the loss passed, and is
    bounded by them twice over: by count, at most ``max_examples`` shrink attempts (each
    attempt runs the property once, like an example, so this does not grow with the grid and
    keeps a derandomized report reproducible), and by time, at most as long as ``max_examples``
    examples took at the pace seen before the failure (a safety net for attempts that cost more
    than examples did). ``Settings.full_shrink`` lifts both.
    """

    def __init__(self, settings: Settings):
        self.limited = settings.shrink and not settings.full_shrink
        self.max_attempts = settings.max_examples
        self.started = time.perf_counter()
        self.examples = 0
        self.shrink_started: float | None = None
        self.deadline = 0.0
        self.attempts = 0
        self.spent = False

    def before(self) -> None:
        """Called before each run of the property; raises once the budget is spent."""
        if self.shrink_started is None:
            self.examples += 1
            return
        self.attempts += 1
        if self.limited and (
            self.attempts > self.max_attempts or time.perf_counter() > self.deadline
        ):
            self.spent = True
            raise _ShrinkSpent

    def failed(self) -> None:
        """Called when the property fails or errors: the first failure starts shrinking."""
        if self.shrink_started is not None:
            return
        now = time.perf_counter()
        pace = (now - self.started) / max(self.examples, 1)
        self.shrink_started = now
        self.deadline = now + self.max_attempts * pace

    def note(self) -> str:
        """What the report says about a counterexample the budget cut short."""
        if not self.spent:
            return ""
        seconds = time.perf_counter() - (self.shrink_started or self.started)
        why = (
            f"its budget of {self.max_attempts} attempts"
            if self.attempts > self.max_attempts
            else f"the time its {self.max_attempts} examples would take"
        )
        return (
            f"counterexample not fully minimised: shrinking stopped after {self.attempts - 1} "
            f"attempts ({seconds:.1f}s), {why}; add --full-shrink to the reproduce command "
            "for the minimal one"
        )


def _run_property(prop: Property, ctx: Context, settings: Settings, seed: int | None) -> _Verdict:
    """Run one property under Hypothesis, shrinking a failure within a :class:`_ShrinkBudget`."""
    import hypothesis
    from hypothesis.errors import Flaky

    strategy = prop.draws(ctx, prop.component)
    seen: dict[str, Outcome] = {}
    budget = _ShrinkBudget(settings)
    #: The smallest failure so far (the shrinker only tries candidates smaller than its best).
    last: list[_Falsified | _Errored] = []

    def check(drawn: Any) -> None:
        ctx.examples += 1
        ctx.seen.clear()
        try:
            outcome = prop.check(ctx, prop.component, drawn)
        except (LossError, NonFinite) as exc:
            raise _Errored(str(exc), drawn) from None
        if outcome.status is Status.PASS:
            seen.setdefault("pass", outcome)
            return
        raise _Falsified(outcome, drawn, list(ctx.seen))

    # Kept apart from ``check``, whose source must not change: a derandomized run draws its
    # examples from a digest of that source, so editing it would change every ci verdict's
    # examples. ``functools.wraps`` lets Hypothesis read ``check``'s source through this.
    @functools.wraps(check)
    def budgeted(drawn: Any) -> None:
        budget.before()
        try:
            check(drawn)
        except (_Falsified, _Errored) as failure:
            budget.failed()
            last[:] = [failure]
            raise

    test = hypothesis.given(strategy)(budgeted)
    test = settings.hypothesis_settings()(test)
    if seed is not None and not settings.derandomize:
        test = hypothesis.seed(seed)(test)
    try:
        try:
            test()
        except _ShrinkSpent:
            raise last[0] from None
    except _Falsified as f:
        outcome = f.outcome
        note = budget.note()
        if note:
            outcome = dataclasses.replace(
                outcome, info=f"{outcome.info}; {note}" if outcome.info else note
            )
        return _Verdict(outcome.status, outcome, f.drawn, tuple(f.cases))
    except _Errored as e:
        note = budget.note()
        return _Verdict(
            Status.ERROR, drawn=e.drawn, error=f"{e.message} ({note})" if note else e.message
        )
    except Flaky as exc:
        return _Verdict(
            Status.ERROR,
            error=(
                "the loss gave different verdicts on the same example when Hypothesis replayed it: "
                f"it is not deterministic ({describe_exception(exc, limit=200)})"
            ),
        )
    return _Verdict(Status.PASS, seen.get("pass"))


def _plain(
    prop: Property,
    status: Status,
    message: str,
    reproduce: str = "",
    examples: int = 0,
    seconds: float = 0.0,
) -> Result:
    """A result that is only a status and a message (skips, hangs, lossaudit's own errors)."""
    return Result(
        property=prop.name,
        component=prop.component,
        status=status,
        message=message,
        reproduce=reproduce,
        bugs=list(prop.bugs),
        examples=examples,
        seconds=round(seconds, 3),
    )


def _result(
    prop: Property,
    verdict: _Verdict,
    reproduce: str,
    examples: int,
    seconds: float,
    codec: Codec | None = None,
) -> Result:
    outcome = verdict.outcome
    if verdict.status is Status.ERROR:
        errored = _plain(prop, Status.ERROR, verdict.error, reproduce, examples, seconds)
        return dataclasses.replace(errored, counterexample=counterexample(verdict.drawn, None))
    if verdict.status is Status.PASS:
        passed = _plain(prop, Status.PASS, prop.summary, "", examples, seconds)
        return dataclasses.replace(passed, info=outcome.info if outcome else "")
    assert outcome is not None
    return Result(
        property=prop.name,
        component=prop.component,
        status=verdict.status,
        message=_message(outcome),
        expected=outcome.expected,
        observed=outcome.observed,
        cells=[list(c) for c in outcome.cells[:MAX_CELLS]],
        cells_count=len(outcome.cells),
        cells_of=outcome.of,
        cells_what=outcome.of_what,
        counterexample=counterexample(verdict.drawn, outcome, list(verdict.cases), codec),
        reproduce=reproduce,
        info=outcome.info,
        bugs=list(prop.bugs),
        examples=examples,
        seconds=round(seconds, 3),
        cause=str(getattr(outcome.cause, "kind", "") or ""),
    )


def _probe(adapter: Adapter, spec: GridSpec, codec: Codec) -> tuple[Any, str | None]:
    """One evaluation to learn which components the loss reports (and to trace it once)."""
    obj = Obj(0, 0, 0, 0, 0.5, 0.5, 0.3, 0.3, 0)
    scene = Scene(spec, (obj,))
    try:
        adapter.evaluate(perfect(scene, codec))
        return adapter.evaluate(noisy(scene, codec, seed=0)), None
    except LossError as exc:
        return None, str(exc)


def _measure(ctx: Context, worker: Worker) -> None:
    """What the properties' applicability rests on, measured once before they run (the
    one-class rule, :func:`~lossaudit.properties._helpers.measure_one_class`). A loss that
    fails or hangs here keeps the codec's rule; its properties then report the failure."""
    try:
        worker.run(lambda: measure_one_class(ctx), ctx.settings.time_limit, "a probe")
    except Exception:
        pass
    ctx.seen.clear()


def _load_loss(loss: Any) -> Any:
    if isinstance(loss, type):
        return loss()
    return loss


def _target_name(loss: Any) -> str:
    fn = (
        loss
        if not hasattr(loss, "call") or callable(getattr(loss, "__wrapped__", None))
        else type(loss)
    )
    module = getattr(fn, "__module__", None) or type(loss).__module__
    name = getattr(fn, "__qualname__", None) or type(loss).__qualname__
    return f"{module}:{name}"


def _checked(
    spec: GridSpec | None, codec: Codec | None, settings: Settings | None
) -> tuple[GridSpec, Codec, Settings]:
    """The arguments checked, defaulted, and the settings given a seed when they need one."""
    spec = GridSpec() if spec is None else spec
    codec = Codec() if codec is None else codec
    for name, value, kind, example in (
        ("spec", spec, GridSpec, "GridSpec(batch=2, H=13, W=13, anchors=3, classes=4)"),
        ("codec", codec, Codec, 'Codec(xy="sigmoid", wh="exp", obj="sigmoid", cls="softmax")'),
        ("settings", settings, (Settings, type(None)), 'lossaudit.settings.resolve("ci")'),
    ):
        if not isinstance(value, kind):
            raise invalid(
                f"audit() got a {type(value).__name__} for {name}",
                f"a {kind.__name__ if isinstance(kind, type) else 'Settings'}",
                f"{name}={value!r}",
                f"Pass e.g. {name}={example}.",
                cls=InvalidArgument,
            )
    settings = settings or resolve()
    if not settings.derandomize and settings.seed is None:
        # A private generator: the caller's ``random`` state is theirs, not the audit's.
        settings = settings.replace(seed=random.SystemRandom().randrange(2**31))
    return spec, codec, settings


def report_header(target: str, spec: GridSpec, codec: Codec, settings: Settings) -> dict[str, Any]:
    """The report's fields that say what was audited and how (also for the report the
    supervisor writes when it had to stop an audit)."""
    return dict(
        target=target,
        spec=asdict(spec),
        codec={
            "xy": codec.xy,
            "wh": codec.wh,
            "obj": codec.obj,
            "cls": codec.cls,
            "anchor_sizes": [list(p) for p in codec.anchor_sizes],
        },
        settings={
            "profile": settings.profile,
            "max_examples": settings.max_examples,
            "derandomize": settings.derandomize,
            "seed": settings.seed,
            "time_limit": settings.time_limit,
            "reduction": settings.reduction,
            "shrink": settings.shrink,
        },
    )


def _run_all(
    selected: tuple[Property, ...],
    ctx: Context,
    target: str,
    components: Mapping[str, str],
    worker: Worker,
    progress: Progress | None,
    calling: LossOptions,
) -> tuple[list[Result], str | None]:
    """Every selected property; ``(results in component order, property the loss hung in)``.
    After a hang the rest are not run (the worker thread is still busy with it).

    They run one behaviour at a time (every component's ``finite``, then every component's
    ``non_negative``..., the total's last): the components of one behaviour draw the same examples, so the
    second component on finds the cases' gradients still kept, where a component at a time
    would have let them go at large grids."""
    spec, codec, settings = ctx.spec, ctx.codec, ctx.settings
    reported = sorted(selected, key=lambda p: order_key(p.component))
    rank: dict[str, int] = {}
    for prop in selected:
        rank.setdefault(prop.behaviour, len(rank))
    # The total's properties stay last, as in the report: a stateful loss meets them after
    # every other call, and a hang there leaves the components' results in place.
    ordered = sorted(
        selected,
        key=lambda p: (p.component == "total", rank[p.behaviour], order_key(p.component)),
    )
    results: dict[str, Result] = {}
    hung_in: str | None = None
    for index, prop in enumerate(ordered):
        if progress is not None:
            progress(index, len(ordered), prop.name)
        reason = prop.skip_reason(ctx)
        if reason is not None:
            results[prop.name] = _plain(prop, Status.SKIP, reason)
            continue
        reproduce = reproduce_command(
            target, spec, codec, settings, only=prop.name, components=components, calling=calling
        )
        if hung_in is not None:
            results[prop.name] = _plain(
                prop, Status.ERROR, f"not run: the loss hung in {hung_in}", reproduce
            )
            continue
        results[prop.name] = _run_with_limit(prop, ctx, settings, reproduce, worker)
        if results[prop.name].hung:
            hung_in = prop.name
    return [results[p.name] for p in reported], hung_in


def _stats(
    examples: int, calls: int, started: float, tf_seconds: float, probe_seconds: float
) -> dict[str, Any]:
    elapsed = time.perf_counter() - started
    return {
        "examples": examples,
        "loss_evaluations": calls,
        "seconds": round(elapsed, 3),
        "seconds_tensorflow_import": round(tf_seconds, 3),
        "seconds_first_trace": round(probe_seconds, 3),
        "seconds_properties": round(elapsed - tf_seconds - probe_seconds, 3),
    }


def _import_tensorflow_timed() -> float:
    """Seconds it took to import TensorFlow now (0 when it already was)."""
    if "tensorflow" in sys.modules:
        return 0.0
    started = time.perf_counter()
    import_tensorflow()
    return time.perf_counter() - started


def _hung_first_call(settings: Settings) -> str:
    return (
        f"the first call did not finish within {settings.time_limit:g}s: the loss hangs or is "
        "very slow"
    )


_UNITS = {"image": "image fractions", "grid": "grid cells", "pixels": "pixels"}


def _notes(adapter: Adapter, probe: Any | None) -> tuple[str, ...]:
    """What the report should say about how the loss was run and read."""
    notes = []
    layout = adapter.layout
    if layout.name != "canonical":
        frame = adapter.frame
        anchors = ", ".join(
            f"{w:.4g}x{h:.4g}" for w, h in frame.anchors(layout.anchor_unit).astype(float)
        )
        scale = f"scale {frame.scale}, " if len(frame.scales) > 1 else ""
        notes.append(
            f"called through layout {layout.name!r} ({scale}input {frame.input_size[1]}x"
            f"{frame.input_size[0]} px; anchors in {_UNITS[layout.anchor_unit]}: {anchors})"
        )
    notes += legacy_notes(adapter.loss)
    if adapter.graph_error:
        notes.append(
            f"the loss could not be traced with tf.function and ran eagerly: {adapter.graph_error}"
        )
    if adapter.unmapped:
        notes.append(
            "reported values not audited (no role matched; map them with --component NAME=ROLE): "
            + ", ".join(sorted(adapter.unmapped))
        )
    if probe is not None and not probe.total_given:
        notes.append("the loss gives no total: lossaudit sums the reported components")
    if probe is not None:
        notes += _unreported(probe.roles)
    return tuple(notes)


def _unreported(roles: tuple[str, ...]) -> list[str]:
    """A note naming the components the loss never reported, so never audited on their own
    (``confidence`` stands for objects and no_objects together)."""
    covered = set(roles) | ({"objects", "no_objects"} if "confidence" in roles else set())
    missing = [r for r in BASE_ROLES if r not in covered]
    if not missing:
        return []
    reported = ", ".join(r for r in roles if r != "total") or "only its total"
    return [
        f"components never audited, because the loss does not report them: {', '.join(missing)} "
        f"(it reports {reported}; return each term in a mapping, or map the names it uses with "
        "--component NAME=ROLE)"
    ]


def audit(
    loss: Any,
    spec: GridSpec | None = None,
    codec: Codec | None = None,
    *,
    settings: Settings | None = None,
    components: Mapping[str, str] | None = None,
    only: Iterable[str] | None = None,
    target: str | None = None,
    progress: Progress | None = None,
    analyse_loss: bool | None = None,
    layout: Any = None,
    input_size: Any = None,
    loss_kwargs: Mapping[str, Any] | None = None,
    component_names: Any = None,
    scales: Any = None,
    only_scale: int | None = None,
    degenerate_boxes: bool = False,
    factory: bool = False,
) -> Report:
    """Audit ``loss`` component by component and return a :class:`~lossaudit.report.Report`.

    Args:
        loss: ``loss(y_true, y_pred)`` on tensors of shape ``(batch, H, W, anchors, 5 + C)``,
            a Keras ``Loss`` instance, or a ``Loss`` class with a no-argument constructor.
        spec: the grid to generate (default ``GridSpec()``: batch 2, 3x4 grid, 2 anchors, 1 class).
        codec: the loss's activations (default ``Codec()``: sigmoid xy, exp wh, sigmoid obj,
            softmax classes, anchors 1.0).
        settings: search effort and reproducibility (default: the ``ci`` profile under CI,
            else ``dev``).
        components: explicit ``{reported name: role}`` mapping, overriding the name heuristic.
        only: property names to run (default: all that apply).
        target: how to name the loss in reproduce commands (``file.py:name``).
        progress: called as ``progress(index, total, property_name)`` before each property.
        analyse_loss: also measure response curves, the gradient view, the balance table and
            the training curves (:mod:`lossaudit.analysis`) into ``Report.analysis``; by default
            only for a full audit (no ``only``), since a few seconds of training go with it.
        layout: how to call the loss: a built-in layout's name (``"yad2k"``), a
            ``module:name`` reference or a :class:`~lossaudit.layouts.Layout` (default
            canonical: ``loss(y_true, y_pred)``). ``codec.anchor_sizes`` stay image fractions;
            the layout hands the loss its anchors in its own unit.
        input_size: the network input in pixels, ``H`` or ``(H, W)`` (default 32 per cell).
        loss_kwargs: extra keyword arguments for the loss.
        component_names: names of the values of a tuple return, in order.
        scales: every grid of a multi-scale loss (``[13, 26, 52]``), in the loss's order;
            ``spec``'s grid is then ignored, ``spec.anchors`` is the count per scale and
            ``codec.anchor_sizes`` lists every scale's anchors. Each scale is audited in turn.
        only_scale: audit only this scale (its index in ``scales``).
        factory: ``loss`` is a factory that makes the loss: it is called with the keyword
            arguments its signature names among ``anchors`` (in the layout's unit), ``classes``,
            ``num_classes``, ``grid``, ``scales`` and ``input_size``, plus ``loss_kwargs``, and
            the loss it returns is audited (made again for every grid the audit uses).
        degenerate_boxes: also run the opt-in scenario of degenerate truth boxes (w or h of 0
            or 1e-7, boxes on the image border): ``total.finite_on_degenerate_boxes``. Off, that
            property is left out (skipped, saying how to switch it on, when ``only`` names it).

    Example:
        >>> from lossaudit import audit, GridSpec, Codec
        >>> report = audit(my_loss, GridSpec(batch=2, H=3, W=4, anchors=2, classes=3))  # doctest: +SKIP
        >>> report.verdicts()  # doctest: +SKIP
        {'coordinates': 'pass', 'objects': 'pass', 'no_objects': 'pass', 'classification': 'fail', ...}
    """
    started = time.perf_counter()
    if codec is None and layout is not None:  # the convention's activations
        codec = Codec(**get_layout(layout).codec)  # type: ignore[arg-type]
    spec, codec, settings = _checked(spec, codec, settings)
    only = [only] if isinstance(only, str) else only
    analyse_loss = not only if analyse_loss is None else analyse_loss
    components = dict(components or {})
    calling = LossOptions.from_keywords(
        {
            "layout": layout,
            "input_size": input_size,
            "loss_kwargs": loss_kwargs or None,
            "component_names": component_names or None,
            "scales": scales or None,
            "only_scale": only_scale,
            "degenerate_boxes": degenerate_boxes,
            "factory": factory,
        },
        where="audit()",
    )
    calling = dataclasses.replace(calling, spec=spec, codec=codec, components=components)
    selected = _opted(props.select(only=only), calling, named=bool(only))
    loss = loss if calling.factory else _load_loss(loss)
    target = target or _target_name(loss)
    frames = calling.scale_frames()
    if not calling.scales:
        codec.check_against(spec)
        return _audit_frame(
            loss, frames[0], calling, settings, selected, target, progress, analyse_loss, started
        )
    reports = []
    for frame in frames:
        frame.codec.check_against(frame.spec)
        one = dataclasses.replace(calling, only_scale=frame.scale)
        reports.append(
            _audit_frame(
                loss,
                frame,
                one,
                settings,
                selected,
                target,
                progress,
                analyse_loss,
                time.perf_counter(),
            )
        )
    return _merged(reports, frames, started)


def _opted(
    selected: tuple[Property, ...], options: LossOptions, *, named: bool
) -> tuple[Property, ...]:
    """``selected`` without the opt-in properties whose option is off, unless ``only`` named
    them (they are then skipped with a reason that says how to switch them on). Off, an
    opt-in scenario leaves the report exactly as it was without it."""
    if named:
        return selected
    return tuple(p for p in selected if not p.opt_in or p.opt_in in options.opt_in)


def _audit_frame(
    loss: Any,
    frame: Frame,
    calling: LossOptions,
    settings: Settings,
    selected: tuple[Property, ...],
    target: str,
    progress: Progress | None,
    analyse_loss: bool,
    started: float,
) -> Report:
    """The audit of one scale (the whole audit of a single-scale loss)."""
    spec, codec, components = frame.spec, frame.codec, calling.components
    adapter = Adapter.calling(loss, calling, frame)
    tf_seconds = _import_tensorflow_timed()
    probe_started = time.perf_counter()
    worker = Worker()
    finished, probed = worker.run(
        lambda: _probe(adapter, spec, codec), settings.time_limit, "the first call"
    )
    probe, probe_error = probed if finished else (None, _hung_first_call(settings))
    probe_seconds = time.perf_counter() - probe_started
    base = report_header(target, spec, codec, settings)
    if probe is None:
        hint = ""
        if finished and spec.H != spec.W:
            hint = _square_hint(loss, frame, calling, worker, settings)
        worker.close(hung=not finished)
        message = f"the loss cannot be evaluated: {probe_error}{hint}"
        reproduce = reproduce_command(
            target, spec, codec, settings, components=components, calling=calling
        )
        result = Result("total.runs", "total", Status.ERROR, message, reproduce=reproduce)
        stats = {"seconds": round(time.perf_counter() - started, 3), "examples": 0}
        stats["loss_evaluations"] = adapter.calls
        return Report(
            **base,
            results=(dataclasses.replace(result, hung=not finished),),
            notes=_notes(adapter, None),
            stats=stats,
        )
    ctx = Context(
        adapter, spec, codec, settings, probe.roles, probe.total_given, opt_in=calling.opt_in
    )
    _measure(ctx, worker)
    results, hung_in = _run_all(selected, ctx, target, components, worker, progress, calling)
    analysis, hung = Analysis(), False
    if hung_in is None and analyse_loss:
        if progress is not None:
            progress(len(selected), len(selected), "analysis (curves, gradients, balance)")
        analysis, hung = _analysis(ctx, worker, settings.time_limit)
    worker.close(hung=hung or hung_in is not None)
    stats = _stats(ctx.examples, adapter.calls, started, tf_seconds, probe_seconds)
    return Report(
        **base,
        results=tuple(results),
        components={r: list(probe.names.get(r, ())) for r in ctx.roles},
        notes=_notes(adapter, probe),
        stats=stats,
        analysis=analysis,
    )


def _square_hint(
    loss: Any, frame: Frame, calling: LossOptions, worker: Worker, settings: Settings
) -> str:
    """When a loss fails on a non-square grid, whether it runs on a square one: a loss that
    assumes square grids (BUG-CLASSES #16) is told so instead of left with a shape error."""
    side = max(frame.spec.H, frame.spec.W)
    square = frame.at((frame.spec.batch, side, side, frame.spec.anchors, frame.spec.channels))
    adapter = Adapter.calling(loss, calling, square)
    try:
        finished, (probe, _) = worker.run(
            lambda: _probe(adapter, square.spec, square.codec),
            settings.time_limit,
            "the first call on a square grid",
        )
    except Exception:
        return ""
    if not finished or probe is None:
        return ""
    return (
        f". It runs on a square {side}x{side} grid: the loss assumes square grids (rows and "
        f"columns confused, BUG-CLASSES #16). Audit the rest with --grid {side}, and make the "
        "loss take H and W separately"
    )


def _merged(reports: list[Report], frames: list[Frame], started: float) -> Report:
    """One report for a multi-scale loss: per property the worst verdict over the scales,
    a failure's message saying which scale it was found on."""
    chosen: dict[str, Result] = {}
    order: list[str] = []
    for report, frame in zip(reports, frames, strict=True):
        h, w = frame.scales[frame.scale]
        tag = f"scale {frame.scale} ({h}x{w})"
        for result in report.results:
            if result.status not in (Status.PASS, Status.SKIP):
                result = dataclasses.replace(result, message=f"{tag}: {result.message}")
            current = chosen.get(result.property)
            if current is None:
                order.append(result.property)
            if current is None or result.status.rank < current.status.rank:
                chosen[result.property] = result
    components: dict[str, list[str]] = {}
    for report in reports:
        for role, names in report.components.items():
            components.setdefault(role, [])
            components[role] += [n for n in names if n not in components[role]]
    grids = ", ".join(f"{h}x{w}" for h, w in frames[0].scales)
    notes = [
        f"audited scale by scale ({grids}): each scale's objects on its own grid, "
        "the other scales empty; a verdict is the worst over the scales"
    ]
    for report in reports:
        notes += [n for n in report.notes if n not in notes]
    stats = dict(reports[0].stats)
    for key in ("examples", "loss_evaluations"):
        stats[key] = sum(int(r.stats.get(key, 0)) for r in reports)
    stats["seconds"] = round(time.perf_counter() - started, 3)
    first = reports[0]
    return dataclasses.replace(
        first,
        results=tuple(chosen[name] for name in order),
        components=components,
        notes=tuple(notes),
        stats=stats,
    )


def _analysis(ctx: Context, worker: Worker, limit: float) -> tuple[Analysis, bool]:
    """Curves, gradient view, balance, and the training runs when a property made them;
    ``(analysis, hung)``."""
    from lossaudit.analysis import analyse

    try:
        finished, out = worker.run(lambda: analyse(ctx), limit, "the analysis")
    except Exception as exc:  # a bug in lossaudit: the verdicts stand without the pictures
        error = f"internal error in lossaudit's analysis: {describe_exception(exc)}"
        return Analysis(error=error), False
    if not finished:
        return Analysis(error=f"did not finish within {limit:g}s"), True
    return out, False


def _run_with_limit(
    prop: Property, ctx: Context, settings: Settings, reproduce: str, worker: Worker
) -> Result:
    """Run one property on the worker, giving up after ``settings.time_limit`` seconds."""
    examples_before = ctx.examples
    started = time.perf_counter()
    try:
        finished, out = worker.run(
            lambda: _run_property(prop, ctx, settings, settings.seed),
            settings.time_limit,
            prop.name,
        )
    except Exception as exc:  # a bug in lossaudit or Hypothesis: report, never crash
        message = (
            f"internal error in lossaudit while checking this property: {describe_exception(exc)}"
        )
        return _plain(
            prop,
            Status.ERROR,
            message,
            reproduce,
            ctx.examples - examples_before,
            time.perf_counter() - started,
        )
    seconds = time.perf_counter() - started
    examples = ctx.examples - examples_before
    if not finished:
        message = (
            f"did not finish within {settings.time_limit:g}s: the loss hangs or is very slow "
            "(raise the limit with --time-limit or Settings(time_limit=...))"
        )
        return dataclasses.replace(
            _plain(prop, Status.ERROR, message, reproduce, examples, seconds), hung=True
        )
    try:
        return _result(prop, out, reproduce, examples, seconds, ctx.codec)
    except Exception:  # drawing the predicted boxes failed: keep the verdict without them
        return _result(prop, out, reproduce, examples, seconds)
