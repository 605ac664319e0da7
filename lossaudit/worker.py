"""The audit's worker thread: runs each step with a time limit, never blocking the caller.

TensorFlow sets up per-thread state on a thread's first call, which costs far more than a
property's own work, so every step of one audit (the probe, each property, the analysis) runs
on one long-lived thread. A step that overruns its limit is abandoned with the thread; being a
daemon, it never keeps the process alive at exit.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["Worker"]


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
            done.set()

    def run(self, fn: Callable[[], Any], timeout: float) -> tuple[bool, Any]:
        """``(True, value)``; ``(False, None)`` on timeout. Exceptions from ``fn`` propagate."""
        box: dict[str, Any] = {}
        done = threading.Event()
        self._jobs.put((fn, box, done))
        if not done.wait(timeout):
            return False, None
        if "error" in box:
            raise box["error"]
        return True, box["value"]

    def close(self, *, hung: bool) -> None:
        """Stop the thread; wait for it unless a step hung (then it is abandoned)."""
        self._jobs.put(None)
        if not hung:
            self._thread.join()
