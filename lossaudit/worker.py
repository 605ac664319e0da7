"""The audit's worker thread: runs each step with a time limit, never blocking the caller.

TensorFlow sets up per-thread state on a thread's first call, which costs far more than a
property's own work, so every step of one audit (the probe, each property, the analysis) runs
on one long-lived thread. A step that overruns its limit is abandoned with the thread; being a
daemon, it never keeps the process alive at exit.

Whatever a step raises comes back to the caller, ``SystemExit`` and ``KeyboardInterrupt``
included: on this thread they can only come from the loss (a real Ctrl-C lands on the main
thread), so they are handed back as the loss's :class:`~lossaudit.errors.LossError` instead of
silently ending the thread and leaving the caller to wait out the whole time limit.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

from lossaudit import watchdog
from lossaudit.errors import LossError

__all__ = ["Worker"]


def _describe(exc: BaseException) -> str:
    """``SystemExit(0)``: a base exception named with its arguments."""
    return f"{type(exc).__name__}({', '.join(map(repr, exc.args))})"


class Worker:
    """One long-lived daemon thread that runs an audit's steps in turn, each with a limit."""

    def __init__(self) -> None:
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
            except BaseException as exc:  # SystemExit, KeyboardInterrupt: the loss's own
                box["error"] = LossError(f"the loss raised {_describe(exc)}")
            finally:
                done.set()

    def run(
        self, fn: Callable[[], Any], timeout: float, label: str = "the loss"
    ) -> tuple[bool, Any]:
        """``(True, value)``; ``(False, None)`` on timeout. Exceptions from ``fn`` propagate.

        ``label`` names the step for the watchdog (:mod:`lossaudit.watchdog`), which stops the
        process should even the wait below never return (a loss holding the GIL).
        """
        box: dict[str, Any] = {}
        done = threading.Event()
        with watchdog.step(label, timeout):
            self._jobs.put((fn, box, done))
            finished = done.wait(timeout)
        if not finished:
            return False, None
        if "error" in box:
            raise box["error"]
        return True, box["value"]

    def close(self, *, hung: bool) -> None:
        """Stop the thread; wait for it unless a step hung (then it is abandoned)."""
        self._jobs.put(None)
        if not hung:
            self._thread.join()
