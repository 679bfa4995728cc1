"""What the commands do once their options are parsed: the runs of ``balance`` (one key,
several, a watch), ``exporter``'s key selection and printed files, and the small output
helpers the commands share. No typer here (``cli`` parses); each library is imported
where it is used, so that ``--help`` and TAB pay nothing for this module.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from structocr_cli.core import BalanceRequest, Outcome
    from structocr_cli.report.formats import Format
    from structocr_cli.report.many import Result
    from structocr_cli.settings.config import Config
    from structocr_cli.settings.resolve import Flags
    from structocr_cli.settings.selection import KeySpec


def ca_path(ca_bundle: str | None) -> str | None:
    if ca_bundle is None:
        return None
    path = Path(ca_bundle).expanduser()
    if not path.is_file():
        from structocr_cli.api.errors import UsageError
        from structocr_cli.api.keys import sanitize

        raise UsageError(
            f"--ca-bundle {sanitize(ca_bundle, 120)}: no such file",
            "Pass a PEM file of CA certificates",
        )
    return str(path)


def selected(
    profiles: list[str], every: bool, keys_file: str | None, base_url: str | None, deadline: float
) -> list[KeySpec]:
    from structocr_cli.settings import selection
    from structocr_cli.settings.resolve import read_config

    chosen = [selection.from_profiles(profiles, base_url)]
    if every:
        chosen.append(selection.all_profiles(read_config(os.environ), base_url))
    where = "stdin" if keys_file == "-" else keys_file or "the selection"
    if keys_file is not None:
        text = selection.read_keys_path(keys_file, deadline)
        chosen.append(selection.from_keys_file(text, where, base_url))
    specs = selection.combined(*chosen)
    if not specs:  # only an empty keys file gets here; a gate over no key would pass
        raise selection.NoKeysError(
            f"no keys selected: {where} has no name=key line", selection.HINT_KEYS_FILE
        )
    return specs


def balance_many(
    specs: list[KeySpec],
    request: BalanceRequest,
    output: str,
    fields: Sequence[str],
    sort: str,
    quiet: bool,
    concurrency: int,
) -> int:
    from structocr_cli.core import check_many, combined_exit_code
    from structocr_cli.report import many

    if output == "env":
        from structocr_cli.report.machine import check_env_names

        check_env_names([spec.name for spec in specs])
    results = check_many(specs, request, os.environ, concurrency)
    out = sys.stdout
    if not quiet:
        write_out(lambda: many.write(results, output, sort, fields, out), out)
    for line in many.breach_lines(results):
        print(line, file=sys.stderr)
    failed = many.failure_lines(results)
    if failed and output not in many.IN_BAND:
        for line in failed:
            say(line)
    elif failed and output == "table":
        say(f"{len(failed)} of {len(results)} keys could not be checked (see their rows)")
    return combined_exit_code(outcome for _, outcome in results)


def one_key(flags: Flags, deadline: float, warn: bool = True) -> KeySpec:
    """The one key a watch or the exporter checks, read once (a key from stdin cannot be
    read again); ``warn``: say what is wrong with the config file on stderr."""
    from structocr_cli.settings.resolve import Flags, resolve
    from structocr_cli.settings.selection import KeySpec

    settings = resolve(flags, os.environ, deadline)
    if warn:
        warn_about(settings.config)
    key, url = settings.api_key, settings.base_url.value
    return KeySpec(
        settings.profile_label or "default",
        Flags(api_key=key.value, base_url=url, api_key_from=str(key.source)),
    )


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
    from dataclasses import replace

    from structocr_cli.api.client import BalanceClient
    from structocr_cli.core import check_many
    from structocr_cli.runs import watch

    client = BalanceClient(ca_bundle=request.ca_bundle)  # its connections kept between refreshes
    state = watch.Watch(interval, sort)
    out = sys.stdout
    on_screen = output == "table" and not quiet and out.isatty()

    def refresh(started: float) -> list[Result]:
        each = replace(request, started=started)
        return check_many(specs, each, os.environ, concurrency, client)

    if on_screen:
        from structocr_cli.report.render import live

        screen: Any = live(out)
    else:
        screen = nullcontext(None)
    try:
        with _terminate_as_interrupt(), screen as draw:

            def show(seen: watch.Watch) -> None:
                if draw is not None:
                    draw(seen.screen())
                elif not quiet:
                    try:
                        watch.write_line(seen.document(), out)
                    except BrokenPipeError:  # `| head -1`: nobody reads any more
                        silence(out)
                        raise _ReaderGone from None

            return watch.run(state, refresh, show, say, count)
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


def github_actions() -> bool:
    return os.environ.get("GITHUB_ACTIONS") == "true"


def balance_one(
    request: BalanceRequest, fmt: Format, fields: Sequence[str], quiet: bool, no_ci: bool
) -> int:
    from dataclasses import replace

    from structocr_cli.core import check_balance

    ci = not no_ci and github_actions()
    request = replace(request, derive=(fmt.derived and not quiet) or ci)
    out = sys.stdout
    try:
        outcome = check_balance(request, os.environ)
    except Exception:
        if not quiet:  # a consumer of this output learns the balance is unknown, even now
            from structocr_cli.core import Outcome

            fmt.write_failure(Outcome(), out)
        raise
    if outcome.settings is not None:
        warn_about(outcome.settings.config)
    for note in outcome.notes:
        say(f"note: {note}")
    if outcome.error is not None:
        if not quiet:
            fmt.write_failure(outcome, out)
        raise outcome.error
    if not quiet:
        write_out(lambda: fmt.write(outcome, fields, out), out)
    for check in outcome.breached:
        print(check.line(), file=sys.stderr)
    if ci:
        publish_ci(outcome)
    return outcome.exit_code


def write_out(write: Callable[[], None], out: IO[str]) -> None:
    """Write and flush; a reader that went away (``| head -1``) is not an error here: the
    gates still decide the exit code."""
    try:
        write()
        out.flush()
    except BrokenPipeError:
        silence(out)


def silence(out: IO[str]) -> None:
    """Point a closed pipe's descriptor at /dev/null, so that the flush at exit finds
    somewhere to write instead of failing again."""
    try:
        fileno = out.fileno()
    except (OSError, ValueError):  # not a real file (tests capture in memory)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fileno)
    os.close(devnull)


def publish_ci(outcome: Outcome) -> None:
    from structocr_cli.report import ci

    balance, derived = outcome.figures()
    ci.annotate(outcome.checks, sys.stderr)
    summary_path = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary_path and outcome.checks:  # only runs that check gates report to the job
        try:
            ci.write_summary(summary_path, ci.summary(balance, derived, outcome.checks))
        except OSError as exc:
            print(f"structocr: warning: cannot write the step summary: {exc}", file=sys.stderr)


def exporter_keys(
    profiles: list[str], every: bool, keys_file: str | None, base_url: str | None, timeout: float
) -> list[KeySpec]:
    """The keys to serve: those selected; by default every profile, else the one key that
    ``balance`` would use. Called again on SIGHUP."""
    import time

    from structocr_cli.settings.resolve import Flags, read_config

    deadline = time.monotonic() + timeout
    if profiles or every or keys_file is not None:
        return selected(profiles, every, keys_file, base_url, deadline)
    if read_config(os.environ).profiles:
        return selected([], True, None, base_url, deadline)
    return [one_key(Flags(base_url=base_url), deadline, warn=False)]


def print_monitoring(
    dashboard: bool, credits: float, runway_days: float, error_ratio: float, job: str
) -> int:
    if dashboard:
        from importlib.resources import files

        sys.stdout.write(
            files("structocr_cli.exporter").joinpath("dashboard.json").read_text("utf-8")
        )
        return 0
    from structocr_cli.exporter.rules import Thresholds, rules

    sys.stdout.write(rules(Thresholds(credits, runway_days, error_ratio, job)))
    return 0


def say(message: str) -> None:
    print(f"structocr: {message}", file=sys.stderr)


def config_warnings(config: Config) -> list[str]:
    """What the user should know about the config file: others can read it, or part of it
    is ignored."""
    loose = [config.permission_advice()] if config.loose_permissions else []
    return loose + list(config.warnings)


def warn_about(config: Config) -> None:
    for warning in config_warnings(config):
        say(f"warning: {warning}")
