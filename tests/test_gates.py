"""Budget gates: at, just below and just above every threshold; failing closed on errors."""

from __future__ import annotations

import copy
import json
import subprocess
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from structocr_cli.api.errors import UsageError
from structocr_cli.api.model import parse_balance
from structocr_cli.derive import derive
from structocr_cli.gates import BY_OPTION, GATES, Gate, evaluate, parse_threshold
from structocr_cli.mock.server import MockServer
from tests.conftest import STRUCTOCR, run
from tests.test_model import REFERENCE

NOW = datetime(2026, 6, 16, tzinfo=timezone.utc)  # 15 days into the reference period


def breached(option: str, threshold: str, document: dict[str, Any] = REFERENCE) -> bool:
    balance = parse_balance(json.dumps(document).encode())
    (check,) = evaluate(
        {option: parse_threshold(BY_OPTION[option], threshold)}, balance, derive(balance, NOW)
    )
    return check.breached


# (option, the reference's value, a threshold just below it, just above it)
CASES = [
    ("--min-remaining", "48849", "48848", "48850"),
    ("--max-period-credits", "337", "336", "338"),
    ("--max-key-credits", "79", "78", "80"),
    ("--max-error-rate", "4.37", "4.36", "4.38"),
    ("--max-key-error-rate", "2.22", "2.21", "2.23"),
    ("--max-latency-ms", "2720", "2719", "2721"),
]


@pytest.mark.parametrize(("option", "at", "below", "above"), CASES)
def test_gate_at_below_and_above_threshold(option: str, at: str, below: str, above: str) -> None:
    assert not breached(option, at)  # the boundary itself passes
    if option.startswith("--min"):
        assert not breached(option, below)
        assert breached(option, above)
    else:
        assert breached(option, below)
        assert not breached(option, above)


def test_runway_gate_at_below_and_above() -> None:
    # runway = 48849 / (337 / 15) = 2174.2878... days
    assert not breached("--min-runway-days", "2174.28")
    assert breached("--min-runway-days", "2174.29")


def test_runway_gate_passes_when_nothing_is_burned() -> None:
    document = copy.deepcopy(REFERENCE)
    document["account"]["credits_this_period"] = 0
    assert not breached("--min-runway-days", "1000000", document)


def test_percent_boundaries_are_exact_not_float() -> None:
    document = copy.deepcopy(REFERENCE)
    document["account"]["error_rate"] = "0.30%"
    assert not breached("--max-error-rate", "0.3", document)
    assert not breached("--max-error-rate", "0.30%", document)
    assert breached("--max-error-rate", "0.29", document)


def test_float_values_compare_by_their_decimal_form() -> None:
    document = copy.deepcopy(REFERENCE)
    document["account"]["avg_latency_ms"] = 100.1
    assert not breached("--max-latency-ms", "100.1", document)
    assert breached("--max-latency-ms", "100.09", document)


@pytest.mark.parametrize("text", ["lots", "nan", "inf", "-Infinity", "", "1e"])
def test_bad_thresholds_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError, match="--min-remaining needs a number"):
        parse_threshold(BY_OPTION["--min-remaining"], text)


def test_threshold_keeps_what_the_user_typed() -> None:
    assert parse_threshold(BY_OPTION["--max-error-rate"], " 5% ") == Decimal("5")


def test_every_gate_names_its_field() -> None:
    assert {gate.option for gate in GATES} == {c[0] for c in CASES} | {"--min-runway-days"}


# End to end: the installed CLI against the mock.


def gate(server: MockServer, key: str, *args: str) -> Any:
    return run("balance", "--base-url", server.url, *args, env={"STRUCTOCR_API_KEY": key})


def test_breached_gate_exits_1_with_a_line_per_breach(server: MockServer) -> None:
    result = gate(server, "demo-low", "--min-remaining", "1000", "--max-latency-ms", "10000",
                  "--max-key-credits", "5", "--json")  # fmt: skip
    assert result.returncode == 1
    lines = [json.loads(line)["gate"] for line in result.stderr.splitlines()]  # JSON too
    assert [line["message"] for line in lines] == [
        "gate failed: account.credits_remaining 12 < 1000 (--min-remaining)",
        "gate failed: this_key.credits_used 79 > 5 (--max-key-credits)",
    ]
    assert lines[0] | {"message": ""} == {
        "option": "--min-remaining", "path": "account.credits_remaining", "operator": "<",
        "threshold": 1000, "value": 12, "breached": True, "message": "",
    }  # fmt: skip
    assert json.loads(result.stdout)["account"]["credits_remaining"] == 12
    plain = gate(server, "demo-low", "--min-remaining", "1000", "-q")
    assert plain.stderr == (
        "structocr: gate failed: account.credits_remaining 12 < 1000 (--min-remaining)\n"
    )


def test_passing_gates_exit_0(server: MockServer) -> None:
    result = gate(server, "demo", "--min-remaining", "48849", "--max-error-rate", "4.37", "-q")
    assert result.returncode == 0
    assert result.stdout == ""
    assert result.stderr == ""


def test_quiet_prints_nothing_on_stdout_but_gates_on_stderr(server: MockServer) -> None:
    result = gate(server, "demo-low", "-q", "--min-remaining", "13")
    assert result.returncode == 1
    assert result.stdout == ""
    assert "gate failed" in result.stderr


@pytest.mark.parametrize(("key", "code"), [("t-501", 50), ("demo-404", 44), ("t-html", 61),
                                           ("wrong", 41), ("t-hang", 60)])  # fmt: skip
def test_gates_fail_closed_when_the_balance_is_unknown(
    server: MockServer, key: str, code: int
) -> None:
    result = gate(server, key, "--min-remaining", "0", "--timeout", "1")
    assert result.returncode == code
    assert "gate failed" not in result.stderr


def test_no_key_fails_closed(config_file: Path) -> None:
    assert run("balance", "--min-remaining", "0").returncode == 41


def test_bad_threshold_exits_2(server: MockServer) -> None:
    result = gate(server, "demo", "--max-error-rate", "high")
    assert result.returncode == 2
    assert "--max-error-rate needs a number" in result.stderr


@pytest.mark.parametrize("gate", GATES, ids=lambda gate: gate.option)
def test_every_gate_option_reaches_its_gate(server: MockServer, gate: Gate) -> None:
    impossible = "1e12" if gate.bound == "min" else "-1"
    result = run("balance", "--base-url", server.url, "--api-key", "demo", "-q",
                 gate.option, impossible)  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.startswith(f"structocr: gate failed: {gate.path} ")
    assert result.stderr.rstrip().endswith(f"({gate.option})")
    assert gate.option in run("balance", "--help").stdout


def test_a_closed_pipe_does_not_hide_a_breached_gate(server: MockServer) -> None:
    proc = subprocess.Popen(
        [str(STRUCTOCR), "balance", "--base-url", server.url, "--api-key", "demo", "-o", "tsv",
         "--min-remaining", "1e9"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    proc.stdout.close()  # like `| head -0`: the reader is gone before anything is written
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "gate failed" in err
    assert "Traceback" not in err
