"""What a running audit tells its watchdog, so that no hang outlives its time limit.

The ``lossaudit`` command runs each audit in a child process that a light parent supervises
(:mod:`lossaudit.supervisor`). Around every step that runs the user's code (importing the
target, the first call, each property, the gate's measurements) the child says
``begin(label, limit)`` and ``end()`` on a pipe; the parent stops a child whose step outlives
its limit plus :data:`GRACE` seconds. A step that overruns is normally abandoned in-process by
the audit's worker (:mod:`lossaudit.worker`), well inside the grace; only a loss stuck in code
that holds the interpreter (GIL), which no thread and no signal handler can interrupt, is
stopped from outside. ``done(code)`` says the command finished on its own, so a child that
vanishes without it (``os._exit`` in the loss, a native crash) fails closed.

Without a supervisor (``lossaudit.audit`` from Python, the in-process ``cli.main``) every
function here does nothing, unless :func:`arm_exit_fallback` was called: then a step that
outlives its limit plus the grace ends the process with a traceback of every thread on stderr
(:func:`faulthandler.dump_traceback_later`, which needs no interpreter lock). The pytest
plugin arms it, so a ``pytest`` run ends too.
"""

from __future__ import annotations

import contextlib
import faulthandler
import json
import os
import sys
from collections.abc import Iterator
from typing import Any

__all__ = [
    "DUMP_ENV",
    "ENV",
    "GRACE",
    "arm_exit_fallback",
    "begin",
    "done",
    "end",
    "step",
    "supervised",
]

#: The pipe's file descriptor in the child; set by the supervisor, read once at import.
ENV = "LOSSAUDIT_WATCHDOG_FD"
#: Where the child dumps every thread's stack when the supervisor asks (SIGUSR1).
DUMP_ENV = "LOSSAUDIT_WATCHDOG_DUMP"
#: Seconds a step may outlive its limit before the process is stopped from outside.
GRACE = 5.0

_state: dict[str, Any] = {"channel": None, "fallback": None, "armed": False}


def _open_channel() -> None:
    fd_text = os.environ.pop(ENV, None)
    dump = os.environ.pop(DUMP_ENV, None)
    if not fd_text:
        return
    try:
        fd = int(fd_text)
        os.set_inheritable(fd, False)  # the loss's own subprocesses must not hold the pipe
        _state["channel"] = os.fdopen(fd, "w", buffering=1, encoding="utf-8")
    except (ValueError, OSError):
        return
    if dump and hasattr(faulthandler, "register"):
        import signal

        try:
            _state["dump"] = open(dump, "w", encoding="utf-8")  # kept open for the process
            faulthandler.register(signal.SIGUSR1, file=_state["dump"], all_threads=True)
        except (OSError, AttributeError, ValueError):
            pass


_open_channel()


def supervised() -> bool:
    """True in a child process a supervisor watches."""
    return _state["channel"] is not None


def _send(message: dict[str, Any]) -> None:
    channel = _state["channel"]
    if channel is None:
        return
    try:
        channel.write(json.dumps(message) + "\n")
    except (OSError, ValueError):  # the supervisor is gone: nothing left to tell
        _state["channel"] = None


def begin(label: str, limit: float) -> None:
    """A step running user code starts; it should end within ``limit`` seconds."""
    _send({"event": "begin", "label": label, "limit": float(limit)})
    if _state["fallback"] is not None and _state["channel"] is None:
        faulthandler.dump_traceback_later(float(limit) + GRACE, exit=True, file=_state["fallback"])
        _state["armed"] = True


def end() -> None:
    """The step started by :func:`begin` ended (finished, or abandoned in-process)."""
    _send({"event": "end"})
    if _state["armed"]:
        faulthandler.cancel_dump_traceback_later()
        _state["armed"] = False


@contextlib.contextmanager
def step(label: str, limit: float) -> Iterator[None]:
    """:func:`begin` and :func:`end` around a block."""
    begin(label, limit)
    try:
        yield
    finally:
        end()


def done(code: int) -> None:
    """The command finished on its own with exit ``code``: tell the supervisor."""
    _send({"event": "done", "code": int(code)})


def arm_exit_fallback(fd: int | None = None) -> None:
    """Without a supervisor, end the process when a step outlives its limit plus the grace:
    a traceback of every thread goes to file descriptor ``fd`` (default: a copy of stderr as
    it is now) and the exit code is 1."""
    if _state["fallback"] is not None:
        return
    if fd is None:
        try:
            fd = os.dup(sys.__stderr__.fileno()) if sys.__stderr__ is not None else None
        except (AttributeError, OSError, ValueError):
            fd = None
    _state["fallback"] = fd
