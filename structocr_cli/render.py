"""The terminal report: the only module that imports rich.

Every value is passed to rich as ``Text`` (never parsed as markup), cells fold instead of
being cut, and colour is only a hint: the report reads the same in a pipe or with NO_COLOR.
"""

from __future__ import annotations

from datetime import datetime
from typing import IO

from rich.console import Console
from rich.table import Table
from rich.text import Text

from structocr_cli.derive import Derived
from structocr_cli.fields import number
from structocr_cli.model import Balance

BAR_WIDTH = 20


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


# Fixed minimum widths keep the columns of the separate sections aligned.
_LABEL_WIDTH = 22
_VALUE_WIDTH = 20  # "2026-06-01 00:00 UTC"


def _section(title: str, sections: list[tuple[str, Table]]) -> Table:
    table = Table(show_header=False, box=None, padding=(0, 1), pad_edge=False)
    table.add_column("field", no_wrap=True, min_width=_LABEL_WIDTH)
    table.add_column("value", justify="right", no_wrap=True, min_width=_VALUE_WIDTH)
    table.add_column("note", overflow="fold")
    sections.append((title, table))
    return table


def _row(table: Table, label: str, value: str, note: Text | str = "") -> None:
    table.add_row(Text("  " + label), Text(value), note if isinstance(note, Text) else Text(note))


class _Console(Console):
    def on_broken_pipe(self) -> None:
        # rich would exit 1 here, which is the exit code of a breached gate; the caller
        # decides what a reader that went away means.
        self.quiet = True
        raise BrokenPipeError


def report(balance: Balance, derived: Derived, source: str, out: IO[str]) -> None:
    """Print the period, account, this_key and forecast sections, columns aligned."""
    console = _Console(file=out, highlight=False, emoji=False, markup=False)
    unicode = console.encoding.lower().startswith("utf")
    account, key = balance.account, balance.this_key
    sections: list[tuple[str, Table]] = []

    table = _section("Billing period", sections)
    _row(table, "Start", _when(balance.period.start))
    _row(table, "End", _when(balance.period.end))
    elapsed_pct = (
        derived.days_elapsed / derived.days_total * 100 if derived.days_total > 0 else None
    )
    _row(
        table,
        "Days elapsed",
        f"{derived.days_elapsed:.1f}",
        f"of {derived.days_total:.1f} ({_pct(elapsed_pct)})",
    )
    _row(table, "Days left", f"{derived.days_left:.1f}")

    table = _section("Account", sections)
    used_pct = derived.credits_used_pct
    _row(table, "Credits total", number(account.credits_total))
    _row(table, "Credits used", number(account.credits_used))
    _row(table, "Credits remaining", number(account.credits_remaining))
    _row(
        table,
        "Used of total",
        _pct(used_pct),
        Text(bar(used_pct, unicode), style=_usage_style(used_pct)),
    )
    _row(table, "Credits this period", number(account.credits_this_period))
    _row(table, "Requests this period", number(account.requests_this_period))
    _row(table, "Error rate", f"{account.error_rate}%")
    _row(table, "Avg latency", f"{number(account.avg_latency_ms)} ms")

    table = _section("This key, this period", sections)
    _row(table, "Credits used", number(key.credits_used))
    _row(
        table,
        "Share of account",
        _pct(derived.share_of_period_pct),
        f"of {number(account.credits_this_period)} credits this period",
    )
    _row(table, "Requests", number(key.requests))
    _row(table, "Error rate", f"{key.error_rate}%")
    _row(table, "Avg latency", f"{number(key.avg_latency_ms)} ms")

    table = _section("Forecast at this period's pace", sections)
    _row(table, "Credits this period", _maybe(derived.period_credits), "projected to the end")
    _row(table, "Daily burn", _maybe(derived.daily_burn), "credits a day")
    _row(table, "Runway", _runway(derived), _runout(derived))

    console.print(Text(f"StructOCR balance ({source})", style="dim"))
    for title, table in sections:
        console.print()
        console.print(Text(title, style="bold"))
        console.print(table)
