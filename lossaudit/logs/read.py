"""Reading TensorBoard event files: the only part of :mod:`lossaudit.logs` that touches
TensorBoard (and, through it, TensorFlow), imported inside the functions that need them.

Every directory under ``logdir`` (``logdir`` itself included) that holds event files is a run,
named by its path relative to ``logdir`` (``.`` for ``logdir`` itself), as TensorBoard names
them. Files are read with TensorBoard's own ``EventAccumulator`` keeping every point (size
guidance 0), one file at a time in name order, so a damaged file costs only its own data and is
named in the warnings. Scalars arrive either as legacy ``simple_value`` scalars or, from TF2's
``tf.summary.scalar`` and Keras's ``TensorBoard`` callback, as 0-d tensors of the ``scalars``
plugin; both are read. Points are ordered by step (ties keep write order).

TensorBoard's reader uses TensorFlow's record reader when it is installed (much faster than
TensorBoard's pure-Python fallback on large logs), and the adapter imports it without its
start-up chatter.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from lossaudit.logs.data import LogDirError, ScalarSeries

__all__ = ["check_logdir", "read_runs", "read_scalars"]

#: ``{run: {tag: series}}``, runs and tags sorted.
Runs = dict[str, dict[str, ScalarSeries]]
_Points = dict[str, list[tuple[int, float, float]]]


def check_logdir(logdir: str | os.PathLike[str]) -> Path:
    """``logdir`` as a path, or :class:`LogDirError` when it is missing or a file."""
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
        # TensorBoard's loader swallows the DataLossError of a damaged record and only logs it:
        # its message template is the one signal there is (TensorBoard's text, not ours).
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


def _read_file(path: Path, points: _Points, log: _Truncations) -> str | None:
    """Add ``path``'s scalar points to ``points``; return a warning when it is damaged."""
    from tensorboard.backend.event_processing import event_accumulator as ea

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
    _collect(acc, tags, points)
    kinds = ("scalars", "tensors", "histograms", "images", "audio")
    if problem is None and acc.file_version is None and not any(tags.get(k) for k in kinds):
        problem = _unreadable(path)
    if problem is None and log.seen:
        problem = (
            "ends in a damaged or partial record (cut off, or still being written); "
            "what came before it was read"
        )
    return problem


def _collect(acc: Any, tags: dict[str, Any], points: _Points) -> None:
    """The accumulator's legacy scalars and 0-d ``scalars``-plugin tensors, as points."""
    from tensorboard.util.tensor_util import make_ndarray

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


def _unreadable(path: Path) -> str:
    try:
        size = path.stat().st_size
    except OSError:
        size = 0
    if size == 0:
        return "is empty (the writer never flushed)"
    return f"holds no readable event in {size} bytes (damaged or not an event file)"


def read_runs(root: Path) -> tuple[Runs, list[str]]:
    """Every scalar series under the directory ``root`` by run, and a warning per damaged file.

    Raises :class:`LogDirError` when ``root`` holds no event file.
    """
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
    runs: Runs = {}
    with _tensorboard_log() as log:
        for run, paths in sorted(files.items()):
            points: _Points = {}
            for path in paths:
                problem = _read_file(path, points, log)
                if problem:
                    warnings.append(f"{path.relative_to(root).as_posix()} {problem}")
            if points:
                runs[run] = {tag: _series(run, tag, rows) for tag, rows in sorted(points.items())}
    return runs, warnings


def _series(run: str, tag: str, rows: list[tuple[int, float, float]]) -> ScalarSeries:
    """``(step, wall time, value)`` rows as a read-only series ordered by step (ties keep
    write order)."""
    order = sorted(range(len(rows)), key=lambda i: rows[i][0])  # stable
    steps = np.array([rows[i][0] for i in order], dtype=np.int64)
    walls = np.array([rows[i][1] for i in order], dtype=np.float64)
    values = np.array([rows[i][2] for i in order], dtype=np.float64)
    for a in (steps, walls, values):
        a.setflags(write=False)
    return ScalarSeries(run, tag, steps, values, walls)


def read_scalars(logdir: str | os.PathLike[str]) -> Runs:
    """Every scalar series under ``logdir``: ``{run: {tag: ScalarSeries}}``, runs sorted.

    Raises :class:`LogDirError` when ``logdir`` is missing, is a file, or holds no event file.
    Damaged files are skipped past (what could be read is kept).

    Example:
        >>> read_scalars("logs")["train"]["epoch_loss"].values  # doctest: +SKIP
        array([2.31, 1.72, 1.40])
    """
    runs, _ = read_runs(check_logdir(logdir))
    return runs
