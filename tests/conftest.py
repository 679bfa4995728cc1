"""Shared fixtures: isolation from the real user, a loopback mock, the CLI in process (fast)
and as the installed console script (for what only a real process shows)."""

from __future__ import annotations

import gc
import io
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from structocr_cli.api.keys import _known
from structocr_cli.mock.replies import Behaviour, Reply, balance_document
from structocr_cli.mock.server import MockServer

# A few hundred examples per property in the default suite; make fuzz asks for 10,000.
settings.register_profile("default", max_examples=200, deadline=None)
settings.register_profile(
    "fuzz", max_examples=10_000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

STRUCTOCR = Path(sys.executable).with_name("structocr")
LONG_KEY = "sk_live_4f9a8b7c6d5e4f3a2b1c"  # 24 characters: masked as sk_l…2b1c
ECHO_KEY = "sk_live_echo_9f8e7d6c5b4a3f2e"  # the server quotes 12 characters of it back


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No test reads the user's config, keys, proxies or colour settings."""
    for name in list(os.environ):
        if name.startswith("STRUCTOCR_") or name.lower().endswith("_proxy"):
            monkeypatch.delenv(name)
    for name in ("NO_COLOR", "FORCE_COLOR", "COLUMNS", "TERM", "REQUESTS_CA_BUNDLE",
                 "CURL_CA_BUNDLE", "GITHUB_ACTIONS", "GITHUB_STEP_SUMMARY"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))  # the history
    monkeypatch.setenv("STRUCTOCR_CONFIG", str(tmp_path / "config.toml"))
    monkeypatch.setenv("NO_PROXY", "*")
    _known.clear()
    return tmp_path


NOW = datetime(2026, 11, 30, 7, 33, 42, tzinfo=timezone.utc)
"""The time every test starts at, unless it sets another."""


class StoppedClock:
    """The one clock (``structocr_cli.api.clock``) as a test sets it: stopped at ``NOW``
    until the test moves it, so that no figure depends on when or how fast the run is."""

    def __init__(self, at: datetime = NOW) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


@pytest.fixture(autouse=True)
def clock() -> Iterator[StoppedClock]:
    from structocr_cli.api import clock as the_clock

    stopped = StoppedClock()
    the_clock.use(stopped)
    yield stopped
    the_clock.use(None)


@pytest.fixture
def config_file(isolated: Path) -> Path:
    return isolated / "config.toml"


# Failure modes the tests need beyond the built-in demo keys: each is one behaviour.
def _once_then_ok(first: Reply) -> Behaviour:
    return lambda request: first if request.count == 1 else Reply.json(200, balance_document())


FAULTS: dict[str, Behaviour] = {
    LONG_KEY: lambda _: Reply.json(200, balance_document()),
    "t-403": lambda _: Reply.error(403, "Forbidden"),
    "t-418": lambda _: Reply.error(418, "I'm a teapot"),
    "t-429": lambda _: Reply.error(429, "Too many requests"),
    "t-429-later": lambda _: Reply(429, b"{}", (("Retry-After", "120"),)),
    "t-503-once": _once_then_ok(Reply(503, b"{}", (("Retry-After", "0"),))),
    "t-502": lambda _: Reply.error(502, "Bad gateway"),
    "t-501": lambda _: Reply.error(501, "Not implemented"),
    "t-html": lambda _: Reply(200, b"<html>maintenance</html>", (("Content-Type", "text/html"),)),
    "t-array": lambda _: Reply.json(200, [1, 2, 3]),
    "t-nan": lambda _: Reply(200, b'{"period": NaN}'),
    "t-huge": lambda _: Reply(200, b" " * (2 * 1024 * 1024)),
    "t-huge-unsized": lambda _: Reply(200, b" " * (2 * 1024 * 1024), length=False),
    "t-drip": lambda _: Reply.json(200, balance_document(), drip=0.05),
    "t-hang": lambda _: Reply(200, delay=60),
    "t-drop": lambda _: Reply(200, drop=True),
    "t-markup": lambda _: Reply.error(401, "[bold]x[/bold] :smile: \x1b[31mred\x07"),
    "t-bidi": lambda _: Reply.error(403, "not \u202eyrev\u202c allowed\u200b \u2066here\u2069"),
    "t-end-of-time": lambda _: Reply.json(
        200, balance_document(period={"start": "9999-12-31T23:59:59-23:59"})
    ),
    "t-retry-forever": lambda _: Reply(429, b"{}", (("Retry-After", "9" * 400),)),
    "t-tiny-burn": lambda _: Reply.json(200, balance_document({"credits_this_period": 1e-300})),
    "t-escape-time": lambda _: Reply.json(
        200, balance_document(period={"start": "2026-11-01\x1b[31m00:00:00Z"})
    ),
    ECHO_KEY: lambda request: Reply.error(401, f"unknown key {str(request.key)[3:15]}"),
    "t-extra": lambda _: Reply.json(
        200, {**balance_document(), "future": {"x": 1}, "note": "caf\u00e9"}
    ),
}


# The key-leak scan: everything the CLI wrote in this session, through run() and
# run_process(), and every log of the shared mock servers, is searched for the canary key at
# the end of the session (see pytest_sessionfinish).
CANARY = LONG_KEY
OUTPUTS: list[str] = []
MOCK_LOGS: list[io.StringIO] = []


def _recorded(*texts: str) -> None:
    OUTPUTS.extend(texts)


# Every child process a test runs and reads with communicate() (subprocess.run does) has its
# output scanned too: real shells, pipes, promtool, whatever a test starts. Output read from a
# pty or line by line is recorded by its test.
_communicate = subprocess.Popen.communicate


def _recording_communicate(self: Any, *args: Any, **kwargs: Any) -> Any:
    out, err = _communicate(self, *args, **kwargs)
    for data in (out, err):
        if data:
            _recorded(data if isinstance(data, str) else data.decode("utf-8", "replace"))
    return out, err


subprocess.Popen.communicate = _recording_communicate  # type: ignore[method-assign]


def mock_log() -> io.StringIO:
    log = io.StringIO()
    MOCK_LOGS.append(log)
    return log


def canary_forms(key: str = CANARY) -> set[str]:
    """The key as it might leak: whole, any 8 characters of it, base64 (at each alignment),
    URL-encoded or JSON-escaped."""
    import base64
    import json
    from urllib.parse import quote

    forms = {key, quote(key, safe=""), json.dumps(key)[1:-1]}
    forms |= {key[i : i + 8] for i in range(len(key) - 7)}
    for start in range(3):
        encoded = base64.b64encode(key[start:].encode()).decode().rstrip("=")
        forms.add(encoded[: len(encoded) - 2])  # the last characters depend on what follows
    return forms


def leaks(texts: list[str]) -> list[str]:
    forms = canary_forms()
    return [text for text in texts if any(form in text for form in forms)]


@pytest.fixture(scope="session")
def server() -> Iterator[MockServer]:
    """The real mock on a free loopback port, with the test-only failure modes added."""
    with MockServer(behaviours=FAULTS, log=mock_log()) as mock:
        yield mock


@pytest.fixture
def other_server() -> Iterator[MockServer]:
    """A second server: a redirect target that must receive nothing."""
    with MockServer(log=mock_log()) as mock:
        yield mock


@dataclass(frozen=True)
class Result:
    """What a run of the CLI left: its exit code and what it wrote to each stream."""

    returncode: int
    stdout: str
    stderr: str


class _Stdin(io.StringIO):
    """Piped input: not a terminal, readable once."""

    def isatty(self) -> bool:
        return False


def run(*args: str, env: Mapping[str, str] | None = None, stdin: str | None = None) -> Result:
    """Run the CLI's entry point in this process with these arguments, extra environment and
    stdin, as the console script would; stdout and stderr captured apart."""
    from structocr_cli.launch import main

    saved_env = dict(os.environ)
    saved = sys.stdin, sys.stdout, sys.stderr
    out, err = io.StringIO(), io.StringIO()
    os.environ.update(env or {})
    _forget_keyring_backend()  # keyring picks its backend once per process, from the env
    sys.stdin, sys.stdout, sys.stderr = _Stdin(stdin or ""), out, err
    try:
        code = _exit_code(main, args)
    finally:
        gc.enable()  # main leaves the collector off after a check, as the process would end
        sys.stdin, sys.stdout, sys.stderr = saved
        os.environ.clear()
        os.environ.update(saved_env)
        logging.getLogger("structocr").handlers.clear()
    _recorded(out.getvalue(), err.getvalue())
    return Result(code, out.getvalue(), err.getvalue())


def _exit_code(main: object, args: tuple[str, ...]) -> int:
    saved_argv = sys.argv
    sys.argv = ["structocr", *args]
    try:
        code = main()  # type: ignore[operator]
    except SystemExit as exc:
        code = exc.code
    finally:
        sys.argv = saved_argv
    if code is None:
        return 0
    return code if isinstance(code, int) else 1


def _forget_keyring_backend() -> None:
    core = sys.modules.get("keyring.core")
    if core is not None:
        core._keyring_backend = None  # type: ignore[attr-defined]


def run_process(
    *args: str,
    env: Mapping[str, str] | None = None,
    stdin: str | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """Run the installed console script as a user would; stdout and stderr kept apart (and
    recorded for the key-leak scan by communicate(), as every child's output is)."""
    return subprocess.run(
        [str(STRUCTOCR), *args],
        env={**os.environ, **(env or {})},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def promtool(*args: str, stdin: str | None = None) -> str:
    """Run promtool (the caller checks it is installed); its output, once it has passed."""
    check = subprocess.run(["promtool", *args], input=stdin, capture_output=True, text=True,
                           timeout=60, check=False)  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr
    return check.stdout


def imported(*args: str, whole: bool = False) -> set[str]:
    """Top-level modules a run of the CLI imports (stable, unlike timings); ``whole``: every
    module by its full name."""
    result = run_process(*args, env={"PYTHONPROFILEIMPORTTIME": "1"})
    names = re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)", result.stderr, re.MULTILINE)
    return set(names) if whole else {name.split(".")[0] for name in names}


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run if the canary key appeared in anything the CLI or the mock wrote. Each
    test process scans its own; under pytest-xdist the workers hand their counts to the
    controller (pytest_testnodedown), which adds them to its own."""
    texts = OUTPUTS + [log.getvalue() for log in MOCK_LOGS]
    found = leaks(texts)
    worker_output = getattr(session.config, "workeroutput", None)
    if worker_output is not None:
        worker_output["leak_scan"] = (len(texts), len(found))
    scanned, leaked = session.config.stash.get(_SCANNED, (0, 0))
    scanned, leaked = scanned + len(texts), leaked + len(found)
    session.config.stash[_SCANNED] = (scanned, leaked)
    if leaked:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """A pytest-xdist worker finished: add its key-leak scan to the controller's."""
    output = getattr(node, "workeroutput", {})
    worker_scanned, worker_leaked = output.get("leak_scan", (0, 1))  # no scan: counted failed
    scanned, leaked = node.config.stash.get(_SCANNED, (0, 0))
    node.config.stash[_SCANNED] = (scanned + worker_scanned, leaked + worker_leaked)


_SCANNED = pytest.StashKey[tuple[int, int]]()


def pytest_terminal_summary(terminalreporter: object, config: pytest.Config) -> None:
    scanned, found = config.stash.get(_SCANNED, (0, 0))
    verdict = "FAILED: the canary key leaked" if found else "none held the canary key"
    terminalreporter.write_line(  # type: ignore[attr-defined]
        f"key-leak scan: {scanned} outputs and mock logs scanned; {found} leaks; {verdict}"
    )
