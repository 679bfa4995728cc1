"""``balance --watch``: refreshes on an interval, JSON Lines in a pipe, a live screen on a
terminal, stale rows while a refresh fails, gate breaches reported as they start and clear.

The interval's sleep is replaced by one that returns at once (and lets a test change what
the API answers between refreshes); one real-process test shows the screen in a pty.
"""

from __future__ import annotations

import gc
import io
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from structocr_cli.mock.replies import Reply, Request, balance_document
from structocr_cli.mock.server import MockServer
from tests.conftest import LONG_KEY, _exit_code, _recorded, mock_log, run

# A key whose usage grows by one refresh to the next, fails on the third, and recovers.
STEPS: list[Reply] = [
    Reply.json(200, balance_document(this_key={"credits_used": 79, "requests": 45})),
    Reply.json(200, balance_document(this_key={"credits_used": 95, "requests": 65})),
    Reply.error(401, "Invalid or inactive API key"),
    Reply.json(200, balance_document(this_key={"credits_used": 60, "requests": 70})),
]


def _stepping(request: Request) -> Reply:
    return STEPS[min(request.count, len(STEPS)) - 1]


@pytest.fixture
def stepping() -> Iterator[MockServer]:
    keys = {LONG_KEY: _stepping, "steady-key-1234": lambda _: Reply.json(200, balance_document())}
    with MockServer(behaviours=keys, log=mock_log()) as mock:
        yield mock


def _clock(monkeypatch: pytest.MonkeyPatch, sleep: Callable[[float], None]) -> None:
    """The watch's clock, with ``sleep`` in place of its waits."""
    from types import SimpleNamespace

    from structocr_cli.runs import watch

    monkeypatch.setattr(watch, "time", SimpleNamespace(monotonic=time.monotonic, sleep=sleep))


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The waits between refreshes, recorded instead of slept."""
    waits: list[float] = []
    _clock(monkeypatch, waits.append)
    return waits


def watch(server: MockServer, tmp_path: Path, *args: str) -> tuple[int, list[dict], str]:
    keys = tmp_path / "keys.txt"
    keys.write_text(f"grow = {LONG_KEY}\nsteady = steady-key-1234\n")
    result = run("balance", "--base-url", server.url, "--keys-file", str(keys), "--watch", "5",
                 *args)  # fmt: skip
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    return result.returncode, lines, result.stderr


def test_watch_count_3_in_a_pipe_is_3_json_lines(
    stepping: MockServer, tmp_path: Path, sleeps: list[float]
) -> None:
    code, lines, _ = watch(stepping, tmp_path, "--count", "3")
    assert [line["refresh"] for line in lines] == [1, 2, 3]
    assert len(sleeps) == 2  # between refreshes, not after the last
    assert all(0 < wait <= 5 for wait in sleeps)  # the interval runs start to start
    first = lines[0]["keys"]
    assert [(k["profile"], k["ok"]) for k in first] == [("grow", True), ("steady", True)]
    assert first[0]["data"]["this_key"]["credits_used"] == 79
    assert lines[1]["keys"][0]["data"]["this_key"]["credits_used"] == 95
    assert lines[2]["keys"][0]["error"]["code"] == "unauthorized"
    assert lines[2]["exit_code"] == 41
    assert code == 41  # the last refresh's
    assert lines[0]["time"].endswith("Z")
    assert stepping.requests(LONG_KEY) == 3


def test_single_key_watch_reads_the_key_once(stepping: MockServer, sleeps: list[float]) -> None:
    result = run("balance", "--base-url", stepping.url, "--api-key-file", "-", "--watch", "5",
                 "--count", "2", stdin=f"{LONG_KEY}\n")  # fmt: skip
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["keys"][0]["ok"] for line in lines] == [True, True]
    assert lines[0]["keys"][0]["profile"] == "default"
    assert result.returncode == 0


def test_gate_breaches_are_told_when_they_start_and_when_they_clear(
    stepping: MockServer, tmp_path: Path, sleeps: list[float]
) -> None:
    code, lines, stderr = watch(stepping, tmp_path, "--count", "4", "--max-key-credits", "90")
    told = [line.split(" ", 2)[2] for line in stderr.splitlines()]
    # Refresh 2 breaches; refresh 3 cannot tell (the key fails); refresh 4 clears it.
    assert told == [
        "grow: gate failed: this_key.credits_used 95 > 90 (--max-key-credits)",
        "grow: gate cleared: --max-key-credits",
    ]
    assert [line["breached"] != [] for line in lines] == [False, True, True, False]
    assert code == 0


def test_the_screen_keeps_stale_numbers_while_a_refresh_fails(
    stepping: MockServer, tmp_path: Path
) -> None:
    from structocr_cli.core import BalanceRequest, check_many
    from structocr_cli.runs.watch import Watch
    from structocr_cli.settings.selection import from_keys_file

    specs = from_keys_file(f"grow = {LONG_KEY}\n", "keys.txt", base_url=stepping.url)
    state = Watch(60)
    screens = []
    for _ in range(3):
        state.update(check_many(specs, BalanceRequest(), {}), state.at)
        screens.append("\n".join(line.text for line in state.screen(200)))
    rows = [next(line for line in screen.splitlines() if line.startswith("grow")) for screen
            in screens]  # fmt: skip
    assert rows[0].split()[:5] == ["grow", "sk_l…2b1c", "79", "+0", "-"]
    assert rows[1].split()[:3] == ["grow", "sk_l…2b1c", "95"]
    assert rows[1].split()[3] == "+16"
    assert "stale" not in rows[1]
    assert rows[2].split()[2:4] == ["95", "+16"]  # the last good numbers, kept
    assert "stale since" in rows[2]
    assert "Invalid or inactive API key" in rows[2]
    assert LONG_KEY not in "".join(screens)


def test_requests_per_minute_since_the_watch_started(stepping: MockServer) -> None:
    from datetime import timedelta

    from structocr_cli.core import BalanceRequest, check_many
    from structocr_cli.runs.watch import Watch
    from structocr_cli.settings.selection import from_keys_file

    specs = from_keys_file(f"grow = {LONG_KEY}\n", "keys.txt", base_url=stepping.url)
    state = Watch(60)
    start = state.at
    state.update(check_many(specs, BalanceRequest(), {}), start)
    state.update(check_many(specs, BalanceRequest(), {}), start + timedelta(minutes=2))
    row = next(line.text for line in state.screen() if line.text.startswith("grow"))
    assert row.split()[4] == "10"  # 20 more requests in 2 minutes


@pytest.mark.parametrize(
    ("args", "says"),
    [(("-o", "tsv"), "--watch shows a live table or JSON lines; it does not take -o tsv"),
     (("--field", "account.credits_remaining"), "it does not take --field"),
     (("--watch", "2"), "--watch"),
     (("--count", "0"), "--count")],
)  # fmt: skip
def test_what_watch_refuses(
    stepping: MockServer, tmp_path: Path, args: tuple[str, ...], says: str
) -> None:
    code, _, stderr = watch(stepping, tmp_path, *args)
    assert code == 2
    assert says in stderr
    assert stepping.requests(LONG_KEY) == 0


def test_the_cycle_collector_stays_off_only_for_one_check_or_one_history_read(
    stepping: MockServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # launch turns it off for start-up. One check or one read of the history ends the
    # process; many keys leave cycles to collect (16 MiB more for 2,000 without it), and a
    # watch may run for days.
    from structocr_cli.launch import main

    keys = tmp_path / "keys.txt"
    keys.write_text("a = steady-key-1234\n")
    collecting: list[bool] = []
    _clock(monkeypatch, lambda _: collecting.append(gc.isenabled()))
    check = ("balance", "--base-url", stepping.url, "--json")
    one = (*check, "--api-key", "steady-key-1234")
    try:
        assert (_exit_code(main, one), gc.isenabled()) == (0, False)
        assert (_exit_code(main, ("history", "--json")), gc.isenabled()) == (0, False)
        assert (_exit_code(main, (*check, "--keys-file", str(keys))), gc.isenabled()) == (0, True)
        watching = (*one, "--watch", "5", "--count", "2")
        assert (_exit_code(main, watching), collecting) == (0, [True])
    finally:
        gc.enable()


def test_ctrl_c_during_a_watch_is_a_clean_stop(
    stepping: MockServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupt(seconds: float) -> None:
        raise KeyboardInterrupt

    _clock(monkeypatch, interrupt)
    code, lines, _ = watch(stepping, tmp_path, "--min-remaining", "100000")
    assert len(lines) == 1
    assert code == 0  # stopped as asked, though a gate was breached


@pytest.mark.parametrize("stop", ["SIGINT", "SIGTERM"])
def test_the_live_screen_in_a_terminal(stepping: MockServer, tmp_path: Path, stop: str) -> None:
    """A real terminal (pty): the screen is drawn in place, and Ctrl-C or SIGTERM ends it
    with exit 0 and the cursor shown again."""
    pty = pytest.importorskip("pty")
    import select
    import signal
    import sys

    keys = tmp_path / "keys.txt"
    keys.write_text(f"grow = {LONG_KEY}\nsteady = steady-key-1234\nbad = wrong-key-12345\n")
    env = {**os.environ, "COLUMNS": "100", "LINES": "30", "TERM": "xterm",
           "STRUCTOCR_CONFIG": str(tmp_path / "none.toml")}  # fmt: skip
    argv = [sys.executable, "-m", "structocr_cli", "balance", "--base-url", stepping.url,
            "--keys-file", str(keys), "--watch", "5"]  # fmt: skip
    pid, fd = pty.fork()
    if pid == 0:  # the child: becomes the CLI, its stdout a terminal
        signal.signal(signal.SIGINT, signal.SIG_DFL)  # even under a runner that ignores it
        os.execve(sys.executable, argv, env)  # noqa: S606 (no shell: argv as given)
    seen = b""
    give_up = time.monotonic() + 20
    while b"Account of" not in seen and time.monotonic() < give_up:
        if select.select([fd], [], [], 0.2)[0]:
            seen += _read(fd)
    drawn = len(seen)
    os.kill(pid, getattr(signal, stop))
    give_up = time.monotonic() + 20  # until the child closes the terminal, however busy
    while time.monotonic() < give_up:
        if select.select([fd], [], [], 0.5)[0]:
            if not (chunk := _read(fd)):
                break
            seen += chunk
    _, status = os.waitpid(pid, 0)
    screen = seen.decode(errors="replace")
    _recorded(screen)
    assert "StructOCR usage, every 5 s" in screen
    assert "\x1b[" in screen  # drawn with the terminal's controls
    assert "SINCE START" in screen
    assert "Invalid or inactive API key" in screen
    assert LONG_KEY not in screen
    assert "\x1b[?25h" in screen[drawn:]  # the cursor shown again after the stop
    assert os.waitstatus_to_exitcode(status) == 0


def _read(fd: int) -> bytes:
    try:
        return os.read(fd, 65536)
    except OSError:  # the child closed the terminal
        return b""


def test_json_lines_reach_a_pipe_at_once_and_ctrl_c_exits_0(
    stepping: MockServer, tmp_path: Path
) -> None:
    """A real process writing to a pipe: the first refresh's line arrives while the watch
    waits for the next (flushed, not buffered), and Ctrl-C then ends it with exit 0."""
    import select
    import signal
    import subprocess

    from tests.conftest import STRUCTOCR

    keys = tmp_path / "keys.txt"
    keys.write_text(f"grow = {LONG_KEY}\n")
    proc = subprocess.Popen(
        [str(STRUCTOCR), "balance", "--base-url", stepping.url, "--keys-file", str(keys),
         "--watch", "60"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # noqa: PLW1509
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        assert select.select([proc.stdout], [], [], 20)[0], "no line within 20 s"
        line = proc.stdout.readline()
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    _recorded(line, rest, err)
    assert json.loads(line)["refresh"] == 1
    assert rest == ""  # one refresh only: the next was 60 s away
    assert proc.returncode == 0
    assert "Traceback" not in err


def test_an_account_breach_is_told_once_while_one_of_its_keys_fails(
    sleeps: list[float], tmp_path: Path
) -> None:
    def account(remaining: int) -> Reply:
        return Reply.json(200, balance_document(account={"credits_remaining": remaining}))

    low, high = account(48849), account(200000)
    refused = Reply.error(401, "Invalid or inactive API key")
    a_steps, b_steps = [low, low, low, high], [low, refused, low, high]
    keys = {
        "a-key-123456789": lambda r: a_steps[min(r.count, 4) - 1],
        "b-key-123456789": lambda r: b_steps[min(r.count, 4) - 1],
    }
    with MockServer(behaviours=keys, log=mock_log()) as mock:
        path = tmp_path / "keys.txt"
        path.write_text("a = a-key-123456789\nb = b-key-123456789\n")
        result = run("balance", "--base-url", mock.url, "--keys-file", str(path), "--watch",
                     "5", "--count", "4", "--min-remaining", "100000")  # fmt: skip
    told = [line.split(" ", 2)[2] for line in result.stderr.splitlines()]
    assert told == [
        "a, b: gate failed: account.credits_remaining 48849 < 100000 (--min-remaining)",
        "a, b: gate cleared: --min-remaining",
    ]  # nothing when b failed (unknown) or came back (still breached)
    assert result.returncode == 0


class _Gone(io.StringIO):
    """A pipe whose reader has left: every write fails as it would after ``| head -1``."""

    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


@pytest.mark.parametrize(("gate", "code"), [(("--min-remaining", "100000"), 1), ((), 0)])
def test_a_watch_ends_when_its_reader_goes_away(
    stepping: MockServer,
    sleeps: list[float],
    monkeypatch: pytest.MonkeyPatch,
    gate: tuple[str, ...],
    code: int,
) -> None:
    from structocr_cli.cli.app import main

    monkeypatch.setattr("sys.stdout", _Gone())
    monkeypatch.setenv("STRUCTOCR_API_KEY", "steady-key-1234")
    result = main(["balance", "--base-url", stepping.url, "--watch", "5", *gate])
    assert result == code  # the gate's verdict, as `balance | head -1` gives
    assert sleeps == []  # no second refresh for nobody


def test_a_watch_piped_into_head_ends_with_head(stepping: MockServer, tmp_path: Path) -> None:
    """A real pipe: once head has its line and exits, the next refresh ends the watch."""
    import subprocess

    from tests.conftest import STRUCTOCR

    command = (f"'{STRUCTOCR}' balance --base-url '{stepping.url}' --api-key steady-key-1234 "
               "--watch 5 | head -1; echo \"exit ${PIPESTATUS[0]}\"")  # fmt: skip
    result = subprocess.run(["bash", "-c", command], capture_output=True, text=True,
                            timeout=30, check=False)  # fmt: skip
    first, last = result.stdout.splitlines()
    assert json.loads(first)["refresh"] == 1
    assert last == "exit 0"
    assert stepping.requests("steady-key-1234") == 2  # the refresh that found the pipe closed


@pytest.mark.parametrize("room", [40, 80, 200])
def test_the_screen_fits_the_terminal(stepping: MockServer, room: int) -> None:
    from structocr_cli.core import BalanceRequest, check_many
    from structocr_cli.runs.watch import Watch
    from structocr_cli.settings.selection import from_keys_file

    keys = "".join(f"k{n:02d} = steady-key-1234\n" for n in range(20)) + "bad = wrong-key-12345\n"
    specs = from_keys_file(keys, "keys.txt", base_url=stepping.url)
    state = Watch(5)
    state.update(check_many(specs, BalanceRequest(), {}), state.at)
    lines = [line.text for line in state.screen(room)]
    assert all(len(line) <= room for line in lines), [x for x in lines if len(x) > room]
    assert any(line.startswith("k00 ") for line in lines)
    assert "Account of k00, k01 and 18 more keys:" in " ".join(lines)  # counted, not listed
    assert "CREDITS" in lines[next(i for i, x in enumerate(lines) if x.startswith("KEY"))]
