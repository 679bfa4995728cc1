"""``structocr history``'s runs: show the recorded series, export them, import a watch log,
prune. They read the database and never the network."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, NamedTuple

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


@contextmanager
def opened() -> Iterator[History]:
    """The database, closed afterwards; what makes it unusable (locked, corrupt, newer) is a
    usage error that says so."""
    from structocr_cli.history.store import HistoryError

    history = database()
    try:
        yield history
    except HistoryError as exc:
        raise HistoryUnusable(f"cannot read the history: {exc}", HINT_PATH) from None
    finally:
        history.close()


class Choice(NamedTuple):
    """The series ``history`` shows: every one when nothing is chosen."""

    names: Sequence[str] = ()
    """Series recorded under these names (profiles, or keys-file names), whatever the key."""
    keys: Sequence[tuple[str, str]] = ()
    """(name, key) pairs of a keys file: that name's series of that very key, whether
    recorded by balance or imported from a --watch log (which holds the masked key)."""

    def labels(self) -> list[str]:
        return [*self.names, *(name for name, _ in self.keys if name not in self.names)]


def chosen_series(history: History, choice: Choice) -> list[Series]:
    everything = history.all_series()
    if not choice.names and not choice.keys:
        return everything
    pairs: set[tuple[str, str]] = set()
    if choice.keys and everything:  # no secret is made for an empty history
        from structocr_cli.api.keys import mask

        for name, key in choice.keys:
            pairs.add((name, history.fingerprint(key)))
            pairs.add((name, history.fingerprint("imported:" + mask(key))))
    return [s for s in everything if s.name in choice.names or (s.name, s.fingerprint) in pairs]


def choice_of(profiles: Sequence[str], all_profiles: bool, keys_file: str | None) -> Choice:
    """The names and keys that ``-p``, ``--all-profiles`` and ``--keys-file`` select, read as
    balance reads them (the same errors for a missing profile list or a bad line)."""
    names = list(dict.fromkeys(profiles))
    if all_profiles:  # only then the key selection and resolution are imported
        from structocr_cli.settings import selection
        from structocr_cli.settings.resolve import read_config

        every = selection.all_profiles(read_config(os.environ))
        names += [spec.name for spec in every if spec.name not in names]
    keys: list[tuple[str, str]] = []
    if keys_file is not None:
        from structocr_cli.settings import selection

        if keys_file == "-" and sys.stdin is not None and sys.stdin.isatty():
            raise UsageError("--keys-file - reads name=key lines from a pipe, not a terminal",
                             "e.g. structocr history --keys-file keys.txt")  # fmt: skip
        where = "stdin" if keys_file == "-" else keys_file
        keys = selection.parse_keys_file(selection.read_keys_path(keys_file, None), where)
        if not keys:
            raise selection.NoKeysError(
                f"no keys selected: {where} has no name=key line", selection.HINT_KEYS_FILE
            )
        from structocr_cli.api.keys import remember

        for _, key in keys:
            remember(key)  # redacted from any message, as balance does
    return Choice(names, keys)


def show(
    choice: Choice, since: float, until: float, every: int, output: str, chart: bool, window: float
) -> int:
    from structocr_cli.api import clock
    from structocr_cli.history.query import buckets, series_trend
    from structocr_cli.report import history as report

    with opened() as history:
        picked = chosen_series(history, choice)
        _within_reach(history, picked, since, until, every)
        now = clock.now()
        shown = [
            report.Shown(s, buckets(history, s.id, since, until, every),
                         series_trend(history, s.id, now, window))
            for s in picked
        ]  # fmt: skip
    out = sys.stdout
    if not shown:
        if output != "table":  # the empty document or header, for the program reading it
            write_out(lambda: _write([], every, output, False, window, out), out)
        return _nothing(history.path, choice.labels())
    missing = [label for label in choice.labels() if all(s.name != label for s in picked)]
    if missing:  # a typo in one -p must not pass for "no use"
        say(f"no history for {', '.join(missing)} yet in {history.path}")
    write_out(lambda: _write(shown, every, output, chart, window, out), out)
    return 0


def _within_reach(
    history: History, picked: Sequence[Series], since: float, until: float, every: int
) -> None:
    """Refuse, before reading them, more rows a series than anyone reads (a year of minutes
    would take gigabytes); two seeks a series."""
    from structocr_cli.history.query import MOST_BUCKETS, bucket_bound

    most = max((bucket_bound(history, s.id, since, until, every) for s in picked), default=0)
    if most > MOST_BUCKETS:
        raise UsageError(
            f"--every {_length(every)} makes {most:,} rows for a key in this range; the most "
            f"is {MOST_BUCKETS:,}",
            "Choose a longer --every (such as 1h or 1d) or a later --since; "
            "structocr history export writes every observation",
        )


def _length(seconds: int) -> str:
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds // 60}m"


def _write(
    shown: list[Shown], every: int, output: str, chart: bool, window: float, out: IO[str]
) -> None:
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
        report.text(shown, every, out, min(width(), 200), window / 86400, draw)


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
    from structocr_cli.report.history import write_observations

    with opened() as history:
        write_out(lambda: write_observations(history.each(), out), out)
    return 0


def import_log(source: str) -> int:
    """Add the observations of a ``balance --watch`` JSON Lines log: all of them, or none
    when a line is malformed (exit 2, naming it). Lines seen before add nothing."""
    from structocr_cli.history.watchlog import IMPORTED_HOST, BadLine, observations

    where = "stdin" if source == "-" else source
    with opened() as history:
        before = history.count() if history.exists() else 0
        rows = (
            (name, IMPORTED_HOST, history.fingerprint("imported:" + key), seen)
            for name, key, seen in observations(_lines(source))
        )
        try:
            history.add_all(rows)
        except BadLine as exc:
            raise UsageError(f"{where} line {exc.number}: {exc}", "Nothing was imported; fix "
                             "or remove that line (a --watch log has one JSON document per line)"
                             ) from None  # fmt: skip
        added = history.count() - before
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

    with opened() as history:
        if not history.exists():
            say(f"no history in {history.path}; nothing to prune")
            return 0
        gone = history.prune(clock.timestamp() - keep_days * 86400)
    say(f"removed {gone} observations older than {keep_days:g} days from {history.path}")
    return 0
