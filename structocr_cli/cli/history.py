"""``structocr history``: the balances recorded on this machine, as a chart and a table (or
JSON, CSV, TSV), their trend, and export, import and prune."""

from enum import Enum
from typing import Annotated

import typer

from structocr_cli.cli.options import Call, JsonFlagOpt, complete_profile, named_profile

history_app = typer.Typer(
    name="history",
    help="Show the balances recorded on this machine: a chart, a table and the trend.",
    short_help="Show recorded balances: a chart, a table and the trend.",
    invoke_without_command=True,
    rich_markup_mode=None,
)

DEFAULT_WINDOW_DAYS = 7


def span_seconds(text: str, option: str) -> int:
    """``30m``, ``12h``, ``7d``, ``2w`` as seconds."""
    from structocr_cli.settings.config import LENGTH_EXAMPLE, length_seconds

    seconds = length_seconds(text)
    if seconds is None:
        raise typer.BadParameter(f"{option} takes {LENGTH_EXAMPLE}")
    return seconds


def since_time(text: str, now: float) -> float:
    """``--since``: a length back from now (``7d``), or a UTC date (``2026-11-01``)."""
    from structocr_cli.settings.config import length_seconds

    seconds = length_seconds(text)
    if seconds is not None:
        return now - seconds
    from datetime import datetime, timezone  # strptime's import only for a date

    try:
        day = datetime.strptime(text.strip(), "%Y-%m-%d").replace(tzinfo=timezone.utc)
    except ValueError:
        raise typer.BadParameter(
            "--since takes a length such as 12h, 7d or 2w, or a UTC date such as 2026-11-01"
        ) from None
    return day.timestamp()


def auto_every(seconds: float) -> int:
    """A bucket that gives a readable number of rows for a range of ``seconds``."""
    if seconds <= 2 * 86400:
        return 3600
    if seconds <= 120 * 86400:
        return 86400
    return 7 * 86400


class HistoryOutput(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"
    tsv = "tsv"


@history_app.callback()
def history(
    ctx: typer.Context,
    profile: Annotated[
        list[str] | None,
        typer.Option(
            "--profile",
            "-p",
            metavar="NAME",
            help="Only the series recorded under this profile or keys-file name (repeatable).",
            show_default=False,
            callback=named_profile,
            autocompletion=complete_profile,
        ),
    ] = None,
    all_profiles: Annotated[
        bool,
        typer.Option(
            "--all-profiles",
            help="The series of every profile of the config file.",
            show_default=False,
        ),
    ] = False,
    keys_file: Annotated[
        str | None,
        typer.Option(
            "--keys-file",
            metavar="PATH",
            help="The series of each name=key line's key in this file ('-' for stdin).",
            show_default=False,
        ),
    ] = None,
    since: Annotated[
        str,
        typer.Option(
            "--since", metavar="WHEN", help="From this long ago (12h, 7d, 2w) or this UTC date."
        ),
    ] = "30d",
    every: Annotated[
        str | None,
        typer.Option(
            "--every",
            metavar="LENGTH",
            help="One row per LENGTH (1h, 1d, 1w), at most 20,000 rows a key. [default: 1h up "
            "to 2 days, 1d up to 120 days, else 1w]",
            show_default=False,
        ),
    ] = None,
    json_flag: JsonFlagOpt = False,
    output: Annotated[
        HistoryOutput | None,
        typer.Option(
            "--output",
            "-o",
            metavar="FORMAT",
            case_sensitive=False,
            help="table (a chart and a table on a terminal), json, csv or tsv. [default: table]",
            show_default=False,
        ),
    ] = None,
    no_chart: Annotated[
        bool, typer.Option("--no-chart", help="The table without the chart.", show_default=False)
    ] = False,
    window: Annotated[
        str,
        typer.Option(
            "--window", metavar="LENGTH", help="Fit the trend to the last LENGTH (at least 1d)."
        ),
    ] = f"{DEFAULT_WINDOW_DAYS}d",
) -> Call | None:
    """Show the balances recorded on this machine: a chart of credits remaining, a table
    per bucket, and when credits run out at the last 7 days' rate (--window).

    Every balance run records one observation per key (at most one a minute) in a local
    SQLite file (STRUCTOCR_HISTORY, or --no-history, turns that off). This reads that
    file and never the network.
    """
    if ctx.invoked_subcommand is not None:
        return None
    chosen = "json" if json_flag else (output.value if output else "table")

    def run(started: float) -> int:
        import sys

        from structocr_cli.api import clock
        from structocr_cli.runs.history import choice_of, show

        now = clock.timestamp()
        try:
            start = since_time(since, now)
            step = auto_every(now - start) if every is None else span_seconds(every, "--every")
            fit = span_seconds(window, "--window")
            if fit < 86400:
                raise typer.BadParameter(
                    "--window must be at least 1d: a trend needs 24 hours of history"
                )
        except typer.BadParameter as exc:
            from structocr_cli.api.errors import UsageError

            raise UsageError(str(exc)) from None
        if step % 60:
            step -= step % 60
        chart = chosen == "table" and not no_chart and sys.stdout.isatty()
        choice = choice_of(profile or [], all_profiles, keys_file)
        return show(choice, start, now, step, chosen, chart, fit)

    return Call(run, json_errors=chosen == "json", ends=True)


@history_app.command("export")
def export() -> Call:
    """Write every recorded observation as CSV (one line per key and minute) on stdout."""

    def run(started: float) -> int:
        import sys

        from structocr_cli.runs.history import export as write

        return write(sys.stdout)

    return Call(run)


@history_app.command("import")
def import_(
    source: Annotated[
        str,
        typer.Argument(
            metavar="FILE",
            help="The JSON Lines of balance --watch in a pipe (e.g. kept with tee); - is stdin.",
        ),
    ],
) -> Call:
    """Add the balances of a balance --watch log: all of its lines or, if one is malformed,
    none. Lines imported before add nothing."""

    def run(started: float) -> int:
        from structocr_cli.runs.history import import_log

        return import_log(source)

    return Call(run)


@history_app.command("prune")
def prune(
    keep: Annotated[
        str | None,
        typer.Option(
            "--keep",
            metavar="LENGTH",
            help="Keep the last LENGTH (90d, 52w). [default: STRUCTOCR_HISTORY_KEEP, else 400d]",
            show_default=False,
        ),
    ] = None,
) -> Call:
    """Delete the observations older than --keep now (recording deletes those older than
    STRUCTOCR_HISTORY_KEEP, 400 days unless set, as it goes)."""
    seconds = None if keep is None else span_seconds(keep, "--keep")

    def run(started: float) -> int:
        import os

        from structocr_cli.runs.history import prune as remove
        from structocr_cli.settings.config import history_keep_days

        return remove(history_keep_days(os.environ) if seconds is None else seconds / 86400)

    return Call(run)


def register(app: typer.Typer) -> None:
    app.add_typer(history_app)
