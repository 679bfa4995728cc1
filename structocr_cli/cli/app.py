"""The command line: options in, one exit code out.

Each command turns its options into a ``Call``: what to run once parsing is done. ``main``
runs it and is the one place where outcomes and errors become exit codes and error lines
(plain, or a JSON document under ``--json``), so in-process tests see what users see. The
work itself is in ``core`` and ``profiles``; what is printed, in ``formats`` and ``output``.
typer is imported here (and its completion classes in ``completion``); requests, rich and
platformdirs only inside the calls that need them, so ``--help`` and TAB start fast.
"""

import inspect
import math
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, Any, NamedTuple

import typer

from structocr_cli import __version__
from structocr_cli.gates import GATES
from structocr_cli.report.formats import CHOICES

if TYPE_CHECKING:
    from collections.abc import Mapping
    from decimal import Decimal

    from structocr_cli.settings.selection import KeySpec

ENV_DEBUG = "STRUCTOCR_DEBUG"

_EXIT_CODES = (
    ("0", "success"),
    ("1", "a budget gate was breached"),
    ("2", "usage error: bad option or value, invalid config file, unknown profile, "
          "refused base URL"),
    ("40", "HTTP 4xx other than 401/404 (e.g. 403, or 429 once retries are spent)"),
    ("41", "HTTP 401, or no API key found"),
    ("44", "HTTP 404 with the API's own answer: no account for the key"),
    ("50", "HTTP 5xx once retries are spent"),
    ("60", "no HTTP answer: DNS, connection refused or reset, TLS, deadline"),
    ("61", "unusable answer: not JSON, wrong shape, redirect, too large, a 404 that is "
           "not the API's (the URL is not the endpoint)"),
    ("70", "internal error (a bug; rerun with STRUCTOCR_DEBUG=1 and report it)"),
    ("130", "interrupted (Ctrl-C; it ends --watch with 0)"),
)  # fmt: skip


def _exit_code_list(width: int) -> str:
    """The exit codes as a list wrapped, at spaces, to ``width`` (click would not rewrap a
    preformatted block, and a terminal breaks its lines anywhere)."""
    import textwrap

    lines = ["\b", "Exit codes:"]
    for code, meaning in _EXIT_CODES:
        lines += textwrap.wrap(
            meaning, width, initial_indent=f"  {code:<5}", subsequent_indent=" " * 7,
            break_long_words=False, break_on_hyphens=False,
        )  # fmt: skip
    return "\n".join(lines) + "\n"


def _wrap_at_spaces() -> None:
    """click's help wrapper breaks at hyphens (--list-\\nfaults) and inside long words (URLs):
    wrap at spaces only. typer's private API (test_typer_private_api fails first on a move)."""
    import textwrap

    from typer._click import _textwrap, formatting

    class AtSpaces(_textwrap.TextWrapper):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.update(break_on_hyphens=False, break_long_words=False)
            super().__init__(*args, **kwargs)

        # click's own version always cuts a long word; the standard one keeps it whole.
        _handle_long_word = textwrap.TextWrapper._handle_long_word

    if _textwrap.TextWrapper.__name__ == "AtSpaces":  # done already (tests run main often)
        return
    _textwrap.TextWrapper = AtSpaces  # type: ignore[misc]

    # The option column is 30 wide; in a narrow terminal that leaves no room for the help.
    write_dl = formatting.HelpFormatter.write_dl

    def narrow_aware(self: Any, rows: Any, col_max: int = 30, col_spacing: int = 2) -> None:
        if self.width < 60:
            col_max = min(col_max, max(self.width // 3, 10))
        write_dl(self, rows, col_max, col_spacing)

    formatting.HelpFormatter.write_dl = narrow_aware  # type: ignore[method-assign]


app = typer.Typer(
    name="structocr",
    help="Check StructOCR API credits and usage from a terminal, a script or a CI job.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


# The --output choices, from the one table of formats.
Output = Enum("Output", {name: name for name in CHOICES}, type=str)  # type: ignore[misc]


class Call(NamedTuple):
    """What a command asks ``main`` to run once its options are parsed."""

    run: Callable[[float], int]
    """Does the work, given when the command started (``time.monotonic()``, for deadlines);
    returns the exit code of an outcome, raises a typed error."""
    json_errors: bool = False
    """Errors as one JSON document on stderr instead of a line."""


def _debug() -> bool:
    return os.environ.get(ENV_DEBUG, "") not in ("", "0")


@contextmanager
def _debug_log(err: IO[str]) -> Iterator[None]:
    """With STRUCTOCR_DEBUG set, the client's log to stderr, keys redacted."""
    if not _debug():
        yield
        return
    import logging

    from structocr_cli.api.keys import redact

    class RedactingFormatter(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            return redact(super().format(record))

    handler = logging.StreamHandler(err)
    handler.setFormatter(RedactingFormatter("structocr: debug: %(message)s"))
    logger = logging.getLogger("structocr")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        logger.removeHandler(handler)


def _version(value: bool) -> None:
    if value:
        print(f"structocr-cli {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Show the version and exit.", callback=_version, is_eager=True
        ),
    ] = False,
) -> None:
    """Check StructOCR API credits and usage from a terminal, a script or a CI job."""


MAX_TIMEOUT = 3600.0
"""One hour: a longer wait for one balance is a mistake (and overflows timers)."""


DEFAULT_TIMEOUT = 30.0
ENV_TIMEOUT = "STRUCTOCR_TIMEOUT"
_TIMEOUT_RULE = f"a number of seconds greater than 0 and at most {MAX_TIMEOUT:g}"


def _timeout_problem(value: float) -> str | None:
    if not math.isfinite(value) or value <= 0:
        return "must be a number of seconds greater than 0"
    if value > MAX_TIMEOUT:
        return f"must be at most {MAX_TIMEOUT:g} seconds"
    return None


def _check_timeout(value: float | None) -> float | None:
    problem = None if value is None else _timeout_problem(value)
    if problem:
        raise typer.BadParameter(problem)
    return value


def _finite(value: float | None) -> float | None:
    """A float option's value, refused when it is NaN or infinite: click's range check
    lets NaN through (every comparison with it is false)."""
    if value is not None and not math.isfinite(value):
        raise typer.BadParameter("must be a finite number")
    return value


def _timeout(flag: float | None) -> float:
    """--timeout, else STRUCTOCR_TIMEOUT (an error in it names the variable), else 30."""
    if flag is not None:
        return flag
    text = os.environ.get(ENV_TIMEOUT, "").strip()
    if not text:
        return DEFAULT_TIMEOUT
    from structocr_cli.api.errors import UsageError
    from structocr_cli.api.keys import shown

    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if _timeout_problem(value):
        raise UsageError(
            f"{ENV_TIMEOUT}={shown(text)!r} is not {_TIMEOUT_RULE}", "Fix or unset it"
        )
    return value


def _complete_profile(incomplete: str) -> list[str]:
    from structocr_cli.settings.config import profile_names

    return [name for name in profile_names(os.environ) if name.startswith(incomplete)]


def _complete_field(incomplete: str) -> list[str]:
    from structocr_cli.report.fields import FIELDS

    return [field.path for field in FIELDS if field.path.startswith(incomplete)]


ApiKeyOpt = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        metavar="KEY",
        help="API key. Visible to other local users in the process list: "
        "prefer --api-key-file, STRUCTOCR_API_KEY or a profile.",
        show_default=False,
    ),
]
ApiKeyFileOpt = Annotated[
    str | None,
    typer.Option(
        "--api-key-file",
        metavar="PATH",
        help="Read the API key from a file ('-' for stdin).",
        show_default=False,
    ),
]
ProfileOpt = Annotated[
    str | None,
    typer.Option(
        "--profile",
        "-p",
        metavar="NAME",
        help="Profile of the config file to use [env: STRUCTOCR_PROFILE].",
        show_default=False,
        autocompletion=_complete_profile,
    ),
]
ProfilesOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--profile",
        "-p",
        metavar="NAME",
        help="Profile of the config file to use [env: STRUCTOCR_PROFILE]; repeat it to "
        "check several.",
        show_default=False,
        autocompletion=_complete_profile,
    ),
]
AllProfilesOpt = Annotated[
    bool,
    typer.Option(
        "--all-profiles", help="Check every profile of the config file.", show_default=False
    ),
]
KeysFileOpt = Annotated[
    str | None,
    typer.Option(
        "--keys-file",
        metavar="PATH",
        help="Check the key of each name=key line of this file ('-' for stdin).",
        show_default=False,
    ),
]
ConcurrencyOpt = Annotated[
    int,
    typer.Option(
        "--concurrency",
        metavar="N",
        min=1,
        max=64,
        help="With several keys: at most N requests at once.",
    ),
]
CaBundleOpt = Annotated[
    str | None,
    typer.Option(
        "--ca-bundle",
        metavar="PATH",
        help="CA certificates (PEM) to verify the API's TLS certificate with, e.g. a "
        "company proxy's [env: REQUESTS_CA_BUNDLE]. Verification is never turned off.",
        show_default=False,
    ),
]
BaseUrlOpt = Annotated[
    str | None,
    typer.Option(
        "--base-url",
        metavar="URL",
        help="API base URL [env: STRUCTOCR_BASE_URL; default: https://structocr.com/v1].",
        show_default=False,
    ),
]


def _timeout_option(what: str) -> Any:
    return typer.Option(
        "--timeout",
        metavar="SECONDS",
        callback=_check_timeout,
        help=f"Deadline {what}, retries included "
        "[env: STRUCTOCR_TIMEOUT; default: 30, at most 3600].",
        show_default=False,
    )


TimeoutOpt = Annotated[float | None, _timeout_option("for the whole command")]


def _with_gate_options(command: Callable[..., Any]) -> Callable[..., Any]:
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


FetchTimeoutOpt = Annotated[float | None, _timeout_option("of each fetch")]


@app.command(short_help="Show credits and usage; check budget gates.")
@_with_gate_options
def balance(
    api_key: ApiKeyOpt = None,
    api_key_file: ApiKeyFileOpt = None,
    profile: ProfilesOpt = None,
    base_url: BaseUrlOpt = None,
    timeout: TimeoutOpt = None,
    json_flag: Annotated[
        bool, typer.Option("--json", help="Same as --output json.", show_default=False)
    ] = False,
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
            autocompletion=_complete_field,
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
            callback=_finite,
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

    def run(started: float) -> int:
        from structocr_cli.api.errors import UsageError
        from structocr_cli.api.keys import sanitize
        from structocr_cli.core import BalanceRequest
        from structocr_cli.report import formats
        from structocr_cli.runs import commands
        from structocr_cli.settings.resolve import Flags

        fmt = formats.choose(chosen, json_flag, fields or [])
        thresholds: Mapping[str, Decimal] = {}
        if any(value is not None for value in given.values()):
            from structocr_cli.gates import parse_thresholds

            thresholds = parse_thresholds(given)
        if fields:
            from structocr_cli.report.machine import check_fields

            check_fields(fields)
        profiles = profile or []
        several = all_profiles or keys_file is not None or len(profiles) > 1
        flags = Flags(api_key, api_key_file, profiles[0] if profiles else None, base_url)
        seconds = _timeout(timeout)
        ca = commands.ca_path(ca_bundle)
        request = BalanceRequest(flags, seconds, thresholds, ca_bundle=ca, started=started)
        if count is not None and watch is None:
            raise UsageError("--count needs --watch", "Add --watch SECONDS")
        if watch is not None and (fields or fmt.name not in ("table", "json")):
            raise UsageError(
                f"--watch shows a live table or JSON lines; it does not take "
                f"{'--field' if fields else '-o ' + fmt.name}",
                "Leave out the format, or use --json",
            )
        if not several and watch is None:
            return commands.balance_one(request, fmt, fields or [], quiet, no_ci)
        if not several and watch is not None:
            specs = [commands.one_key(flags, started + seconds)]
            return commands.watch_keys(
                specs, request, fmt.name, sort, quiet, concurrency, watch, count
            )
        if api_key is not None or api_key_file is not None:
            raise UsageError(
                "--api-key and --api-key-file name a single key",
                "To check several, list them in a --keys-file, or name profiles",
            )
        from structocr_cli.report.many import SORTS

        if sort not in SORTS:
            raise UsageError(f"--sort takes one of {', '.join(SORTS)}, not {sanitize(sort, 20)!r}")
        specs = commands.selected(profiles, all_profiles, keys_file, base_url, started + seconds)
        if watch is not None:
            return commands.watch_keys(
                specs, request, fmt.name, sort, quiet, concurrency, watch, count
            )
        return commands.balance_many(
            specs, request, fmt.name, fields or [], sort, quiet, concurrency
        )

    return Call(run, json_errors=json_flag or chosen == "json")


class LogFormat(str, Enum):
    text = "text"
    json = "json"


@app.command(short_help="Serve every key's balance as Prometheus metrics.")
def exporter(
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
            callback=_finite,
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
            callback=_finite,
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
            callback=_finite,
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
        from structocr_cli.runs import commands

        if print_rules or print_dashboard:
            return commands.print_monitoring(
                print_dashboard, alert_credits, alert_runway_days, alert_error_ratio, job
            )
        from structocr_cli.core import BalanceRequest
        from structocr_cli.exporter import server as serve
        from structocr_cli.exporter.cache import Exporter

        host, port = serve.parse_listen(listen)
        seconds = _timeout(timeout)
        request = BalanceRequest(timeout=seconds, ca_bundle=commands.ca_path(ca_bundle))
        profiles = profile or []

        read: list[bool] = []
        log = serve.Logger(log_format.value)

        def keys() -> "list[KeySpec]":
            """The keys to serve, at start and on SIGHUP, with the config file's warnings."""
            from structocr_cli.settings.resolve import read_config

            if keys_file == "-" and read:
                raise UsageError("the keys came from stdin, which cannot be read again")
            read.append(True)
            specs = commands.exporter_keys(profiles, all_profiles, keys_file, base_url, seconds)
            for warning in commands.config_warnings(read_config(os.environ)):
                log("warning", warning)
            return specs

        specs = keys()
        served = Exporter(specs, request, os.environ, min_interval=min_interval,
                          stale_after=stale_after, scrape_timeout=scrape_timeout,
                          concurrency=concurrency, log=log)  # fmt: skip
        server = serve.listen(served, host, port, log)
        return serve.run(served, server, log, keys, sys.stdout)

    return Call(run)


@app.command(short_help="Run a local StructOCR server for demos and offline tests.")
def mock(
    host: Annotated[str, typer.Option(metavar="HOST", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[
        int,
        typer.Option(
            metavar="PORT", min=0, max=65535, help="Port, 0 to 65535; 0 picks a free one."
        ),
    ] = 8787,
    fixtures: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE",
            help="TOML or JSON file mapping your own test keys to balances.",
            show_default=False,
        ),
    ] = None,
    list_faults: Annotated[
        bool,
        typer.Option(
            "--list-faults",
            help="List the fault keys (each a way the API can fail) and exit.",
            show_default=False,
        ),
    ] = False,
    latency_ms: Annotated[
        float,
        typer.Option(
            "--latency-ms",
            metavar="MS",
            min=0,
            max=60_000,
            callback=_finite,
            help="Wait this long before every answer, to rehearse a slow API.",
        ),
    ] = 0,
) -> Call:
    """Run a local StructOCR server for demos and offline tests.

    Prints its base URL first. Demo keys: demo, demo-low, demo-404, demo-500, demo-flaky;
    fault keys (fault-stall, fault-html-404, ...): see --list-faults.
    """

    def run(started: float) -> int:
        from structocr_cli.mock import server as mock

        if list_faults:
            mock.list_faults(sys.stdout)
        else:
            mock.run(host, port, fixtures, sys.stdout, sys.stderr, latency_ms)
        return 0

    return Call(run)


config_app = typer.Typer(
    name="config",
    help="Store, list, switch and remove API keys and profiles.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(config_app)


class Store(str, Enum):
    file = "file"
    keyring = "keyring"


def _config_path() -> Path:
    from structocr_cli.settings.config import config_path

    return config_path(os.environ)


@config_app.command("set-key")
def config_set_key(
    profile: Annotated[
        str | None,
        typer.Option(
            "--profile",
            "-p",
            metavar="NAME",
            help="Profile to save the key in [env: STRUCTOCR_PROFILE; default: the default "
            "profile, or 'default'].",
            show_default=False,
            autocompletion=_complete_profile,
        ),
    ] = None,
    base_url: Annotated[
        str | None,
        typer.Option(
            metavar="URL", help="Also save this API base URL in the profile.", show_default=False
        ),
    ] = None,
    verify: Annotated[
        bool, typer.Option("--verify", help="Save only if the key works (calls the API).")
    ] = False,
    make_default: Annotated[
        bool, typer.Option("--default", help="Make this the default profile.")
    ] = False,
    store: Annotated[
        Store,
        typer.Option(
            metavar="STORE",
            help="Where to keep the key: file (in the config file) or keyring (in the OS "
            "keyring; the config file then records only that it is there).",
        ),
    ] = Store.file,
    timeout: TimeoutOpt = None,
) -> Call:
    """Save an API key typed at a hidden prompt or piped on stdin.

    The key is never an argument (arguments are visible to other users). From a script:

    \b
      printf %s "$KEY" | structocr config set-key -p ci
    """

    def run(started: float) -> int:
        from structocr_cli.api.keys import mask
        from structocr_cli.report.output import origin
        from structocr_cli.runs import commands
        from structocr_cli.settings import profiles
        from structocr_cli.settings.config import load_config
        from structocr_cli.settings.resolve import Kind, Source, Sourced, check_base_url

        url = base_url
        if url is not None:
            url = check_base_url(Sourced(url, Source(Kind.FLAG, "--base-url")))
        path = _config_path()
        chosen = profiles.target_profile(profile, os.environ, load_config(path))
        name, seconds = chosen.value, _timeout(timeout)
        deadline = started + seconds
        key = profiles.read_new_key(_read_secret(f"API key for profile {name!r}: ", deadline))
        credits = ""
        if verify:
            where = profiles.verify_base_url(load_config(path), os.environ, name, url)
            credits = _verify(key, where, seconds, deadline)
        change = profiles.SetKey(name, key, url, make_default, store.value)
        before = profiles.set_key(path, change)
        place = "the OS keyring" if store is Store.keyring else str(path)
        default = make_default or not before.default_profile
        note = "; it is the default profile" if default else ""
        told = "" if chosen.source.kind is Kind.FLAG else f" {origin(chosen)}"
        commands.say(
            f'saved the key {mask(key)} for profile "{name}"{told} in {place}{note}{credits}'
        )
        return 0

    return Call(run)


def _read_secret(prompt: str, deadline: float) -> str:
    """The key typed at a hidden prompt, or piped (at most a few KiB, before ``deadline``)."""
    if sys.stdin is not None and not sys.stdin.closed and sys.stdin.isatty():
        import getpass

        try:
            return getpass.getpass(prompt)
        except KeyboardInterrupt:
            print(file=sys.stderr)  # what follows starts on a line of its own, not the prompt's
            raise
        except EOFError:  # Ctrl-D: no key given
            print(file=sys.stderr)
            return ""
    from structocr_cli.settings.reads import KEY_CAP, read_stdin

    return read_stdin(KEY_CAP, deadline, "the key")


def _verify(key: str, base_url: str, timeout: float, deadline: float) -> str:
    from structocr_cli.api.errors import HTTPStatusError, StructocrError
    from structocr_cli.core import verify_key
    from structocr_cli.report.fields import number

    try:
        balance = verify_key(key, base_url, timeout, deadline=deadline)
    except StructocrError as exc:
        hint = "Nothing was saved; check the key and run structocr config set-key again"
        if isinstance(exc, HTTPStatusError):
            raise exc.with_hint(hint) from None
        raise type(exc)(exc.message, f"Nothing was saved. {exc.hint}") from None
    return f" (verified: {number(balance.account.credits_remaining)} credits remaining)"


@config_app.command("list")
def config_list(
    json_out: Annotated[bool, typer.Option("--json", help="One JSON array, keys masked.")] = False,
) -> Call:
    """List profiles: name, masked key, base URL, and * on the default."""

    def run(started: float) -> int:
        from structocr_cli.report import output
        from structocr_cli.runs import commands
        from structocr_cli.settings.profiles import rows
        from structocr_cli.settings.resolve import read_config

        config = read_config(os.environ)
        commands.warn_about(config)
        found = rows(config)
        if json_out:
            output.write_json([row.as_json() for row in found], sys.stdout)
        elif found:
            sys.stdout.write(output.profile_lines(found))
        else:
            commands.say(f"no profiles in {config.path}; add one with: structocr config set-key")
        return 0

    return Call(run, json_errors=json_out)


ProfileArg = Annotated[str, typer.Argument(metavar="NAME", autocompletion=_complete_profile)]


@config_app.command("use")
def config_use(name: ProfileArg) -> Call:
    """Make NAME the default profile."""

    def run(started: float) -> int:
        from structocr_cli.runs import commands
        from structocr_cli.settings import profiles

        profiles.use(_config_path(), name)
        commands.say(f'"{name}" is now the default profile')
        return 0

    return Call(run)


@config_app.command("remove")
def config_remove(name: ProfileArg) -> Call:
    """Delete profile NAME (and its key)."""

    def run(started: float) -> int:
        from structocr_cli.runs import commands
        from structocr_cli.settings import profiles

        notes = profiles.remove(_config_path(), name)
        commands.say(f'removed profile "{name}"')
        for note in notes:
            commands.say(note)
        return 0

    return Call(run)


@config_app.command("path")
def config_path_command() -> Call:
    """Print the config file's path (STRUCTOCR_CONFIG overrides it)."""

    def run(started: float) -> int:
        print(_config_path())
        return 0

    return Call(run)


@config_app.command("show")
def config_show(profile: ProfileOpt = None) -> Call:
    """Show what balance would use now, and why (no network)."""

    def run(started: float) -> int:
        from structocr_cli.report.output import status_lines
        from structocr_cli.runs import commands
        from structocr_cli.settings.profiles import status

        now = status(profile, os.environ)
        commands.warn_about(now.config)
        sys.stdout.write(status_lines(now))
        return now.exit_code

    return Call(run)


class Shell(str, Enum):
    bash = "bash"
    zsh = "zsh"
    fish = "fish"
    powershell = "powershell"


@app.command(short_help="Print or install the shell completion script.")
def completion(
    shell: Annotated[
        Shell,
        typer.Argument(
            metavar="SHELL", case_sensitive=False, help="bash, zsh, fish or powershell."
        ),
    ],
    install: Annotated[
        bool,
        typer.Option("--install", help="Write it where the shell looks for completions."),
    ] = False,
) -> Call:
    """Print the shell completion script (or install it with --install).

    \b
      structocr completion zsh > ~/.zfunc/_structocr
      structocr completion --install fish
    """

    def run(started: float) -> int:
        from structocr_cli.cli import completion as scripts
        from structocr_cli.runs import commands

        if not install:
            sys.stdout.write(scripts.script(shell.value))
            return 0
        path, step = scripts.install(shell.value, os.environ)
        commands.say(f"wrote {path}; {step}")
        return 0

    return Call(run)


def main(argv: Sequence[str] | None = None, started: float | None = None) -> int:
    """Console-script entry point: parse, run, and turn whatever happens into an exit code.

    The one place where errors become exit codes and messages (the README's table).
    ``started`` is when the process began, for deadlines (default: now).
    """
    import time

    started = time.monotonic() if started is None else started
    if "_STRUCTOCR_COMPLETE" in os.environ:  # completion.COMPLETE_VAR, without the import
        from structocr_cli.cli.completion import enable

        enable()
    json_errors = False
    try:
        # Known before parsing, so that a usage error under --json is JSON too.
        args = sys.argv[1:] if argv is None else list(argv)
        json_errors = _asks_for_json(args)
        if "_STRUCTOCR_COMPLETE" not in os.environ:  # any run may show help; TAB never does
            _fit_help_to_terminal()
        call = app(args=args, prog_name="structocr", standalone_mode=False)
        if not isinstance(call, Call):  # --help, --version: typer has answered already
            code = int(call or 0)
            if code == 130:  # typer turns a Ctrl-C during parsing into a silent exit 130
                _fail("interrupted", code, "interrupted", json_errors)
            return code
        json_errors = call.json_errors
        with _debug_log(sys.stderr):
            return call.run(started)
    except BaseException as exc:  # the funnel every exception reaches
        return _exit_code(exc, json_errors)


def _fit_help_to_terminal() -> None:
    """Help at this terminal's width: click would not format it narrower than 50 columns (so
    a 40-column terminal broke its lines mid-word), and balance's exit codes wrapped to fit."""
    import shutil

    _wrap_at_spaces()
    width = max(min(shutil.get_terminal_size().columns, 80) - 2, 30)
    settings = app.info.context_settings
    if isinstance(settings, dict):
        settings["terminal_width"] = width
    for command in app.registered_commands:
        if command.callback is balance:
            command.epilog = _exit_code_list(width)


def _asks_for_json(args: list[str]) -> bool:
    if "--" in args:
        args = args[: args.index("--")]
    from itertools import pairwise

    pairs = pairwise(args)
    return (
        "--json" in args
        or "--output=json" in args
        or "-ojson" in args
        or any(flag in ("-o", "--output") and value == "json" for flag, value in pairs)
    )


def _exit_code(exc: BaseException, json_errors: bool) -> int:
    """Report ``exc`` on stderr, once, and return the exit code it stands for."""
    if isinstance(exc, SystemExit):  # completion ends so; checked first, as TAB is hot
        return exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
    # typer's own click; its usage errors know how to show themselves (test_typer_private_api).
    from typer._click.exceptions import ClickException

    from structocr_cli.api.errors import ExitCode, StructocrError

    if isinstance(exc, StructocrError):
        from structocr_cli.report.output import error_document, error_line

        print(error_document(exc) if json_errors else error_line(exc), file=sys.stderr)
        return exc.exit_code
    if isinstance(exc, ClickException):  # a usage error found while parsing
        _show_usage_error(exc, json_errors)
        return exc.exit_code
    if isinstance(exc, KeyboardInterrupt):
        _fail("interrupted", ExitCode.INTERRUPTED, "interrupted", json_errors)
        return ExitCode.INTERRUPTED
    if isinstance(exc, BrokenPipeError):  # the reader went away (`| head -1`)
        from structocr_cli.runs import commands

        commands.silence(sys.stdout)
        return ExitCode.OK
    if isinstance(exc, typer.Abort):
        print("Aborted!", file=sys.stderr)
        return 1
    _report_bug(exc, json_errors)
    return ExitCode.INTERNAL


def _show_usage_error(exc: Any, json_errors: bool) -> None:
    """click's usage error as click shows it (or as the JSON error object), but a value it
    echoes that could be an API key typed in the wrong place (``balance KEY``,
    ``--timeout KEY``) is masked."""
    import io

    if json_errors:
        _fail("usage_error", exc.exit_code, _mask_values(exc.format_message()), True)
        return
    shown = io.StringIO()
    exc.show(file=shown)
    *usage, last = shown.getvalue().rstrip("\n").split("\n")
    sys.stderr.write("\n".join([*usage, _mask_values(last)]) + "\n")


def _mask_values(text: str) -> str:
    """Each quoted or parenthesised value in ``text`` that could be a key, masked."""
    import re

    from structocr_cli.api.keys import mask, may_be_secret

    def masked(match: re.Match[str]) -> str:
        quoted = match.group(0)
        words = quoted[1:-1].split(" ")
        inner = " ".join(
            mask(word) if may_be_secret(word) and not word.startswith("-") else word
            for word in words
        )
        return quoted[0] + inner + quoted[-1]

    return re.sub(r"'[^']*'|\([^)]*\)", masked, text)


def _fail(code: str, exit_code: int, message: str, json_errors: bool) -> None:
    """A failure that is no StructocrError, said as one line or the JSON error object."""
    if json_errors:
        from structocr_cli.report.output import failure_document

        print(failure_document(code, exit_code, message), file=sys.stderr)
    else:
        print(f"structocr: {message}", file=sys.stderr)


def _report_bug(exc: BaseException, json_errors: bool) -> None:
    from structocr_cli.api.errors import ExitCode
    from structocr_cli.api.keys import redact, sanitize

    if _debug():
        import traceback

        text = "".join(traceback.format_exception(exc))
        print(redact(text), file=sys.stderr, end="")
    name = type(exc).__name__
    message = (
        f"internal error ({name}: {sanitize(str(exc))}). This is a bug: please report it, "
        f"with the output of the same command run with {ENV_DEBUG}=1"
    )
    _fail("internal_error", ExitCode.INTERNAL, redact(message), json_errors)
