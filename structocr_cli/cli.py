"""The command line: the only module that imports typer.

Commands parse options, call the core, render, and return. Every error becomes an exit
code in ``reporting`` (the one funnel), which ``CliRunner`` tests see as users do.
requests, rich and platformdirs are imported inside the commands that need them, so
``--help`` and ``--version`` start fast.
"""

import math
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from structocr_cli import __version__

if TYPE_CHECKING:
    from decimal import Decimal

    from structocr_cli.config import Config
    from structocr_cli.derive import Derived
    from structocr_cli.gates import Check
    from structocr_cli.model import Balance
    from structocr_cli.settings import Flags, Settings

ENV_DEBUG = "STRUCTOCR_DEBUG"

EXIT_CODES = """\b
Exit codes:
  0    success
  1    a budget gate was breached
  2    usage error: bad option or value, invalid config file,
       unknown profile, refused base URL
  40   HTTP 4xx other than 401/404 (e.g. 403, or 429 once retries are spent)
  41   HTTP 401, or no API key found
  44   HTTP 404: no account linked to the key
  50   HTTP 5xx once retries are spent
  60   no HTTP answer: DNS, connection refused or reset, TLS, deadline
  61   unusable answer: not JSON, wrong shape, redirect, too large
  70   internal error (a bug; rerun with STRUCTOCR_DEBUG=1 and report it)
  130  interrupted
"""

app = typer.Typer(
    name="structocr",
    help="Check StructOCR API credits and usage from a terminal, a script or a CI job.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


class Output(str, Enum):
    table = "table"
    json = "json"
    tsv = "tsv"
    env = "env"
    openmetrics = "openmetrics"


def _debug() -> bool:
    return os.environ.get(ENV_DEBUG, "") not in ("", "0")


def _enable_debug_log() -> None:
    import logging

    from structocr_cli.keys import redact

    class RedactingFormatter(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            return redact(super().format(record))

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RedactingFormatter("structocr: debug: %(message)s"))
    logger = logging.getLogger("structocr")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)


@contextmanager
def reporting(json_errors: bool = False) -> Iterator[None]:
    """Turn every exception into one line on stderr (or a JSON document) and an exit code."""
    # Imported here, not at the top: --help, --version and TAB never need them.
    from structocr_cli.errors import ExitCode, StructocrError
    from structocr_cli.keys import redact, sanitize

    try:
        yield
    except typer.Exit:
        raise
    except StructocrError as exc:
        from structocr_cli.output import error_document, error_line

        print(error_document(exc) if json_errors else error_line(exc), file=sys.stderr)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        print("structocr: interrupted", file=sys.stderr)
        raise typer.Exit(ExitCode.INTERRUPTED) from None
    except BrokenPipeError:
        # The reader went away (e.g. `| head -1`); nothing left to say to it.
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - replaces the closed stream
        raise typer.Exit(ExitCode.OK) from None
    except Exception as exc:
        if _debug():
            import traceback

            print(redact(traceback.format_exc()), file=sys.stderr, end="")
        name = type(exc).__name__
        print(
            redact(f"structocr: internal error ({name}: {sanitize(str(exc))}). This is a bug: ")
            + "please report it, "
            + f"with the output of the same command run with {ENV_DEBUG}=1",
            file=sys.stderr,
        )
        raise typer.Exit(ExitCode.INTERNAL) from None


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


def _check_timeout(value: float) -> float:
    if not math.isfinite(value) or value <= 0:
        raise typer.BadParameter("must be a number of seconds greater than 0")
    return value


def _complete_profile(incomplete: str) -> list[str]:
    from structocr_cli.config import profile_names

    return [name for name in profile_names(os.environ) if name.startswith(incomplete)]


def _complete_field(incomplete: str) -> list[str]:
    from structocr_cli.fields import FIELDS

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
BaseUrlOpt = Annotated[
    str | None,
    typer.Option(
        "--base-url",
        metavar="URL",
        help="API base URL [env: STRUCTOCR_BASE_URL; default: https://structocr.com/v1].",
        show_default=False,
    ),
]
TimeoutOpt = Annotated[
    float,
    typer.Option(
        "--timeout",
        metavar="SECONDS",
        envvar="STRUCTOCR_TIMEOUT",
        callback=_check_timeout,
        help="Deadline for the whole command, retries included [env: STRUCTOCR_TIMEOUT].",
        show_envvar=False,
    ),
]


def _gate(option: str, metavar: str, help_text: str) -> Any:
    # The gates themselves are in gates.GATES, loaded only when a balance is checked.
    return typer.Option(option, metavar=metavar, help=help_text, show_default=False)


MinRemainingOpt = Annotated[
    str | None, _gate("--min-remaining", "N", "Fail (exit 1) if account.credits_remaining < N.")
]
MaxPeriodCreditsOpt = Annotated[
    str | None, _gate("--max-period-credits", "N", "Fail if account.credits_this_period > N.")
]
MaxKeyCreditsOpt = Annotated[
    str | None, _gate("--max-key-credits", "N", "Fail if this_key.credits_used > N.")
]
MaxErrorRateOpt = Annotated[
    str | None, _gate("--max-error-rate", "PCT", "Fail if the account's error rate (%) > PCT.")
]
MaxKeyErrorRateOpt = Annotated[
    str | None, _gate("--max-key-error-rate", "PCT", "Fail if this key's error rate (%) > PCT.")
]
MaxLatencyOpt = Annotated[
    str | None, _gate("--max-latency-ms", "N", "Fail if account.avg_latency_ms > N.")
]
MinRunwayOpt = Annotated[
    str | None,
    _gate("--min-runway-days", "D", "Fail if forecast.runway_days < D (no use: never fails)."),
]


@app.command(epilog=EXIT_CODES)
def balance(
    api_key: ApiKeyOpt = None,
    api_key_file: ApiKeyFileOpt = None,
    profile: ProfileOpt = None,
    base_url: BaseUrlOpt = None,
    timeout: TimeoutOpt = 30.0,
    json_flag: Annotated[
        bool, typer.Option("--json", help="Same as --output json.", show_default=False)
    ] = False,
    output: Annotated[
        Output | None,
        typer.Option(
            "--output",
            "-o",
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
    min_remaining: MinRemainingOpt = None,
    max_period_credits: MaxPeriodCreditsOpt = None,
    max_key_credits: MaxKeyCreditsOpt = None,
    max_error_rate: MaxErrorRateOpt = None,
    max_key_error_rate: MaxKeyErrorRateOpt = None,
    max_latency_ms: MaxLatencyOpt = None,
    min_runway_days: MinRunwayOpt = None,
) -> None:
    """Show the billing period, account credits and this key's usage; check budget gates.

    The key is taken from --api-key, --api-key-file, STRUCTOCR_API_KEY, then the
    profile's api_key in the config file (STRUCTOCR_CONFIG overrides its path).
    With gate options, a breached gate prints a line on stderr and exits 1; a balance
    that cannot be fetched exits with its error code, never 0 or 1.
    """
    from structocr_cli.errors import UsageError

    fmt = Output.json if json_flag else output
    with reporting(json_errors=fmt is Output.json):
        if json_flag and output not in (None, Output.json):
            raise UsageError(
                f"--json and --output {output.value} contradict each other", "Pick one"
            )
        if fields and fmt is not None:
            raise UsageError("--field prints bare values; it cannot be combined with --output")
        if _debug():
            _enable_debug_log()
        given = {
            "--min-remaining": min_remaining,
            "--max-period-credits": max_period_credits,
            "--max-key-credits": max_key_credits,
            "--max-error-rate": max_error_rate,
            "--max-key-error-rate": max_key_error_rate,
            "--max-latency-ms": max_latency_ms,
            "--min-runway-days": min_runway_days,
        }
        thresholds: dict[str, Decimal] = {}
        if any(value is not None for value in given.values()):
            from structocr_cli.gates import parse_threshold

            thresholds = {k: parse_threshold(k, v) for k, v in given.items() if v is not None}
        if fields:
            from structocr_cli.formats import check_fields

            check_fields(fields)
        from structocr_cli.settings import Flags

        flags = Flags(api_key, api_key_file, profile, base_url)
        _balance(flags, timeout, fmt or Output.table, fields or [], quiet, no_ci, thresholds)


def _balance(
    flags: "Flags",
    timeout: float,
    fmt: Output,
    fields: list[str],
    quiet: bool,
    no_ci: bool,
    thresholds: "dict[str, Decimal]",
) -> None:
    from datetime import datetime, timezone

    from structocr_cli.core import fetch_balance
    from structocr_cli.derive import derive
    from structocr_cli.errors import ExitCode, StructocrError
    from structocr_cli.settings import resolve

    label = None
    try:
        settings = resolve(flags, os.environ)
        _warn_if_loose(settings.config)
        label = settings.profile_label
        result = fetch_balance(settings, timeout)
    except StructocrError:
        if fmt is Output.openmetrics and not quiet:
            from structocr_cli.formats import openmetrics_down

            sys.stdout.write(openmetrics_down(label))
        raise
    derived = derive(result, datetime.now(timezone.utc))
    checks: list[Check] = []
    if thresholds:
        from structocr_cli.gates import evaluate

        checks = evaluate(thresholds, result, derived)
    if not quiet:
        try:
            _emit(fmt, fields, result, derived, settings)
            sys.stdout.flush()
        except BrokenPipeError:
            # The reader went away (`| head -1`); the gates below still decide the exit code.
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - replaces the closed stream
    for check in checks:
        if check.breached:
            print(check.line(), file=sys.stderr)
    if not no_ci:
        _publish_ci(result, derived, checks)
    if any(check.breached for check in checks):
        raise typer.Exit(ExitCode.GATE_BREACHED)


def _emit(
    fmt: Output, fields: list[str], result: "Balance", derived: "Derived", settings: "Settings"
) -> None:
    out = sys.stdout
    if fmt is Output.json and not fields:
        from structocr_cli.output import write_json

        write_json(result.document, out)
        return
    from structocr_cli import formats

    if fields:
        out.write(formats.field_lines(fields, result, derived))
    elif fmt is Output.tsv:
        out.write(formats.tsv(result, derived))
    elif fmt is Output.env:
        out.write(formats.env(result, derived))
    elif fmt is Output.openmetrics:
        out.write(formats.openmetrics(result, derived, settings.profile_label))
    else:
        from structocr_cli.render import report

        source = f"{settings.base_url.value}, key from {settings.api_key.source}"
        report(result, derived, source, out)


def _publish_ci(result: "Balance", derived: "Derived", checks: "list[Check]") -> None:
    if os.environ.get("GITHUB_ACTIONS") != "true":
        return
    from structocr_cli import ci

    ci.annotate(checks, sys.stderr)
    summary_path = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary_path:
        try:
            ci.append_summary(summary_path, ci.summary(result, derived, checks))
        except OSError as exc:
            print(f"structocr: warning: cannot write the step summary: {exc}", file=sys.stderr)


@app.command()
def mock(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port; 0 picks a free one.")] = 8787,
    fixtures: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE",
            help="TOML or JSON file mapping your own test keys to balances.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run a local StructOCR server for demos and offline tests.

    Prints its base URL first. Demo keys: demo, demo-low, demo-404, demo-500, demo-flaky.
    """
    with reporting():
        from structocr_cli.mock import run

        run(host, port, fixtures, sys.stdout, sys.stderr)


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


def _say(message: str) -> None:
    print(f"structocr: {message}", file=sys.stderr)


def _warn_if_loose(config: "Config") -> None:
    if config.loose_permissions:
        _say(f"warning: {config.permission_advice()}")


def _config_path() -> Path:
    from structocr_cli.config import config_path

    return config_path(os.environ)


@config_app.command("set-key")
def config_set_key(
    profile: Annotated[
        str,
        typer.Option(
            "--profile",
            "-p",
            metavar="NAME",
            help="Profile to save the key in.",
            autocompletion=_complete_profile,
        ),
    ] = "default",
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
        Store, typer.Option(help="Where to keep the key: this file, or the OS keyring.")
    ] = Store.file,
    timeout: TimeoutOpt = 30.0,
) -> None:
    """Save an API key typed at a hidden prompt or piped on stdin.

    The key is never an argument (arguments are visible to other users). From a script:

    \b
      printf %s "$KEY" | structocr config set-key -p ci
    """
    with reporting():
        from structocr_cli import profiles
        from structocr_cli.config import check_profile_name, load_config
        from structocr_cli.settings import Sourced, check_base_url

        check_profile_name(profile)
        if base_url is not None:
            base_url = check_base_url(Sourced(base_url, "--base-url"))
        path = _config_path()
        key = profiles.read_new_key(_read_secret(f"API key for profile {profile!r}: "))
        credits = ""
        if verify:
            credits = _verify(key, profiles.verify_base_url(
                load_config(path), os.environ, profile, base_url), timeout)  # fmt: skip
        change = profiles.SetKey(profile, key, base_url, make_default, store.value)
        before = profiles.set_key(path, change)
        where = "the OS keyring" if store is Store.keyring else str(path)
        default = make_default or not before.default_profile
        note = "; it is the default profile" if default else ""
        from structocr_cli.keys import mask

        _say(f'saved the key {mask(key)} for profile "{profile}" in {where}{note}{credits}')


def _read_secret(prompt: str) -> str:
    if sys.stdin is not None and sys.stdin.isatty():
        import getpass

        return getpass.getpass(prompt)
    return sys.stdin.read() if sys.stdin is not None else ""


def _verify(key: str, base_url: str, timeout: float) -> str:
    from structocr_cli.client import BalanceClient
    from structocr_cli.core import within
    from structocr_cli.fields import number

    balance = within(timeout, BalanceClient().fetch, base_url, key)
    return f" (verified: {number(balance.account.credits_remaining)} credits remaining)"


@config_app.command("list")
def config_list(
    json_out: Annotated[bool, typer.Option("--json", help="One JSON array, keys masked.")] = False,
) -> None:
    """List profiles: name, masked key, base URL, and * on the default."""
    with reporting(json_errors=json_out):
        from structocr_cli.profiles import rows
        from structocr_cli.settings import read_config

        config = read_config(os.environ)
        _warn_if_loose(config)
        found = rows(config)
        if json_out:
            import json

            print(json.dumps([row.as_json() for row in found], indent=2))
            return
        if not found:
            _say(f"no profiles in {config.path}; add one with: structocr config set-key")
            return
        width = max(len(row.name) for row in found)
        for row in found:
            marker = "*" if row.default else " "
            print(f"{marker} {row.name:<{width}}  {row.key:<12}  {row.base_url or ''}".rstrip())


ProfileArg = Annotated[str, typer.Argument(metavar="NAME", autocompletion=_complete_profile)]


@config_app.command("use")
def config_use(name: ProfileArg) -> None:
    """Make NAME the default profile."""
    with reporting():
        from structocr_cli import profiles

        profiles.use(_config_path(), name)
        _say(f'"{name}" is now the default profile')


@config_app.command("remove")
def config_remove(name: ProfileArg) -> None:
    """Delete profile NAME (and its key)."""
    with reporting():
        from structocr_cli import profiles

        for warning in profiles.remove(_config_path(), name):
            _say(f"warning: {warning}")
        _say(f'removed profile "{name}"')


@config_app.command("path")
def config_path_command() -> None:
    """Print the config file's path (STRUCTOCR_CONFIG overrides it)."""
    with reporting():
        print(_config_path())


@config_app.command("show")
def config_show(profile: ProfileOpt = None) -> None:
    """Show what balance would use now, and why (no network)."""
    with reporting():
        from structocr_cli.keys import mask
        from structocr_cli.profiles import status

        now = status(profile, os.environ)
        _warn_if_loose(now.config)
        key = (
            f"{mask(now.key.value)} (from {now.key.source})"
            if now.key
            else f"none: {now.problem_text}"
        )
        lines = [
            ("Profile", f"{now.profile.value} (from {now.profile.source})"),
            ("API key", key),
            ("Base URL", f"{now.base_url.value} (from {now.base_url.source})"),
            ("Config file", f"{now.config.path} ({now.permissions})"),
        ]
        for label, value in lines:
            print(f"{label + ':':<13}{value}")
        if now.key is None:
            from structocr_cli.errors import ExitCode

            raise typer.Exit(ExitCode.UNAUTHORIZED)


class Shell(str, Enum):
    bash = "bash"
    zsh = "zsh"
    fish = "fish"
    powershell = "powershell"


@app.command()
def completion(
    shell: Annotated[Shell, typer.Argument(case_sensitive=False, help="The shell.")],
    install: Annotated[
        bool,
        typer.Option("--install", help="Write it where the shell looks for completions."),
    ] = False,
) -> None:
    """Print the shell completion script (or install it with --install).

    \b
      structocr completion zsh > ~/.zfunc/_structocr
      structocr completion --install fish
    """
    with reporting():
        from structocr_cli import completion as scripts

        if not install:
            sys.stdout.write(scripts.script(shell.value))
            return
        path, step = scripts.install(shell.value, os.environ)
        _say(f"wrote {path}; {step}")


def main() -> None:
    """Console-script entry point."""
    if "_STRUCTOCR_COMPLETE" in os.environ:  # completion.COMPLETE_VAR, without the import
        from structocr_cli.completion import enable

        enable()
    app(prog_name="structocr")
