"""``structocr history``'s runs: show the recorded series, export them, import a watch log,
prune. They read the database and never the network."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from structocr_cli.api.errors import UsageError
from structocr_cli.runs.common import say, write_out

if TYPE_CHECKING:
    from structocr_cli.history.store import History, Series
    from structocr_cli.report.history import Shown

HINT_PATH = "Set STRUCTOCR_HISTORY to the file to read (structocr config show prints it)"


class HistoryUnusable(UsageError):
    code = "history_unusable"


def database() -> History:
    from structocr_cli.history.store import History
    from structocr_cli.settings.config import ENV_HISTORY, history_path

    path = history_path(os.environ)
    if path is None:
        raise UsageError(
            f"{ENV_HISTORY}=off: there is no history to read",
            f"Unset {ENV_HISTORY}, or set it to the history file",
        )
    return History(path)


def _unusable(exc: Exception) -> HistoryUnusable:
    return HistoryUnusable(f"cannot read the history: {exc}", HINT_PATH)


def chosen_series(history: History, names: Sequence[str]) -> list[Series]:
    """Every series, or those recorded under ``names`` (profile or keys-file names)."""
    everything = history.all_series()
    if not names:
        return everything
    return [series for series in everything if series.name in names]


def show(
    names: Sequence[str], since: float, until: float, every: int, output: str, chart: bool
) -> int:
    from structocr_cli.api import clock
    from structocr_cli.history.query import buckets, series_trend
    from structocr_cli.history.recorder import WINDOW_DAYS
    from structocr_cli.history.store import HistoryError
    from structocr_cli.report import history as report

    history = database()
    try:
        picked = chosen_series(history, names)
        now = clock.now()
        shown = [
            report.Shown(s, buckets(history, s.id, since, until, every),
                         series_trend(history, s.id, now, WINDOW_DAYS * 86400))
            for s in picked
        ]  # fmt: skip
    except HistoryError as exc:
        raise _unusable(exc) from None
    finally:
        history.close()
    out = sys.stdout
    if not shown:
        if output != "table":  # the empty document or header, for the program reading it
            write_out(lambda: _write([], every, output, False, out), out)
        return _nothing(history.path, names)
    write_out(lambda: _write(shown, every, output, chart, out), out)
    return 0


def _write(shown: list[Shown], every: int, output: str, chart: bool, out: IO[str]) -> None:
    from structocr_cli.report import history as report
    from structocr_cli.report.layout import width

    if output == "json":
        report.write_json(shown, every, out)
    elif output in ("csv", "tsv"):
        report.write_rows(shown, out, "," if output == "csv" else "\t")
    else:
        draw: Any = None
        if chart:
            from structocr_cli.report.chart import chart as draw
        report.text(shown, every, out, min(width(), 200), draw)


def _nothing(path: Path, names: Sequence[str]) -> int:
    """No series (or none of those named): say how recording works, and where the file is."""
    which = f" for {', '.join(names)}" if names else ""
    say(
        f"no history{which} yet in {path}. Every balance run (and each --watch refresh and "
        "exporter fetch) records one; --no-history or STRUCTOCR_HISTORY=off turns that off"
    )
    return 0


def export(out: IO[str]) -> int:
    """Every observation as CSV, series by series, oldest first."""
    from structocr_cli.history.store import HistoryError
    from structocr_cli.report.history import write_observations

    history = database()
    try:
        write_out(lambda: write_observations(history.each(), out), out)
    except HistoryError as exc:
        raise _unusable(exc) from None
    finally:
        history.close()
    return 0


def import_log(source: str) -> int:
    """Add the observations of a ``balance --watch`` JSON Lines log: all of them, or none
    when a line is malformed (exit 2, naming it). Lines seen before add nothing."""
    from structocr_cli.history.store import HistoryError
    from structocr_cli.history.watchlog import IMPORTED_HOST, BadLine, observations

    history = database()
    where = "stdin" if source == "-" else source
    try:
        before = history.count() if history.exists() else 0
        rows = (
            (name, IMPORTED_HOST, history.fingerprint("imported:" + key), seen)
            for name, key, seen in observations(_lines(source))
        )
        history.add_all(rows)
        added = history.count() - before
    except BadLine as exc:
        raise UsageError(f"{where} line {exc.number}: {exc}", "Nothing was imported; fix or "
                         "remove that line (a --watch log has one JSON document per line)"
                         ) from None  # fmt: skip
    except HistoryError as exc:
        raise _unusable(exc) from None
    finally:
        history.close()
    say(f"imported {added} new observations from {where} into {history.path}")
    return 0


def _lines(source: str) -> Iterator[bytes]:
    """The lines, each cut at 1 MiB + 1 byte (longer is refused), so that one endless line
    cannot fill memory."""
    from structocr_cli.history.watchlog import MAX_LINE

    if source == "-":
        if sys.stdin.isatty():
            raise UsageError("history import - reads a log from a pipe, not a terminal",
                             "e.g. structocr history import watch.jsonl")  # fmt: skip
        binary = getattr(sys.stdin, "buffer", None)
        if binary is None:  # a text stream without bytes under it (an embedding caller's)
            yield from (line.encode() for line in sys.stdin)
            return
        yield from _bounded(binary, MAX_LINE + 1)
        return
    try:
        with open(source, "rb") as file:
            yield from _bounded(file, MAX_LINE + 1)
    except OSError as exc:
        raise UsageError(
            f"cannot read {source}: {exc.strerror or exc}", "Check the path"
        ) from None


def _bounded(file: IO[bytes], limit: int) -> Iterator[bytes]:
    while line := file.readline(limit):
        yield line


def prune(keep_days: float) -> int:
    from structocr_cli.api import clock
    from structocr_cli.history.store import HistoryError

    history = database()
    if not history.exists():
        say(f"no history in {history.path}; nothing to prune")
        return 0
    try:
        gone = history.prune(clock.timestamp() - keep_days * 86400)
    except HistoryError as exc:
        raise _unusable(exc) from None
    finally:
        history.close()
    say(f"removed {gone} observations older than {keep_days:g} days from {history.path}")
    return 0
