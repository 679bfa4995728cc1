"""``structocr balance``: its options, one per budget gate among them, turned into a run."""

import inspect
from collections.abc import Callable
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from structocr_cli.cli.options import (
    AllProfilesOpt,
    ApiKeyFileOpt,
    ApiKeyOpt,
    BaseUrlOpt,
    CaBundleOpt,
    Call,
    ConcurrencyOpt,
    JsonFlagOpt,
    KeysFileOpt,
    NoHistoryOpt,
    ProfilesOpt,
    TimeoutOpt,
    complete_field,
    finite,
    timeout_seconds,
)
from structocr_cli.gates import GATES, RUNWAY_BASES
from structocr_cli.report.formats import CHOICES

if TYPE_CHECKING:
    from collections.abc import Mapping
    from decimal import Decimal

# The --output choices, from the one table of formats.
Output = Enum("Output", {name: name for name in CHOICES}, type=str)  # type: ignore[misc]


def with_gate_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add one option per gate of ``gates.GATES`` to ``command``'s signature (typer reads the
    signature); their values reach the command in ``**gates``, keyed by the Python name."""
    signature = inspect.signature(command)
    fixed = [p for p in signature.parameters.values() if p.kind is not p.VAR_KEYWORD]
    options = [
        inspect.Parameter(
            gate.parameter,
            inspect.Parameter.KEYWORD_ONLY,
            default=None,
            annotation=Annotated[
                str | None,
                typer.Option(
                    gate.option, metavar=gate.metavar, help=gate.help, show_default=False
                ),
            ],
        )
        for gate in GATES
    ]
    command.__signature__ = signature.replace(parameters=[*fixed, *options])  # type: ignore[attr-defined]
    return command


@with_gate_options
def balance(
    api_key: ApiKeyOpt = None,
    api_key_file: ApiKeyFileOpt = None,
    profile: ProfilesOpt = None,
    base_url: BaseUrlOpt = None,
    timeout: TimeoutOpt = None,
    json_flag: JsonFlagOpt = False,
    output: Annotated[
        Output | None,
        typer.Option(
            "--output",
            "-o",
            metavar="FORMAT",
            case_sensitive=False,
            help="table (a report for people), json (the server's document), tsv, env "
            "(NAME=value lines) or openmetrics (Prometheus text format). [default: table]",
            show_default=False,
        ),
    ] = None,
    fields: Annotated[
        list[str] | None,
        typer.Option(
            "--field",
            metavar="PATH",
            help="Print just this value, e.g. account.credits_remaining (repeatable).",
            show_default=False,
            autocompletion=complete_field,
        ),
    ] = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Print nothing on stdout.", show_default=False)
    ] = False,
    no_ci: Annotated[
        bool,
        typer.Option(
            "--no-ci", help="No GitHub Actions annotations or step summary.", show_default=False
        ),
    ] = False,
    ca_bundle: CaBundleOpt = None,
    no_history: NoHistoryOpt = False,
    runway_basis: Annotated[
        str,
        typer.Option(
            "--runway-basis",
            metavar="BASIS",
            help="What --min-runway-days compares: period (this period's average) or trend "
            "(the last 7 days of history; exit 3 while it spans under 24 hours).",
        ),
    ] = "period",
    all_profiles: AllProfilesOpt = False,
    keys_file: KeysFileOpt = None,
    concurrency: ConcurrencyOpt = 8,
    sort: Annotated[
        str,
        typer.Option(
            "--sort",
            metavar="BY",
            help="With several keys: rows by credits, requests, errors, latency or name.",
        ),
    ] = "credits",
    watch: Annotated[
        float | None,
        typer.Option(
            "--watch",
            metavar="SECONDS",
            min=5,
            max=86400,
            callback=finite,
            help="Refresh every SECONDS (5 to 86400) until Ctrl-C: a live table on a "
            "terminal, one JSON document per line otherwise.",
            show_default=False,
        ),
    ] = None,
    count: Annotated[
        int | None,
        typer.Option(
            "--count",
            metavar="N",
            min=1,
            help="With --watch: stop after N refreshes, with the last one's exit code.",
            show_default=False,
        ),
    ] = None,
    **gates: str | None,
) -> Call:
    """Show the billing period, account credits and this key's usage; check budget gates.

    The key is taken from --api-key, --api-key-file, STRUCTOCR_API_KEY, then the
    profile's api_key in the config file (STRUCTOCR_CONFIG overrides its path).
    With gate options, a breached gate prints a line on stderr and exits 1; a balance
    that cannot be fetched exits with its error code, never 0 or 1.
    """
    chosen = None if output is None else output.value
    given = {gate.option: gates.get(gate.parameter) for gate in GATES}
    profiles = profile or []
    several = all_profiles or keys_file is not None or len(profiles) > 1

    def run(started: float) -> int:
        from structocr_cli.api.errors import UsageError
        from structocr_cli.api.keys import sanitize
        from structocr_cli.core import BalanceRequest
        from structocr_cli.report import formats
        from structocr_cli.runs.balance import balance_many, balance_one, one_key, selected
        from structocr_cli.runs.common import ca_path, recorder
        from structocr_cli.settings.resolve import Flags

        fmt = formats.choose(chosen, json_flag, fields or [])
        if runway_basis not in RUNWAY_BASES:
            raise UsageError(
                f"--runway-basis takes period or trend, not {sanitize(runway_basis, 20)!r}"
            )
        thresholds: Mapping[str, Decimal] = {}
        if any(value is not None for value in given.values()):
            from structocr_cli.gates import parse_thresholds

            thresholds = parse_thresholds(given)
        if fields:
            from structocr_cli.report.machine import check_fields

            check_fields(fields)
        flags = Flags(api_key, api_key_file, profiles[0] if profiles else None, base_url)
        seconds = timeout_seconds(timeout)
        ca = ca_path(ca_bundle)
        history = recorder(no_history, fmt.name in formats.JSON_FORMATS)
        request = BalanceRequest(flags, seconds, thresholds, ca_bundle=ca, started=started,
                                 history=history, runway_basis=runway_basis)  # fmt: skip
        if count is not None and watch is None:
            raise UsageError("--count needs --watch", "Add --watch SECONDS")
        if watch is not None and (fields or fmt.name not in ("table", "json")):
            raise UsageError(
                f"--watch shows a live table or JSON lines; it does not take "
                f"{'--field' if fields else '-o ' + fmt.name}",
                "Leave out the format, or use --json",
            )
        if not several and watch is None:
            return balance_one(request, fmt, fields or [], quiet, no_ci)
        if not several and watch is not None:
            from structocr_cli.runs.watch import watch_keys  # only now: it loads the screen's

            specs = [one_key(flags, started + seconds)]
            return watch_keys(specs, request, fmt.name, sort, quiet, concurrency, watch, count)
        if api_key is not None or api_key_file is not None:
            raise UsageError(
                "--api-key and --api-key-file name a single key",
                "To check several, list them in a --keys-file, or name profiles",
            )
        from structocr_cli.report.many import SORTS

        if sort not in SORTS:
            raise UsageError(f"--sort takes one of {', '.join(SORTS)}, not {sanitize(sort, 20)!r}")
        specs = selected(profiles, all_profiles, keys_file, base_url, started + seconds)
        if watch is not None:
            from structocr_cli.runs.watch import watch_keys

            return watch_keys(specs, request, fmt.name, sort, quiet, concurrency, watch, count)
        return balance_many(specs, request, fmt.name, fields or [], sort, quiet, concurrency)

    # One key, once: no cycles worth collecting. Many keys (threads, sessions, a failure's
    # traceback each) leave enough to need the collector: 2,000 keys took 16 MiB more without.
    single_check = watch is None and not several
    return Call(run, json_errors=json_flag or chosen == "json", ends=single_check)


def register(app: typer.Typer) -> None:
    app.command(short_help="Show credits and usage; check budget gates.")(balance)
