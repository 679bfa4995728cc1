"""Writing the config file: the only module that imports tomlkit.

Every change is a locked read-modify-write, so concurrent writers never lose each other's
changes, and an atomic replace, so a crash at any moment leaves the old file or the new one:
- an exclusive lock on ``config.toml.lock`` beside the file, held across the whole change;
- the new text goes to a 0600 temporary file in the same directory, flushed and fsynced,
  then ``os.replace``-d over the old one (which also tightens a looser old file);
- a file that does not parse is never rewritten; symlinks (file or directory) are refused,
  so a write cannot be redirected to another file.
tomlkit keeps comments, order and unknown keys of a hand-edited file.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.items import Table

from structocr_cli.api.errors import UsageError
from structocr_cli.settings.config import Config, parse_config, read_config_bytes

Change = Callable[[Any, Config], None]
"""Edits the tomlkit document in place; the Config is the same file, checked."""


def _refuse_symlinks(path: Path) -> None:
    for candidate, what in ((path, "config file"), (path.parent, "config directory")):
        if candidate.is_symlink():
            raise UsageError(
                f"refusing to write the {what} {candidate}: it is a symbolic link",
                "Writing through a link could overwrite another file; point STRUCTOCR_CONFIG "
                f"at the real path ({candidate.resolve()})",
            )


def _refuse_special(path: Path) -> None:
    """Only a regular file is replaced: ``os.replace`` over /dev/null (an empty config for
    reading) would turn the device into a file holding the key."""
    import stat

    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
    if stat.S_ISREG(mode) or stat.S_ISLNK(mode):  # links: _refuse_symlinks says why
        return
    kinds = ((stat.S_ISDIR, "a directory"), (stat.S_ISCHR, "a device"),
             (stat.S_ISBLK, "a device"), (stat.S_ISFIFO, "a named pipe"),
             (stat.S_ISSOCK, "a socket"))  # fmt: skip
    kind = next((name for test, name in kinds if test(mode)), "not a regular file")
    raise UsageError(
        f"refusing to write the config file {path}: it is {kind}, not a regular file",
        "Point STRUCTOCR_CONFIG at a regular file, or at a path that does not exist yet",
    )


def _ensure_directory(directory: Path) -> None:
    try:
        # Only directories made here are 0700; an existing one (maybe shared) is left alone.
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create {directory}: {exc.strerror or exc}") from None


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    lock_path = path.with_name(path.name + ".lock")
    try:
        # O_NOFOLLOW: a planted link must not make us create or open its target.
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
    except OSError as exc:
        if lock_path.is_symlink():
            raise UsageError(
                f"refusing to use the lock file {lock_path}: it is a symbolic link",
                "Remove the link; structocr creates the lock file itself",
            ) from None
        raise UsageError(f"cannot open {lock_path}: {exc.strerror or exc}") from None
    try:
        if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
            import msvcrt

            msvcrt.locking(fd, msvcrt.LK_LOCK, 1)
        else:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _temp_prefix(path: Path) -> str:
    return f".{path.name}."


def _write_atomically(path: Path, text: str) -> None:
    try:
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=_temp_prefix(path), suffix=".tmp")
    except OSError as exc:
        raise _not_written(path, exc) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException as exc:
        Path(temp).unlink(missing_ok=True)
        if isinstance(exc, OSError):  # a full disk, a failing device: the old file stands
            raise _not_written(path, exc) from None
        raise
    with contextlib.suppress(OSError):  # the new file is in place; this only hastens it
        _fsync_directory(path.parent)
    # Leftovers of writers killed mid-write; no writer is active while we hold the lock.
    for stale in path.parent.glob(_temp_prefix(path) + "*.tmp"):
        stale.unlink(missing_ok=True)


def _not_written(path: Path, exc: OSError) -> UsageError:
    return UsageError(
        f"cannot write {path}: {exc.strerror or exc}; the file is unchanged",
        "Free some disk space or fix the directory's permissions, then retry",
    )


def _fsync_directory(directory: Path) -> None:
    if os.name == "nt":  # pragma: no cover - directories cannot be opened there
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def update(path: Path, change: Change) -> None:
    """Apply ``change`` to the file at ``path`` under the lock, atomically."""
    _refuse_symlinks(path)
    _refuse_special(path)  # before the lock file, which would land beside it (/dev)
    _ensure_directory(path.parent)
    _refuse_symlinks(path)
    with _locked(path):
        _refuse_special(path)
        raw = read_config_bytes(path) or b""
        config = parse_config(path, raw)  # a broken file is refused, never rewritten
        document = tomlkit.parse(raw.decode("utf-8"))
        change(document, config)
        _write_atomically(path, tomlkit.dumps(document))


def profile_table(document: Any, name: str) -> Table:
    """The ``[profiles.NAME]`` table, created (after the others) if missing."""
    profiles = document.get("profiles")
    if profiles is None:
        profiles = tomlkit.table(is_super_table=True)
        document["profiles"] = profiles
    table = profiles.get(name)
    if table is None:
        table = tomlkit.table()
        profiles[name] = table
    return table  # type: ignore[no-any-return]


def remove_profile(document: Any, name: str) -> None:
    del document["profiles"][name]
    if document.get("default_profile") == name:
        del document["default_profile"]
