"""The terminal report and the live screen of `balance --watch`: the only module that imports rich.

The report lays its lines out itself, so that at any width a value is never cut: from
``WIDE`` columns up, aligned columns (label, value, note); below, a stacked layout (a
label, then its value). Notes wrap at spaces only; the usage bar is shown where it fits
and left out where it does not; no line ends in spaces. rich only styles and prints: every
value is a ``Text`` (never parsed as markup), and colour is only a hint (the report reads
the same in a pipe or with NO_COLOR).
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import IO, NamedTuple

from rich.console import Console
from rich.text import Text

from structocr_cli.api.model import Balance
from structocr_cli.derive import Derived
from structocr_cli.report.layout import number

BAR_WIDTH = 20
# Fixed minimum widths keep the columns of the separate sections aligned.
_LABEL_WIDTH = 22  # "  " and the label
_VALUE_WIDTH = 20  # "2026-06-01 00:00 UTC"
_MIN_NOTE = 12
"""Narrower than this, a note goes on a line of its own."""


class Row(NamedTuple):
    label: str
    value: str
    note: str = ""
    bar: Text | None = None
    """A usage bar in place of the note, shown where it fits."""


class _Console(Console):
    def on_broken_pipe(self) -> None:
        # rich would exit 1 here, which is the exit code of a breached gate; the caller
        # decides what a reader that went away means.
        self.quiet = True
        raise BrokenPipeError


def _when(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC"


def _maybe(value: float | None) -> str:
    return "n/a" if value is None else number(value)


def _runway(derived: Derived) -> str:
    if derived.runway_days is None:
        return "no burn"
    return f"{number(derived.runway_days)} days"


def _runout(derived: Derived) -> str:
    if derived.runway_days is None:
        return "nothing used yet"
    if derived.runout is None:
        return "beyond 100 years"
    return f"runs out ~{derived.runout:%Y-%m-%d}"


def _trend_rows(derived: Derived) -> list[Row]:
    """One row when the history has a trend: at the last days' rate, when credits run out."""
    trend = derived.trend
    if trend is None:
        return []
    if trend.runout is None:
        note = "not running out at this rate"
    else:
        early, late = trend.runout_early, trend.runout_late
        low = "" if early is None else f"{early:%Y-%m-%d}"
        high = "or later" if late is None else f"to {late:%Y-%m-%d}"
        note = f"runs out around {trend.runout:%Y-%m-%d}" + (f" ({low} {high})" if low else "")
    days = max(round(trend.window_days), 1)
    label = "Last day's rate" if days == 1 else f"Last {days} days' rate"
    return [Row(label, f"{number(trend.daily_burn)} a day", note)]


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}%"


def bar(pct: float | None, unicode: bool = True) -> str:
    full, empty = ("█", "░") if unicode else ("#", "-")
    filled = 0 if pct is None else round(min(max(pct, 0.0), 100.0) / 100 * BAR_WIDTH)
    return full * filled + empty * (BAR_WIDTH - filled)


def _usage_style(pct: float | None) -> str:
    if pct is None or pct < 75:
        return "green"
    return "yellow" if pct < 90 else "bold red"


def sections(balance: Balance, derived: Derived, unicode: bool) -> list[tuple[str, list[Row]]]:
    """The report's content: titled sections of rows, before any layout."""
    account, key = balance.account, balance.this_key
    elapsed_pct = (
        derived.days_elapsed / derived.days_total * 100 if derived.days_total > 0 else None
    )
    used_pct = derived.credits_used_pct
    usage_bar = Text(bar(used_pct, unicode), style=_usage_style(used_pct))
    return [
        ("Billing period", [
            Row("Start", _when(balance.period.start)),
            Row("End", _when(balance.period.end)),
            Row("Days elapsed", f"{derived.days_elapsed:.1f}",
                f"of {derived.days_total:.1f} ({_pct(elapsed_pct)})"),
            Row("Days left", f"{derived.days_left:.1f}"),
        ]),
        ("Account", [
            Row("Credits total", number(account.credits_total)),
            Row("Credits used", number(account.credits_used)),
            Row("Credits remaining", number(account.credits_remaining)),
            Row("Used of total", _pct(used_pct), bar=usage_bar),
            Row("Credits this period", number(account.credits_this_period)),
            Row("Requests this period", number(account.requests_this_period)),
            Row("Error rate", f"{account.error_rate}%"),
            Row("Avg latency", f"{number(account.avg_latency_ms)} ms"),
        ]),
        ("This key, this period", [
            Row("Credits used", number(key.credits_used)),
            Row("Share of account", _pct(derived.share_of_period_pct),
                f"of {number(account.credits_this_period)} credits this period"),
            Row("Requests", number(key.requests)),
            Row("Error rate", f"{key.error_rate}%"),
            Row("Avg latency", f"{number(key.avg_latency_ms)} ms"),
        ]),
        ("Forecast at this period's pace", [
            Row("Credits this period", _maybe(derived.period_credits), "projected to the end"),
            Row("Daily burn", _maybe(derived.daily_burn), "credits a day"),
            Row("Runway", _runway(derived), _runout(derived)),
            *_trend_rows(derived),
        ]),
    ]  # fmt: skip


def _wrap(text: str, width: int) -> list[str]:
    """``text`` broken at spaces only; a word longer than ``width`` stays whole."""
    return textwrap.wrap(text, max(width, 1), break_long_words=False, break_on_hyphens=False) or [
        ""
    ]


def _columns(rows: list[Row]) -> tuple[int, int]:
    label = max(_LABEL_WIDTH, *(len(row.label) + 2 for row in rows))
    value = max(_VALUE_WIDTH, *(len(row.value) for row in rows))
    return label, value


def wide_minimum(all_rows: list[Row]) -> int:
    """The narrowest width at which the aligned columns fit, notes aside."""
    label, value = _columns(all_rows)
    return label + 2 + value


def _wide(rows: list[Row], width: int, label_w: int, value_w: int) -> list[Text]:
    lines = []
    start = label_w + 2 + value_w + 2  # where a note begins
    for row in rows:
        line = Text(f"  {row.label}".ljust(label_w) + "  " + row.value.rjust(value_w))
        room = width - start
        if row.bar is not None:
            if len(row.bar) <= room:
                lines.append(line + Text("  ") + row.bar)
            else:  # on a line of its own, where it still fits
                lines += [line] + ([Text("    ") + row.bar] if 4 + len(row.bar) <= width else [])
            continue
        if not row.note:
            lines.append(line)
        elif room >= _MIN_NOTE or len(row.note) <= room:
            first, *rest = _wrap(row.note, room)
            lines.append(line + Text("  " + first))
            lines += [Text(" " * start + more) for more in rest]
        else:
            lines.append(line)
            lines += [Text("    " + part) for part in _wrap(row.note, width - 4)]
    return lines


def _stacked(rows: list[Row], width: int) -> list[Text]:
    lines = []
    for row in rows:
        together = f"  {row.label}: {row.value}"
        if len(together) <= width:
            lines.append(Text(together))
        else:
            lines += [Text("  " + part) for part in _wrap(f"{row.label}:", width - 2)]
            lines.append(Text(" " * max(min(4, width - len(row.value)), 0) + row.value))
        indent = 4 if width >= 4 + _MIN_NOTE else 0
        if row.bar is not None:
            if indent + len(row.bar) <= width:
                lines.append(Text(" " * indent) + row.bar)
        elif row.note:
            lines += [Text(" " * indent + part) for part in _wrap(row.note, width - indent)]
    return lines


def report(balance: Balance, derived: Derived, source: str, out: IO[str]) -> None:
    """Print the period, account, this_key and forecast sections, never cutting a value."""
    console = _Console(file=out, highlight=False, emoji=False, markup=False, soft_wrap=True)
    unicode = console.encoding.lower().startswith("utf")
    width = console.width
    content = sections(balance, derived, unicode)
    all_rows = [row for _, rows in content for row in rows]
    label_w, value_w = _columns(all_rows)
    lines = [Text(part, style="dim") for part in _wrap(f"StructOCR balance ({source})", width)]
    for title, rows in content:
        lines += [Text("")] + [Text(part, style="bold") for part in _wrap(title, width)]
        if width >= wide_minimum(all_rows):
            lines += _wide(rows, width, label_w, value_w)
        else:
            lines += _stacked(rows, width)
    for line in lines:
        line.rstrip()
        console.print(line)


@contextmanager
def live(out: IO[str]) -> Iterator[Callable[[Sequence[tuple[str, str]]], None]]:
    """A screen redrawn in place (``balance --watch``): yields a function that shows lines
    of (text, style). What is printed on stderr meanwhile appears above it."""
    from rich.live import Live

    console = _Console(file=out, highlight=False, emoji=False, markup=False)
    with Live(console=console, auto_refresh=False, redirect_stdout=False) as screen:

        def show(lines: Sequence[tuple[str, str]]) -> None:
            screen.update(Text("\n").join(Text(t, style=s) for t, s in lines), refresh=True)

        yield show
