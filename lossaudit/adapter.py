"""Calls the user's loss: the only place lossaudit's core touches TensorFlow.

The adapter turns a loss into numbers the properties can reason about: per-component values,
per-sample values where the loss gives them, and the gradient of every component with respect
to the raw predictions ``(batch, H, W, anchors, 5 + C)``. It

- accepts a plain function ``loss(y_true, y_pred)``, a Keras ``Loss`` instance, or anything
  callable the same way, or a loss with its own calling convention through a layout
  (:mod:`lossaudit.layouts`): the layout encodes the scene into the loss's truth inputs and
  rearranges the canonical predictions inside the traced computation, so gradients are always
  taken with respect to the canonical predictions;
- reads components from a returned mapping, or captures the ones the loss logs with
  ``tf.summary.scalar`` (the seed write-up's style) without changing the loss;
- traces the loss once per input shape under ``tf.function`` (and under XLA on request) and
  falls back to eager execution when tracing fails, keeping the tracing error for the
  ``total.graph_parity`` property;
- turns anything the loss raises into :class:`~lossaudit.errors.LossError` with the loss's own
  message and the line of the user's code it came from.

TensorFlow is imported lazily, inside functions, so ``import lossaudit`` stays cheap.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import xxhash

from lossaudit.calling import (
    as_traced,
    capture_summaries,
    component_tensor,
    describe_exception,
    import_tensorflow,
    own_function,
    reported,
    unwrap_loss,
)
from lossaudit.components import COMPONENTS, base_roles, check_mapping, group
from lossaudit.errors import LossError
from lossaudit.layouts import BUILT_IN, CANONICAL, Frame, Layout
from lossaudit.layouts.base import from_factory
from lossaudit.options import LossOptions
from lossaudit.scenarios import Case
from lossaudit.spec import GridSpec, Scene

__all__ = ["Adapter", "Evaluation", "describe_exception", "import_tensorflow"]

#: Graph ops that write a variable.
_WRITES = frozenset(
    {
        "AssignVariableOp",
        "AssignAddVariableOp",
        "AssignSubVariableOp",
        "ResourceScatterAdd",
        "ResourceScatterSub",
        "ResourceScatterUpdate",
    }
)


@dataclass(frozen=True)
class Evaluation:
    """One loss evaluation on one case.

    ``values[role]`` is the component's scalar (per-sample vectors reduced by their mean, as
    Keras does); ``per_sample[role]`` the ``(batch,)`` vector where the loss gave one;
    ``grads[role]`` the gradient of ``values[role]`` with respect to ``y_pred``, shape
    ``(batch, H, W, anchors, 5 + C)``; ``connected[role]`` False where TensorFlow found no path
    from the predictions to the component at all.
    """

    values: dict[str, float]
    per_sample: dict[str, np.ndarray]
    grads: Mapping[str, np.ndarray]
    connected: dict[str, bool]
    total_given: bool
    names: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def roles(self) -> tuple[str, ...]:
        return tuple(r for r in COMPONENTS if r in self.values)


class _LazyGrads(Mapping[str, np.ndarray]):
    """The gradients of an evaluation whose values were kept but whose gradients were let go
    (they are megabytes at real shapes): computed again on first use, then held."""

    def __init__(self, compute: Callable[[], Mapping[str, np.ndarray]]):
        self._compute: Callable[[], Mapping[str, np.ndarray]] | None = compute
        self._grads: Mapping[str, np.ndarray] = {}

    def _loaded(self) -> Mapping[str, np.ndarray]:
        if self._compute is not None:
            self._grads, self._compute = self._compute(), None
        return self._grads

    def __getitem__(self, role: str) -> np.ndarray:
        return self._loaded()[role]

    def __iter__(self) -> Iterator[str]:
        return iter(self._loaded())

    def __len__(self) -> int:
        return len(self._loaded())


def _keyed(case: Case, mode: str) -> tuple[np.ndarray, tuple[Any, ...]]:
    """The case's predictions as float32 and the key its evaluations are kept under. The
    truth-side inputs are a function of the scene (hashable, a few objects), so only the
    predictions are hashed, with the 128-bit XXH3 (0.1 ms for a 52x52x3x85 batch of 2, where
    sha1 took 3 ms: it ran on every evaluation)."""
    y_pred = np.ascontiguousarray(case.y_pred, dtype=np.float32)
    return y_pred, (mode, case.scene, y_pred.shape, xxhash.xxh3_128_digest(y_pred.data))


def _host_view(tensor: Any) -> np.ndarray:
    """A read-only numpy view of a CPU tensor's buffer (a copy for other devices)."""
    try:
        view = np.asarray(memoryview(tensor))
    except (TypeError, ValueError, BufferError):
        view = tensor.numpy()
    view.flags.writeable = False
    return view


T = TypeVar("T")

#: Evaluations whose values the adapter keeps (a few hundred bytes each).
_VALUES_KEPT = 50_000
#: Results kept by :meth:`Adapter.derived` (small: a few values and bit masks each).
_DERIVED_KEPT = 4096
_MISSING = object()
#: Bytes of gradients the adapter keeps (72 evaluations of a 52x52x3x85 grid, 5 components).
_GRADIENT_BYTES = 2**30


class Adapter:
    """Evaluates one loss on cases, eagerly, under ``tf.function`` or under XLA.

    ``components`` maps names the loss reports to roles (see :func:`role_for_name`), overriding
    the heuristic and the layout's own names. ``layout`` says how to call the loss (default
    canonical) and ``frame`` its frames and units (grid, anchors, input size, extra keywords);
    ``names`` names the values of a tuple return (default: the layout's). With ``factory``,
    ``loss`` is a factory that makes the loss (``--factory``): it is called for each frame the
    audit uses (its grid, anchors, classes; the frame's keywords go to the factory), so a
    transposed scene or another grid gets a loss made for it. Results are cached by input
    bytes, so properties that revisit the same case pay for it once.
    """

    def __init__(
        self,
        loss: Any,
        *,
        components: Mapping[str, str] | None = None,
        layout: Layout | None = None,
        frame: Frame | None = None,
        names: tuple[str, ...] = (),
        cache_size: int = 4096,
        factory: bool = False,
    ):
        self.loss = loss
        self.layout = layout or CANONICAL
        self.frame = frame or Frame(GridSpec())
        self.layout.check_grid(self.frame.spec)
        self.factory = factory
        #: Losses a factory target made, one per frame the audit used.
        self._made: dict[Any, Callable[..., Any]] = {}
        self._factory_keywords = dict(self.frame.keywords) if factory else {}
        if factory:
            # --loss-arg goes to the factory, not to the loss it makes.
            self.frame = dataclasses.replace(self.frame, keywords={})
            self._fn = self._loss_for(self.frame)
        else:
            # The layout makes the loss from what the user pointed at (a factory, a method).
            self._fn = unwrap_loss(self.layout.build(loss, self.frame))
        self.names = tuple(names) or self.layout.returns
        self.components = {**self.layout.components, **check_mapping(components)}
        self._compiled: dict[str, Any] = {}
        self._trace_info: dict[tuple[str, tuple[int, ...], bool], dict[str, Any]] = {}
        self._trace_errors: dict[tuple[str, tuple[int, ...], bool], Exception] = {}
        self._cache: OrderedDict[tuple[str, bytes], Evaluation] = OrderedDict()
        self._cache_size = cache_size
        #: Every evaluation's values (bytes each), long after its gradients left ``_cache``:
        #: properties revisit cases (the perfect prediction of a scene, a path's first step)
        #: more often than they need those cases' gradients again.
        self._values: OrderedDict[tuple[str, bytes], Evaluation] = OrderedDict()
        #: Values from a forward pass only (:meth:`values`), and that pass, traced once.
        self._forward_values: OrderedDict[tuple[str, bytes], dict[str, float]] = OrderedDict()
        self._forward_only: Any = None
        self._values_failed = False
        #: Small results derived from a case's gradients (:meth:`derived`), by name and case.
        self._derived: OrderedDict[tuple[str, Any], Any] = OrderedDict()
        self._truths: OrderedDict[Any, dict[str, Any]] = OrderedDict()
        self.graph_error: str | None = None
        #: One forward pass per component's gradient, for losses whose ops allow one gradient
        #: per pass (tf.py_function); switched on when a shared pass fails that way.
        self.separate_passes = False
        self.unmapped: set[str] = set()
        self.calls = 0
        #: The traced computation per (mode, shape), to read what the loss does in graph mode.
        self._concrete: dict[tuple[str, tuple[int, ...], bool], Any] = {}
        self._graph_ran = False

    @classmethod
    def calling(cls, loss: Any, options: LossOptions, frame: Frame | None = None) -> Adapter:
        """The adapter that calls ``loss`` as ``options`` say (components, layout, names of a
        tuple return) in ``frame`` (default: the options' own, the first scale's)."""
        return cls(
            loss,
            components=options.components,
            layout=options.layout,
            frame=frame or options.frame(),
            names=options.component_names,
            factory=options.factory,
        )

    @property
    def hands_anchors(self) -> bool:
        """The loss is given its anchors from the frame (by the layout, or as a factory's
        argument), so a transposed scene can be audited with its anchors transposed."""
        return self.layout.hands_anchors or self.factory

    def _loss_for(self, frame: Frame) -> Callable[..., Any]:
        """The loss to call in ``frame``: a factory target's loss is made for each frame's grid
        and anchors (once each); any other target's is the one loss."""
        if not self.factory:
            return self._fn
        key = (frame.spec, frame.codec, frame.scales, frame.scale, frame.input_size)
        if key not in self._made:
            tf = import_tensorflow()
            # Made outside any trace under way (another grid is first met while tracing), so
            # the factory's constants and variables live as they would in training.
            with tf.init_scope():
                made = from_factory(
                    self.loss, frame, self.layout.anchor_unit, self._factory_keywords
                )
            self._made[key] = unwrap_loss(made)
        return self._made[key]

    # -- building the computation --------------------------------------------------------------
    def _normalise(
        self, out: Any, captured: dict[str, Any], batch: int
    ) -> tuple[dict[str, Any], bool, dict[str, tuple[str, ...]]]:
        """Map the loss's output and captured summaries to ``{role: tensor}``."""
        tf = import_tensorflow()
        named = reported(out, captured, self.names)
        grouped = group(named, self.components)
        self.unmapped.update(grouped.unmapped)
        comps: dict[str, Any] = {}
        for role, reported_parts in grouped.parts.items():
            parts = []
            for name, v in reported_parts:
                t = component_tensor(name, v)
                shape = tuple(t.shape)
                if shape not in ((), (batch,)):
                    raise LossError(
                        f"component {name!r} has shape {shape}: expected a scalar () or a "
                        f"per-sample vector ({batch},); reduce the other axes inside the loss"
                    )
                parts.append(t)
            if any(p.shape.rank == 1 for p in parts):
                # A scalar beside per-sample vectors is already a batch mean: broadcast it, so
                # the mean of the sum is the sum of the means.
                parts = [p if p.shape.rank == 1 else tf.fill([batch], p) for p in parts]
            comps[role] = tf.add_n(parts) if len(parts) > 1 else parts[0]
        if not comps:
            raise LossError(
                "the loss reported no component lossaudit recognises: got "
                f"{sorted(named) or 'nothing'}; map names with components={{name: role}} "
                "(--component NAME=ROLE)"
            )
        total_given = grouped.total_given
        if not total_given:
            shaped = [comps[r] for r in base_roles(comps)]
            if any(p.shape.rank == 1 for p in shaped):
                shaped = [p if p.shape.rank == 1 else tf.fill([batch], p) for p in shaped]
            comps["total"] = tf.add_n(shaped) if len(shaped) > 1 else shaped[0]
        return comps, total_given, grouped.names

    def _frame(self, shape: tuple[int, ...], flipped: bool) -> Frame:
        frame = self.frame.at(shape)
        return frame.flipped() if flipped else frame

    def inputs(self, scene: Scene) -> dict[str, np.ndarray]:
        """The loss's truth-side inputs for ``scene``, as the layout encodes them (numpy).

        Raises :class:`LossError` when a user-defined layout's ``encode`` fails."""
        frame = self._frame(scene.spec.shape, scene.flipped)
        try:
            encoded = self.layout.encode(scene, frame)
            return {str(k): np.ascontiguousarray(v) for k, v in dict(encoded).items()}
        except Exception as exc:
            raise LossError(
                f"layout {self.layout.name!r} could not encode the scene: {describe_exception(exc)}"
            ) from exc

    def forward(self) -> Callable[..., Any]:
        """``forward(truth, y_pred, flipped=False) -> (comps, scalars, total_given, names)``
        on tensors: the loss called once through the layout (``truth``: :meth:`inputs` as
        tensors; ``flipped``: the scene is transposed), its components normalised by role
        (traceable)."""
        tf = import_tensorflow()
        # Autograph converts the user's loss (it may branch on tensors), not lossaudit's own
        # bookkeeping around it (see own_function; these stay plain where it falls back).
        plain = tf.autograph.experimental.do_not_convert
        normalise, framed, loss_for = (
            plain(self._normalise),
            plain(self._frame),
            plain(self._loss_for),
        )
        layout = self.layout

        # A user's layout is user code: AutoGraph converts its call and what that calls, as it
        # did when it converted everything; a built-in layout's call runs as written.
        builtin = any(layout is known for known in BUILT_IN.values())

        def forward(truth: Any, y_pred: Any, flipped: bool = False) -> Any:
            batch = int(y_pred.shape[0])
            captured: dict[str, Any] = {}
            frame = framed(tuple(y_pred.shape), flipped)
            with capture_summaries(captured, layout.print_names):
                if builtin:
                    out = layout.call(as_traced(loss_for(frame)), truth, y_pred, frame)
                else:
                    out = as_traced(layout.call)(loss_for(frame), truth, y_pred, frame)
            comps, total_given, names = normalise(out, captured, batch)
            scalars = {r: (tf.reduce_mean(v) if v.shape.rank == 1 else v) for r, v in comps.items()}
            return comps, scalars, total_given, names

        return forward

    def component_gradients(self, run: Callable[[], Any], sources: list[Any]) -> Any:
        """``(run(), {role: [gradient of the role's scalar per source, None if unconnected]})``.

        ``run`` is a forward pass (:meth:`forward`'s result on tensors it builds); ``sources``
        the tensors or variables to differentiate by. Shared by evaluation (by the predictions)
        and the training harness (by a head's weights). Works eagerly and under ``tf.function``.
        """
        tf = import_tensorflow()
        # Variables (a Keras head's weights) are watched by the tape already; tensors are not.
        watched = [s for s in sources if isinstance(s, tf.Tensor)]
        with tf.GradientTape(persistent=not self.separate_passes) as tape:
            tape.watch(watched)
            out = run()
        grads = {}
        for role, scalar in out[1].items():
            if self.separate_passes:
                # One forward and backward pass per component: some ops (tf.py_function)
                # allow only one gradient computation per forward pass.
                with tf.GradientTape() as tape:
                    tape.watch(watched)
                    scalar = run()[1][role]
            grads[role] = tape.gradient(
                scalar, sources, unconnected_gradients=tf.UnconnectedGradients.NONE
            )
        del tape
        return out, grads

    def _computation(self, mode: str) -> Callable[..., Any]:
        tf = import_tensorflow()
        forward = self.forward()

        def run(truth: Any, y_pred: Any, flipped: bool = False) -> Any:
            (comps, scalars, total_given, names), by_source = self.component_gradients(
                lambda: forward(truth, y_pred, flipped), [y_pred]
            )
            connected = {r: g[0] is not None for r, g in by_source.items()}
            grads = {
                r: g[0] if g[0] is not None else tf.zeros_like(y_pred) for r, g in by_source.items()
            }
            per_sample = {r: v for r, v in comps.items() if v.shape.rank == 1}
            self._trace_info[(mode, tuple(y_pred.shape), flipped)] = {
                "connected": connected,
                "total_given": total_given,
                "names": names,
            }
            return scalars, per_sample, grads

        if mode == "eager":
            return run
        return own_function(run, jit_compile=(mode == "xla"))

    def values(self, case: Case) -> dict[str, float]:
        """The components' values on ``case`` (default mode). When no evaluation of it is at
        hand, a forward pass only: a property that reads a value needs no gradient, and the
        backward pass is most of a call's cost. Anything unusual (an eager-only loss, an error)
        goes through :meth:`evaluate`, which reports it."""
        mode = self.default_mode
        y_pred, key = _keyed(case, mode)
        for store in (self._cache, self._values):
            if key in store:
                return store[key].values
        found = self._forward_values.get(key)
        if found is not None:
            return found
        if mode != "graph" or self.separate_passes or self._values_failed:
            return self.evaluate(case).values
        tf = import_tensorflow()
        try:
            truth = self._inputs(case.scene)
            scalars = self._values_runner()(truth, tf.constant(y_pred), case.scene.flipped)
            found = {r: float(v.numpy()) for r, v in scalars.items()}
        except Exception:
            self._values_failed = True
            return self.evaluate(case).values
        self.calls += 1
        self._forward_values[key] = found
        while len(self._forward_values) > _VALUES_KEPT:
            self._forward_values.popitem(last=False)
        return found

    def _values_runner(self) -> Callable[..., Any]:
        if self._forward_only is None:
            forward = self.forward()
            self._forward_only = own_function(
                lambda truth, y_pred, flipped=False: forward(truth, y_pred, flipped)[1]
            )
        return self._forward_only

    def _runner(self, mode: str) -> Callable[..., Any]:
        if mode not in self._compiled:
            self._compiled[mode] = self._computation(mode)
        return self._compiled[mode]

    # -- public ------------------------------------------------------------------------------
    @property
    def default_mode(self) -> str:
        """``graph`` unless tracing the loss failed, then ``eager``."""
        return "eager" if self.graph_error else "graph"

    def evaluate(self, case: Case, mode: str | None = None) -> Evaluation:
        """Evaluate the loss and every component's gradient on ``case``.

        Raises :class:`LossError` when the loss raises or returns something unusable.
        """
        mode = mode or self.default_mode
        y_pred, key = _keyed(case, mode)
        return self._evaluate_keyed(case, mode, y_pred, key)

    def derived(self, case: Case, name: str, of: Callable[[Evaluation], T]) -> T:
        """``of(evaluate(case))`` (default mode), kept per case under ``name``.

        For small results read from a case's gradients (where a gradient is not finite): the
        result outlives the megabytes it came from, so a property asking the same question of
        the same case for another component needs no loss call when the gradients are gone.
        """
        mode = self.default_mode
        y_pred, key = _keyed(case, mode)
        found = self._derived.get((name, key), _MISSING)
        if found is _MISSING:
            found = of(self._evaluate_keyed(case, mode, y_pred, key))
            self._derived[(name, key)] = found
            while len(self._derived) > _DERIVED_KEPT:
                self._derived.popitem(last=False)
        return found  # type: ignore[no-any-return]

    def _evaluate_keyed(
        self, case: Case, mode: str, y_pred: np.ndarray, key: tuple[Any, ...]
    ) -> Evaluation:
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        kept = self._values.get(key)
        if kept is not None:
            self._values.move_to_end(key)
            return dataclasses.replace(
                kept, grads=_LazyGrads(lambda: self._evaluate(case, mode, y_pred, key).grads)
            )
        return self._evaluate(case, mode, y_pred, key)

    def _evaluate(self, case: Case, mode: str, y_pred: np.ndarray, key: Any) -> Evaluation:
        """:meth:`evaluate` on a cache miss: call the loss, keep the result."""
        flipped = case.scene.flipped
        y_true = self._inputs(case.scene)
        try:
            result = self._call(mode, y_true, y_pred, flipped)
        except LossError as exc:
            raise LossError(describe_exception(exc).removeprefix("LossError: ")) from None
        except Exception as exc:
            if mode == "graph" and self.graph_error is None and not self._graph_ran:
                # Tracing failed before any graph ran (a tf.Variable created in the loss's
                # body fails on its first call): record why, then run eagerly.
                try:
                    result = self._call("eager", y_true, y_pred, flipped)
                except LossError as lexc:
                    raise LossError(describe_exception(lexc).removeprefix("LossError: ")) from None
                except Exception as eager_exc:
                    raise LossError(describe_exception(eager_exc)) from eager_exc
                self.graph_error = describe_exception(exc)
            else:
                raise LossError(describe_exception(exc)) from exc
        except (SystemExit, KeyboardInterrupt) as exc:
            # Raised by the loss itself (sys.exit, a stray raise): the loss's error. Only a
            # KeyboardInterrupt on the main thread may be a real Ctrl-C; that one propagates.
            if (
                isinstance(exc, KeyboardInterrupt)
                and threading.current_thread() is threading.main_thread()
            ):
                raise
            raise LossError(f"the loss raised {describe_exception(exc)}") from None
        self._cache[key] = result
        # Bounded by count and by the gradients' bytes (large grids carry big gradients).
        while len(self._cache) > 1 and (
            len(self._cache) > self._cache_size or self._cache_bytes() > _GRADIENT_BYTES
        ):
            self._cache.popitem(last=False)
        self._values[key] = dataclasses.replace(result, grads={})
        while len(self._values) > _VALUES_KEPT:
            self._values.popitem(last=False)
        return result

    def _inputs(self, scene: Any) -> dict[str, Any]:
        """:meth:`inputs` as tensors, encoded and converted once per scene: properties evaluate
        many predictions against one scene, and at real shapes the truth is megabytes."""
        found = self._truths.get(scene)
        if found is None:
            tf = import_tensorflow()
            encoded = self.inputs(scene)
            try:
                found = {k: tf.constant(v) for k, v in encoded.items()}
            except Exception as exc:  # an encoding TensorFlow cannot take: the loss's error
                raise LossError(describe_exception(exc)) from exc
            self._truths[scene] = found
            while len(self._truths) > 8:
                self._truths.popitem(last=False)
        else:
            self._truths.move_to_end(scene)
        return found

    def _cache_bytes(self) -> int:
        per_entry = next(iter(self._cache.values()))
        size = sum(g.nbytes for g in per_entry.grads.values())
        return size * len(self._cache)

    def _call(
        self,
        mode: str,
        y_true: Mapping[str, Any],
        y_pred: np.ndarray,
        flipped: bool = False,
    ) -> Evaluation:
        tf = import_tensorflow()
        self.calls += 1
        key = (mode, tuple(y_pred.shape), flipped)
        if key in self._trace_errors:
            # Tracing this shape failed before; tracing again would fail the same way, slowly.
            raise self._trace_errors[key]
        runner = self._runner(mode)
        try:
            truth = {
                k: tf.constant(v) if isinstance(v, np.ndarray) else v for k, v in y_true.items()
            }
            pred = tf.constant(y_pred)
            scalars, per_sample, grads = runner(truth, pred, flipped)
            self._graph_ran = self._graph_ran or mode == "graph"
            if mode != "eager" and key not in self._concrete:
                self._concrete[key] = runner.get_concrete_function(truth, pred, flipped)
        except tf.errors.OpError as exc:
            if not self.separate_passes and "pyfunc" in str(exc):
                self.separate_passes = True
                self._compiled.clear()
                self._trace_info.clear()
                self.calls -= 1
                return self._call(mode, y_true, y_pred, flipped)
            raise  # raised while running: may depend on the values, so never cached
        except Exception as exc:
            if mode != "eager" and key not in self._trace_info:
                self._trace_errors[key] = exc
            raise
        info = self._trace_info[key]
        return Evaluation(
            values={r: float(v.numpy()) for r, v in scalars.items()},
            per_sample={r: v.numpy().astype(np.float64) for r, v in per_sample.items()},
            # Read-only views of the tensors' buffers: no copy of megabytes per call.
            grads={r: _host_view(g) for r, g in grads.items()},
            connected=dict(info["connected"]),
            total_given=bool(info["total_given"]),
            names=dict(info["names"]),
        )

    # -- state -------------------------------------------------------------------------------
    def written_variables(self) -> list[tuple[str, Any]]:
        """``(name, variable)`` for every variable the traced loss assigns to (a warm-up
        counter, a step), named as the loss's module, object or closure names it."""
        found: dict[int, tuple[str, Any]] = {}
        for cf in self._concrete.values():
            captured = list(cf.graph.internal_captures)
            handles = list(cf.captured_inputs)
            variables = {id(v.handle): v for v in cf.graph.variables}
            for op in cf.graph.get_operations():
                if op.type not in _WRITES or not op.inputs:
                    continue
                index = [k for k, c in enumerate(captured) if c is op.inputs[0]]
                if not index:
                    continue
                variable = variables.get(id(handles[index[0]]))
                if variable is not None and id(variable) not in found:
                    found[id(variable)] = (self._name_of(variable), variable)
        return list(found.values())

    def _name_of(self, variable: Any) -> str:
        fn = getattr(self._fn, "__func__", self._fn)
        places: list[tuple[str, Any]] = []
        owner = getattr(self._fn, "__self__", None) or self.loss
        places += (
            [(f"self.{k}", v) for k, v in vars(owner).items()] if hasattr(owner, "__dict__") else []
        )
        places += list(getattr(fn, "__globals__", {}).items())
        cells = getattr(fn, "__closure__", None) or ()
        names = getattr(getattr(fn, "__code__", None), "co_freevars", ())
        places += [(n, c.cell_contents) for n, c in zip(names, cells, strict=False)]
        for name, value in places:
            if value is variable:
                return name
        return variable.name.removesuffix(":0")

    def state_effect(self, case: Case, variable: Any) -> tuple[dict[str, float], dict[str, float]]:
        """The loss's values on ``case`` with ``variable`` as it is now and reset to zero (its
        value restored after): different values mean the loss's result depends on its state."""
        tf = import_tensorflow()
        saved = tf.identity(variable)
        y_pred = np.ascontiguousarray(case.y_pred, dtype=np.float32)
        inputs = self.inputs(case.scene)
        try:
            flipped = case.scene.flipped
            now = self._call(self.default_mode, inputs, y_pred, flipped).values
            variable.assign(tf.zeros_like(saved))
            reset = self._call(self.default_mode, inputs, y_pred, flipped).values
        finally:
            variable.assign(saved)
        return now, reset

    def try_mode(self, case: Case, mode: str) -> tuple[Evaluation | None, str | None]:
        """Evaluate in ``mode`` without fallback; return ``(evaluation, None)`` or ``(None, error)``."""
        y_pred = np.ascontiguousarray(case.y_pred, dtype=np.float32)
        try:
            return self._call(mode, self._inputs(case.scene), y_pred, case.scene.flipped), None
        except Exception as exc:
            return None, describe_exception(exc)
