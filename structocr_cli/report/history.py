"""``structocr history`` as people and programs read it: per series, a table of buckets
(time, remaining, used, requests) and the trend line; JSON; CSV and TSV rows. Standard
library only; the chart is ``report.chart``'s."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from typing import IO, Any, NamedTuple

from structocr_cli.api.keys import sanitize
from structocr_cli.history.query import Bucket
from structocr_cli.history.store import Observation, Series
from structocr_cli.history.trend import Trend
from structocr_cli.report import layout
from structocr_cli.report.layout import number

ROW_FIELDS = ("name", "host", "key_id", "time", "remaining", "used", "requests", "key_used")
EXPORT_FIELDS = (
    "time", "name", "host", "key_id", "period_start", "period_end", "credits_total",
    "credits_used", "credits_remaining", "credits_this_period", "requests_this_period",
    "error_rate", "avg_latency_ms", "key_credits_used", "key_requests", "key_error_rate",
    "key_avg_latency_ms",
)  # fmt: skip


class Shown(NamedTuple):
    """One series as the command shows it."""

    series: Series
    buckets: list[Bucket]
    trend: Trend | None


def _time(start: int, every: int) -> str:
    moment = datetime.fromtimestamp(start, timezone.utc)
    return f"{moment:%Y-%m-%d}" if every % 86400 == 0 else f"{moment:%Y-%m-%d %H:%M}"


def _iso(start: int) -> str:
    return f"{datetime.fromtimestamp(start, timezone.utc):%Y-%m-%dT%H:%M:%SZ}"


def title(series: Series) -> str:
    return f"{sanitize(series.name, 64)} at {sanitize(series.host, 80)} (key {series.key_id})"


def trend_line(trend: Trend | None, window_days: float) -> str:
    if trend is None:
        return f"Trend: needs 24 hours of history in the last {window_days:g} days."
    days = max(round(trend.window_days), 1)
    rate = f"{number(trend.daily_burn)} credits a day"
    where = "the last day" if days == 1 else f"the last {days} days"
    if trend.runout is None:
        return f"At {where}' rate ({rate}), credits do not run out."
    early, late = trend.runout_early, trend.runout_late
    span = ""
    if early is not None:
        span = (
            f" ({early:%Y-%m-%d} to {late:%Y-%m-%d})" if late else f" ({early:%Y-%m-%d} or later)"
        )
    return f"At {where}' rate ({rate}), credits run out around {trend.runout:%Y-%m-%d}{span}."


def table(shown: Shown, every: int, out: IO[str], room: int) -> None:
    """The buckets as aligned columns, the least needed dropped first in a narrow terminal."""
    headings = ["time", "remaining", "used", "requests"]
    rows = [
        [_time(b.start, every), number(b.remaining), number(b.used), number(b.requests)]
        for b in shown.buckets
    ]
    keep, widths = layout.columns(headings, rows, room, drop=[3, 2])
    lines = [layout.aligned([headings[c] for c in keep], widths, 1)]
    lines += [layout.aligned([row[c] for c in keep], widths, 1) for row in rows]
    out.write("\n".join(lines) + "\n")


def text(
    shown: Sequence[Shown], every: int, out: IO[str], room: int, window_days: float, chart: Any
) -> None:
    """Each series: its title, the chart (if given), the table and the trend over the last
    ``window_days``."""
    for index, item in enumerate(shown):
        if index:
            out.write("\n")
        out.write("\n".join(layout.wrapped(title(item.series), room)) + "\n")
        if not item.buckets:
            out.write("No observations in this range.\n")
        else:
            if chart is not None:
                out.write(chart(item.buckets, every, room) + "\n")
            table(item, every, out, room)
        out.write("\n".join(layout.wrapped(trend_line(item.trend, window_days), room)) + "\n")


def _trend_object(trend: Trend | None) -> dict[str, Any] | None:
    if trend is None:
        return None

    def day(moment: datetime | None) -> str | None:
        return None if moment is None else f"{moment:%Y-%m-%d}"

    return {
        "daily_burn": round(trend.daily_burn, 4),
        "runway_days": None if trend.runway_days is None else round(trend.runway_days, 4),
        "runout_date": day(trend.runout),
        "runout_early": day(trend.runout_early),
        "runout_late": day(trend.runout_late),
        "window_days": round(trend.window_days, 4),
        "points": trend.points,
    }


def document(shown: Sequence[Shown], every: int) -> dict[str, Any]:
    return {
        "every_seconds": every,
        "series": [
            {
                "name": item.series.name,
                "host": item.series.host,
                "key_id": item.series.key_id,
                "rows": [
                    {
                        "time": _iso(b.start),
                        "remaining": b.remaining,
                        "used": b.used,
                        "requests": b.requests,
                        "key_used": b.key_used,
                    }
                    for b in item.buckets
                ],
                "trend": _trend_object(item.trend),
            }
            for item in shown
        ],
    }


def write_json(shown: Sequence[Shown], every: int, out: IO[str]) -> None:
    """The document, written a few thousand pieces at a time: as one string, 20,000 rows of
    ten keys took three times the memory, and piece by piece twice the time."""
    pieces: list[str] = []
    for piece in json.JSONEncoder(indent=2, ensure_ascii=True).iterencode(document(shown, every)):
        pieces.append(piece)
        if len(pieces) == 4096:
            out.write("".join(pieces))
            pieces.clear()
    out.write("".join(pieces) + "\n")


def write_rows(shown: Sequence[Shown], out: IO[str], delimiter: str) -> None:
    """CSV (``,``) or TSV (tab): a header, then one line per bucket of every series."""
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\n")
    writer.writerow(ROW_FIELDS)
    for item in shown:
        series = item.series
        for b in item.buckets:
            writer.writerow([_cell(series.name), _cell(series.host), series.key_id,
                             _iso(b.start), _num(b.remaining), _num(b.used),
                             _num(b.requests), _num(b.key_used)])  # fmt: skip


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _cell(value: str) -> str:
    """A name as a spreadsheet cell: never a formula (=, +, -, @ start one)."""
    cleaned = sanitize(value, 200)
    return "'" + cleaned if cleaned[:1] in ("=", "+", "-", "@") else cleaned


def write_observations(rows: Iterable[tuple[Series, Observation]], out: IO[str]) -> None:
    """``history export``: a header, then every observation with its series, as CSV."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(EXPORT_FIELDS)
    for series, seen in rows:
        writer.writerow([
            _iso(seen.at), _cell(series.name), _cell(series.host), series.key_id,
            _iso(seen.period_start), _iso(seen.period_end),
            *(value if isinstance(value, str) else _num(value) for value in seen[3:]),
        ])  # fmt: skip
