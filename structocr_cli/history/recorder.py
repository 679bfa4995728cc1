"""Recording as a command does it: every fetched balance added, never an error. A history
that cannot be used costs one warning (per kind of failure) and nothing else: what the
command prints on stdout and its exit code stay as they would be without it."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import urlsplit

from structocr_cli.api import clock
from structocr_cli.history.store import History, HistoryError, observation
from structocr_cli.settings.config import DEFAULT_KEEP_DAYS

if TYPE_CHECKING:
    from structocr_cli.api.model import Balance
    from structocr_cli.history.trend import Trend

T = TypeVar("T")
WINDOW_DAYS = 7.0
PRUNE_EVERY = 86400.0


def host_of(base_url: str) -> str:
    """The base URL's host (and port, if any): where a series' balances came from."""
    return urlsplit(base_url).netloc.rpartition("@")[2].lower()


class Recorder:
    """A history shared by the threads of one command (one connection, one lock)."""

    def __init__(
        self, path: Path, warn: Callable[[str], None], keep_days: float = DEFAULT_KEEP_DAYS
    ) -> None:
        self.history = History(path)
        self.window = WINDOW_DAYS * 86400
        self.keep = keep_days * 86400
        """Each series' observations older than this are deleted as it is recorded."""
        self._warn = warn
        self._lock = threading.Lock()
        self._warned: set[str] = set()
        self._pruned: dict[int, float] = {}
        """When each series was last pruned (Unix time)."""

    def record(self, name: str, base_url: str, api_key: str, balance: Balance) -> None:
        now = clock.timestamp()
        seen = observation(balance, now)

        def add() -> None:
            series = self.history.record(name, host_of(base_url), api_key, seen)
            # A range delete once per series and day: at the first recording of a command, and
            # daily in a long-running one (the exporter, a --watch).
            if abs(now - self._pruned.get(series, -PRUNE_EVERY)) >= PRUNE_EVERY:
                self._pruned[series] = now
                self.history.prune(now - self.keep, series)

        self._guarded(add)

    def trend(self, name: str, base_url: str, api_key: str, now: datetime) -> Trend | None:
        """The key's trend over the window, None when the history has too little (or cannot
        be read: warned about)."""
        from structocr_cli.history.query import series_trend

        def find() -> Trend | None:
            fingerprint = self.history.fingerprint(api_key)
            series = self.history.series_id_of(name, host_of(base_url), fingerprint)
            return None if series is None else series_trend(self.history, series, now, self.window)

        return self._guarded(find)

    def close(self) -> None:
        with self._lock:
            self.history.close()

    def _guarded(self, work: Callable[[], T]) -> T | None:
        with self._lock:
            try:
                return work()
            except HistoryError as exc:
                if exc.kind != "corrupt":
                    self._once(exc.kind, f"history not recorded: {exc}")
                    return None
                moved = self._move_aside()
                self._once("corrupt", f"history: {exc}; {moved}")
            try:  # once more, in the new file
                return work()
            except HistoryError as exc:
                self._once(exc.kind, f"history not recorded: {exc}")
                return None

    def _move_aside(self) -> str:
        """Move a corrupt database (and its journal files) aside, keeping it for a look."""
        self.history.close()
        path = self.history.path
        stamp = clock.now().strftime("%Y%m%dT%H%M%SZ")
        aside = path.with_name(f"{path.name}.corrupt-{stamp}")
        try:
            path.replace(aside)
        except OSError as exc:
            return f"could not move it aside ({exc})"
        for suffix in ("-wal", "-shm"):
            extra = path.with_name(path.name + suffix)
            if extra.exists():
                with contextlib.suppress(OSError):
                    extra.replace(aside.with_name(aside.name + suffix))
        return f"moved it to {aside} and started a new one"

    def _once(self, kind: str, message: str) -> None:
        if kind not in self._warned:
            self._warned.add(kind)
            self._warn(message)
