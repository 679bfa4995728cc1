"""``balance``'s runs: one key, or several at once, rendered in the chosen format, with
the gates' verdict as the exit code and GitHub Actions annotations in CI."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from structocr_cli.report.formats import JSON_FORMATS
from structocr_cli.runs.common import say, tell, warn_about, write_out

if TYPE_CHECKING:
    from structocr_cli.core import BalanceRequest, Outcome
    from structocr_cli.gates import Check
    from structocr_cli.report.formats import Format
    from structocr_cli.settings.resolve import Flags
    from structocr_cli.settings.selection import KeySpec


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
    for line in many.breach_lines(results, as_json=output in JSON_FORMATS):
        print(line, file=sys.stderr)
    failed = many.failure_lines(results)
    if failed and output not in many.IN_BAND:
        for line in failed:
            say(f"error: {line}")
    elif failed and output == "table":
        say(f"error: {len(failed)} of {len(results)} keys could not be checked (see their rows)")
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


def github_actions() -> bool:
    return os.environ.get("GITHUB_ACTIONS") == "true"


def balance_one(
    request: BalanceRequest, fmt: Format, fields: Sequence[str], quiet: bool, no_ci: bool
) -> int:
    from structocr_cli.core import check_balance

    ci = not no_ci and github_actions()
    request = request._replace(derive=(fmt.derived and not quiet) or ci)
    out = sys.stdout
    try:
        outcome = check_balance(request, os.environ)
    except Exception:
        if not quiet:  # a consumer of this output learns the balance is unknown, even now
            from structocr_cli.core import Outcome

            fmt.write_failure(Outcome(), out)
        raise
    as_json = fmt.name in JSON_FORMATS
    if outcome.settings is not None:
        warn_about(outcome.settings.config, as_json)
    for note in outcome.notes:
        tell("note", note, as_json)
    if outcome.error is not None:
        if not quiet:
            fmt.write_failure(outcome, out)
        raise outcome.error
    if not quiet:
        write_out(lambda: fmt.write(outcome, fields, out), out)
    for check in outcome.breached:
        print(_breach_line(check, as_json), file=sys.stderr)
    if ci:
        publish_ci(outcome)
    return outcome.exit_code


def _breach_line(check: Check, as_json: bool) -> str:
    if not as_json:
        return f"structocr: {check.line()}"
    import json

    from structocr_cli.report.output import check_object

    return json.dumps({"gate": check_object(check)}, ensure_ascii=True)


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
