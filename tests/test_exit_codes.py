"""Every row of the exit-code contract, as users meet it: the installed CLI in a subprocess
against the real mock over loopback; exit code, stdout and stderr checked separately."""

from __future__ import annotations

import collections
import contextlib
import io
import json
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from structocr_cli.api.errors import ExitCode
from structocr_cli.mock.replies import Reply
from structocr_cli.mock.server import MockServer
from tests.conftest import STRUCTOCR, run

FULL = os.environ.get("STRUCTOCR_TEST_FULL") == "1"  # make fuzz
ANY_DOWN = (
    "# HELP structocr_up 1 if the balance was fetched and understood, 0 if not.\n"
    "# TYPE structocr_up gauge\nstructocr_up 0\n# EOF\n"
)


def balance(server: MockServer, key: str, *args: str) -> subprocess.CompletedProcess[str]:
    return run("balance", "--base-url", server.url, *args, env={"STRUCTOCR_API_KEY": key})


def test_exit_codes_are_the_documented_numbers() -> None:
    assert {code.name: int(code) for code in ExitCode} == {
        "OK": 0,
        "GATE_BREACHED": 1,
        "USAGE": 2,
        "NO_TREND": 3,
        "HTTP_CLIENT_ERROR": 40,
        "UNAUTHORIZED": 41,
        "NOT_FOUND": 44,
        "SERVER_ERROR": 50,
        "NO_ANSWER": 60,
        "BAD_ANSWER": 61,
        "INTERNAL": 70,
        "INTERRUPTED": 130,
    }


def test_balance_ok_exits_0_with_report_on_stdout(server: MockServer) -> None:
    result = balance(server, "demo")
    assert result.returncode == 0, result.stderr
    assert "48,849" in result.stdout
    assert result.stderr == ""


def test_usage_error_bad_option_exits_2() -> None:
    result = run("balance", "--no-such-option")
    assert result.returncode == 2
    assert "No such option" in result.stderr
    assert result.stdout == ""


def test_usage_error_bad_timeout_exits_2() -> None:
    for value in ("0", "-1", "nan", "soon"):
        result = run("balance", "--timeout", value, "--api-key", "demo")
        assert result.returncode == 2, value
        assert "--timeout" in result.stderr


def test_invalid_config_exits_2_naming_file_and_line(config_file: Path) -> None:
    config_file.write_text('default_profile = "a"\n[profiles.a]\napi_key = \n')
    result = run("balance")
    assert result.returncode == 2
    assert f"{config_file}, line 3" in result.stderr
    assert result.stdout == ""


def test_unknown_profile_exits_2_listing_known_ones(config_file: Path) -> None:
    config_file.write_text('[profiles.prod]\napi_key = "k1"\n[profiles.ci]\napi_key = "k2"\n')
    result = run("balance", "--profile", "staging")
    assert result.returncode == 2
    assert 'unknown profile "staging"' in result.stderr
    assert "known profiles: ci, prod" in result.stderr


def test_refused_base_url_exits_2_before_sending(server: MockServer) -> None:
    result = run("balance", "--base-url", "http://example.com/v1", "--api-key", "demo")
    assert result.returncode == 2
    assert "refused base URL http://example.com/v1" in result.stderr


# One row per exit code and cause the server can bring about: (key, extra arguments, exit
# code, what stderr says). Every row also checks what all errors share.
ANSWERS = [
    ("t-403", (), 40, "HTTP 403 Forbidden"),
    ("t-418", (), 40, "I'm a teapot"),
    ("t-429", (), 40, "after 3 attempts"),
    ("wrong-key", (), 41, "Invalid or inactive API key"),
    ("demo-404", (), 44, "Account not found"),
    ("demo-500", (), 50, "Failed to fetch usage data (after 3 attempts)"),
    ("t-502", (), 50, "Bad gateway"),
    ("t-501", (), 50, "HTTP 501 Not Implemented from"),
    ("t-drop", (), 60, "closed without a complete answer"),
    ("t-hang", ("--timeout", "1"), 60, "1 s deadline"),
    ("t-html", (), 61, "not JSON"),
    ("t-array", (), 61, "expected an object"),
    ("t-huge", (), 61, "larger than 1024 KiB"),
    ("t-huge-unsized", (), 61, "larger than 1024 KiB"),
]


# Rows that wait out retries or a deadline run once, as a line; the fault matrix checks the
# JSON error object for the same causes.
WAITS = {"t-429", "demo-500", "t-502", "t-drop", "t-hang"}


@pytest.mark.parametrize(
    ("key", "args", "code", "says", "json_flag"),
    [pytest.param(*row, False, id=f"line-{row[0]}") for row in ANSWERS]
    + [pytest.param(*row, True, id=f"json-{row[0]}") for row in ANSWERS if row[0] not in WAITS],
)
def test_each_answer_exits_with_its_code(
    server: MockServer, key: str, args: tuple[str, ...], code: int, says: str, json_flag: bool
) -> None:
    result = balance(server, key, *args, *(["--json"] if json_flag else []))
    assert result.returncode == code, result.stderr
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1
    assert "Traceback" not in result.stderr
    if json_flag:
        error = json.loads(result.stderr)["error"]
        assert error["exit_code"] == code
        assert says in error["message"]
    else:
        assert result.stderr.startswith("structocr: error: ")
        assert says in result.stderr


@pytest.mark.parametrize(
    ("key", "code"), [("t-end-of-time", 61), ("t-retry-forever", 40), ("t-escape-time", 61)]
)
@pytest.mark.parametrize("output", ["table", "json", "tsv", "openmetrics"])
def test_the_server_cannot_force_an_internal_error(
    server: MockServer, key: str, code: int, output: str
) -> None:
    result = balance(server, key, "-o", output)
    assert result.returncode == code, result.stderr
    assert "internal error" not in result.stderr
    assert "\x1b" not in result.stdout + result.stderr
    assert result.stdout == (ANY_DOWN if output == "openmetrics" else "")


def test_a_tiny_burn_rate_is_a_huge_runway_in_every_report(
    server: MockServer, tmp_path: Path
) -> None:
    summary = tmp_path / "summary.md"
    ci = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)}
    result = run(
        "balance", "--base-url", server.url, "--min-runway-days", "5",
        env={"STRUCTOCR_API_KEY": "t-tiny-burn", **ci},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Runway" in summary.read_text()
    breached = run(
        "balance", "--base-url", server.url, "-q", "--min-runway-days", "1e400",
        env={"STRUCTOCR_API_KEY": "t-tiny-burn", **ci},
    )  # fmt: skip
    assert breached.returncode == 1, breached.stderr
    assert "gate failed: forecast.runway_days" in breached.stderr


@pytest.mark.parametrize("where", ["flag", "env"])
def test_a_timeout_beyond_an_hour_is_a_usage_error(where: str) -> None:
    args, env = (
        (["--timeout", "1e10"], {}) if where == "flag" else ([], {"STRUCTOCR_TIMEOUT": "1e10"})
    )
    result = run("balance", "--api-key", "demo", *args, env=env)
    assert result.returncode == 2
    assert "at most 3600" in result.stderr
    assert ("STRUCTOCR_TIMEOUT" in result.stderr) == (where == "env")


def test_a_config_nested_too_deeply_is_a_config_error(config_file: Path) -> None:
    config_file.write_text("a = " + "[" * 990 + "]" * 990 + "\n")
    result = run("balance")
    assert result.returncode == 2
    assert f"invalid config file {config_file}: it is nested too deeply" in result.stderr


def test_501_is_not_retried(server: MockServer) -> None:
    assert "attempts" not in balance(server, "t-501").stderr


def test_http_401_exits_41_naming_key_source(server: MockServer) -> None:
    result = balance(server, "wrong-key")
    assert result.returncode == 41
    assert "Invalid or inactive API key" in result.stderr
    assert "from env STRUCTOCR_API_KEY" in result.stderr
    assert "wrong-key" not in result.stderr


def test_no_api_key_exits_41_saying_where_it_looked(config_file: Path) -> None:
    result = run("balance")
    assert result.returncode == 41
    for place in (
        "--api-key",
        "--api-key-file",
        "STRUCTOCR_API_KEY",
        str(config_file),
        "structocr config set-key -p default",
    ):
        assert place in result.stderr


def test_connection_refused_exits_60() -> None:
    with socket.socket() as sock:  # a port that was free a moment ago and now listens nowhere
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = run("balance", "--base-url", f"http://127.0.0.1:{port}/v1", "--api-key", "demo")
    assert result.returncode == 60
    assert "connection refused" in result.stderr


def test_dns_failure_exits_60() -> None:
    result = run(
        "balance", "--base-url", "https://no-such-host.invalid/v1", "--api-key", "demo",
        "--timeout", "10",
    )  # fmt: skip
    assert result.returncode == 60
    assert "no-such-host.invalid" in result.stderr


def test_tls_failure_exits_60(server: MockServer) -> None:
    # The mock speaks plain HTTP: an https client's handshake fails.
    url = server.url.replace("http://", "https://")
    result = run("balance", "--base-url", url, "--api-key", "demo")
    assert result.returncode == 60
    assert "TLS" in result.stderr


def test_redirect_exits_61_and_target_gets_nothing(other_server: MockServer) -> None:
    seen = io.StringIO()
    target = MockServer(log=seen).start()
    try:
        location = target.url + "/account/balance"
        redirecting = {"demo": lambda _: Reply(302, b"", (("Location", location),))}
        with MockServer(behaviours=redirecting, log=io.StringIO()) as origin:
            result = balance(origin, "demo")
    finally:
        target.stop()
    assert result.returncode == 61
    assert "redirect" in result.stderr
    assert target.url.split("/")[2] in result.stderr  # names the target host
    assert seen.getvalue() == ""


@pytest.mark.parametrize("output", ["table", "openmetrics"])
def test_internal_error_exits_70_with_one_line_and_no_key(
    server: MockServer, monkeypatch: pytest.MonkeyPatch, output: str
) -> None:
    # A bug is simulated by breaking the step after the fetch.
    key = "sk_live_4f9a8b7c6d5e4f3a2b1c"

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError(f"boom {key}")

    monkeypatch.setattr("structocr_cli.derive.derive", boom)
    args = ("balance", "--base-url", server.url, "--api-key", key, "-o", output)
    result = run(*args)
    assert result.returncode == 70
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "internal error" in lines[0]
    assert "STRUCTOCR_DEBUG=1" in lines[0]
    assert key not in result.stderr
    assert "Traceback" not in result.stderr
    # A scraper is told the balance is unknown, even when a bug is the reason.
    assert result.stdout == ("" if output == "table" else ANY_DOWN)

    debug = run(*args, env={"STRUCTOCR_DEBUG": "1"})
    assert debug.returncode == 70
    assert "Traceback" in debug.stderr
    assert key not in debug.stderr + debug.stdout

    monkeypatch.setattr("structocr_cli.report.output.write_json", boom)  # --json needs no derive
    as_json = run("balance", "--base-url", server.url, "--api-key", key, "--json")
    assert as_json.returncode == 70
    error = json.loads(as_json.stderr)["error"]  # the whole of stderr is one JSON object
    assert (error["code"], error["exit_code"]) == ("internal_error", 70)
    assert "This is a bug" in error["message"]
    assert key not in as_json.stderr


@pytest.mark.parametrize("delay", [0.03, 0.05, 0.08, 0.12])
def test_interrupt_during_start_up_exits_130_with_one_line(
    server: MockServer, delay: float
) -> None:
    # While the CLI is still importing: before the commands and their funnel exist.
    _interrupted_at(delay, _hanging_check(server))


def test_ctrl_c_at_any_moment_of_start_up_is_an_exit_130_or_before_our_code(
    server: MockServer,
) -> None:
    # make fuzz: 1,000 moments from the start to the request (a few here). Once in several
    # hundred runs, Python used to drop the Ctrl-C or turn it into another error.
    rounds = 1000 if FULL else 6
    command = _hanging_check(server)
    before = server.requests("t-hang")
    started = time.monotonic()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            preexec_fn=_ctrl_c_as_python_starts)  # noqa: PLW1509  # fmt: skip
    while server.requests("t-hang") == before and proc.poll() is None:
        time.sleep(0.001)
    span = time.monotonic() - started  # start-up, up to the request
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 130
    seen = collections.Counter(_interrupted_at(span * n / rounds, command) for n in range(rounds))
    print(f"Ctrl-C in the {span * 1000:.0f} ms before the request, {rounds} runs: {dict(seen)}")
    if rounds > 100:  # a sweep this fine lands mostly in our code, whatever the load
        assert seen["structocr"] > rounds / 3


def _ctrl_c_as_python_starts() -> None:
    """The child's disposition made explicit: a runner (or a shell's background job) may
    have started us ignoring SIGINT, and the child would inherit that."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _hanging_check(server: MockServer) -> list[str]:
    """A check that never ends by itself: its server never answers (until --timeout 5)."""
    return [str(STRUCTOCR), "balance", "--base-url", server.url, "--api-key", "t-hang",
            "--timeout", "5"]  # fmt: skip


def _interrupted_at(delay: float, command: list[str]) -> str:
    """SIGINT ``delay`` seconds after starting ``command``; where it landed: in structocr
    (130, one line) or in Python's own start (each of its outcomes, checked to be only that)."""
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=_ctrl_c_as_python_starts,  # noqa: PLW1509
    )  # fmt: skip
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    if proc.returncode == 130:
        assert err == "structocr: interrupted\n"
        return "structocr"
    if err.startswith(_DROPPED_BY_PYTHON):
        # Python itself dropped the Ctrl-C before any code of ours ran (while it looked at
        # argv[0], or in an import's lock callback), and the check ran on to its --timeout.
        frames = re.findall(r'File "([^"]+)", line \d+', err)
        assert all(path.startswith("<frozen ") for path in frames), err
        assert proc.returncode == 60
        return "dropped by Python"
    if "Traceback" in err:
        # Before launch.main() ran: the installer's wrapper script was importing our
        # package. No program can catch that; once main() runs, it does.
        frames = re.findall(r'File "([^"]+)", line \d+, in (\S+)', err)
        assert all(func == "<module>" for path, func in frames if "structocr_cli" in path), err
        assert err.rstrip().endswith("KeyboardInterrupt")
        # Python ends by SIGINT on an uncaught Ctrl-C, or with 1 while it is still starting.
        assert proc.returncode in (-signal.SIGINT, 1)
        return "wrapper script"
    if err:  # while Python was still starting, before it ran any script
        assert (proc.returncode, out, err) == (1, "", "KeyboardInterrupt\n")
        return "Python starting"
    # The signal came before Python had set up its handler: killed, no output.
    assert (proc.returncode, out, err) == (-signal.SIGINT, "", "")
    return "before Python's handler"


_DROPPED_BY_PYTHON = (
    "Failed checking if argv[0] is an import path entry",
    "Exception ignored in: <function _get_module_lock.<locals>.cb",
)


@pytest.fixture
def ctrl_c_raises() -> Iterator[None]:
    """SIGINT as a process starts with it, whatever the test runner set."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_a_ctrl_c_python_drops_is_delivered_again(
    server: MockServer, monkeypatch: pytest.MonkeyPatch, ctrl_c_raises: None
) -> None:
    # Raised in a __del__ or a weakref callback (the import system runs one on every
    # import), a KeyboardInterrupt is printed as "Exception ignored" and dropped by Python.
    class Dropping:
        def __del__(self) -> None:
            raise KeyboardInterrupt

    def run_on(*args: object) -> int:
        Dropping()  # dropped here, at once
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # the command would go on; the Ctrl-C comes back
            time.sleep(0.01)
        return 0

    monkeypatch.setattr("structocr_cli.runs.balance.balance_one", run_on)
    result = run("balance", "--base-url", server.url, "--api-key", "demo")
    assert (result.returncode, result.stderr) == (130, "structocr: interrupted\n")
    assert result.stdout == ""


def test_an_error_python_makes_of_a_ctrl_c_is_the_interrupt(
    server: MockServer, monkeypatch: pytest.MonkeyPatch, ctrl_c_raises: None
) -> None:
    # Python 3.11 wraps a KeyboardInterrupt in __set_name__ in a RuntimeError; a failed
    # import under a Ctrl-C can leave a TypeError that does not name it at all.
    def wrapped(*args: object) -> int:
        raise RuntimeError("Error calling __set_name__") from KeyboardInterrupt()

    def after_one(*args: object) -> int:
        with contextlib.suppress(KeyboardInterrupt):  # swallowed somewhere inside Python
            signal.raise_signal(signal.SIGINT)
        raise TypeError("expected a message argument")

    def plain_bug(*args: object) -> int:
        raise TypeError("expected a message argument")

    check = ("balance", "--base-url", server.url, "--api-key", "demo")
    for fault, code in ((wrapped, 130), (after_one, 130), (plain_bug, 70), (after_one, 130)):
        monkeypatch.setattr("structocr_cli.runs.balance.balance_one", fault)
        result = run(*check)
        assert result.returncode == code, (fault.__name__, result.stderr)
        assert ("interrupted" in result.stderr) == (code == 130), result.stderr
    as_json = run(*check, "--json")
    assert json.loads(as_json.stderr)["error"]["code"] == "interrupted"


def test_interrupt_exits_130(server: MockServer) -> None:
    before = server.requests("t-hang")
    proc = subprocess.Popen(
        [str(STRUCTOCR), "balance", "--base-url", server.url, "--api-key", "t-hang"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # explicit: a runner started with SIGINT ignored (nohup) would pass that on
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # noqa: PLW1509
    )  # fmt: skip
    deadline = time.monotonic() + 20
    while server.requests("t-hang") == before and time.monotonic() < deadline:
        time.sleep(0.01)  # ready once the hanging server has the request: no fixed wait
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 130
    assert "interrupted" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("flag", ["--json", "-o"])
def test_json_mode_errors_are_a_json_document_on_stderr(server: MockServer, flag: str) -> None:
    args = ["--json"] if flag == "--json" else ["-o", "json"]
    result = balance(server, "wrong-key", *args)
    assert result.returncode == 41
    assert result.stdout == ""
    error = json.loads(result.stderr)["error"]
    assert error["code"] == "unauthorized"
    assert error["status"] == 401
    assert error["exit_code"] == 41
    assert "Invalid or inactive API key" in error["message"]
