"""``balance --watch``: fetch every selected key on an interval and keep what each refresh
shows. Standard library only: the screen is a list of plain lines that ``render.live``
styles, and the pipe form is one JSON document per refresh.

``Watch`` remembers, per key, the first balance seen (for the change since the watch
started) and the last one fetched (shown, marked stale, while a refresh fails), and which
gates are breached, so that a breach is reported when it starts and when it clears.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import IO, TYPE_CHECKING, Any, NamedTuple

from structocr_cli.api import clock
from structocr_cli.api.keys import mask, redact, sanitize
from structocr_cli.report.layout import number

if TYPE_CHECKING:
    from structocr_cli.core import BalanceRequest, Outcome
    from structocr_cli.report.many import Result
    from structocr_cli.settings.selection import KeySpec

MIN_INTERVAL = 5.0
"""Seconds; the balance changes slowly, and the API is not to be hammered."""


@dataclass
class _Seen:
    """One key across refreshes."""

    first: tuple[Outcome, datetime] | None = None
    """The first balance fetched in this billing period, and when: the base of the change."""
    last: tuple[Outcome, datetime] | None = None
    """The last balance fetched, and when (shown while a refresh fails)."""
    error: str | None = None
    """The last refresh's error, if it failed (without its hint: the row is short)."""
    masked: str = "-"


class Line(NamedTuple):
    text: str
    style: str = ""
    """A rich style name: only a hint, the text reads the same without it."""


Breach = tuple[str, str]
"""A key and the option of a gate breached for it (an account's gate: for each of its
keys, so that a key whose refresh fails does not change what the others report)."""


class Watch:
    def __init__(self, interval: float, sort: str = "credits") -> None:
        self.interval = interval
        self.sort = sort
        self.refreshes = 0
        self.seen: dict[str, _Seen] = {}
        self.breached: dict[Breach, str] = {}
        self.results: list[Result] = []
        self.at = clock.now()

    def update(self, results: Sequence[Result], now: datetime) -> list[str]:
        """Take in one refresh; what changed about the gates, as lines for stderr."""
        self.refreshes += 1
        self.results, self.at = list(results), now
        for spec, outcome in results:
            seen = self.seen.setdefault(spec.name, _Seen())
            if outcome.settings is not None:
                seen.masked = mask(outcome.settings.api_key.value)
            if outcome.balance is None:
                seen.error = redact(outcome.error.message) if outcome.error else "unknown"
                continue
            seen.error = None
            seen.last = (outcome, now)
            period = outcome.balance.period.start
            if seen.first is None or seen.first[0].fetched().period.start != period:
                seen.first = (outcome, now)  # a new billing period starts afresh
        return self._gate_changes(results, now)

    def _gate_changes(self, results: Sequence[Result], now: datetime) -> list[str]:
        from structocr_cli.report.many import breaches

        fetched = {spec.name for spec, outcome in results if outcome.balance is not None}
        current = {(name, check.gate.option): check.line()
                   for names, check in breaches(results) for name in names}  # fmt: skip
        started = {pair: line for pair, line in current.items() if pair not in self.breached}
        cleared = {
            pair: f"gate cleared: {pair[1]}"
            for pair in self.breached
            if pair not in current and pair[0] in fetched
        }  # unknown is not cleared
        for pair in cleared:
            del self.breached[pair]
        self.breached.update(current)
        clock = f"{now:%H:%M:%S}"
        return [f"{clock} {line}" for line in _grouped(started) + _grouped(cleared)]

    def exit_code(self) -> int:
        from structocr_cli.core import combined_exit_code

        return combined_exit_code(outcome for _, outcome in self.results)

    # The two faces of a refresh.

    def document(self) -> dict[str, Any]:
        """One refresh as a JSON document (a line of the JSON Lines log)."""
        from structocr_cli.report.many import json_items

        return {
            "time": self.at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "refresh": self.refreshes,
            "exit_code": self.exit_code(),
            "keys": json_items(self.results),
            "breached": self._breach_lines(),
        }

    def _breach_lines(self) -> list[str]:
        return _grouped(self.breached)

    def screen(self, room: int = 80) -> list[Line]:
        """The live view, no line wider than ``room``: when, a row per key (the columns
        that fit), each account, the gates breached."""
        from structocr_cli.report.layout import aligned, columns, named, wrapped
        from structocr_cli.report.many import accounts, ordered

        nxt = self.at + timedelta(seconds=self.interval)
        head = (f"StructOCR usage, every {self.interval:g} s: refreshed {self.at:%H:%M:%S}, "
                f"next {nxt:%H:%M:%S} (refresh {self.refreshes}; Ctrl-C stops)")  # fmt: skip
        lines = [Line(text, "bold") for text in wrapped(head, room, indent=2)] + [Line("")]
        # Sorted by the last good figures: a key whose refresh failed keeps its place.
        latest = [(spec, last[0] if (last := self.seen[spec.name].last) else outcome)
                  for spec, outcome in self.results]  # fmt: skip
        rows = [self._row(spec.name) for spec, _ in ordered(latest, self.sort)]
        cells = [[sanitize(cell, 200) for cell in row] for row, _, _ in rows]
        shown, widths = columns(_HEADINGS, cells, room, _DROP)
        left = 2 if 1 in shown else 1
        lines.append(Line(aligned([_HEADINGS[c] for c in shown], widths, left), "bold"))
        for row, (_, note, style) in zip(cells, rows, strict=True):
            picked = [row[c] for c in shown if c < len(row)]
            text = aligned(picked, widths, left)
            parts = wrapped(sanitize(note, 1000), room, text + "  ") if note else [text]
            lines += [Line(part, style) for part in parts]
        lines.append(Line(""))
        for names, outcome in accounts(latest):
            balance = outcome.fetched()
            account = balance.account
            summary = (f"Account of {named(names)}: {number(account.credits_remaining)} "
                       f"credits remaining, {number(account.credits_this_period)} used this "
                       "period")  # fmt: skip
            lines += [Line(part) for part in wrapped(summary, room, indent=2)]
        for line in self._breach_lines():
            lines += [Line(part, "red") for part in wrapped(line, room, indent=2)]
        return [Line(sanitize(line.text, 10_000).rstrip(), line.style) for line in lines]

    def _row(self, name: str) -> tuple[list[str], str, str]:
        """A key's cells, what follows them (an error), and the row's style."""
        seen = self.seen[name]
        if seen.last is None or seen.first is None:
            return [name, seen.masked], seen.error or "", "red"
        (last, last_at), (first, first_at) = seen.last, seen.first
        usage, base = last.fetched().this_key, first.fetched().this_key
        minutes = (last_at - first_at).total_seconds() / 60
        per_minute = "-" if minutes <= 0 else number((usage.requests - base.requests) / minutes)
        change = usage.credits_used - base.credits_used
        since = ("-" if change < 0 else "+") + number(abs(change))
        cells = [name, seen.masked, number(usage.credits_used), since, per_minute,
                 number(usage.requests), f"{usage.error_rate}%",
                 f"{number(usage.avg_latency_ms)} ms"]  # fmt: skip
        if seen.error is None:
            return cells, "", ""
        return cells, f"stale since {last_at:%H:%M:%S}: {seen.error}", "yellow"


def _grouped(lines: dict[Breach, str]) -> list[str]:
    """``NAMES: line``, the keys that share a line named together (an account's gate)."""
    names: dict[str, list[str]] = {}
    for (name, _), line in lines.items():
        names.setdefault(line, []).append(name)
    return [f"{', '.join(keys)}: {line}" for line, keys in names.items()]


_HEADINGS = ("KEY", "MASKED", "CREDITS", "SINCE START", "REQ/MIN", "REQUESTS", "ERRORS",
             "LATENCY")  # fmt: skip
# Left out first on a narrow screen; the name, credits and the change since the start stay.
_DROP = (7, 6, 5, 1, 4)


def write_line(document: dict[str, Any], out: IO[str]) -> None:
    """One JSON document on one line, flushed, so that ``| tee log.jsonl`` keeps up."""
    out.write(json.dumps(document, ensure_ascii=True, separators=(",", ":")) + "\n")
    out.flush()


def run(
    watch: Watch,
    refresh: Callable[[float], Sequence[Result]],
    show: Callable[[Watch], None],
    say: Callable[[str], None],
    count: int | None = None,
) -> int:
    """Refresh every ``watch.interval`` seconds (start to start) until ``count`` refreshes
    are done; the last refresh's exit code. Ctrl-C is left to the caller."""
    while True:
        started = time.monotonic()
        results = refresh(started)
        changes = watch.update(results, clock.now())
        show(watch)
        for line in changes:
            say(line)
        if count is not None and watch.refreshes >= count:
            return watch.exit_code()
        time.sleep(max(started + watch.interval - time.monotonic(), 0.0))


def watch_keys(
    specs: list[KeySpec],
    request: BalanceRequest,
    output: str,
    sort: str,
    quiet: bool,
    concurrency: int,
    interval: float,
    count: int | None,
) -> int:
    """Refresh until Ctrl-C (a clean stop: exit 0) or ``count`` refreshes (the last one's
    exit code): a live screen on a terminal, JSON Lines otherwise."""
    from contextlib import nullcontext

    from structocr_cli.api.client import BalanceClient
    from structocr_cli.core import check_many
    from structocr_cli.runs.common import say, silence

    client = BalanceClient(ca_bundle=request.ca_bundle)  # its connections kept between refreshes
    state = Watch(interval, sort)
    out = sys.stdout
    on_screen = output == "table" and not quiet and out.isatty()

    def refresh(started: float) -> list[Result]:
        each = request._replace(started=started)
        return check_many(specs, each, os.environ, concurrency, client)

    if on_screen:
        from structocr_cli.report.render import live

        screen: Any = live(out)
    else:
        screen = nullcontext(None)
    try:
        with _terminate_as_interrupt(), screen as draw:

            def show(seen: Watch) -> None:
                if draw is not None:
                    from structocr_cli.report.layout import width

                    draw(seen.screen(width()))
                elif not quiet:
                    try:
                        write_line(seen.document(), out)
                    except BrokenPipeError:  # `| head -1`: nobody reads any more
                        silence(out)
                        raise _ReaderGone from None

            return run(state, refresh, show, say, count)
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: a stop as asked, the screen restored
        return 0
    except _ReaderGone:  # as `balance | head -1` ends: the last refresh's code
        return state.exit_code()


class _ReaderGone(Exception):
    """stdout's reader went away: a watch has nobody to refresh for."""


@contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM (``kill``, a stopping container or CI job) stops a watch as Ctrl-C does, so
    that the live screen is taken down and the cursor shown again."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
