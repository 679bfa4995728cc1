"""Every fault the mock can play, against the CLI in every format: a documented exit code,
one clear line on stderr (or the JSON error object), no traceback, no control character on
stdout, structocr_up 0 from openmetrics, at most 3 requests, no key sent to a redirect.

The default suite runs each fault in process, in all four formats where the fault answers
at once and in openmetrics where it makes the CLI wait. ``make fuzz`` sets
STRUCTOCR_TEST_FULL=1: every fault in every format against the installed script in a real
process, each within --timeout + 0.5 s of its start.
"""

from __future__ import annotations

import json
import os
import re
import time

import pytest

from structocr_cli.mock.faults import catalogue
from structocr_cli.mock.server import MockServer
from tests.conftest import run, run_process

FULL = os.environ.get("STRUCTOCR_TEST_FULL") == "1"
FAULTS = catalogue("http://127.0.0.1:0/v1")
FORMATS = {
    "table": (),
    "json": ("--json",),
    "tsv": ("-o", "tsv"),
    "openmetrics": ("-o", "openmetrics"),
}
WAITING = {"fault-stall", "fault-drip", "fault-drip-headers"}
"""Faults that hold the CLI until its deadline: run with --timeout 1."""
SLOW = WAITING | {
    "fault-429", "fault-reset", "fault-truncated", "fault-html-502", "fault-503-then-ok",
}  # fmt: skip
"""Faults that cost about a second or more (waits, retries with backoff)."""
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # all but tab and newline
UP_0 = re.compile(r"^structocr_up 0$", re.M)


def cases() -> list[object]:
    chosen = []
    for key, fault in FAULTS.items():
        for name in FORMATS:
            if FULL or key not in SLOW or name == "openmetrics":
                chosen.append(pytest.param(key, fault.exit_code, name, id=f"{key}-{name}"))
    return chosen


def test_list_faults_names_each_with_its_exit_code() -> None:
    result = run("mock", "--list-faults")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines] == list(FAULTS)
    for line, fault in zip(lines, FAULTS.values(), strict=True):
        assert line.split()[1] == str(fault.exit_code)


@pytest.mark.timing
@pytest.mark.parametrize(("key", "code", "output"), cases())
def test_fault_matrix(server: MockServer, key: str, code: int, output: str) -> None:
    timeout = 1.0 if key in WAITING else 10.0
    before, redirected = server.requests(key), server.keys_at_redirect_target
    runner = run_process if FULL else run
    args = ("balance", "--base-url", server.url, "--timeout", f"{timeout:g}", *FORMATS[output])
    started = time.monotonic()
    result = runner(*args, env={"STRUCTOCR_API_KEY": key})
    elapsed = time.monotonic() - started

    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    assert not CONTROL.search(result.stdout), result.stdout
    assert server.requests(key) - before <= 3
    assert server.keys_at_redirect_target == redirected  # the key never followed a redirect
    if FULL:
        assert elapsed <= timeout + 0.5, elapsed
    else:
        assert elapsed <= timeout + 2.0, elapsed  # a hang guard; make fuzz checks the bound
    if code == 0:
        assert result.stdout
        return
    (line,) = result.stderr.splitlines()  # one line, whatever the fault
    assert not CONTROL.search(line), line
    if output == "json":
        assert json.loads(line)["error"]["exit_code"] == code
    else:
        assert line.startswith("structocr: error: ")
    if output == "openmetrics":
        assert UP_0.search(result.stdout), result.stdout
    else:
        assert result.stdout == ""
