"""The mock server: the reference's behaviour, demo keys, fixtures, clean start and stop."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest

from structocr_cli.mock.replies import DEMO_ACCOUNT, DEMO_KEY, current_period
from structocr_cli.mock.server import MockServer
from tests.conftest import LONG_KEY, STRUCTOCR, run


def get(url: str, key: str | None) -> tuple[int, dict[str, object]]:
    headers = {} if key is None else {"x-api-key": key}
    request = urllib.request.Request(url + "/account/balance", headers=headers)
    try:
        with urllib.request.urlopen(request) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def start_mock() -> tuple[subprocess.Popen[str], str]:
    """The mock in a process of its own, once it has printed its URL (its readiness signal).
    SIGINT's disposition is set explicitly: a runner started with it ignored (nohup, some CI)
    would pass that on, and Python would then never raise KeyboardInterrupt."""
    proc = subprocess.Popen(
        [str(STRUCTOCR), "mock", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # noqa: PLW1509
    )
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


@pytest.fixture
def mock_process() -> Iterator[tuple[subprocess.Popen[str], str]]:
    proc, url = start_mock()
    yield proc, url
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def test_demo_data_is_the_api_references_example() -> None:
    # The one place these numbers are written out: everything else imports them.
    assert DEMO_ACCOUNT == {
        "credits_total": 50569,
        "credits_used": 1720,
        "credits_remaining": 48849,
        "credits_this_period": 337,
        "requests_this_period": 206,
        "error_rate": "4.37%",
        "avg_latency_ms": 2720,
    }
    assert DEMO_KEY == {"credits_used": 79, "requests": 45, "error_rate": "2.22%",
                        "avg_latency_ms": 2424}  # fmt: skip


def test_reference_errors() -> None:
    with MockServer(log=open("/dev/null", "w")) as mock:
        assert get(mock.url, None) == (401, {"error": "Missing x-api-key header"})
        assert get(mock.url, "nope") == (401, {"error": "Invalid or inactive API key"})
        assert get(mock.url, "demo-404") == (404, {"error": "Account not found"})
        assert get(mock.url, "demo-500") == (500, {"error": "Failed to fetch usage data"})
        status, body = get(mock.url, "demo")
        assert status == 200
        assert body == {"period": current_period(), "account": DEMO_ACCOUNT, "this_key": DEMO_KEY}
        assert get(mock.url, "demo-low")[1]["account"]["credits_remaining"] == 12  # type: ignore[index]


def test_flaky_alternates_500_and_200() -> None:
    with MockServer(log=open("/dev/null", "w")) as mock:
        assert [get(mock.url, "demo-flaky")[0] for _ in range(4)] == [500, 200, 500, 200]


def test_current_period_is_the_calendar_month() -> None:
    assert current_period(datetime(2026, 2, 14, 5, tzinfo=timezone.utc)) == {
        "start": "2026-02-01T00:00:00.000Z",
        "end": "2026-02-28T23:59:59.000Z",
    }
    assert current_period(datetime(2026, 12, 31, tzinfo=timezone.utc))["end"] == (
        "2026-12-31T23:59:59.000Z"
    )


def test_cli_mock_prints_url_first_logs_masked_and_stops_on_sigterm(
    mock_process: tuple[subprocess.Popen[str], str],
) -> None:
    proc, url = mock_process
    assert url.startswith("http://127.0.0.1:")
    assert url.endswith("/v1")
    result = run("balance", "--base-url", url, "--api-key", LONG_KEY)
    assert result.returncode == 41  # unknown to the mock
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert "Traceback" not in err
    assert "sk_l…2b1c" in err
    assert LONG_KEY not in err
    assert "-> 401" in err


def test_cli_mock_stops_cleanly_on_ctrl_c(mock_process: tuple[subprocess.Popen[str], str]) -> None:
    proc, _ = mock_process
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert "Traceback" not in err
    assert "stopped" in err


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_right_after_the_url_stops_the_mock_cleanly(signum: int) -> None:
    for _ in range(50 if os.environ.get("STRUCTOCR_TEST_FULL") == "1" else 3):
        proc, url = start_mock()
        assert url.startswith("http://")
        proc.send_signal(signum)  # at once: the handler is in place before the URL is printed
        _, err = proc.communicate(timeout=10)
        assert proc.returncode == 0, err
        assert err.rstrip().endswith("mock: stopped"), err


def test_busy_port_is_a_usage_error() -> None:
    with MockServer(log=open("/dev/null", "w")) as mock:
        port = mock.url.split(":")[2].split("/")[0]
        result = run("mock", "--port", port)
    assert result.returncode == 2
    assert "cannot listen" in result.stderr


@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_fixtures_map_keys_to_balances(tmp_path: Path, suffix: str) -> None:
    data = {
        "ci-key": {"account": {"credits_remaining": 500}, "this_key": {"credits_used": 3}},
        "gone-key": {"status": 404, "error": "Account not found"},
    }
    path = tmp_path / f"fixtures{suffix}"
    if suffix == ".json":
        path.write_text(json.dumps(data))
    else:
        path.write_text(
            "[ci-key.account]\ncredits_remaining = 500\n[ci-key.this_key]\ncredits_used = 3\n"
            '[gone-key]\nstatus = 404\nerror = "Account not found"\n'
        )
    proc = subprocess.Popen(
        [str(STRUCTOCR), "mock", "--port", "0", "--fixtures", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        ok = run("balance", "--base-url", url, "--api-key", "ci-key", "--json")
        assert ok.returncode == 0, ok.stderr
        document = json.loads(ok.stdout)
        assert document["account"]["credits_remaining"] == 500
        assert document["account"]["credits_total"] == 50569  # unspecified: the example's
        assert document["this_key"]["credits_used"] == 3
        assert run("balance", "--base-url", url, "--api-key", "gone-key").returncode == 44
        assert run("balance", "--base-url", url, "--api-key", "demo").returncode == 0
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[k]\naccount = \n", "line 2"),
        ('k = "x"\n', "must be a table"),
        ("[k]\nstatus = 99\n", "100-599"),
        ("[k]\nsurprise = 1\n", "must be a table of"),
    ],
)
def test_invalid_fixtures_exit_2(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "fixtures.toml"
    path.write_text(content)
    result = run("mock", "--port", "0", "--fixtures", str(path))
    assert result.returncode == 2
    assert message in result.stderr
