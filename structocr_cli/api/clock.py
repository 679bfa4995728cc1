"""The one clock: whatever reads the wall-clock time (the forecast, runway and period
progress, stale marks, Retry-After dates, watch timestamps, log lines, the mock's billing
period) asks ``now()``, so that a test sets the time once for all of them. Deadlines and
waits use ``time.monotonic()``, which no date depends on."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone


def _system() -> datetime:
    return datetime.now(timezone.utc)


_source: Callable[[], datetime] = _system


def now() -> datetime:
    """The current time, in UTC."""
    return _source()


def timestamp() -> float:
    """The current time as Unix time (seconds)."""
    return _source().timestamp()


def days_after(moment: datetime, days: float) -> datetime | None:
    """``moment`` plus ``days``; None past the calendar's last day (year 9999), where a
    run-out date from a far-off clock or a tiny burn would overflow."""
    try:
        return moment + timedelta(days=days)
    except OverflowError:
        return None


def use(source: Callable[[], datetime] | None) -> None:
    """Read the time from ``source`` from now on (a test's clock); None: the system's."""
    global _source  # noqa: PLW0603 - the one clock of the process, by design
    _source = source or _system
