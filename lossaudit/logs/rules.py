"""The status rules, as pure functions of numpy arrays and numbers: no files, no TensorBoard.

:func:`trend` judges one curve on its own (``nan``, ``zero``, ``diverging``, ``responding``,
``flat``); :func:`drowned_by_size` and :func:`pushed_up` then judge a component against the
responding terms it shares the total with (``drowned``). The thresholds are the constants below;
the rules are spelt out in :mod:`lossaudit.logs`.

Example:
    >>> import numpy as np
    >>> t = trend(np.array([1.0, 0.8, 0.7]), np.arange(3))
    >>> t.status, t.rising, t.reason
    (<LogStatus.RESPONDING: 'responding'>, False, 'falls 30% (first-fifth median 1 -> last-fifth median 0.7)')
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lossaudit.logs.data import LogStatus

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


def format_number(value: float) -> str:
    """A number as the diagnosis prints it: 4 significant digits; ``nan``, ``inf``, ``-inf``."""
    if not math.isfinite(value):
        return str(value)
    return f"{value:.4g}"


@dataclass(frozen=True)
class Trend:
    """One curve judged on its own.

    ``head``/``tail`` are the medians of its first and last fifth and ``change`` their difference
    over the larger of the two (``None`` when it cannot be measured). ``barely`` is true for a
    curve that is flat or falls by less than :data:`BARELY_RELATIVE`; ``rising`` for a clear rise
    from the first fifth to the last (a blow-up after a fall is ``diverging`` but not ``rising``).
    """

    status: LogStatus
    reason: str
    head: float
    tail: float
    change: float | None
    barely: bool = False
    rising: bool = False


@dataclass(frozen=True)
class _Movement:
    """How far a curve of ``n >= 2`` finite points moved, and how much of that is noise."""

    head: float
    tail: float
    change: float
    relative: float
    noise: float

    @property
    def clear(self) -> bool:
        return abs(self.relative) >= FLAT_RELATIVE and abs(self.change) > self.noise

    @property
    def where(self) -> str:
        return (
            f"first-fifth median {format_number(self.head)} -> "
            f"last-fifth median {format_number(self.tail)}"
        )


def trend(values: np.ndarray, steps: np.ndarray) -> Trend:
    """Judge one curve: ``values`` and ``steps`` have shape ``(n,)``, ``n >= 1``, by step."""
    early = _nonfinite(values, steps) or _all_zero(values) or _single(values)
    if early is not None:
        return early
    movement = _movement(values)
    return _blowup(values, steps, movement) or _judge(movement)


def _nonfinite(values: np.ndarray, steps: np.ndarray) -> Trend | None:
    bad = ~np.isfinite(values)
    if not bad.any():
        return None
    first = int(steps[np.argmax(bad)])
    kinds = sorted({"NaN" if np.isnan(v) else "inf" for v in values[bad]})
    reason = (
        f"{int(bad.sum())} of {len(values)} values are {'/'.join(kinds)}, the first at step {first}"
    )
    return Trend(LogStatus.NAN, reason, math.nan, math.nan, None)


def _all_zero(values: np.ndarray) -> Trend | None:
    if not np.all(values == 0):
        return None
    reason = f"exactly 0 at all {len(values)} logged steps (e.g. a softmax over a single class)"
    return Trend(LogStatus.ZERO, reason, 0.0, 0.0, None)


def _single(values: np.ndarray) -> Trend | None:
    if len(values) >= 2:
        return None
    v = float(values[0])
    reason = "only one value was logged: movement cannot be judged"
    return Trend(LogStatus.FLAT, reason, v, v, None, barely=True)


def _movement(values: np.ndarray) -> _Movement:
    """Medians of the first and last fifth (they shrug off noise and spikes), and the noise: the
    median absolute deviation of the step-to-step differences (robust to the trend)."""
    k = max(1, math.ceil(len(values) / 5))
    head = float(np.median(values[:k]))
    tail = float(np.median(values[-k:]))
    scale = max(abs(head), abs(tail)) or float(np.max(np.abs(values)))
    change = tail - head
    diffs = np.diff(values)
    sigma = 1.4826 * float(np.median(np.abs(diffs - np.median(diffs)))) / math.sqrt(2)
    # standard error of the difference of two medians of k points (median's efficiency: 1.2533)
    noise = NOISE_Z * 1.2533 * sigma * math.sqrt(2 / k)
    return _Movement(head, tail, change, change / scale, noise)


def _blowup(values: np.ndarray, steps: np.ndarray, m: _Movement) -> Trend | None:
    """A curve whose last fifth ends far above its lowest fifth, beyond the noise."""
    # Medians of fifths, not a running minimum: the minimum of a noisy curve sits in its noise.
    blocks = np.array_split(np.arange(len(values)), min(5, len(values)))
    medians = [float(np.median(values[b])) for b in blocks]
    low = int(np.argmin(medians))
    best = medians[low]
    if not (best > 0 and m.tail >= BLOWUP_FACTOR * best and m.tail - best > m.noise):
        return None
    span = f"steps {int(steps[blocks[low][0]])}-{int(steps[blocks[low][-1]])}"
    reason = (
        f"blows up: last-fifth median {format_number(m.tail)} is {m.tail / best:.3g}x the lowest "
        f"fifth's ({format_number(best)}, {span})"
    )
    return Trend(LogStatus.DIVERGING, reason, m.head, m.tail, m.relative)


def _judge(m: _Movement) -> Trend:
    """Responding (a clear fall), diverging (a clear rise) or flat (anything else)."""
    if m.clear and m.change < 0:
        reason = f"falls {abs(m.relative):.0%} ({m.where})"
        barely = abs(m.relative) < BARELY_RELATIVE
        return Trend(LogStatus.RESPONDING, reason, m.head, m.tail, m.relative, barely=barely)
    if m.clear:
        reason = f"rises {m.relative:.0%} ({m.where})"
        return Trend(LogStatus.DIVERGING, reason, m.head, m.tail, m.relative, rising=True)
    if abs(m.relative) < FLAT_RELATIVE:
        why = f"moves {m.relative:+.1%} ({m.where}), under the {FLAT_RELATIVE:.0%} that counts as movement"
    else:
        why = (
            f"moves {m.relative:+.1%} ({m.where}), within the noise "
            f"(+/-{format_number(m.noise)} at {NOISE_Z:g} standard errors)"
        )
    return Trend(LogStatus.FLAT, why, m.head, m.tail, m.relative, barely=True)


def typical(values: np.ndarray) -> float:
    """A curve's typical size: the median of ``|values|``."""
    return float(np.median(np.abs(values)))


@dataclass(frozen=True)
class Drowning:
    """Why a component is ``drowned``: ``share`` of the responding ``reference``'s size."""

    reason: str
    share: float
    reference: str


def drowned_by_size(t: Trend, size: float, peers: Sequence[tuple[str, float]]) -> Drowning | None:
    """A barely moving component (``t.barely``) of typical ``size`` below :data:`DROWNED_SHARE`
    of the largest of ``peers``: ``(label, typical size)`` of the responding series it shares
    the total with (the first of equals wins). Such a term barely steers the optimiser."""
    if not t.barely or not peers:
        return None
    reference, big = max(peers, key=lambda p: p[1])
    share = size / big if big > 0 else math.inf
    if share >= DROWNED_SHARE:
        return None
    movement = (
        "stays flat" if t.status is LogStatus.FLAT else f"falls only {abs(t.change or 0):.0%}"
    )
    reason = (
        f"{movement} at a typical {format_number(size)}, {share:.2%} of the responding "
        f"{reference} (typical {format_number(big)}): the total barely feels it"
    )
    return Drowning(reason, share, reference)


def pushed_up(t: Trend, peers: Sequence[tuple[str, float]]) -> Drowning | None:
    """A rising component (``t.rising``) that started below :data:`PUSHED_SHARE` of the
    largest of ``peers``: ``(label, first-fifth median)`` of the responding components of its
    run. That term's gradient owns the weights they share and pushes this one the wrong way (the
    seed's objects term rising while no_objects over 844 empty anchors falls)."""
    if not t.rising or not peers:
        return None
    reference, head = max(peers, key=lambda p: abs(p[1]))
    big = abs(head)
    share = abs(t.head) / big if big > 0 else math.inf
    if share >= PUSHED_SHARE:
        return None
    reason = (
        f"rises {abs(t.change or 0):.0%} while {reference} falls: over the first fifth of the "
        f"run it is {share:.2%} of {reference}'s size, so that term's gradient owns the weights "
        "they share and pushes this one the wrong way (raise its weight or normalise the other "
        "term; if its target is wrong, a weight will not help: `lossaudit report` checks that)"
    )
    return Drowning(reason, share, reference)
