"""``structocr exporter``: its options turned into a served exporter, or printed rules."""

import os
import sys
from enum import Enum
from typing import TYPE_CHECKING, Annotated

import typer

from structocr_cli.cli.options import (
    AllProfilesOpt,
    BaseUrlOpt,
    CaBundleOpt,
    Call,
    FetchTimeoutOpt,
    KeysFileOpt,
    NoHistoryOpt,
    ProfilesOpt,
    finite,
    timeout_seconds,
)

if TYPE_CHECKING:
    from structocr_cli.settings.selection import KeySpec


class LogFormat(str, Enum):
    text = "text"
    json = "json"


def exporter(
    ctx: typer.Context,
    profile: ProfilesOpt = None,
    all_profiles: AllProfilesOpt = False,
    keys_file: KeysFileOpt = None,
    base_url: BaseUrlOpt = None,
    timeout: FetchTimeoutOpt = None,
    ca_bundle: CaBundleOpt = None,
    listen: Annotated[
        str,
        typer.Option(
            "--listen",
            metavar="HOST:PORT",
            help="Address to serve on; port 0 picks a free one. Anything but loopback "
            "shows every key's usage to whoever can reach it.",
        ),
    ] = "127.0.0.1:9811",
    min_interval: Annotated[
        float,
        typer.Option(
            "--min-interval",
            metavar="SECONDS",
            min=1,
            max=86400,
            callback=finite,
            help="Fetch each key at most once per SECONDS; scrapes in between get the cache.",
        ),
    ] = 60,
    stale_after: Annotated[
        float | None,
        typer.Option(
            "--stale-after",
            metavar="SECONDS",
            min=1,
            max=604800,
            callback=finite,
            help="A key whose last success is older is down (structocr_up 0) and its figures "
            "are left out. [default: 3 x --min-interval]",
            show_default=False,
        ),
    ] = None,
    scrape_timeout: Annotated[
        float,
        typer.Option(
            "--scrape-timeout",
            metavar="SECONDS",
            min=0,
            max=600,
            callback=finite,
            help="Answer a scrape within SECONDS, or sooner when the scraper says it gives up "
            "sooner; a fetch still running is served from cache.",
        ),
    ] = 8,
    concurrency: Annotated[
        int,
        typer.Option(
            "--concurrency", metavar="N", min=1, max=64, help="At most N fetches at once."
        ),
    ] = 8,
    no_history: NoHistoryOpt = False,
    log_format: Annotated[
        LogFormat,
        typer.Option("--log-format", metavar="FORMAT", help="Log lines as text or json."),
    ] = LogFormat.text,
    print_rules: Annotated[
        bool,
        typer.Option(
            "--print-rules",
            help="Print Prometheus recording and alerting rules for these metrics, and exit.",
            show_default=False,
        ),
    ] = False,
    alert_credits: Annotated[
        float,
        typer.Option(
            "--alert-credits", metavar="N", help="With --print-rules: credits low below N."
        ),
    ] = 1000,
    alert_runway_days: Annotated[
        float,
        typer.Option(
            "--alert-runway-days",
            metavar="DAYS",
            help="With --print-rules: page when credits run out within DAYS.",
        ),
    ] = 7,
    alert_error_ratio: Annotated[
        float,
        typer.Option(
            "--alert-error-ratio",
            metavar="R",
            help="With --print-rules: a key's failed requests above this share (0-1).",
        ),
    ] = 0.05,
    job: Annotated[
        str,
        typer.Option("--job", metavar="NAME", help="With --print-rules: the scrape job's name."),
    ] = "structocr",
    print_dashboard: Annotated[
        bool,
        typer.Option(
            "--print-dashboard",
            help="Print a Grafana dashboard (JSON) for these metrics, and exit.",
            show_default=False,
        ),
    ] = False,
) -> Call:
    """Serve the balance of every selected key as Prometheus metrics until stopped.

    Keys: -p (repeatable), --all-profiles and --keys-file, as for balance; by default
    every profile of the config file, else the key that balance would use. The first
    line on stdout is the URL of /metrics. SIGHUP reads the keys again; SIGINT and
    SIGTERM stop it (exit 0).
    """

    def run(started: float) -> int:
        from structocr_cli.api.errors import UsageError
        from structocr_cli.runs.common import ca_path, config_warnings, recorder
        from structocr_cli.runs.exporter import (
            MISSING_HINT,
            REFUSED_HINT,
            exporter_keys,
            print_monitoring,
        )

        _refuse_ignored(ctx, print_rules, print_dashboard)
        if print_rules or print_dashboard:
            return print_monitoring(
                print_dashboard, alert_credits, alert_runway_days, alert_error_ratio, job
            )
        from structocr_cli.core import BalanceRequest
        from structocr_cli.exporter import server as serve
        from structocr_cli.exporter.cache import Exporter

        host, port = serve.parse_listen(listen)
        seconds = timeout_seconds(timeout)
        profiles = profile or []
        read: list[bool] = []
        log = serve.Logger(log_format.value)
        history = recorder(no_history, warn=lambda message: log("warning", message))
        request = BalanceRequest(timeout=seconds, ca_bundle=ca_path(ca_bundle),
                                 missing_hint=MISSING_HINT, refused_hint=REFUSED_HINT,
                                 history=history)  # fmt: skip

        def keys() -> "list[KeySpec]":
            """The keys to serve, at start and on SIGHUP, with the config file's warnings."""
            from structocr_cli.settings.resolve import read_config

            if keys_file == "-" and read:
                raise UsageError("the keys came from stdin, which cannot be read again")
            read.append(True)
            specs = exporter_keys(profiles, all_profiles, keys_file, base_url, seconds)
            for warning in config_warnings(read_config(os.environ)):
                log("warning", warning)
            return specs

        specs = keys()
        served = Exporter(specs, request, os.environ, min_interval=min_interval,
                          stale_after=stale_after, scrape_timeout=scrape_timeout,
                          concurrency=concurrency, log=log)  # fmt: skip
        server = serve.listen(served, host, port, log)
        return serve.run(served, server, log, keys, sys.stdout)

    return Call(run)


_RULE_OPTIONS = {"alert_credits": "--alert-credits", "alert_runway_days": "--alert-runway-days",
                 "alert_error_ratio": "--alert-error-ratio", "job": "--job"}  # fmt: skip
_SERVER_OPTIONS = {"profile": "-p", "all_profiles": "--all-profiles", "keys_file": "--keys-file",
                   "base_url": "--base-url", "timeout": "--timeout", "ca_bundle": "--ca-bundle",
                   "listen": "--listen", "min_interval": "--min-interval",
                   "stale_after": "--stale-after", "scrape_timeout": "--scrape-timeout",
                   "concurrency": "--concurrency", "log_format": "--log-format",
                   "no_history": "--no-history"}  # fmt: skip


def _refuse_ignored(ctx: typer.Context, rules: bool, dashboard: bool) -> None:
    """An option that would have no effect is a usage error, not silently dropped."""
    from structocr_cli.api.errors import UsageError

    def given(names: dict[str, str]) -> list[str]:
        return [option for name, option in names.items()
                if (source := ctx.get_parameter_source(name)) is not None
                and source.name != "DEFAULT"]  # fmt: skip

    if rules and dashboard:
        raise UsageError("--print-rules and --print-dashboard each print a file", "Pick one")
    if not rules and (ignored := given(_RULE_OPTIONS)):
        raise UsageError(f"{ignored[0]} only shapes --print-rules", "Add --print-rules")
    if (rules or dashboard) and (ignored := given(_SERVER_OPTIONS)):
        printing = "--print-rules" if rules else "--print-dashboard"
        raise UsageError(f"{ignored[0]} has no effect with {printing}", "Leave it out")


def register(app: typer.Typer) -> None:
    app.command(short_help="Serve every key's balance as Prometheus metrics.")(exporter)
