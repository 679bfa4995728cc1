"""What the history says over a stretch of time: a series cut into buckets, and its trend.

Both read the database by index seeks (the last observation before each boundary), never
row by row, so a year of per-minute observations costs what a few hundred seeks cost.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from structocr_cli.history.store import History, Observation
from structocr_cli.history.trend import Trend, trend

TREND_POINTS = 100
"""At most this many observations go into a fit (the last one of each equal slice of the
window, every 1.7 hours over 7 days): Theil-Sen compares every pair, so the cost grows with
the square of this (100 points: about 1 ms a series)."""


class Bucket(NamedTuple):
    start: int
    """Unix time the bucket starts (a multiple of its length, so buckets align to UTC)."""
    remaining: float
    """account.credits_remaining at the bucket's last observation."""
    used: float
    """Account credits used during the bucket (all keys)."""
    requests: float
    """Account requests during the bucket (all keys)."""
    key_used: float
    """Credits this key used during the bucket."""


def _counter(after: float, before: float, same_period: bool) -> float:
    """A per-period counter's growth: counted from zero again when the period changed."""
    if not same_period or after < before:
        return max(after, 0.0)
    return after - before


def between(before: Observation, after: Observation) -> tuple[float, float, float]:
    """Account credits used, account requests and this key's credits from one observation to
    a later one. credits_used is all-time (a drop is a correction, not negative use); the
    others restart with each billing period."""
    same = before.period_start == after.period_start
    return (
        max(after.credits_used - before.credits_used, 0.0),
        _counter(after.requests_this_period, before.requests_this_period, same),
        _counter(after.key_credits_used, before.key_credits_used, same),
    )


MOST_BUCKETS = 20_000
"""The most buckets one series may span in one read (a week a minute apart, two years an hour
apart): each costs two index seeks and a row in memory, and more than this is no longer
something to read; ``history export`` gives every observation."""


def bucket_bound(history: History, series: int, since: float, until: float, every: int) -> int:
    """The rows ``buckets`` gives for the observations up to ``until``, or more, and exactly
    that above ``MOST_BUCKETS``: the buckets from the series' first observation in the range
    to its last (two seeks), or when those are too many, the buckets holding an observation
    (one pass over the range's rows, so that a few observations years apart pass)."""
    low = int(since) // every * every
    first = history.first_from(series, low)
    last = history.last_before(series, int(until) + 60)
    if first is None or last is None or first.at > last.at:
        return 0
    span = last.at // every - first.at // every + 1
    if span <= MOST_BUCKETS:
        return span
    return history.buckets_holding(series, first.at, last.at, every)


def buckets(history: History, series: int, since: float, until: float, every: int) -> list[Bucket]:
    """The series from ``since`` to ``until`` (Unix time) in buckets of ``every`` seconds;
    a bucket without an observation is left out, and a stretch without any is skipped in one
    seek, so the cost is that of the buckets with observations."""
    start = int(since) // every * every
    result: list[Bucket] = []
    baseline = history.last_before(series, start)
    while start <= until:
        end = history.last_before(series, start + every)
        if end is None or end.at < start:  # nothing in this bucket: on to the next that has
            later = history.first_from(series, start + every)
            if later is None:
                break
            start = later.at // every * every
            continue
        if baseline is None or baseline.at >= start:
            baseline = history.first_from(series, start) or end
        used, requests, key_used = between(baseline, end)
        result.append(Bucket(start, end.credits_remaining, used, requests, key_used))
        baseline = end
        start += every
    return result


def series_trend(history: History, series: int, now: datetime, window: float) -> Trend | None:
    """The trend of the series over the ``window`` seconds before ``now`` (None: less than a
    day of history there). Fitted after the last top-up in the window: a purchase lifts the
    remaining credits and says nothing about the rate they are used at."""
    start = now.timestamp() - window
    latest = history.last_before(series, now.timestamp() + 60)
    if latest is None or latest.at < start:
        return None
    points: list[Observation] = []
    step = max(window / TREND_POINTS, 60.0)
    seen: set[int] = set()
    edge = start + step
    while edge <= now.timestamp() + step:
        found = history.last_before(series, edge)
        if found is not None and found.at >= start and found.at not in seen:
            seen.add(found.at)
            points.append(found)
        edge += step
    points = _since_top_up(points)
    return trend(
        [(seen.at, seen.credits_remaining) for seen in points],
        latest.credits_remaining,
        latest.at,
        now,
    )


def _since_top_up(points: list[Observation]) -> list[Observation]:
    """The points from the last change of credits_total on."""
    for index in range(len(points) - 1, 0, -1):
        if points[index].credits_total != points[index - 1].credits_total:
            return points[index:]
    return points


__all__ = ["MOST_BUCKETS", "Bucket", "between", "bucket_bound", "buckets", "series_trend"]
