"""Writing what lossaudit produces: every file whole or not at all.

A report, a baseline, a plot: each is written to a temporary file in the same directory,
flushed and synced, then renamed over the target, so a reader (or a Ctrl-C) never sees half a
file. A path that cannot take a file is refused before any work is spent on its content: a
directory, a missing or unwritable directory, and anything that is not a regular file (a FIFO,
a device such as ``/dev/null``: the rename would replace it). A symbolic link is written
through: the file it points to is replaced, the link stays. The temporary file's name carries
the writer's process id, so one left behind by a killed writer (``kill -9``) is removed by the
next write to the same path.
"""

from __future__ import annotations

import contextlib
import glob
import os
import stat
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from lossaudit.errors import UsageError

__all__ = ["check_writable", "report_stream", "write_atomic", "write_or_explain"]


def _through_links(path: Path) -> Path:
    """The file a symbolic link (or a chain of them) points to; any other path as it is."""
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def check_writable(path: Path, what: str = "--out") -> None:
    """Refuse an output path that cannot take a file, before spending time on the audit."""
    path = _through_links(Path(path))
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
    try:
        mode = path.stat().st_mode
    except OSError:
        mode = None
    if mode is not None and not stat.S_ISREG(mode):
        raise UsageError(
            f"cannot write {what}: expected a regular file or a new path; received "
            f"{str(path)!r}, {_kind(mode)}. lossaudit writes whole files by renaming over the "
            "target, which would replace it; write to a regular file instead."
        )
    if not os.access(directory, os.W_OK | os.X_OK):
        # The file is replaced by a rename in its directory: the directory must be writable.
        raise UsageError(
            f"cannot write {what}: expected a path in a directory you can write to; received "
            f"{str(path)!r}, whose directory {str(directory)!r} is not writable. Choose another "
            "path or change the directory's permissions."
        )


def write_atomic(path: Path, text: str | bytes, what: str = "--out") -> None:
    """Write ``text`` (or bytes) to ``path`` so a reader never sees a half-written file."""
    path = _through_links(Path(path))
    check_writable(path, what)
    directory = path.parent if str(path.parent) else Path(".")
    _remove_stale(directory, path.name)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=directory)
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


def _remove_stale(directory: Path, name: str) -> None:
    """Remove temporary files of ``name`` whose writer process no longer exists."""
    prefix = f".{name}."
    for tmp in directory.glob(f".{glob.escape(name)}.*.tmp"):
        pid_text = tmp.name[len(prefix) :].split(".", 1)[0]
        if not pid_text.isdigit() or int(pid_text) == os.getpid():
            continue
        try:
            os.kill(int(pid_text), 0)
        except ProcessLookupError:  # the writer is gone: nobody will rename this file
            tmp.unlink(missing_ok=True)
        except (PermissionError, OverflowError, OSError):
            continue  # alive under another user, or not a process id: leave it


def write_or_explain(path: Path, text: str, what: str) -> None:
    """Write atomically; a path that cannot be written is a usage error, not a traceback."""
    try:
        write_atomic(path, text, what)
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
