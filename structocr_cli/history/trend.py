"""The trend of credits remaining: a Theil-Sen line through the last days' observations, and
the date it reaches zero. Pure: no I/O, no clock (``now`` is an argument).

Theil-Sen takes the median of the slopes between every pair of points, so a burst or a
quiet weekend moves it far less than it moves an average. The range is Sen's confidence
interval for that slope (about 95%): the run-out date at the fastest and at the slowest
plausible rate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import NamedTuple

from structocr_cli.api import clock  # its date arithmetic only: the time is an argument

DAY = 86400.0
MIN_SPAN = DAY
"""The history a trend needs: at least 24 hours between its first and last observation."""
MAX_DAYS = 36500.0
"""A run-out further away than this is not a date anyone plans with."""
_Z95 = 1.96


class Trend(NamedTuple):
    daily_burn: float
    """Credits used per day at the trend's rate (negative: credits are growing)."""
    runway_days: float | None
    """Days from now until credits run out at that rate; None: not within 100 years."""
    runout: datetime | None
    runout_early: datetime | None
    """The run-out at the fastest plausible rate."""
    runout_late: datetime | None
    """The run-out at the slowest plausible rate; None: perhaps never."""
    window_days: float
    """The stretch of history the line was fitted to, in days."""
    points: int


def slopes(points: Sequence[tuple[float, float]]) -> tuple[float, float, float] | None:
    """Theil-Sen: the median slope of ``points`` (x, y) and Sen's ~95% interval for it, or
    None when no two points have different x."""
    pairs = sorted(
        (y2 - y1) / (x2 - x1)
        for i, (x1, y1) in enumerate(points)
        for x2, y2 in points[i + 1 :]
        if x2 != x1
    )
    count = len(pairs)
    if not count:
        return None
    middle = count // 2
    median = pairs[middle] if count % 2 else (pairs[middle - 1] + pairs[middle]) / 2
    n = len(points)
    spread = _Z95 * math.sqrt(n * (n - 1) * (2 * n + 5) / 18)
    low = pairs[max(math.floor((count - spread) / 2), 0)]
    high = pairs[min(math.ceil((count + spread) / 2), count - 1)]
    return median, low, high


def trend(
    points: Sequence[tuple[float, float]], remaining: float, latest: float, now: datetime
) -> Trend | None:
    """The trend of ``points`` (Unix time, credits remaining) spanning at least a day, from
    ``remaining`` credits at ``latest`` (Unix time); None with less history than that."""
    if len(points) < 2:
        return None
    times = [x for x, _ in points]
    span = max(times) - min(times)
    if span < MIN_SPAN:
        return None
    fitted = slopes([((x - times[0]) / DAY, y) for x, y in points])
    if fitted is None:
        return None
    median, low, high = fitted
    burn = -median
    if not math.isfinite(burn):
        return None
    anchor = datetime.fromtimestamp(latest, timezone.utc)
    runout = _runout(remaining, -median, anchor)
    runway = None
    if runout is not None:
        runway = max((runout - now).total_seconds() / DAY, 0.0)
    return Trend(
        daily_burn=burn,
        runway_days=runway,
        runout=runout,
        runout_early=_runout(remaining, -low, anchor),
        runout_late=_runout(remaining, -high, anchor),
        window_days=span / DAY,
        points=len(points),
    )


def _runout(remaining: float, burn: float, anchor: datetime) -> datetime | None:
    """When ``remaining`` credits are gone at ``burn`` per day from ``anchor``."""
    if not math.isfinite(burn) or burn <= 0:
        return None
    days = max(remaining, 0.0) / burn
    if not math.isfinite(days) or days > MAX_DAYS:
        return None
    return clock.days_after(anchor, days)
