"""Diagnose the loss components a training run already logged to TensorBoard.

``lossaudit report`` tests a loss before training; this module reads what training wrote. It
answers the seed write-up's question ("confidence and no_objects respond to training, but
coordinates and objects do not: is there a bug?") from the event files themselves:

    >>> from lossaudit.logs import diagnose_logdir, render_text
    >>> diagnosis = diagnose_logdir("logs/20240101-120000")  # doctest: +SKIP
    >>> print(render_text(diagnosis))  # doctest: +SKIP

Reading
    Every directory under ``logdir`` (``logdir`` itself included) that holds event files is a
    run, named by its path relative to ``logdir`` (``.`` for ``logdir`` itself), as TensorBoard
    names them. Files are read with TensorBoard's own ``EventAccumulator`` keeping every point
    (size guidance 0), one file at a time in name order, so a damaged file costs only its own
    data and is named in ``warnings``. Scalars arrive either as legacy ``simple_value`` scalars
    or, from TF2's ``tf.summary.scalar`` and Keras's ``TensorBoard`` callback, as 0-d tensors of
    the ``scalars`` plugin; both are read. Points are ordered by step (ties keep write order).

Which tags are loss components
    Keras's ``evaluation_<name>_vs_iterations`` tags are per-iteration copies of the
    validation curves ``epoch_<name>`` already holds, and are skipped. A Keras prefix
    (``epoch_``, ``batch_``) and a ``val_``/``train_`` prefix are dropped, then a tag is a
    component when its name
    contains ``loss``, or when :func:`lossaudit.components.role_for_name` gives it a role and no
    word in it names a metric (``accuracy``, ``precision``, ``recall``, ``iou``, ``map`` ...).
    Words such as ``learning_rate``, ``lr``, ``scale`` or ``weight`` rule a tag out even when
    it contains ``loss`` (``loss_scale`` is not a loss). The role is ``role_for_name``'s
    (coordinates, objects, no_objects, classification, confidence, total; Keras's plain
    ``loss`` is the total) or ``None`` for a loss-like tag no role fits. An explicit
    ``components={"tag": "role"}`` mapping wins, and the role ``ignore`` drops a tag.

Status rules, per series of ``n`` points (thresholds are the module constants below)
    ``nan``
        Any value is NaN or infinite.
    ``zero``
        Every value is exactly 0 (e.g. a softmax classification term over one class).
    Otherwise let ``head`` and ``tail`` be the medians of the first and last fifth of the
    points (at least one point each; medians shrug off noise and spikes), ``change = tail -
    head`` and ``relative = change / max(|head|, |tail|)``. The noise level ``sigma`` is the
    median absolute deviation of the step-to-step differences (robust to the trend), and a
    change is *clear* when ``|relative| >= FLAT_RELATIVE`` (5 %) and ``|change|`` exceeds
    ``NOISE_Z`` (3) standard errors of the difference of the two medians.
    ``diverging``
        The change is clear and upward, or the series blows up after falling: its last-fifth
        median is at least ``BLOWUP_FACTOR`` (10) times the lowest median of its five fifths,
        and that rise exceeds the noise as well.
    ``responding``
        The change is clear and downward: noisy but falling curves land here.
    ``flat``
        Anything else: no clear change, however noisy. A single logged point is ``flat`` too
        (nothing can be said about movement).
    ``drowned``
        A component (never the total) that is ``flat``, or falls by less than
        ``BARELY_RELATIVE`` (20 %), while its typical size (median of ``|value|``) is below
        ``DROWNED_SHARE`` (1 %) of a ``responding`` series it shares the total with: the largest
        responding series in the same run, or a responding total in any run (Keras logs the
        total in ``train``/``validation`` while a loss logs its parts elsewhere). Such a term
        barely steers the optimiser whatever it does; the usual fix is its weight. Also a
        component that rises while a ``responding`` component of the same run falls, having
        started below ``PUSHED_SHARE`` (5 %) of that component's size (first-fifth medians):
        the bigger term owns the shared weights and pushes it the wrong way, as the seed's
        no-object term over 844 empty anchors pushes its object term up.

Everything here is pure Python and numpy. TensorBoard and matplotlib are imported inside the
functions that need them, so importing this module stays cheap. Reading does load TensorFlow:
TensorBoard's reader uses its record reader when it is installed (much faster than TensorBoard's
pure-Python fallback on large logs), and the adapter imports it without its start-up chatter.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lossaudit.components import check_mapping, order_key, role_for_name
from lossaudit.errors import InvalidArgument, LossAuditError, did_you_mean, invalid

__all__ = [
    "BARELY_RELATIVE",
    "BLOWUP_FACTOR",
    "DROWNED_SHARE",
    "FLAT_RELATIVE",
    "NOISE_Z",
    "PUSHED_SHARE",
    "STATUSES",
    "ComponentDiagnosis",
    "LogDiagnosis",
    "LogDirError",
    "ScalarSeries",
    "curves_for_report",
    "diagnose",
    "diagnose_logdir",
    "loss_role",
    "plot_png",
    "read_scalars",
    "render_json",
    "render_text",
]

#: Every status a component can get; only ``responding`` is healthy.
STATUSES = ("responding", "flat", "zero", "diverging", "nan", "drowned")
#: A change smaller than this fraction of the series' size is no movement.
FLAT_RELATIVE = 0.05
#: A component that falls by less than this fraction is "barely moving" (for ``drowned``).
BARELY_RELATIVE = 0.20
#: A barely moving component below this fraction of a responding peer's size is ``drowned``.
DROWNED_SHARE = 0.01
#: A rising component that starts below this fraction of a falling peer's size is ``drowned``.
PUSHED_SHARE = 0.05
#: How many standard errors of noise a change must exceed to count.
NOISE_Z = 3.0
#: Ending this many times above its lowest fifth is a blow-up (``diverging``).
BLOWUP_FACTOR = 10.0

SCHEMA_VERSION = 1
_KERAS_AFFIX = re.compile(r"^(?:epoch_|batch_)|^evaluation_(?=.*_vs_iterations$)|_vs_iterations$")
_SPLIT_PREFIX = re.compile(r"^(?:val|validation|train|training)_")
_RUN_WORDS = frozenset({"train", "training", "val", "validation", "eval", "evaluation", "test"})
#: Words that make a tag a metric or a hyperparameter even when it says "loss".
_NEVER = frozenset(
    "lr learning rate scale scaling weight weights time seconds sec throughput norm grad grads "
    "gradient gradients".split()
)
#: Words that make a tag a metric unless it says "loss".
_METRIC = frozenset(
    "acc accuracy precision recall iou miou map ap ap50 ap75 f1 auc fitness mae mse "
    "top1 top5 error".split()
)
_HINTS = {
    "flat": "check that the term depends on the predictions (a mask or target built from "
    "y_pred, a stop_gradient, a weight of 0); `lossaudit report` tests this directly.",
    "zero": "a term that is 0 at every step trains nothing: a softmax over one class is always "
    "1, so 1 - 1 = 0; use a sigmoid or drop the term.",
    "diverging": "lower the learning rate or the term's weight, and look for exp() of or "
    "division by unbounded predictions (box sizes).",
    "nan": "look for log(0), sqrt(0) gradients or a division by a zero box size near the step "
    "the reason names.",
    "drowned": "the term is too small next to the total to steer training: raise its weight or "
    "normalise the terms (e.g. divide sums by the number of objects).",
}


class LogDirError(LossAuditError, ValueError):
    """The log directory cannot be diagnosed: missing, not a directory, no event files, or no
    scalar that looks like a loss component. The message says what was found."""


@dataclass(frozen=True, eq=False)
class ScalarSeries:
    """One scalar tag of one run, ordered by step: ``steps`` and ``values`` have shape ``(n,)``."""

    run: str
    tag: str
    steps: np.ndarray
    values: np.ndarray
    wall_times: np.ndarray

    def __len__(self) -> int:
        return len(self.values)


@dataclass(frozen=True)
class ComponentDiagnosis:
    """The verdict on one loss component's curve.

    ``first``/``last`` are the first and last logged values (NaN when they were); ``min``/``max``
    range over the finite values; ``head``/``tail`` are the medians of the first and last fifth;
    ``change`` is ``(tail - head) / max(|head|, |tail|)``; ``share`` is the component's typical
    size over ``reference``'s (set when it was compared with one).
    """

    name: str
    run: str
    component: str | None
    status: str
    reason: str
    steps: int
    first_step: int
    last_step: int
    first: float
    last: float
    min: float
    max: float
    head: float
    tail: float
    change: float | None
    nonfinite: int
    share: float | None = None
    reference: str | None = None
    series: ScalarSeries | None = field(default=None, repr=False, compare=False)

    @property
    def label(self) -> str:
        """``run/tag``, or just the tag for the root run."""
        return self.name if self.run == "." else f"{self.run}/{self.name}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: non-finite numbers become ``None`` (``nonfinite`` counts them)."""
        out: dict[str, Any] = {
            "name": self.name,
            "run": self.run,
            "component": self.component,
            "status": self.status,
            "reason": self.reason,
        }
        for key in ("steps", "first_step", "last_step", "nonfinite"):
            out[key] = getattr(self, key)
        for key in ("first", "last", "min", "max", "head", "tail", "change", "share"):
            out[key] = _json_float(getattr(self, key))
        out["reference"] = self.reference
        return out


@dataclass(frozen=True)
class LogDiagnosis:
    """Every loss component found under ``logdir``, with its status.

    ``ignored`` lists the scalar tags (``run/tag``) that are not loss components; ``warnings``
    the files that could not be read in full.
    """

    logdir: str
    components: tuple[ComponentDiagnosis, ...]
    ignored: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when every component responds."""
        return all(c.status == "responding" for c in self.components)

    @property
    def runs(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(c.run for c in self.components))

    @property
    def summary(self) -> dict[str, int]:
        """How many components got each status, in :data:`STATUSES` order."""
        return {s: sum(c.status == s for c in self.components) for s in STATUSES}

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "logdir": self.logdir,
            "ok": self.ok,
            "summary": self.summary,
            "components": [c.to_dict() for c in self.components],
            "ignored_tags": list(self.ignored),
            "warnings": list(self.warnings),
        }


def curves_for_report(diagnosis: LogDiagnosis, max_points: int = 400) -> dict[str, Any]:
    """The diagnosis with each component's curve (thinned to ``max_points``), as plain data for
    ``Report.analysis["logs"]``: the HTML report draws it."""
    components = []
    for c in diagnosis.components:
        entry = c.to_dict()
        if c.series is not None:
            keep = np.unique(
                np.linspace(0, len(c.series) - 1, min(len(c.series), max_points)).astype(int)
            )
            entry["x"] = [int(v) for v in c.series.steps[keep]]
            entry["y"] = [_json_float(float(v)) for v in c.series.values[keep]]
        components.append(entry)
    return {"logdir": diagnosis.logdir, "ok": diagnosis.ok, "components": components}


def _json_float(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return float(value)


# ----------------------------------------------------------------------------- reading


def _check_logdir(logdir: str | os.PathLike[str]) -> Path:
    path = Path(logdir)
    if not path.exists():
        raise LogDirError(
            f"cannot read TensorBoard logs: expected an existing directory; received "
            f"LOGDIR={str(logdir)!r}, which does not exist. Pass the log_dir your training "
            "gave tf.summary.create_file_writer or keras.callbacks.TensorBoard."
        )
    if not path.is_dir():
        fix = (
            f"Pass its directory instead: {str(path.parent)!r}."
            if "tfevents" in path.name
            else "Pass the directory that holds the events.out.tfevents.* files (or their run "
            "subdirectories)."
        )
        raise LogDirError(
            f"cannot read TensorBoard logs: expected a directory; received the file "
            f"LOGDIR={str(logdir)!r}. {fix}"
        )
    return path


def _is_event_file(name: str) -> bool:
    # TensorBoard's own rule (io_wrapper.IsSummaryEventsFile), spelled out: calling it would
    # import TensorFlow just to look at file names.
    return "tfevents" in name and not name.endswith(".profile-empty")


def _event_files(root: Path) -> dict[str, list[Path]]:
    runs: dict[str, list[Path]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        files = sorted(f for f in filenames if _is_event_file(f))
        if files:
            rel = Path(dirpath).relative_to(root).as_posix()
            runs[rel] = [Path(dirpath, f) for f in files]
    return runs


class _Truncations(logging.Handler):
    """Collects TensorBoard's own "Truncated record in FILE" notes (a damaged or cut-off file)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.seen = False

    def emit(self, record: logging.LogRecord) -> None:
        if str(record.msg).startswith("Truncated record"):
            self.seen = True


@contextlib.contextmanager
def _tensorboard_log() -> Iterator[_Truncations]:
    """Keep TensorBoard's reader logging off the terminal, noting the damage it reports: the
    diagnosis names damaged files itself."""
    logger = logging.getLogger("tensorboard")
    saved = (logger.level, logger.propagate)
    handler = _Truncations()
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]


def _prepare_tensorflow() -> None:
    # TensorBoard's reader uses TensorFlow's record reader when TensorFlow is installed; import
    # it through the adapter so its start-up chatter stays off the terminal.
    try:
        from lossaudit.adapter import import_tensorflow

        import_tensorflow()
    except ImportError:  # TensorBoard falls back to its own pure-Python reader
        pass


def _scalar_value(proto: Any, make_ndarray: Any) -> float | None:
    try:
        array = make_ndarray(proto)
    except Exception:
        return None
    if array.size != 1 or array.dtype.kind not in "biuf":
        return None
    return float(array.reshape(()))


def _read_file(
    path: Path, points: dict[str, list[tuple[int, float, float]]], log: _Truncations
) -> str | None:
    """Add ``path``'s scalar points to ``points``; return a warning when it is damaged."""
    from tensorboard.backend.event_processing import event_accumulator as ea
    from tensorboard.util.tensor_util import make_ndarray

    guidance = {
        ea.SCALARS: 0,
        ea.TENSORS: 0,
        ea.HISTOGRAMS: 1,
        ea.COMPRESSED_HISTOGRAMS: 1,
        ea.IMAGES: 1,
        ea.AUDIO: 1,
    }
    acc = ea.EventAccumulator(str(path), size_guidance=guidance)
    problem = None
    log.seen = False
    try:
        acc.Reload()
    except Exception as exc:  # keep whatever was read before the damage
        problem = f"stopped reading at {type(exc).__name__}: {str(exc)[:200]}"
    tags = acc.Tags()
    for tag in tags.get("scalars", []):
        for event in acc.Scalars(tag):
            points.setdefault(tag, []).append((event.step, event.wall_time, event.value))
    for tag in tags.get("tensors", []):
        metadata = acc.summary_metadata.get(tag)
        plugin = metadata.plugin_data.plugin_name if metadata is not None else ""
        if plugin not in ("scalars", ""):
            continue
        events = acc.Tensors(tag)
        values = [_scalar_value(e.tensor_proto, make_ndarray) for e in events]
        if not values or any(v is None for v in values):
            continue
        for event, value in zip(events, values, strict=True):
            points.setdefault(tag, []).append((event.step, event.wall_time, value))
    kinds = ("scalars", "tensors", "histograms", "images", "audio")
    if problem is None and acc.file_version is None and not any(tags.get(k) for k in kinds):
        try:
            size = path.stat().st_size
        except OSError:
            size = 0
        problem = (
            "is empty (the writer never flushed)"
            if size == 0
            else f"holds no readable event in {size} bytes (damaged or not an event file)"
        )
    if problem is None and log.seen:
        problem = (
            "ends in a damaged or partial record (cut off, or still being written); "
            "what came before it was read"
        )
    return problem


def _read(root: Path) -> tuple[dict[str, dict[str, ScalarSeries]], list[str]]:
    files = _event_files(root)
    if not files:
        n_files = sum(len(f) for _, _, f in os.walk(root))
        raise LogDirError(
            f"cannot read TensorBoard logs: expected event files (events.out.tfevents.*) in "
            f"LOGDIR or its subdirectories; received {str(root)!r} with none among its "
            f"{n_files} file(s). Point LOGDIR at the log_dir your training wrote to; TensorBoard "
            "writes a file only once the writer flushes (at the latest when training ends)."
        )
    _prepare_tensorflow()
    warnings: list[str] = []
    runs: dict[str, dict[str, ScalarSeries]] = {}
    with _tensorboard_log() as log:
        for run, paths in sorted(files.items()):
            points: dict[str, list[tuple[int, float, float]]] = {}
            for path in paths:
                problem = _read_file(path, points, log)
                if problem:
                    warnings.append(f"{path.relative_to(root).as_posix()} {problem}")
            series = {}
            for tag, rows in sorted(points.items()):
                order = sorted(range(len(rows)), key=lambda i: rows[i][0])  # stable
                steps = np.array([rows[i][0] for i in order], dtype=np.int64)
                walls = np.array([rows[i][1] for i in order], dtype=np.float64)
                values = np.array([rows[i][2] for i in order], dtype=np.float64)
                for a in (steps, walls, values):
                    a.setflags(write=False)
                series[tag] = ScalarSeries(run, tag, steps, values, walls)
            if series:
                runs[run] = series
    return runs, warnings


def read_scalars(logdir: str | os.PathLike[str]) -> dict[str, dict[str, ScalarSeries]]:
    """Every scalar series under ``logdir``: ``{run: {tag: ScalarSeries}}``, runs sorted.

    Raises :class:`LogDirError` when ``logdir`` is missing, is a file, or holds no event file.
    Damaged files are skipped past (what could be read is kept).

    Example:
        >>> read_scalars("logs")["train"]["epoch_loss"].values  # doctest: +SKIP
        array([2.31, 1.72, 1.40])
    """
    runs, _ = _read(_check_logdir(logdir))
    return runs


# ----------------------------------------------------------------------------- tags


def _words(name: str) -> set[str]:
    return {w for w in re.split(r"[^a-z0-9]+", name) if w}


def _bare(tag: str) -> str:
    """The tag without Keras's ``epoch_``/``batch_``/``evaluation_*_vs_iterations`` wrapping."""
    name = tag.strip().lower()
    head, sep, last = name.rpartition("/")
    if head and last in _RUN_WORDS:  # "Loss/train": the name is before the split
        head, sep, last = head.rpartition("/")
    last = _SPLIT_PREFIX.sub("", _KERAS_AFFIX.sub("", last))
    return f"{head}{sep}{last}" if last else name


def loss_role(tag: str, explicit: Mapping[str, str] | None = None) -> tuple[bool, str | None]:
    """Whether ``tag`` is a loss component, and its canonical role (``None`` when none fits).

    Example:
        >>> loss_role("epoch_loss"), loss_role("coordinates_loss_sum"), loss_role("epoch_lr")
        ((True, 'total'), (True, 'coordinates'), (False, None))
        >>> loss_role("yolo_output_0_loss")
        (True, None)
    """
    if tag.startswith("evaluation_") and tag.endswith("_vs_iterations"):
        # Keras's per-iteration copy of the validation curve that epoch_<name> already holds.
        return (False, None)
    bare = _bare(tag)
    if explicit:
        for key in (tag, bare):
            if key in explicit:
                role = explicit[key]
                return (role != "ignore", None if role == "ignore" else role)
    words = _words(bare)
    says_loss = "loss" in bare
    if words & _NEVER:
        return (False, None)
    role = role_for_name(bare)
    if says_loss:
        return (True, role)
    if role is not None and not words & _METRIC:
        return (True, role)
    return (False, None)


# ----------------------------------------------------------------------------- rules


@dataclass(frozen=True)
class _Trend:
    status: str
    reason: str
    head: float
    tail: float
    change: float | None
    barely: bool  # flat, or falling by less than BARELY_RELATIVE


def _fmt(value: float) -> str:
    if not math.isfinite(value):
        return str(value)
    return f"{value:.4g}"


def _trend(values: np.ndarray, steps: np.ndarray) -> _Trend:
    n = len(values)
    bad = ~np.isfinite(values)
    if bad.any():
        first = int(steps[np.argmax(bad)])
        kinds = sorted({"NaN" if np.isnan(v) else "inf" for v in values[bad]})
        return _Trend(
            "nan",
            f"{int(bad.sum())} of {n} values are {'/'.join(kinds)}, the first at step {first}",
            math.nan,
            math.nan,
            None,
            False,
        )
    if np.all(values == 0):
        return _Trend(
            "zero",
            f"exactly 0 at all {n} logged steps (e.g. a softmax over a single class)",
            0.0,
            0.0,
            None,
            False,
        )
    if n < 2:
        v = float(values[0])
        return _Trend(
            "flat", "only one value was logged: movement cannot be judged", v, v, None, True
        )
    k = max(1, math.ceil(n / 5))
    head = float(np.median(values[:k]))
    tail = float(np.median(values[-k:]))
    scale = max(abs(head), abs(tail)) or float(np.max(np.abs(values)))
    change = tail - head
    relative = change / scale
    diffs = np.diff(values)
    sigma = 1.4826 * float(np.median(np.abs(diffs - np.median(diffs)))) / math.sqrt(2)
    # standard error of the difference of two medians of k points (median's efficiency: 1.2533)
    noise = NOISE_Z * 1.2533 * sigma * math.sqrt(2 / k)
    clear = abs(relative) >= FLAT_RELATIVE and abs(change) > noise
    where = f"first-fifth median {_fmt(head)} -> last-fifth median {_fmt(tail)}"

    # Medians of fifths, not a running minimum: the minimum of a noisy curve sits in its noise.
    blocks = np.array_split(np.arange(n), min(5, n))
    medians = [float(np.median(values[b])) for b in blocks]
    low = int(np.argmin(medians))
    best = medians[low]
    if best > 0 and tail >= BLOWUP_FACTOR * best and tail - best > noise:
        span = f"steps {int(steps[blocks[low][0]])}-{int(steps[blocks[low][-1]])}"
        return _Trend(
            "diverging",
            f"blows up: last-fifth median {_fmt(tail)} is {tail / best:.3g}x the lowest "
            f"fifth's ({_fmt(best)}, {span})",
            head,
            tail,
            relative,
            False,
        )
    if clear and change < 0:
        return _Trend(
            "responding",
            f"falls {abs(relative):.0%} ({where})",
            head,
            tail,
            relative,
            abs(relative) < BARELY_RELATIVE,
        )
    if clear:
        return _Trend("diverging", f"rises {relative:.0%} ({where})", head, tail, relative, False)
    if abs(relative) < FLAT_RELATIVE:
        why = f"moves {relative:+.1%} ({where}), under the {FLAT_RELATIVE:.0%} that counts as movement"
    else:
        why = (
            f"moves {relative:+.1%} ({where}), within the noise "
            f"(+/-{_fmt(noise)} at {NOISE_Z:g} standard errors)"
        )
    return _Trend("flat", why, head, tail, relative, True)


def _pushed_up(
    s: ScalarSeries,
    t: _Trend,
    chosen: list[tuple[ScalarSeries, str | None]],
    trends: dict[int, _Trend],
) -> tuple[str, float, str] | None:
    """A rising component that started tiny next to a falling term of the same run: that term's
    gradient owns the weights they share and pushes this one the wrong way (the seed's objects
    term rising while no_objects over 844 empty anchors falls)."""
    peers = [
        p
        for p, r in chosen
        if p is not s
        and r != "total"
        and r != "confidence"
        and p.run == s.run
        and trends[id(p)].status == "responding"
    ]
    if not peers:
        return None
    ref = max(peers, key=lambda p: abs(trends[id(p)].head))
    big = abs(trends[id(ref)].head)
    share = abs(t.head) / big if big > 0 else math.inf
    if share >= PUSHED_SHARE:
        return None
    label = ref.tag if ref.run == "." else f"{ref.run}/{ref.tag}"
    reason = (
        f"rises {abs(t.change or 0):.0%} while {label} falls: over the first fifth of the run "
        f"it is {share:.2%} of {label}'s size, so that term's gradient owns the weights they "
        "share and pushes this one the wrong way (raise its weight or normalise the other "
        "term; if its target is wrong, a weight will not help: `lossaudit report` checks that)"
    )
    return reason, share, label


def _typical(series: ScalarSeries) -> float:
    return float(np.median(np.abs(series.values)))


def _sort_key(item: tuple[ScalarSeries, str | None]) -> tuple[str, int, str]:
    series, role = item
    return (series.run, order_key(role or ""), series.tag)


def _check_explicit(
    components: Mapping[str, str], runs: Mapping[str, Mapping[str, ScalarSeries]]
) -> None:
    tags = {t for series in runs.values() for t in series}
    known = tags | {_bare(t) for t in tags}
    for name in check_mapping(components, source="the tag mapping"):
        if name not in known:
            raise invalid(
                f"cannot map the tag {name!r}",
                "a scalar tag present in the logs",
                f"name={name!r}",
                "Use a tag the logs hold (see the ignored tags in the output)."
                + did_you_mean(name, sorted(known)),
                cls=InvalidArgument,
            )


def diagnose(
    runs: Mapping[str, Mapping[str, ScalarSeries]],
    *,
    logdir: str = "",
    components: Mapping[str, str] | None = None,
    warnings: tuple[str, ...] = (),
) -> LogDiagnosis:
    """Apply the status rules (see the module docstring) to series already read.

    ``components`` maps a tag (as logged, or without Keras's ``epoch_``/``batch_``) to a role,
    overriding the name heuristic; the role ``ignore`` drops the tag. Raises
    :class:`LogDirError` when no series looks like a loss component.
    """
    components = dict(components or {})
    _check_explicit(components, runs)
    chosen: list[tuple[ScalarSeries, str | None]] = []
    ignored: list[str] = []
    for series in runs.values():
        for s in series.values():
            is_loss, role = loss_role(s.tag, components)
            if is_loss:
                chosen.append((s, role))
            else:
                ignored.append(s.tag if s.run == "." else f"{s.run}/{s.tag}")
    if not chosen:
        raise _no_components(logdir, ignored, warnings)
    chosen.sort(key=_sort_key)
    trends = {id(s): _trend(s.values, s.steps) for s, _ in chosen}

    drowned: dict[int, tuple[str, float, str]] = {}
    for s, role in chosen:
        t = trends[id(s)]
        rising = t.status == "diverging" and t.reason.startswith("rises")
        if role == "total":
            continue
        if rising:
            pushed = _pushed_up(s, t, chosen, trends)
            if pushed is not None:
                drowned[id(s)] = pushed
            continue
        if not t.barely:
            continue
        peers = [
            (p, r)
            for p, r in chosen
            if p is not s
            and trends[id(p)].status == "responding"
            and (p.run == s.run or r == "total")
        ]
        if not peers:
            continue
        ref, _ = max(peers, key=lambda pr: _typical(pr[0]))
        share = _typical(s) / _typical(ref) if _typical(ref) > 0 else math.inf
        if share < DROWNED_SHARE:
            label = ref.tag if ref.run == "." else f"{ref.run}/{ref.tag}"
            movement = (
                "stays flat" if t.status == "flat" else f"falls only {abs(t.change or 0):.0%}"
            )
            reason = (
                f"{movement} at a typical {_fmt(_typical(s))}, {share:.2%} of the responding "
                f"{label} (typical {_fmt(_typical(ref))}): the total barely feels it"
            )
            drowned[id(s)] = (reason, share, label)

    out = []
    for s, role in chosen:
        t = trends[id(s)]
        finite = s.values[np.isfinite(s.values)]
        status, reason, share, reference = t.status, t.reason, None, None
        if id(s) in drowned:
            reason, share, reference = drowned[id(s)]
            status = "drowned"
        out.append(
            ComponentDiagnosis(
                name=s.tag,
                run=s.run,
                component=role,
                status=status,
                reason=reason,
                steps=len(s),
                first_step=int(s.steps[0]),
                last_step=int(s.steps[-1]),
                first=float(s.values[0]),
                last=float(s.values[-1]),
                min=float(finite.min()) if finite.size else math.nan,
                max=float(finite.max()) if finite.size else math.nan,
                head=t.head,
                tail=t.tail,
                change=t.change,
                nonfinite=int(len(s) - finite.size),
                share=share,
                reference=reference,
                series=s,
            )
        )
    return LogDiagnosis(
        logdir=logdir, components=tuple(out), ignored=tuple(ignored), warnings=tuple(warnings)
    )


def _no_components(logdir: str, ignored: list[str], warnings: tuple[str, ...]) -> LogDirError:
    if ignored:
        shown = ", ".join(ignored[:20]) + (
            f", ... ({len(ignored) - 20} more)" if len(ignored) > 20 else ""
        )
        received = f"{len(ignored)} scalar tag(s), none of them a loss: {shown}"
        fix = (
            "Log the components with tf.summary.scalar under names such as "
            "coordinates_loss_sum or no_objects_loss, or map a tag with --component TAG=ROLE."
        )
    else:
        received = "no scalar tags at all"
        fix = "Log the loss components with tf.summary.scalar (and flush the writer)."
    if warnings:
        fix += f" Unreadable: {'; '.join(warnings[:5])}."
    return LogDirError(
        f"cannot diagnose {logdir or 'the logs'!r}: expected a scalar tag that looks like a "
        f"loss component (a name with 'loss' in it, or coordinates/objects/no_objects/"
        f"classification/confidence/total); received {received}. {fix}"
    )


def diagnose_logdir(
    logdir: str | os.PathLike[str], *, components: Mapping[str, str] | None = None
) -> LogDiagnosis:
    """Read the event files under ``logdir`` and diagnose every loss component in them.

    Example:
        >>> d = diagnose_logdir("logs/20240101-120000")  # doctest: +SKIP
        >>> [(c.name, c.component, c.status) for c in d.components]  # doctest: +SKIP
        [('coordinates_loss_sum', 'coordinates', 'flat'), ('epoch_loss', 'total', 'responding')]

    Raises :class:`LogDirError` for a missing path, a file, a directory without event files, or
    logs without any loss-like scalar (the message lists the tags seen).
    """
    root = _check_logdir(logdir)
    runs, warnings = _read(root)
    return diagnose(runs, logdir=str(logdir), components=components, warnings=tuple(warnings))


# ----------------------------------------------------------------------------- output


def render_json(diagnosis: LogDiagnosis) -> str:
    """The canonical form: ``schema_version``, ``logdir``, ``ok``, ``summary``, ``components``
    (one object per component), ``ignored_tags``, ``warnings``."""
    return json.dumps(diagnosis.to_dict(), indent=2, allow_nan=False) + "\n"


def render_text(diagnosis: LogDiagnosis) -> str:
    """A table (name, run, role, status, first -> last, reason), a summary and what to check."""
    rows = [("NAME", "RUN", "ROLE", "STATUS", "FIRST -> LAST", "REASON")]
    for c in diagnosis.components:
        rows.append(
            (
                c.name,
                c.run,
                c.component or "-",
                c.status,
                f"{_fmt(c.first)} -> {_fmt(c.last)}",
                c.reason,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    n = len(diagnosis.components)
    lines = [
        f"lossaudit tensorboard: {diagnosis.logdir} "
        f"({len(diagnosis.runs)} run(s), {n} loss component(s))",
        "",
    ]
    for row in rows:
        lines.append(
            "  ".join(cell.ljust(w) for cell, w in zip(row[:5], widths, strict=True))
            + "  "
            + row[5]
        )
    counts = ", ".join(f"{v} {k}" for k, v in diagnosis.summary.items() if v)
    lines += ["", f"{n} component(s): {counts}."]
    present = [s for s in STATUSES if s != "responding" and diagnosis.summary[s]]
    if present:
        lines.append("What to check:")
        for status in present:
            names = [c.label for c in diagnosis.components if c.status == status]
            shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
            lines.append(f"  {status} ({shown}): {_HINTS[status]}")
    else:
        lines.append("Every loss component responds to training.")
    if diagnosis.ignored:
        shown = ", ".join(diagnosis.ignored[:8])
        more = f" and {len(diagnosis.ignored) - 8} more" if len(diagnosis.ignored) > 8 else ""
        lines.append(f"Not loss components (ignored): {shown}{more}.")
    for warning in diagnosis.warnings:
        lines.append(f"Warning: {warning}.")
    return "\n".join(lines) + "\n"


def plot_png(diagnosis: LogDiagnosis, path: str | os.PathLike[str]) -> Path:
    """Draw every component's curve (one panel per run, statuses in the legend) to a PNG.

    A panel uses a log y-scale when all its values are positive, a symmetric log scale when
    some are 0, else a linear one. The file is written atomically; returns its path.
    """
    # A bare Figure on an Agg canvas: no pyplot, so no global backend switch in the caller's process.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    runs = diagnosis.runs or (".",)
    fig = Figure(figsize=(10, 3.6 * len(runs)), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(runs), 1, squeeze=False)[:, 0]
    for ax, run in zip(axes, runs, strict=True):
        positive, nonnegative, any_value = True, True, False
        for c in diagnosis.components:
            if c.run != run or c.series is None:
                continue
            values = np.where(np.isfinite(c.series.values), c.series.values, np.nan)
            finite = values[np.isfinite(values)]
            if finite.size:
                any_value = True
                positive &= bool(np.all(finite > 0))
                nonnegative &= bool(np.all(finite >= 0))
            marker = "o" if len(values) <= 30 else None
            ax.plot(
                c.series.steps,
                values,
                marker=marker,
                markersize=3,
                linewidth=1.2,
                label=f"{c.name} [{c.component or '?'}]: {c.status}",
            )
        if any_value and positive:
            ax.set_yscale("log")
        elif any_value and nonnegative:
            tiny = [
                float(np.min(v[v > 0]))
                for c in diagnosis.components
                if c.run == run and c.series is not None
                for v in [c.series.values[np.isfinite(c.series.values)]]
                if np.any(v > 0)
            ]
            ax.set_yscale("symlog", linthresh=min(tiny) if tiny else 1.0)
        ax.set_title(f"run {run}")
        ax.set_xlabel("step")
        ax.set_ylabel("value")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small", loc="best")
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as fh:
            fig.savefig(fh, format="png", dpi=100)
            fh.flush()
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
