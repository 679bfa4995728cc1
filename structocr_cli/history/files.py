"""The history's files and what goes wrong with them: the database created 0600 in a 0700
directory and never through a link, the hashing secret beside it, and sqlite3's and the
OS's errors as ``HistoryError``s that say what went wrong."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path


class HistoryError(Exception):
    """The history cannot be used: locked, read-only, full, corrupt, or from a newer release.
    ``kind`` says which, for the caller's advice."""

    def __init__(self, message: str, kind: str = "error") -> None:
        super().__init__(message)
        self.kind = kind


def secret_path(path: Path) -> Path:
    return path.with_name(path.name + ".secret")


def prepare(path: Path) -> None:
    """The directory (0700 when made here) and the file (0600), created before SQLite opens
    it so that it never exists with looser permissions."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags, 0o600)
    try:
        if not _is_regular(fd):
            raise HistoryError(f"{path} is not a regular file", "not_regular")
    finally:
        os.close(fd)


def _is_regular(fd: int) -> bool:
    import stat

    return stat.S_ISREG(os.fstat(fd).st_mode)


def secret(path: Path) -> bytes:
    """The database's hashing secret: 32 random bytes, made on first use, 0600."""
    try:
        with open(path, "rb") as file:
            secret = file.read(64)
        if len(secret) == 32:
            return secret
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise failure(exc, path) from None
    secret = os.urandom(32)
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, flags, 0o600)
        with os.fdopen(fd, "wb") as file:
            file.write(secret)
    except OSError as exc:
        raise failure(exc, path) from None
    return secret


class translated:
    """sqlite3's and the OS's errors as ``HistoryError``s that say what to do."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, exc: BaseException | None, tb: object) -> None:
        if isinstance(exc, (sqlite3.Error, OSError)):
            raise failure(exc, self.path) from None


def failure(exc: BaseException, path: Path) -> HistoryError:
    text = str(exc)
    lowered = text.lower()
    if "locked" in lowered or "busy" in lowered:
        return HistoryError(f"{path} is locked by another process", "locked")
    if "not a database" in lowered or "malformed" in lowered or "corrupt" in lowered:
        return HistoryError(f"{path} is not a usable database ({text})", "corrupt")
    if "readonly" in lowered or "read-only" in lowered or isinstance(exc, PermissionError):
        return HistoryError(f"{path} cannot be written ({text})", "read_only")
    if "full" in lowered or getattr(exc, "errno", None) == 28:
        return HistoryError(f"{path}: the disk is full", "full")
    if isinstance(exc, HistoryError):
        return exc
    return HistoryError(f"{path}: {text}", "error")


__all__ = ["HistoryError", "failure", "prepare", "secret", "secret_path", "translated"]
