"""Bounded reads of what the user points us at: key files, stdin, the config file.

Each read is capped in size and, where the other end may never answer (a pipe, a FIFO, a
terminal left open), in time. Opening never blocks: a FIFO without a writer opens at once.
Standard library only.
"""

from __future__ import annotations

import os
import stat
import sys
import time
from pathlib import Path

from structocr_cli.api.deadline import run_within
from structocr_cli.api.errors import UsageError

KEY_CAP = 4096
"""Bytes: no API key comes near it; /dev/zero would fill memory."""
CONFIG_CAP = 1024 * 1024


class ReadError(Exception):
    """Why a read failed, in words that fit after "cannot read X: "; ``kind`` says which
    case it is: "directory", "not_regular", "too_large", "silent", "permission",
    "descriptors" (the process or system has no file descriptor left) or "os"."""

    def __init__(self, reason: str, kind: str = "os") -> None:
        super().__init__(reason)
        self.kind = kind


def read_path(path: Path, cap: int, deadline: float | None, regular_only: bool) -> bytes:
    """The bytes of the file at ``path``, at most ``cap``, read before ``deadline``
    (``time.monotonic()``); anything but a regular file is refused when ``regular_only``,
    and read as a stream otherwise (``<(pass show key)`` is a pipe). A missing file raises
    ``FileNotFoundError``; anything else that fails, ``ReadError``."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise _os_error(exc) from None
    try:
        mode = os.fstat(fd).st_mode
    except OSError as exc:
        os.close(fd)
        raise ReadError(exc.strerror or str(exc)) from None
    if stat.S_ISDIR(mode):
        os.close(fd)
        raise ReadError("it is a directory", "directory")
    if not stat.S_ISREG(mode) and regular_only:
        os.close(fd)
        raise ReadError("it is not a regular file", "not_regular")
    os.set_blocking(fd, True)
    return read_fd(fd, cap, deadline, close=True)


def read_fd(fd: int, cap: int, deadline: float | None, close: bool = False) -> bytes:
    """At most ``cap`` bytes from ``fd`` until its end, before ``deadline``.

    The read runs in a worker that owns ``fd`` when ``close`` is set: if the deadline passes,
    the worker is left blocked and the descriptor stays open rather than being closed (and its
    number reused) under it.
    """

    def read() -> bytes:
        chunks: list[bytes] = []
        size = 0
        try:
            while chunk := os.read(fd, 65536):
                size += len(chunk)
                if size > cap:
                    raise ReadError(f"it holds more than {_size(cap)}", "too_large")
                chunks.append(chunk)
        except OSError as exc:
            raise ReadError(exc.strerror or str(exc)) from None
        finally:
            if close:
                os.close(fd)
        return b"".join(chunks)

    if deadline is None:
        return read()
    seconds = max(deadline - time.monotonic(), 0.0)
    return run_within(seconds, read, _silent, "structocr-read")


def read_stdin(cap: int, deadline: float | None, what: str) -> str:
    """Text piped on stdin, at most ``cap`` bytes, before ``deadline``."""
    stream = sys.stdin
    if stream is None or stream.closed:
        raise UsageError(
            f"stdin is closed, so {what} cannot be read from it", "Pipe it in, or pass a file"
        )
    try:
        fd = stream.fileno()
    except (OSError, ValueError):  # an in-memory stream (tests, embedding)
        text = stream.read(cap + 1)
        if len(text.encode("utf-8", errors="replace")) > cap:
            raise UsageError(
                f"cannot read {what} from stdin: it holds more than {_size(cap)}"
            ) from None
        return text
    try:
        raw = read_fd(fd, cap, deadline)
    except ReadError as exc:
        raise UsageError(f"cannot read {what} from stdin: {exc}") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"cannot read {what} from stdin: it is not UTF-8 text") from None


def _os_error(exc: OSError) -> ReadError:
    import errno

    reason = exc.strerror or str(exc)
    if exc.errno in (errno.EMFILE, errno.ENFILE):  # not the file's fault: say so
        return ReadError(f"{reason} (no file descriptor left)", "descriptors")
    if exc.errno in (errno.EACCES, errno.EPERM):
        return ReadError(reason, "permission")
    if exc.errno == errno.ENXIO:  # a socket, or a device with nothing behind it
        return ReadError("it is not a regular file", "not_regular")
    return ReadError(reason)


def _silent() -> ReadError:
    return ReadError("nothing arrived before the --timeout deadline", "silent")


def _size(cap: int) -> str:
    return f"{cap // 1024 // 1024} MiB" if cap >= 1024 * 1024 else f"{cap // 1024} KiB"
