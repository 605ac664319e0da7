"""Diagnose the loss components a training run already logged to TensorBoard.

``lossaudit report`` tests a loss before training; this package reads what training wrote. It
answers the seed write-up's question ("confidence and no_objects respond to training, but
coordinates and objects do not: is there a bug?") from the event files themselves:

    >>> from lossaudit.logs import diagnose_logdir
    >>> from lossaudit.render.logs import render_logs_text
    >>> diagnosis = diagnose_logdir("logs/20240101-120000")  # doctest: +SKIP
    >>> print(render_logs_text(diagnosis))  # doctest: +SKIP

The package is a small pipeline of its own: :mod:`~lossaudit.logs.read` finds the event files
and reads their scalars with TensorBoard's own reader (the only module that touches TensorBoard
and TensorFlow, inside its functions), :mod:`~lossaudit.logs.tags` says which tags are loss
components, :mod:`~lossaudit.logs.rules` judges the curves (pure numpy) and
:mod:`~lossaudit.logs.data` holds the result; :func:`diagnose` puts them together. The text,
JSON and PNG forms are :mod:`lossaudit.render.logs`'s.

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

Status rules, per series of ``n`` points (thresholds are the constants of :mod:`~lossaudit.logs.rules`)
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

Everything but the reader is pure Python and numpy, so importing this package stays cheap.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from lossaudit.components import BASE_ROLES, COMPONENTS, check_mapping, order_key
from lossaudit.errors import InvalidArgument, did_you_mean, invalid
from lossaudit.logs.data import (
    SCHEMA_VERSION,
    STATUSES,
    ComponentDiagnosis,
    LogDiagnosis,
    LogDirError,
    LogStatus,
    ScalarSeries,
    curves_for_report,
)
from lossaudit.logs.read import check_logdir, read_runs, read_scalars
from lossaudit.logs.rules import (
    BARELY_RELATIVE,
    BLOWUP_FACTOR,
    DROWNED_SHARE,
    FLAT_RELATIVE,
    NOISE_Z,
    PUSHED_SHARE,
    Drowning,
    Trend,
    drowned_by_size,
    pushed_up,
    trend,
    typical,
)
from lossaudit.logs.tags import bare, loss_role

__all__ = [
    "BARELY_RELATIVE",
    "BLOWUP_FACTOR",
    "DROWNED_SHARE",
    "FLAT_RELATIVE",
    "NOISE_Z",
    "PUSHED_SHARE",
    "SCHEMA_VERSION",
    "STATUSES",
    "ComponentDiagnosis",
    "LogDiagnosis",
    "LogDirError",
    "LogStatus",
    "ScalarSeries",
    "curves_for_report",
    "diagnose",
    "diagnose_logdir",
    "loss_role",
    "read_scalars",
]


@dataclass(frozen=True, eq=False)
class _Judged:
    """A loss component's series, its role and its curve judged on its own."""

    series: ScalarSeries
    role: str | None
    trend: Trend


def diagnose(
    runs: Mapping[str, Mapping[str, ScalarSeries]],
    *,
    logdir: str = "",
    components: Mapping[str, str] | None = None,
    warnings: tuple[str, ...] = (),
) -> LogDiagnosis:
    """Apply the status rules (see the package docstring) to series already read.

    ``components`` maps a tag (as logged, or without Keras's ``epoch_``/``batch_``) to a role,
    overriding the name heuristic; the role ``ignore`` drops the tag. Raises
    :class:`LogDirError` when no series looks like a loss component.

    Example:
        >>> import numpy as np
        >>> steps = np.arange(3)
        >>> s = ScalarSeries(".", "epoch_loss", steps, np.array([1.0, 0.8, 0.7]), steps * 1.0)
        >>> [(c.name, c.component, c.status.value) for c in diagnose({".": {"epoch_loss": s}}).components]
        [('epoch_loss', 'total', 'responding')]
    """
    mapping = dict(components or {})
    _check_explicit(mapping, runs)
    chosen, ignored = _choose(runs, mapping)
    if not chosen:
        raise _no_components(logdir, ignored, warnings)
    judged = [_Judged(s, role, trend(s.values, s.steps)) for s, role in chosen]
    out = tuple(_diagnosis(j, _drowning(j, judged)) for j in judged)
    return LogDiagnosis(
        logdir=logdir, components=out, ignored=tuple(ignored), warnings=tuple(warnings)
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
    runs, warnings = read_runs(check_logdir(logdir))
    return diagnose(runs, logdir=str(logdir), components=components, warnings=tuple(warnings))


def _check_explicit(
    components: Mapping[str, str], runs: Mapping[str, Mapping[str, ScalarSeries]]
) -> None:
    tags = {t for series in runs.values() for t in series}
    known = tags | {bare(t) for t in tags}
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


def _choose(
    runs: Mapping[str, Mapping[str, ScalarSeries]], components: Mapping[str, str]
) -> tuple[list[tuple[ScalarSeries, str | None]], list[str]]:
    """The loss components with their roles (in report order within each run), and the labels
    of the other tags."""
    chosen: list[tuple[ScalarSeries, str | None]] = []
    ignored: list[str] = []
    for series in runs.values():
        for s in series.values():
            is_loss, role = loss_role(s.tag, components)
            if is_loss:
                chosen.append((s, role))
            else:
                ignored.append(s.label)
    chosen.sort(key=lambda item: (item[0].run, order_key(item[1] or ""), item[0].tag))
    return chosen, ignored


def _is_term(role: str | None) -> bool:
    """A term of the sum (or a loss no role fits), not the total or a combination of terms."""
    return role is None or role in BASE_ROLES


def _drowning(me: _Judged, judged: Sequence[_Judged]) -> Drowning | None:
    """Whether ``me`` is drowned next to the responding series it shares the total with."""
    if me.role == "total":
        return None
    peers = [j for j in judged if j is not me and j.trend.status is LogStatus.RESPONDING]
    run = me.series.run
    if me.trend.rising:
        mine = [j for j in peers if _is_term(j.role) and j.series.run == run]
        return pushed_up(me.trend, [(j.series.label, j.trend.head) for j in mine])
    shared = [j for j in peers if j.series.run == run or j.role == "total"]
    sizes = [(j.series.label, typical(j.series.values)) for j in shared]
    return drowned_by_size(me.trend, typical(me.series.values), sizes)


def _diagnosis(j: _Judged, drowning: Drowning | None) -> ComponentDiagnosis:
    s, t = j.series, j.trend
    finite = s.values[np.isfinite(s.values)]
    return ComponentDiagnosis(
        name=s.tag,
        run=s.run,
        component=j.role,
        status=t.status if drowning is None else LogStatus.DROWNED,
        reason=t.reason if drowning is None else drowning.reason,
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
        share=None if drowning is None else drowning.share,
        reference=None if drowning is None else drowning.reference,
        series=s,
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
        f"loss component (a name with 'loss' in it, or {'/'.join(COMPONENTS)}); "
        f"received {received}. {fix}"
    )
