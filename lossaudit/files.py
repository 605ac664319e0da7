"""Writing what lossaudit produces: every file whole or not at all.

A report, a baseline, a plot: each is written to a temporary file in the same directory,
flushed and synced, then renamed over the target, so a reader (or a Ctrl-C) never sees half a
file. A path that cannot take a file is refused before any work is spent on its content.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from lossaudit.errors import UsageError

__all__ = ["check_writable", "report_stream", "write_atomic", "write_or_explain"]


def check_writable(path: Path, what: str = "--out") -> None:
    """Refuse an output path that cannot take a file, before spending time on the audit."""
    directory = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise UsageError(
            f"cannot write {what}: expected a file path; received the directory "
            f"{str(path)!r}. Name a file, e.g. {str(path / 'lossaudit-report.json')!r}."
        )
    if not directory.is_dir():
        raise UsageError(
            f"cannot write {what}: expected a path in an existing directory; received "
            f"{str(path)!r}. Create {str(directory)!r} first or choose another path."
        )


def write_atomic(path: Path, text: str | bytes, what: str = "--out") -> None:
    """Write ``text`` (or bytes) to ``path`` so a reader never sees a half-written file."""
    path = Path(path)
    check_writable(path, what)
    directory = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it private; a report is an ordinary file
        binary = isinstance(text, bytes)
        with os.fdopen(fd, "wb" if binary else "w", encoding=None if binary else "utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_or_explain(path: Path, text: str, what: str) -> None:
    """Write atomically; a path that cannot be written is a usage error, not a traceback."""
    try:
        write_atomic(path, text)
    except OSError as exc:
        raise UsageError(
            f"cannot write {what} to {str(path)!r}: {exc.strerror or exc}. "
            "Choose a path you can write to."
        ) from None


@contextlib.contextmanager
def report_stream() -> Iterator[TextIO]:
    """Standard output for lossaudit's own output alone, for the block's duration.

    Whatever else writes to stdout meanwhile (the loss's ``print``, C code writing to file
    descriptor 1) goes to stderr, so ``--format json`` on stdout stays a JSON document. Yields
    the stream to write the report to.
    """
    real = sys.stdout
    try:
        fd = real.fileno()
        err_fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # a captured or replaced stream: no fds
        sys.stdout = sys.stderr
        try:
            yield real
        finally:
            sys.stdout = real
        return
    real.flush()
    saved = os.dup(fd)
    os.dup2(err_fd, fd)
    stream = open(  # closed below, after the fds are restored
        saved,
        "w",
        encoding=real.encoding,
        errors=real.errors,
        closefd=False,
        newline=None,
    )
    sys.stdout = sys.stderr
    try:
        yield stream
    finally:
        stream.flush()
        sys.stdout = real
        os.dup2(saved, fd)
        stream.close()
        os.close(saved)
