"""The CLI as users run it: output formats, help, secrecy, start-up imports."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

import pytest

from structocr_cli import __version__
from structocr_cli.cli.app import main
from structocr_cli.mock.server import MockServer
from tests.conftest import ECHO_KEY, LONG_KEY, STRUCTOCR, StoppedClock, imported, run, run_process

ESC = "\x1b"


def balance(server: MockServer, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return run("balance", "--base-url", server.url, *args, env=env)


def fetch_raw(server: MockServer, key: str) -> object:
    request = urllib.request.Request(server.url + "/account/balance", headers={"x-api-key": key})
    with urllib.request.urlopen(request) as answer:
        return json.load(answer)


def test_version() -> None:
    result = run("--version")
    assert result.returncode == 0
    assert result.stdout == f"structocr-cli {__version__}\n"


def test_python_dash_m_works() -> None:
    python = str(STRUCTOCR.with_name("python"))
    result = subprocess.run(
        [python, "-m", "structocr_cli", "--help"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0
    assert "Usage: structocr" in result.stdout


def test_balance_help_documents_every_exit_code() -> None:
    text = run("balance", "--help").stdout
    for code in (0, 1, 2, 40, 41, 44, 50, 60, 61, 70, 130):
        assert re.search(rf"^\s+{code}\s+\S", text, re.MULTILINE), code
    for option in ("--api-key-file", "--profile", "--base-url", "--timeout", "--json", "--output"):
        assert option in text


def test_json_is_the_servers_document_with_unknown_fields(server: MockServer) -> None:
    result = balance(server, "--json", STRUCTOCR_API_KEY="t-extra")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == fetch_raw(server, "t-extra")
    assert json.loads(result.stdout)["future"] == {"x": 1}
    assert result.stderr == ""


def test_json_never_has_escape_codes_even_with_force_color(server: MockServer) -> None:
    result = balance(server, "-o", "json", STRUCTOCR_API_KEY="t-extra", FORCE_COLOR="1")
    assert result.returncode == 0
    assert ESC not in result.stdout
    assert json.loads(result.stdout)["note"] == "caf\u00e9"


def test_json_and_table_contradict(server: MockServer) -> None:
    result = balance(server, "--json", "-o", "table", STRUCTOCR_API_KEY="demo")
    assert result.returncode == 2
    assert "contradict" in result.stderr


def test_table_in_a_pipe_fits_80_columns_uncut_and_plain(server: MockServer) -> None:
    result = balance(server, STRUCTOCR_API_KEY="demo")
    assert result.returncode == 0
    out = result.stdout
    assert ESC not in out
    assert "…" not in out
    assert max(len(line) for line in out.splitlines()) <= 80
    for value in ("50,569", "1,720", "48,849", "337", "206", "4.37%", "2,720 ms",
                  "79", "45", "2.22%", "2,424 ms", "23.4%", "3.4%"):  # fmt: skip
        assert value in out, value
    assert "Billing period" in out
    assert "Days elapsed" in out
    assert "Days left" in out
    for label in ("Forecast", "Daily burn", "Runway", "runs out ~"):
        assert label in out, label


def test_table_is_readable_narrow_and_with_no_color(server: MockServer) -> None:
    result = balance(server, STRUCTOCR_API_KEY="demo", NO_COLOR="1", COLUMNS="60")
    assert result.returncode == 0
    assert "48,849" in result.stdout
    assert "\x1b[3" not in result.stdout  # no foreground colour


def test_table_has_colour_only_when_forced(server: MockServer) -> None:
    plain = balance(server, STRUCTOCR_API_KEY="demo-low")
    assert ESC not in plain.stdout
    forced = balance(server, STRUCTOCR_API_KEY="demo-low", FORCE_COLOR="1")
    assert ESC in forced.stdout
    # Colour is only a hint: the same text once the escape sequences are taken out.
    assert re.sub(r"\x1b\[[0-9;]*m", "", forced.stdout) == plain.stdout


def test_flaky_server_is_retried_to_success(server: MockServer) -> None:
    result = balance(server, "--json", STRUCTOCR_API_KEY="demo-flaky")
    assert result.returncode == 0, result.stderr


def test_retry_after_beyond_deadline_says_when_to_retry(server: MockServer) -> None:
    result = balance(server, "--timeout", "5", STRUCTOCR_API_KEY="t-429-later")
    assert result.returncode == 40
    assert "retry in 120 s (after 07:35:42 UTC)" in result.stderr  # the test clock's 07:33:42
    assert "attempts" not in result.stderr


def test_a_retry_after_on_another_day_gives_the_date(server: MockServer) -> None:
    result = balance(server, "--timeout", "5", STRUCTOCR_API_KEY="fault-429-long")
    assert result.returncode == 40
    assert "retry in 86400 s (after 2026-12-01 07:33:42 UTC)" in result.stderr


def test_a_retry_after_past_the_calendars_end_is_said_without_a_date(
    server: MockServer, clock: StoppedClock
) -> None:
    clock.at = datetime(9999, 12, 31, 12, 0, tzinfo=timezone.utc)
    result = balance(server, "--timeout", "5", STRUCTOCR_API_KEY="fault-429-long")
    assert result.returncode == 40
    assert "retry in 86400 s, beyond the 5 s deadline" in result.stderr


def test_retry_after_within_deadline_then_success(server: MockServer) -> None:
    assert balance(server, STRUCTOCR_API_KEY="t-503-once").returncode == 0


def test_api_key_file_from_stdin(server: MockServer) -> None:
    result = run("balance", "--base-url", server.url, "--api-key-file", "-", stdin="demo\n")
    assert result.returncode == 0, result.stderr


def test_profile_from_config_file(server: MockServer, config_file: Path) -> None:
    config_file.write_text(f'[profiles.local]\napi_key = "demo-low"\nbase_url = "{server.url}"\n')
    result = run("balance", "-p", "local", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["account"]["credits_remaining"] == 12


def test_server_text_is_shown_literally_and_without_control_characters(
    server: MockServer,
) -> None:
    result = balance(server, STRUCTOCR_API_KEY="t-markup")
    assert result.returncode == 41
    assert "[bold]x[/bold] :smile: \\x1b[31mred\\x07" in result.stderr
    assert ESC not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "args",
    [
        ("--api-key", LONG_KEY),
        ("--api-key", LONG_KEY, "--json"),
        ("--api-key", "nokey" + LONG_KEY),
        ("--api-key", LONG_KEY + " tail"),
        ("--api-key", LONG_KEY, "--timeout", "0.001"),
    ],
)
def test_key_never_appears_in_any_output(server: MockServer, args: tuple[str, ...]) -> None:
    for debug in ("0", "1"):
        result = balance(server, *args, STRUCTOCR_DEBUG=debug)
        assert LONG_KEY not in result.stdout + result.stderr


def test_401_error_shows_masked_key() -> None:
    with MockServer(log=open("/dev/null", "w")) as mock:
        result = balance(mock, "--api-key", LONG_KEY)
    assert result.returncode == 41
    assert "sk_l…2b1c from --api-key" in result.stderr
    assert LONG_KEY not in result.stderr


def test_debug_log_goes_to_stderr_redacted(server: MockServer) -> None:
    result = balance(server, "--json", "--api-key", LONG_KEY, STRUCTOCR_DEBUG="1")
    assert result.returncode == 0
    assert "structocr: debug: GET" in result.stderr
    assert json.loads(result.stdout)  # stdout stays pure JSON


def test_main_returns_the_exit_code_for_the_arguments_given(
    server: MockServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["balance", "--base-url", server.url, "--api-key", "demo", "--json"]) == 0
    assert main(["balance", "--base-url", server.url, "--api-key", "demo-404"]) == 44
    assert main(["balance", "--no-such-option"]) == 2
    assert main(["--version"]) == 0
    captured = capsys.readouterr()
    assert "HTTP 404" in captured.err
    assert f"structocr-cli {__version__}" in captured.out


# Start-up: which modules each command loads (stable, unlike timings).

HEAVY = {"requests", "urllib3", "rich", "pydantic", "platformdirs", "tomlkit", "keyring"}


FAST_PATHS = [
    ("--version",),
    ("--help",),
    ("balance", "--help"),
    ("mock", "--help"),
    ("exporter", "--help"),
    ("exporter", "--print-rules"),
    ("exporter", "--print-dashboard"),
    ("completion", "--help"),
    ("help",),
    ("help", "balance"),
    ("config", "--help"),
    *(("config", name, "--help") for name in ("set-key", "list", "use", "remove", "path", "show")),
    ("history", "--help"),
    *(("history", name, "--help") for name in ("export", "import", "prune")),
]


@pytest.mark.parametrize("args", FAST_PATHS)
def test_fast_paths_import_no_heavy_library(args: tuple[str, ...]) -> None:
    loaded = imported(*args)
    assert "typer" in loaded  # the measurement works
    assert not loaded & HEAVY


def test_every_command_is_in_the_fast_path_list() -> None:
    from structocr_cli.cli.app import COMMANDS

    listed = {args[0] for args in FAST_PATHS if not args[0].startswith("-")}
    assert set(COMMANDS) <= listed


def test_a_command_loads_no_other_commands_module(server: MockServer) -> None:
    loaded = imported("balance", "--json", "--base-url", server.url, "--api-key", "demo",
                      whole=True)  # fmt: skip
    commands = {name for name in loaded if name.startswith("structocr_cli.cli.")}
    assert "structocr_cli.cli.balance" in commands
    assert not commands & {f"structocr_cli.cli.{name}" for name in
                           ("exporter", "mock", "config", "completion")}  # fmt: skip
    assert not {name for name in imported("--version", whole=True)
                if name.startswith("structocr_cli.cli.balance")}  # fmt: skip


def test_balance_json_does_not_import_rich(server: MockServer) -> None:
    loaded = imported("balance", "--json", "--base-url", server.url, "--api-key", "demo")
    assert "requests" in loaded
    assert "rich" not in loaded


def test_mock_imports_only_the_standard_library() -> None:
    code = (
        "import sys, structocr_cli.mock.server; "
        "print(sorted(set(m.split('.')[0] for m in sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert not set(json.loads(out.replace("'", '"'))) & (HEAVY | {"typer"})


def test_proxy_from_the_environment_is_used_and_sees_no_key() -> None:
    """HTTPS goes through HTTPS_PROXY as a CONNECT tunnel: the proxy learns the host, never
    the key (plain http through a proxy is refused: see test_client)."""
    import socket
    import threading

    seen: list[bytes] = []
    with socket.socket() as proxy:
        proxy.bind(("127.0.0.1", 0))
        proxy.listen()

        def answer() -> None:  # every attempt (the client retries)
            proxy.settimeout(10)
            for _ in range(3):
                conn, _ = proxy.accept()
                with conn:
                    seen.append(conn.recv(65536))
                    conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")

        thread = threading.Thread(target=answer, daemon=True)
        thread.start()
        result = run(
            "balance", "--json", "--base-url", "https://structocr.test/v1", "--api-key", LONG_KEY,
            env={"HTTPS_PROXY": f"http://127.0.0.1:{proxy.getsockname()[1]}", "NO_PROXY": ""},
        )  # fmt: skip
        thread.join(10)
    assert seen
    assert all(data.startswith(b"CONNECT structocr.test:443 HTTP/1.") for data in seen)
    assert not [data for data in seen if LONG_KEY.encode() in data]
    assert result.returncode == 60, result.stderr


def test_missing_ca_bundle_is_reported_not_a_crash(server: MockServer) -> None:
    url = server.url.replace("http://", "https://")
    result = run(
        "balance", "--base-url", url, "--api-key", "demo",
        env={"REQUESTS_CA_BUNDLE": "/nonexistent/ca.pem"},
    )  # fmt: skip
    assert result.returncode == 60
    assert "CA certificate bundle" in result.stderr


# What only a real process shows: the console script, a reader that goes away.


def test_console_script_runs_balance_end_to_end(server: MockServer) -> None:
    ok = run_process(
        "balance", "--base-url", server.url, "--json", env={"STRUCTOCR_API_KEY": "demo"}
    )
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["account"]["credits_remaining"] == 48849
    missing = run_process(
        "balance", "--base-url", server.url, env={"STRUCTOCR_API_KEY": "demo-404"}
    )
    assert (missing.returncode, missing.stdout) == (44, "")
    assert missing.stderr.startswith("structocr: error: HTTP 404")


@pytest.mark.parametrize(("gate", "code"), [("--min-remaining=10", 0), ("--min-remaining=1e9", 1)])
def test_a_reader_that_goes_away_does_not_change_the_exit_code(
    server: MockServer, gate: str, code: int
) -> None:
    # `structocr balance | head -1` under pipefail: the gate, not the pipe, decides.
    command = f'"{STRUCTOCR}" balance --base-url {server.url} {gate}'
    script = f'{command} | head -1; exit "${{PIPESTATUS[0]}}"'
    result = subprocess.run(
        ["bash", "-c", script],
        env={**os.environ, "STRUCTOCR_API_KEY": "demo", "COLUMNS": "80"},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == code, result.stderr
    assert result.stdout.startswith("StructOCR balance")
    assert len(result.stdout.splitlines()) == 1
    assert "Exception" not in result.stderr
    assert "Traceback" not in result.stderr


def test_every_gate_is_an_option_with_its_help(capsys: pytest.CaptureFixture[str]) -> None:
    from structocr_cli.gates import GATES

    text = run("balance", "--help", env={"COLUMNS": "200"}).stdout
    for gate in GATES:
        assert re.search(rf"^\s+{re.escape(gate.option)} {gate.metavar}\s+", text, re.M), gate
        assert gate.help in " ".join(text.split()), gate


def test_every_output_format_is_a_choice_and_writes(server: MockServer) -> None:
    from structocr_cli.report.formats import CHOICES

    assert CHOICES == ("table", "json", "report-json", "tsv", "env", "openmetrics")
    for name in CHOICES:
        result = balance(server, "-o", name, STRUCTOCR_API_KEY="demo")
        assert result.returncode == 0, (name, result.stderr)
        assert "48849" in result.stdout.replace(",", ""), name


def fragments(key: str, size: int = 8) -> set[str]:
    return {key[i : i + size] for i in range(len(key) - size + 1)}


MISPLACED = [
    ("balance", LONG_KEY),
    ("balance", "--api-key", "demo", "extra", LONG_KEY),
    ("balance", "--timeout", LONG_KEY),
    ("balance", "--api-key-file", LONG_KEY),
    ("balance", "-p", LONG_KEY),
    ("balance", "-o", LONG_KEY),
    ("balance", "--field", LONG_KEY),
    ("balance", "--base-url", LONG_KEY, "--api-key", "demo"),
    ("balance", "--min-remaining", LONG_KEY, "--api-key", "demo"),
    ("config", "use", LONG_KEY),
    ("config", "remove", LONG_KEY),
    ("config", "show", "-p", LONG_KEY),
    ("completion", LONG_KEY),
]


@pytest.mark.parametrize(
    ("args", "json_flag"),
    [(args, ()) for args in MISPLACED]
    + [(args, ("--json",)) for args in MISPLACED if args[0] == "balance"],
)
def test_a_key_typed_in_the_wrong_place_is_never_echoed(
    args: tuple[str, ...], json_flag: tuple[str, ...]
) -> None:
    result = run(*args, *json_flag)
    assert result.returncode == 2, result.stderr
    shown = result.stdout + result.stderr
    assert not [part for part in fragments(LONG_KEY) if part in shown], shown
    if not json_flag:  # masked: the user still sees which value it was
        assert "sk_l…2b1c" in shown


def test_ordinary_values_are_still_echoed() -> None:
    assert "'abc' is not a valid float" in run("balance", "--timeout", "abc").stderr
    assert "(a b)" in run("balance", "--api-key", "demo", "a", "b").stderr


def test_part_of_the_key_echoed_by_the_server_is_masked(server: MockServer) -> None:
    result = balance(server, STRUCTOCR_API_KEY=ECHO_KEY)
    assert result.returncode == 41
    assert "unknown key ********" in result.stderr
    assert not [part for part in fragments(ECHO_KEY) if part in result.stderr], result.stderr


HELPS = [(), ("balance",), ("exporter",), ("mock",), ("completion",), ("config",),
         ("config", "set-key"), ("config", "list"), ("config", "use"), ("config", "remove"),
         ("config", "set-base-url"), ("config", "show")]  # fmt: skip


@pytest.mark.parametrize("command", HELPS, ids=lambda command: " ".join(command) or "top")
def test_help_wraps_at_spaces_at_any_width(command: tuple[str, ...]) -> None:
    wide = run(*command, "--help", env={"COLUMNS": "250"}).stdout
    words = set(wide.split())
    for width in (40, 50, 60, 80, 100, 200):
        text = run(*command, "--help", env={"COLUMNS": str(width)}).stdout
        # No word cut in two (click may shorten a command's summary, at a space, with "...").
        cut = {w for w in text.split() if w not in words and w.removesuffix("...") not in words}
        assert not cut, (width, cut)
        for line in text.splitlines():
            assert len(line) <= width, (width, line)  # no line wider than the terminal


def test_command_summaries_fit_80_columns() -> None:
    text = run("--help", env={"COLUMNS": "80"}).stdout
    commands = text.split("Commands:")[1]
    assert "..." not in commands


@pytest.mark.parametrize("command", HELPS, ids=lambda command: " ".join(command) or "top")
def test_metavars_read_as_words(command: tuple[str, ...]) -> None:
    text = run(*command, "--help").stdout
    for leak in ("<str>", "<int", ":<", "{shell}", "<file|keyring>"):
        assert leak not in text, leak


INVISIBLE = ("\u202e", "\u202c", "\u200b", "\u2066", "\u2069")


def test_bidi_and_zero_width_characters_from_the_server_are_escaped_everywhere(
    server: MockServer, tmp_path: Path
) -> None:
    keys = tmp_path / "keys.txt"
    keys.write_text("ok = demo\nodd = t-bidi\n")
    single = run("balance", "--base-url", server.url, env={"STRUCTOCR_API_KEY": "t-bidi"})
    several = run("balance", "--base-url", server.url, "--keys-file", str(keys))
    assert single.returncode == several.returncode == 40
    assert "\\u202eyrev\\u202c" in single.stderr
    assert "\\u202eyrev" in several.stdout
    for text in (single.stdout, single.stderr, several.stdout, several.stderr):
        assert not any(char in text for char in INVISIBLE), text


@pytest.mark.parametrize(
    ("args", "says"),
    [(("balance", "--watch", "nan"), "'--watch': must be a finite number"),
     (("balance", "--watch", "inf"), "'--watch': inf is not in the range 5<=x<=86400"),
     (("balance", "--watch", "1e308"), "'--watch': 1e+308 is not in the range"),
     (("exporter", "--min-interval", "nan"), "'--min-interval': must be a finite number"),
     (("exporter", "--stale-after", "nan"), "'--stale-after': must be a finite number"),
     (("exporter", "--stale-after", "1e308"), "'--stale-after': 1e+308 is not in the range"),
     (("exporter", "--scrape-timeout", "-inf"), "'--scrape-timeout': -inf is not in the"),
     (("exporter", "--scrape-timeout", "NaN"), "'--scrape-timeout': must be a finite number"),
     (("mock", "--latency-ms", "nan"), "'--latency-ms': must be a finite number"),
     (("exporter", "--print-rules", "--alert-credits", "nan"), "--alert-credits must be"),
     (("balance", "--timeout", "nan"), "'--timeout': must be a number of seconds")],
)  # fmt: skip
def test_float_options_refuse_non_finite_values_in_their_own_message(
    args: tuple[str, ...], says: str
) -> None:
    result = run(*args, env={"STRUCTOCR_API_KEY": "demo"})
    assert result.returncode == 2, result.stderr
    assert says in result.stderr
    assert "internal error" not in result.stderr
