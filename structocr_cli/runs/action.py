"""The GitHub Action's check (``action.yml`` at the repository's root): one balance check
whose outputs go to ``GITHUB_OUTPUT``, its verdict to annotations on stdout and to the step
summary, and whose exit status follows ``on-breach`` and ``on-error``.

Its inputs arrive as environment variables, set by the action's ``env:`` (never spliced
into a script): ``STRUCTOCR_API_KEY``, ``STRUCTOCR_BASE_URL`` and ``STRUCTOCR_TIMEOUT`` as
for the CLI, ``STRUCTOCR_GATE_<NAME>`` per gate (``STRUCTOCR_GATE_MIN_REMAINING``), and
``STRUCTOCR_ON_BREACH`` and ``STRUCTOCR_ON_ERROR``. Run as
``python -m structocr_cli.runs.action``.
"""

from __future__ import annotations

import json
import math
import os
import sys
import uuid
from collections.abc import Mapping
from typing import IO, TYPE_CHECKING

from structocr_cli.api.errors import ExitCode, StructocrError, UsageError
from structocr_cli.api.keys import sanitize
from structocr_cli.gates import GATES

if TYPE_CHECKING:
    from structocr_cli.core import BalanceRequest, Outcome

ON_BREACH = ("fail", "warn", "skip")
ON_ERROR = ("fail", "continue")
TITLE = "StructOCR budget gate"


def gate_variable(option: str) -> str:
    """The environment variable that carries a gate's input (``--min-remaining``:
    ``STRUCTOCR_GATE_MIN_REMAINING``)."""
    return "STRUCTOCR_GATE_" + option.lstrip("-").replace("-", "_").upper()


def main(env: Mapping[str, str] = os.environ, out: IO[str] = sys.stdout) -> int:
    """The step's exit status: 0 when the job goes on (passed, warn, skip, or an error
    with on-error: continue), else the CLI's exit code for the same outcome."""
    try:
        on_breach, on_error, request = _inputs(env)
    except UsageError as exc:
        _command(out, "error", "StructOCR action input", exc.one_line())
        _outputs(env, {"ok": "false", "exit-code": str(int(exc.exit_code))})
        return int(exc.exit_code)
    from structocr_cli.core import check_balance

    # Everything comes from the inputs: no profile or config file of the runner's applies.
    inputs = {name: value for name, value in env.items() if name != "STRUCTOCR_PROFILE"}
    outcome = check_balance(request, {**inputs, "STRUCTOCR_CONFIG": os.devnull})
    _outputs(env, _values(outcome))
    if outcome.error is not None:
        title = "StructOCR balance unknown"
        _command(
            out, "error" if on_error == "fail" else "warning", title, outcome.error.one_line()
        )
        return 0 if on_error == "continue" else int(outcome.exit_code)
    _summary(env, outcome)
    breached = outcome.breached
    if not breached:
        return 0
    kind = {"fail": "error", "warn": "warning", "skip": "notice"}[on_breach]
    for check in breached:
        suffix = "; later steps that need credits are skipped" if on_breach == "skip" else ""
        _command(out, kind, TITLE, check.line() + suffix)
    return int(ExitCode.GATE_BREACHED) if on_breach == "fail" else 0


def _inputs(env: Mapping[str, str]) -> tuple[str, str, BalanceRequest]:
    from structocr_cli.core import BalanceRequest
    from structocr_cli.gates import parse_thresholds
    from structocr_cli.settings.resolve import Flags

    on_breach = _choice(env, "STRUCTOCR_ON_BREACH", "on-breach", ON_BREACH)
    on_error = _choice(env, "STRUCTOCR_ON_ERROR", "on-error", ON_ERROR)
    given = {gate.option: env.get(gate_variable(gate.option), "").strip() or None
             for gate in GATES}  # fmt: skip
    thresholds = parse_thresholds(given)
    request = BalanceRequest(
        Flags(key_options=()), _timeout(env), thresholds,
        missing_hint="Pass the key in the action's api-key input, from a secret",
        refused_hint="Check the secret given as the action's api-key input",
    )  # fmt: skip
    return on_breach, on_error, request


def _choice(env: Mapping[str, str], variable: str, name: str, allowed: tuple[str, ...]) -> str:
    value = env.get(variable, "").strip() or allowed[0]
    if value not in allowed:
        raise UsageError(f"{name} is {sanitize(value, 40)!r}; it takes {', '.join(allowed)}")
    return value


def _timeout(env: Mapping[str, str]) -> float:
    text = env.get("STRUCTOCR_TIMEOUT", "").strip()
    if not text:
        return 30.0
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and 0 < seconds <= 3600):
        raise UsageError(f"timeout is {sanitize(text, 40)!r}; it takes seconds, 1 to 3600")
    return seconds


def _values(outcome: Outcome) -> dict[str, str]:
    """The action's outputs for this outcome (all of them, empty when unknown)."""
    values = {"ok": "false", "breached": "", "exit-code": str(int(outcome.exit_code)),
              "credits-remaining": "", "credits-used": "", "credits-this-period": "",
              "runway-days": "", "json": ""}  # fmt: skip
    if outcome.balance is None:
        return values
    from structocr_cli.report.fields import text

    balance = outcome.balance
    runway = None if outcome.derived is None else outcome.derived.runway_days
    values.update({
        "ok": "false" if outcome.breached else "true",
        "breached": ",".join(check.gate.option.lstrip("-") for check in outcome.breached),
        "credits-remaining": text(balance.account.credits_remaining),
        "credits-used": text(balance.account.credits_used),
        "credits-this-period": text(balance.account.credits_this_period),
        "runway-days": "" if runway is None else f"{runway:.2f}",
        "json": json.dumps(balance.document, ensure_ascii=True),
    })  # fmt: skip
    return values


def _outputs(env: Mapping[str, str], values: Mapping[str, str]) -> None:
    """Append to ``GITHUB_OUTPUT`` as the runner reads it: ``name<<DELIMITER``, the value,
    the delimiter, with a delimiter the value cannot contain."""
    path = env.get("GITHUB_OUTPUT")
    if not path:
        return
    with open(path, "a", encoding="utf-8") as handle:
        for name, value in values.items():
            delimiter = f"ghadelimiter_{uuid.uuid4()}"
            handle.write(f"{name}<<{delimiter}\n{value}\n{delimiter}\n")


def _summary(env: Mapping[str, str], outcome: Outcome) -> None:
    path = env.get("GITHUB_STEP_SUMMARY")
    if not path or not outcome.checks:
        return
    from structocr_cli.report import ci

    balance, derived = outcome.figures()
    try:
        ci.write_summary(path, ci.summary(balance, derived, outcome.checks))
    except OSError as exc:
        print(f"structocr: warning: cannot write the step summary: {exc}", file=sys.stderr)


def _command(out: IO[str], kind: str, title: str, message: str) -> None:
    """A workflow command on stdout, its data escaped as the runner requires."""
    from structocr_cli.api.keys import redact
    from structocr_cli.report.ci import escape_data

    print(f"::{kind} title={title}::{escape_data(redact(message))}", file=out, flush=True)


if __name__ == "__main__":  # pragma: no cover - run by action.yml
    try:
        sys.exit(main())
    except StructocrError as exc:  # pragma: no cover - a bug: still one line
        print(f"::error title=StructOCR action::{exc.one_line()}", flush=True)
        sys.exit(int(exc.exit_code))
