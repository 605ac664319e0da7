"""Runs the properties against one loss with Hypothesis and collects a :class:`Report`.

The audit never prints and never crashes: a property the loss violates is a ``fail``, a loss
that raises, hangs or returns something unusable is an ``error`` carrying the loss's own
message, and a bug inside lossaudit itself is an ``error`` that says so.
"""

from __future__ import annotations

import dataclasses
import random
import shlex
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict
from typing import Any

from lossaudit import properties as props
from lossaudit.adapter import Adapter, describe_exception, import_tensorflow
from lossaudit.errors import InvalidArgument, LossError, invalid
from lossaudit.properties.registry import Context, NonFinite, Outcome, Property
from lossaudit.report import COMPONENT_ORDER, Counterexample, Report, Result
from lossaudit.scenarios import Case, noisy, perfect
from lossaudit.settings import PROFILES, Settings, resolve
from lossaudit.spec import Codec, GridSpec, Obj, Scene

__all__ = ["audit", "reproduce_command"]

Progress = Callable[[int, int, str], None]
#: Offending cells kept per result (the count is kept in full).
MAX_CELLS = 20


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


def _spec_flags(spec: GridSpec, codec: Codec, components: Mapping[str, str]) -> list[str]:
    """CLI flags that rebuild ``spec``, ``codec`` and the component mapping (non-defaults only)."""
    d_spec, d_codec = GridSpec(), Codec()
    flags: list[str] = []
    if (spec.H, spec.W) != (d_spec.H, d_spec.W):
        flags += ["--grid", f"{spec.H}x{spec.W}" if spec.H != spec.W else str(spec.H)]
    for name in ("anchors", "classes", "batch"):
        if getattr(spec, name) != getattr(d_spec, name):
            flags += [f"--{name}", str(getattr(spec, name))]
    for name in ("xy", "wh", "obj", "cls"):
        if getattr(codec, name) != getattr(d_codec, name):
            flags += [f"--{name}", getattr(codec, name)]
    if codec.anchor_sizes:
        flags += ["--anchor-sizes", *(f"{w!r},{h!r}" for w, h in codec.anchor_sizes)]
    for name, role in components.items():
        flags += ["--component", f"{name}={role}"]
    return flags


def reproduce_command(
    target: str,
    spec: GridSpec,
    codec: Codec,
    settings: Settings,
    *,
    only: str | None = None,
    components: Mapping[str, str] | None = None,
) -> str:
    """The ``lossaudit report`` command that reruns an audit (or one property) identically."""
    argv = ["lossaudit", "report"]
    if target:
        argv.append(target)
    argv += _spec_flags(spec, codec, components or {})
    if settings.reduction != "auto":
        argv += ["--reduction", settings.reduction]
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
    return shlex.join(argv)


def _scene_code(scene: Scene) -> str:
    inner = ", ".join(repr(o) for o in scene.objects)
    return f"spec  = {scene.spec!r}\nscene = [{inner}]"


def _drawn_case(cases: list[Case], scene: Scene, said: str) -> Case | None:
    """The case to draw for a failure: the one the verdict names (its label appears in what
    the property observed), else the last evaluated that is not the perfect prediction (the
    perturbed case of a before/after pair, the case a finiteness check stopped on)."""
    mine = [c for c in cases if c.scene == scene]
    named = [c for c in mine if c.label != "perfect" and c.label in said]
    if named:
        return max(named, key=lambda c: len(c.label))
    for case in reversed(mine):
        if case.label != "perfect":
            return case
    return mine[0] if mine else None


def _predicted(case: Case, codec: Codec, cells: Iterable[Iterable[int]]) -> list[dict[str, Any]]:
    """Decoded predicted boxes of ``case`` at its object anchors and at the offending cells."""
    decoded = codec.decode(case.y_pred, case.spec)
    objects = {o.slot for o in case.scene.objects}
    slots = list(objects) + [tuple(c) for c in cells if tuple(c) not in objects]
    out = []
    for slot in sorted(slots)[: MAX_CELLS + len(objects)]:
        b, i, j, a = (int(v) for v in slot)
        xy, wh = decoded["xy"][b, i, j, a], decoded["wh"][b, i, j, a]
        out.append(
            {
                "b": b,
                "i": i,
                "j": j,
                "a": a,
                "x": float(xy[0]),
                "y": float(xy[1]),
                "w": float(wh[0]),
                "h": float(wh[1]),
                "obj": float(decoded["obj"][b, i, j, a]),
                "kind": "object" if slot in objects else "offending",
            }
        )
    return out


def _counterexample(
    drawn: Any,
    outcome: Outcome | None,
    cases: list[Case] | None = None,
    codec: Codec | None = None,
) -> Counterexample | None:
    if not isinstance(drawn, dict):
        return None
    main = drawn.get("scene")
    if not isinstance(main, Scene):
        return None
    params: dict[str, Any] = {}
    for key, value in drawn.items():
        if key == "scene":
            continue
        params[key] = [repr(o) for o in value.objects] if isinstance(value, Scene) else value
    said = f"{outcome.observed} {outcome.expected}" if outcome else ""
    case = _drawn_case(cases or [], main, said) if codec is not None else None
    predicted = (
        _predicted(case, codec, outcome.cells if outcome else ())
        if case is not None and codec is not None
        else []
    )
    return Counterexample(
        spec=asdict(main.spec),
        scene=[asdict(o) for o in main.objects],
        code=_scene_code(main),
        case=case.label if case is not None else "",
        params=params,
        observed=dict(outcome.values) if outcome else {},
        predicted=predicted,
    )


def _message(outcome: Outcome) -> str:
    head = outcome.observed or outcome.info or outcome.status
    if outcome.cells:
        head += f" [{len(outcome.cells)} / {outcome.of} {outcome.of_what}]"
    return head


def _run_property(
    prop: Property, ctx: Context, settings: Settings, seed: int | None
) -> tuple[str, Outcome | None, Any, str]:
    """Run one property under Hypothesis. Returns ``(status, outcome, drawn, error_message)``."""
    import hypothesis
    from hypothesis.errors import Flaky

    strategy = prop.draws(ctx, prop.component)
    seen: dict[str, Outcome] = {}

    def check(drawn: Any) -> None:
        ctx.examples += 1
        ctx.seen.clear()
        try:
            outcome = prop.check(ctx, prop.component, drawn)
        except (LossError, NonFinite) as exc:
            raise _Errored(str(exc), drawn) from None
        if outcome.status == "pass":
            seen.setdefault("pass", outcome)
            return
        raise _Falsified(outcome, drawn, list(ctx.seen))

    test = hypothesis.given(strategy)(check)
    test = settings.hypothesis_settings()(test)
    if seed is not None and not settings.derandomize:
        test = hypothesis.seed(seed)(test)
    try:
        test()
    except _Falsified as f:
        return f.outcome.status, f.outcome, (f.drawn, f.cases), ""
    except _Errored as e:
        return "error", None, e.drawn, e.message
    except Flaky as exc:
        return (
            "error",
            None,
            None,
            (
                "the loss gave different verdicts on the same example when Hypothesis replayed it: "
                f"it is not deterministic ({describe_exception(exc, limit=200)})"
            ),
        )
    return "pass", seen.get("pass"), None, ""


def _plain(
    prop: Property,
    status: str,
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
    status: str,
    outcome: Outcome | None,
    drawn: Any,
    error: str,
    reproduce: str,
    examples: int,
    seconds: float,
    codec: Codec | None = None,
) -> Result:
    cases: list[Case] = []
    if isinstance(drawn, tuple):
        drawn, cases = drawn
    if status == "error":
        message = error
        errored = _plain(prop, "error", message, reproduce, examples, seconds)
        return dataclasses.replace(errored, counterexample=_counterexample(drawn, None))
    if status == "pass":
        passed = _plain(prop, "pass", prop.summary, "", examples, seconds)
        return dataclasses.replace(passed, info=outcome.info if outcome else "")
    assert outcome is not None
    return Result(
        property=prop.name,
        component=prop.component,
        status=status,
        message=_message(outcome),
        expected=outcome.expected,
        observed=outcome.observed,
        cells=[list(c) for c in outcome.cells[:MAX_CELLS]],
        cells_count=len(outcome.cells),
        cells_of=outcome.of,
        cells_what=outcome.of_what,
        counterexample=_counterexample(drawn, outcome, cases, codec),
        reproduce=reproduce,
        info=outcome.info,
        bugs=list(prop.bugs),
        examples=examples,
        seconds=round(seconds, 3),
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

    Example:
        >>> from lossaudit import audit, GridSpec, Codec
        >>> report = audit(my_loss, GridSpec(batch=2, H=3, W=4, anchors=2, classes=3))  # doctest: +SKIP
        >>> report.verdicts()  # doctest: +SKIP
        {'coordinates': 'pass', 'objects': 'pass', 'no_objects': 'pass', 'classification': 'fail', ...}
    """
    started = time.perf_counter()
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
    if isinstance(only, str):
        only = [only]
    if analyse_loss is None:
        analyse_loss = not only
    codec.check_against(spec)
    settings = settings or resolve()
    if not settings.derandomize and settings.seed is None:
        settings = settings.replace(seed=random.randrange(2**31))
    components = dict(components or {})
    selected = props.select(only=only)
    loss = _load_loss(loss)
    target = target or _target_name(loss)

    tf_started = time.perf_counter()
    tf_loaded = "tensorflow" in sys.modules
    adapter = Adapter(loss, components=components)
    import_tensorflow()
    tf_seconds = 0.0 if tf_loaded else time.perf_counter() - tf_started

    probe_started = time.perf_counter()
    worker = _Worker()
    finished, probed = worker.run(lambda: _probe(adapter, spec, codec), settings.time_limit)
    probe, probe_error = (
        probed
        if finished
        else (
            None,
            f"the first call did not finish within {settings.time_limit:g}s: the loss hangs or is very slow",
        )
    )
    probe_seconds = time.perf_counter() - probe_started

    settings_dict = {
        "profile": settings.profile,
        "max_examples": settings.max_examples,
        "derandomize": settings.derandomize,
        "seed": settings.seed,
        "time_limit": settings.time_limit,
        "reduction": settings.reduction,
        "shrink": settings.shrink,
    }
    base: dict[str, Any] = dict(
        target=target,
        spec=asdict(spec),
        codec={
            "xy": codec.xy,
            "wh": codec.wh,
            "obj": codec.obj,
            "cls": codec.cls,
            "anchor_sizes": [list(p) for p in codec.anchor_sizes],
        },
        settings=settings_dict,
    )
    if probe is None:
        worker.close(hung=not finished)
        result = Result(
            property="total.runs",
            component="total",
            status="error",
            message=f"the loss cannot be evaluated: {probe_error}",
            reproduce=reproduce_command(target, spec, codec, settings, components=components),
        )
        return Report(
            **base,
            results=(result,),
            stats={
                "seconds": round(time.perf_counter() - started, 3),
                "loss_evaluations": adapter.calls,
                "examples": 0,
            },
        )

    ctx = Context(
        adapter=adapter,
        spec=spec,
        codec=codec,
        settings=settings,
        roles=probe.roles,
        total_given=probe.total_given,
    )
    order = {c: k for k, c in enumerate(COMPONENT_ORDER)}
    selected = tuple(sorted(selected, key=lambda p: order.get(p.component, 99)))

    results: list[Result] = []
    hung_in: str | None = None
    for index, prop in enumerate(selected):
        if progress is not None:
            progress(index, len(selected), prop.name)
        reason = prop.skip_reason(ctx)
        if reason is not None:
            results.append(_plain(prop, "skip", reason))
            continue
        reproduce = reproduce_command(
            target, spec, codec, settings, only=prop.name, components=components
        )
        if hung_in is not None:
            results.append(_plain(prop, "error", f"not run: the loss hung in {hung_in}", reproduce))
            continue
        results.append(_run_with_limit(prop, ctx, settings, reproduce, worker))
        if results[-1].message.startswith("did not finish within"):
            hung_in = prop.name
    analysis: dict[str, Any] = {}
    if hung_in is None and analyse_loss:
        if progress is not None:
            progress(len(selected), len(selected), "analysis (curves, gradients, balance)")
        analysis, hung = _analysis(ctx, worker, settings.time_limit)
        if hung:
            hung_in = "the analysis"
    worker.close(hung=hung_in is not None)

    notes = []
    if adapter.graph_error:
        notes.append(
            f"the loss could not be traced with tf.function and ran eagerly: {adapter.graph_error}"
        )
    if adapter.unmapped:
        notes.append(
            "reported values not audited (no role matched; map them with --component NAME=ROLE): "
            + ", ".join(sorted(adapter.unmapped))
        )
    for r in ctx.roles:
        if r == "total" and not probe.total_given:
            notes.append("the loss gives no total: lossaudit sums the reported components")
    elapsed = time.perf_counter() - started
    stats = {
        "examples": ctx.examples,
        "loss_evaluations": adapter.calls,
        "seconds": round(elapsed, 3),
        "seconds_tensorflow_import": round(tf_seconds, 3),
        "seconds_first_trace": round(probe_seconds, 3),
        "seconds_properties": round(elapsed - tf_seconds - probe_seconds, 3),
    }
    return Report(
        **base,
        results=tuple(results),
        components={r: list(probe.names.get(r, ())) for r in ctx.roles},
        notes=tuple(notes),
        stats=stats,
        analysis=analysis,
    )


def _analysis(ctx: Context, worker: _Worker, limit: float) -> tuple[dict[str, Any], bool]:
    """Curves, gradient view, balance, and the training runs when a property made them."""
    from lossaudit.analysis import analyse

    try:
        finished, out = worker.run(lambda: analyse(ctx), limit)
    except Exception as exc:  # a bug in lossaudit: the verdicts stand without the pictures
        return {
            "error": f"internal error in lossaudit's analysis: {describe_exception(exc)}"
        }, False
    if not finished:
        return {"error": f"did not finish within {limit:g}s"}, True
    training = ctx.cache.get("training")
    if training is not None:
        out["training"] = {
            name: {
                "values": {r: [float(v) for v in vals] for r, vals in run.values.items()},
                "error": run.error,
            }
            for name, run in training["runs"].items()
        }
    return out, False


class _Worker:
    """One long-lived daemon worker thread per audit.

    TensorFlow sets up per-thread state on a thread's first call, which costs far more than a
    property's own work, so properties share a thread instead of getting one each. A property
    that overruns its time limit leaves the thread busy; the audit then abandons it, and being
    a daemon it never keeps the process alive at exit.
    """

    def __init__(self) -> None:
        import queue
        import threading

        self._jobs: queue.Queue[Any] = queue.Queue()
        self._thread = threading.Thread(target=self._serve, name="lossaudit-worker", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            fn, box, done = job
            try:
                box["value"] = fn()
            except Exception as exc:
                box["error"] = exc
            done.set()

    def run(self, fn: Callable[[], Any], timeout: float) -> tuple[bool, Any]:
        """``(True, value)``; ``(False, None)`` on timeout. Exceptions from ``fn`` propagate."""
        import threading

        box: dict[str, Any] = {}
        done = threading.Event()
        self._jobs.put((fn, box, done))
        if not done.wait(timeout):
            return False, None
        if "error" in box:
            raise box["error"]
        return True, box["value"]

    def close(self, *, hung: bool) -> None:
        self._jobs.put(None)
        if not hung:
            self._thread.join()


def _run_with_limit(
    prop: Property, ctx: Context, settings: Settings, reproduce: str, worker: _Worker
) -> Result:
    """Run one property on the worker, giving up after ``settings.time_limit`` seconds."""
    examples_before = ctx.examples
    started = time.perf_counter()
    try:
        finished, out = worker.run(
            lambda: _run_property(prop, ctx, settings, settings.seed), settings.time_limit
        )
    except Exception as exc:  # a bug in lossaudit or Hypothesis: report, never crash
        message = (
            f"internal error in lossaudit while checking this property: {describe_exception(exc)}"
        )
        return _plain(
            prop,
            "error",
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
        return _plain(prop, "error", message, reproduce, examples, seconds)
    status, outcome, drawn, error = out
    try:
        return _result(prop, status, outcome, drawn, error, reproduce, examples, seconds, ctx.codec)
    except Exception:  # drawing the predicted boxes failed: keep the verdict without them
        return _result(prop, status, outcome, drawn, error, reproduce, examples, seconds)
