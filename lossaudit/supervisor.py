"""Runs a ``lossaudit`` command in a child process and stops it when the loss will not.

A CI gate is only worth its exit code, so the parent promises three things the audit cannot
promise from inside its own process:

- it ends: the child reports each step that runs user code and its time limit
  (:mod:`lossaudit.watchdog`); a step that outlives its limit plus
  :data:`~lossaudit.watchdog.GRACE` seconds (a loss holding the GIL, which nothing in-process
  can interrupt) is stopped, after the child dumps its stacks so the message can say where;
- it fails closed: a child that ends without saying it finished (``os._exit`` at import or in
  the loss, a crash in native code) is a failure, whatever its exit code;
- it keeps the child's verdict: once the child said it finished, a crash while the interpreter
  shuts down cannot change the exit code.

The parent never imports TensorFlow and adds one light process start (no per-call cost).
The child writes to the same terminal or pipes as the parent, so output is unchanged.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lossaudit import watchdog

__all__ = ["Ended", "run_child"]


@dataclass(frozen=True)
class Ended:
    """How a supervised command ended.

    ``what`` is ``""`` when the child finished on its own (``code`` is its exit code),
    ``"hung"`` when a step outlived its limit and was stopped, ``"exited"`` when the process
    ended without finishing, ``"interrupted"`` when it did not stop within the grace after a
    forwarded Ctrl-C or SIGTERM.
    """

    what: str
    code: int
    returncode: int = 0
    label: str = ""
    limit: float = 0.0
    seconds: float = 0.0
    where: str = ""

    def describe(self) -> str:
        """One sentence for the user: what happened, where, and what it means."""
        step = f"in {self.label}" if self.label else "outside any step that runs the loss"
        if self.what == "hung":
            return (
                f"{self.label or 'a step'} did not finish within its time limit of "
                f"{self.limit:g}s{self.where} and could not be abandoned in-process (the loss "
                "holds the Python interpreter, e.g. in C code or a catastrophic regular "
                f"expression), so lossaudit stopped it after {self.seconds:.0f}s. Fix the hang, "
                "or raise --time-limit (time_limit in [tool.lossaudit]) if the loss is only slow"
            )
        if self.what == "interrupted" and self.returncode == -signal.SIGKILL:
            return (
                f"interrupted; the loss did not stop within {watchdog.GRACE:g}s {step}, so "
                "lossaudit stopped it; no output file was left half-written"
            )
        if self.what == "interrupted":
            return "interrupted; no output file was left half-written"
        if self.returncode < 0:
            try:
                how = f"was killed by {signal.Signals(-self.returncode).name}"
            except ValueError:
                how = f"was killed by signal {-self.returncode}"
        else:
            how = f"exited with code {self.returncode}"
        return (
            f"the audit's process {how} {step}{self.where} before the audit finished: the "
            "loss or the code it imports ended the process (os._exit, a crash in native code), "
            "so nothing after that point was audited and the gate fails closed"
        )


def _skip_frame(path: str) -> bool:
    """Frames of lossaudit, the libraries it drives and the standard library."""
    import sysconfig

    here = str(Path(__file__).resolve().parent) + os.sep
    stdlib = sysconfig.get_paths().get("stdlib", "\0")
    parts = (f"{os.sep}{name}{os.sep}" for name in ("tensorflow", "keras", "hypothesis", "numpy"))
    return (
        path.startswith((here, stdlib, "<"))
        or any(p in path for p in parts)
        or "__autograph_generated" in path
    )


_FRAME = re.compile(r'^\s*File "(?P<path>[^"]+)", line (?P<line>\d+) in (?P<func>\S+)')


def where_from_dump(text: str) -> str:
    """``" (at file.py:12 in name)"``: the innermost user frame of a faulthandler dump,
    other threads than the one that took the dump first (that is the main thread, waiting);
    for a loss traced by ``tf.function`` the function autograph converted; ``""`` when none."""
    blocks = re.split(r"\n(?=(?:Current thread|Thread) 0x)", text)
    blocks.sort(key=lambda b: b.startswith("Current thread"))
    frames = [m for block in blocks for m in map(_FRAME.match, block.splitlines()) if m]
    for m in frames:
        if not _skip_frame(m["path"]):
            return f" (at {m['path']}:{m['line']} in {m['func']})"
    for m in frames:
        if "__autograph_generated" in m["path"] and m["func"].startswith("tf__"):
            return f" (in {m['func'].removeprefix('tf__')}, traced by tf.function)"
    return ""


@contextlib.contextmanager
def _forwarded_signals(proc: subprocess.Popen[Any], received: list[int]) -> Iterator[None]:
    """Ctrl-C and SIGTERM sent to the parent go to the child as a Ctrl-C (it reports, leaves
    no file half-written and exits 130); the parent itself keeps watching."""

    def forward(signum: int, _frame: Any) -> None:
        received.append(signum)
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGINT)

    saved = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(ValueError):  # not the main thread: leave signals alone
            saved[sig] = signal.signal(sig, forward)
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def _stop(proc: subprocess.Popen[Any], dump: Path) -> str:
    """Ask the child for its stacks, kill it, and say where the loss was."""
    with contextlib.suppress(ProcessLookupError, AttributeError):
        proc.send_signal(signal.SIGUSR1)
        # faulthandler writes from its signal handler without the GIL; give it a moment.
        for _ in range(40):
            if dump.stat().st_size > 0 or proc.poll() is not None:
                break
            time.sleep(0.05)
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    proc.wait()
    try:
        return where_from_dump(dump.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return ""


class _Steps:
    """The child's messages as they arrive: the open step, and its exit code once done."""

    def __init__(self) -> None:
        self.pending = b""
        self.label = ""
        self.limit = 0.0
        self.started: float | None = None
        self.code: int | None = None

    def feed(self, chunk: bytes) -> None:
        self.pending += chunk
        *lines, self.pending = self.pending.split(b"\n")
        for line in lines:
            try:
                message = json.loads(line)
            except ValueError:
                continue
            event = message.get("event")
            if event == "begin":
                self.label = str(message.get("label", ""))
                self.limit = float(message.get("limit", 0.0))
                self.started = time.monotonic()
            elif event == "end":
                self.started = None
            elif event == "done":
                self.code = int(message.get("code", 1))

    @property
    def deadline(self) -> float | None:
        if self.started is None:
            return None
        return self.started + self.limit + watchdog.GRACE


def run_child(argv: Sequence[str]) -> Ended:
    """Run ``python -m lossaudit.cli ARGV`` supervised; return how it ended."""
    read_fd, write_fd = os.pipe()
    handle, dump_name = tempfile.mkstemp(prefix="lossaudit-stacks-", suffix=".txt")
    os.close(handle)
    dump = Path(dump_name)
    env = {**os.environ, watchdog.ENV: str(write_fd), watchdog.DUMP_ENV: dump_name}
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "lossaudit.cli", *argv], pass_fds=(write_fd,), env=env
        )
    except BaseException:
        os.close(read_fd)
        dump.unlink(missing_ok=True)
        raise
    finally:
        os.close(write_fd)
    received: list[int] = []
    try:
        with _forwarded_signals(proc, received):
            return _watch(proc, read_fd, dump, received)
    finally:
        os.close(read_fd)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        dump.unlink(missing_ok=True)


def _watch(proc: subprocess.Popen[Any], read_fd: int, dump: Path, received: list[int]) -> Ended:
    steps = _Steps()
    open_pipe = True
    stop_after: float | None = None  # set by a forwarded signal: the child has the grace
    while True:
        if received and stop_after is None:
            stop_after = time.monotonic() + watchdog.GRACE
        deadlines = [d for d in (steps.deadline, stop_after) if d is not None]
        wait = min([0.5, *(max(0.0, d - time.monotonic()) for d in deadlines)])
        if open_pipe:
            ready, _, _ = select.select([read_fd], [], [], wait)
            if ready:
                chunk = os.read(read_fd, 65536)
                if chunk:
                    steps.feed(chunk)
                    continue
                open_pipe = False  # every writer closed it: the child is ending
        else:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(wait)
        returncode = proc.poll()
        if returncode is None and steps.code is not None and stop_after is None:
            # Finished, but not exiting (a thread the loss left running, say): the verdict
            # stands; the process gets the grace to end.
            stop_after = time.monotonic() + watchdog.GRACE
        if returncode is not None:
            if open_pipe:  # what the child said last, still in the pipe
                with contextlib.suppress(OSError):
                    while chunk := os.read(read_fd, 65536) if _readable(read_fd) else b"":
                        steps.feed(chunk)
            if steps.code is not None:
                return Ended("", steps.code, returncode)
            what = "interrupted" if received else "exited"
            return Ended(what, 1, returncode, steps.label if steps.started else "")
        now = time.monotonic()
        if steps.deadline is not None and now >= steps.deadline:
            seconds = now - (steps.started or now)
            where = _stop(proc, dump)
            return Ended("hung", 1, -9, steps.label, steps.limit, seconds, where)
        if stop_after is not None and now >= stop_after:
            _stop(proc, dump)
            if steps.code is not None:
                return Ended("", steps.code, -9)
            return Ended("interrupted", 1, -9, steps.label if steps.started else "")


def _readable(fd: int) -> bool:
    return bool(select.select([fd], [], [], 0)[0])


def closed_outputs(args: Any, ended: Ended, header: dict[str, Any] | None) -> None:
    """What a stopped command still writes, so a CI job shows the failure where it looks:
    ``report`` renders a report with one error in the requested format (to ``--out`` or
    stdout; ``header`` is :func:`lossaudit.audit.report_header`'s, ``None`` when the options
    themselves were wrong); ``check`` prints its verdict and writes it to ``--out``;
    ``baseline`` writes nothing."""
    from lossaudit.components import COMPONENTS
    from lossaudit.files import write_or_explain

    message = ended.describe()
    if args.command == "report" and header is not None:
        from lossaudit.render import render
        from lossaudit.report import Report, Result
        from lossaudit.status import Status

        component = ended.label.split(".", 1)[0]
        named = component in COMPONENTS and "." in ended.label and " " not in ended.label
        result = Result(
            ended.label if named else "total.runs",
            component if named else "total",
            Status.ERROR,
            message,
            seconds=round(ended.seconds, 3),
            hung=ended.what == "hung",
        )
        report = Report(**header, results=(result,), stats={"seconds": round(ended.seconds, 3)})
        text = render(report, args.format)
        if args.out is not None:
            write_or_explain(args.out, text, "the report")
        else:
            sys.stdout.write(text)
    elif args.command == "check":
        text = f"lossaudit check: FAILED: {message}.\n"
        sys.stdout.write(text)
        if args.out is not None:
            write_or_explain(args.out, text, "the check output")
    sys.stdout.flush()


def child_main(main: Any, argv: Sequence[str]) -> int:
    """Run ``main(argv)`` in the supervised child: say when it finished, then leave at once.

    Leaving with ``os._exit`` after the output is flushed and the exit hooks ran skips the
    interpreter's teardown, where TensorFlow can abort (a loss that switched it to graph
    mode), so nothing after the verdict can change the exit code.
    """
    import atexit

    # One Ctrl-C (the terminal's and the one the parent forwards may both arrive) is enough.
    def interrupt_once(_signum: int, _frame: Any) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        raise KeyboardInterrupt

    with contextlib.suppress(ValueError):
        signal.signal(signal.SIGINT, interrupt_once)
    code = int(main(list(argv)))
    watchdog.done(code)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    atexit._run_exitfuncs()
    os._exit(code)
