"""What a new user trips over: errors that name the right cause and say what to do next."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from structocr_cli.gates import GATES
from structocr_cli.mock.server import MockServer
from tests.conftest import LONG_KEY, run


def test_a_broken_keyring_setup_names_the_variable(config_file: Path) -> None:
    env = {"PYTHON_KEYRING_BACKEND": "no.such.Backend"}
    saved = run("config", "set-key", "-p", "kr", "--store", "keyring", stdin=LONG_KEY, env=env)
    assert saved.returncode == 2, saved.stderr
    assert "PYTHON_KEYRING_BACKEND=no.such.Backend cannot be loaded" in saved.stderr
    config_file.write_text('[profiles.kr]\nkey_store = "keyring"\n')
    balance = run("balance", "-p", "kr", env=env)
    assert balance.returncode == 41  # as when no keyring is available at all
    assert "PYTHON_KEYRING_BACKEND" in balance.stderr


@pytest.mark.parametrize("gate", GATES, ids=lambda gate: gate.option)
def test_each_gate_suggests_a_value_that_fits_it(gate: object) -> None:
    result = run("balance", "--api-key", "demo", gate.option, "abc")  # type: ignore[attr-defined]
    assert result.returncode == 2
    assert f"e.g. {gate.option} {gate.example}" in result.stderr  # type: ignore[attr-defined]
    expected = {"--max-error-rate": "5", "--max-key-error-rate": "5", "--min-runway-days": "7",
                "--max-latency-ms": "3000"}  # fmt: skip
    assert gate.example == expected.get(gate.option, "1000")  # type: ignore[attr-defined]


def test_a_bad_timeout_from_the_environment_names_the_variable() -> None:
    result = run("balance", "--api-key", "demo", env={"STRUCTOCR_TIMEOUT": "abc"})
    assert result.returncode == 2
    assert "STRUCTOCR_TIMEOUT='abc' is not a number of seconds" in result.stderr
    assert "--timeout" not in result.stderr.split(".")[0]


def test_a_key_with_a_trailing_newline_works_from_every_source(
    server: MockServer, config_file: Path
) -> None:
    args = ("balance", "--base-url", server.url, "--json")
    assert run(*args, env={"STRUCTOCR_API_KEY": "demo\n"}).returncode == 0
    assert run(*args, "--api-key", " demo\n").returncode == 0
    config_file.write_text('[profiles.p]\napi_key = "demo\\n"\n')
    assert run(*args, "-p", "p").returncode == 0
    inside = run(*args, env={"STRUCTOCR_API_KEY": "de mo"})
    assert inside.returncode == 2  # whitespace inside a key is still refused
    assert "whitespace" in inside.stderr


def test_config_show_names_the_built_in_default(config_file: Path) -> None:
    config_file.write_text('[profiles.default]\napi_key = "k-1234567890"\n')
    text = run("config", "show").stdout
    assert "Profile:     default (the built-in default)" in text
    assert "(from default)" not in text


def test_set_key_writes_the_profile_balance_would_read(config_file: Path) -> None:
    result = run("config", "set-key", stdin="k-1234567890", env={"STRUCTOCR_PROFILE": "ci"})
    assert result.returncode == 0, result.stderr
    assert 'for profile "ci" (from env STRUCTOCR_PROFILE)' in result.stderr
    shown = run("config", "show", env={"STRUCTOCR_PROFILE": "ci"})
    assert shown.returncode == 0, shown.stderr


def test_removing_the_default_profile_says_how_to_choose_another(config_file: Path) -> None:
    for name in ("a", "b", "c"):
        run("config", "set-key", "-p", name, stdin=f"key-{name}-123456789")
    result = run("config", "remove", "a")  # a became the default: it was saved first
    assert result.returncode == 0
    assert "it was the default profile: commands without -p now use the profile" in result.stderr
    assert "structocr config use NAME (profiles: b, c)" in result.stderr


def test_no_key_while_other_profiles_exist_lists_them(config_file: Path) -> None:
    config_file.write_text(
        '[profiles.prod]\napi_key = "k1-123456789"\n[profiles.ci]\napi_key = "k2-123456789"\n'
    )
    result = run("balance")
    assert result.returncode == 41
    assert "Profiles in the file: ci, prod; use one with -p NAME" in result.stderr
    assert "structocr config use NAME" in result.stderr


def test_a_key_refused_while_verifying_says_nothing_was_saved(
    server: MockServer, config_file: Path
) -> None:
    result = run("config", "set-key", "--verify", "--base-url", server.url, stdin="wrong-key-1234")
    assert result.returncode == 41
    assert "Nothing was saved" in result.stderr
    assert "--api-key-file, STRUCTOCR_API_KEY or --profile" not in result.stderr
    assert not config_file.exists()


@pytest.mark.parametrize(
    "args",
    [("--json", "--min-remainig", "5"), ("-o", "json", "--timeout", "x"),
     ("--output=json", "--bogus"), ("--json", "extra")],
)  # fmt: skip
def test_usage_errors_under_json_are_the_json_error_object(args: tuple[str, ...]) -> None:
    result = run("balance", *args)
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    error = json.loads(line)["error"]
    assert (error["code"], error["exit_code"]) == ("usage_error", 2)
    assert "Usage:" not in result.stderr


def test_an_unquoted_value_names_the_key_and_shows_the_quoted_form(config_file: Path) -> None:
    config_file.write_text(f'default_profile = "a"\n[profiles.a]\napi_key = {LONG_KEY}\n')
    result = run("balance")
    assert result.returncode == 2
    assert (
        "line 3: the value of api_key is not valid TOML; text must be quoted: "
        'api_key = "sk_l…2b1c"' in result.stderr
    )
    assert LONG_KEY not in result.stderr


def test_a_profile_table_typo_is_pointed_out(config_file: Path) -> None:
    config_file.write_text('[profile.prod]\napi_key = "k-1234567890"\n')
    result = run("config", "list")
    assert (
        "[profile] is not a table structocr reads; it is ignored (did you mean [profiles.prod]?)"
        in result.stderr
    )


def test_a_base_url_without_v1_is_exit_61_suggesting_it(server: MockServer) -> None:
    root = server.url.removesuffix("/v1")
    result = run("balance", "--base-url", root, "--api-key", "demo")
    assert result.returncode == 61
    assert f"{root}/account/balance is not the StructOCR balance endpoint" in result.stderr
    assert f"try --base-url {root}/v1" in result.stderr


def test_the_apis_own_404_is_still_exit_44(server: MockServer) -> None:
    result = run("balance", "--base-url", server.url, "--api-key", "demo-404")
    assert result.returncode == 44
    assert "Account not found" in result.stderr


@pytest.mark.parametrize(("key", "code"), [(b"\x03", 130), (b"\x04", 2)], ids=["ctrl-c", "ctrl-d"])
def test_leaving_the_hidden_prompt_starts_a_new_line(
    isolated: Path, key: bytes, code: int
) -> None:
    """In a real terminal (a pty): ^C is exit 130 and ^D "no key was given" (exit 2), each
    said on a line of its own, not after the prompt."""
    import contextlib
    import os
    import pty
    import select
    import signal
    import time

    from tests.conftest import STRUCTOCR, _recorded

    pid, fd = pty.fork()
    if pid == 0:  # the child: its own session, with the pty as its terminal
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.execv(str(STRUCTOCR), [str(STRUCTOCR), "config", "set-key", "-p", "x"])  # noqa: S606
    screen, status = b"", None
    deadline = time.monotonic() + 20
    while b"API key for profile" not in screen and time.monotonic() < deadline:
        if select.select([fd], [], [], 0.5)[0]:
            screen += os.read(fd, 1024)
    os.write(fd, key)
    while status is None and time.monotonic() < deadline:
        if select.select([fd], [], [], 0.2)[0]:
            with contextlib.suppress(OSError):  # the pty closed with the child
                screen += os.read(fd, 1024)
        done, raw = os.waitpid(pid, os.WNOHANG)
        status = os.waitstatus_to_exitcode(raw) if done else None
    os.close(fd)
    text = screen.decode(errors="replace").replace("\r", "")
    _recorded(text)
    assert status == code, text
    prompt_line = next(line for line in text.split("\n") if "API key for profile" in line)
    assert "structocr:" not in prompt_line, text
    assert "structocr: " in text, text


def test_a_refusing_proxy_is_named_as_the_proxy(server: MockServer) -> None:
    import socket

    with socket.socket() as sock:  # a port that was free a moment ago and now listens nowhere
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proxy = f"http://user:secret-pw@127.0.0.1:{port}"
    env = {"HTTPS_PROXY": proxy, "https_proxy": proxy, "NO_PROXY": "", "no_proxy": ""}
    result = run("balance", "--base-url", "https://structocr.test/v1", "--api-key", "demo",
                 env=env)  # fmt: skip
    assert result.returncode == 60
    assert f"no answer from the proxy 127.0.0.1:{port} (on the way to " in result.stderr
    assert "HTTPS_PROXY" in result.stderr
    assert "secret-pw" not in result.stderr


@pytest.mark.parametrize(
    "args",
    [("config", "set-key", "-p", ""), ("balance", "-p", ""), ("balance", "-p", "base", "-p", " "),
     ("config", "show", "-p", ""), ("exporter", "-p", "")],
)  # fmt: skip
def test_an_empty_profile_name_is_refused_and_changes_nothing(
    server: MockServer, config_file: Path, args: tuple[str, ...]
) -> None:
    """``-p "$PROFILE"`` with the variable unset: never the default profile instead."""
    config_file.write_text('default_profile = "base"\n[profiles.base]\napi_key = "demo"\n')
    before = config_file.read_bytes()
    result = run(*args, stdin="k-new-123456789", env={"STRUCTOCR_BASE_URL": server.url})
    assert result.returncode == 2, result.stderr
    assert "the profile name is empty (is a variable unset?)" in result.stderr
    assert config_file.read_bytes() == before


def test_an_empty_profile_variable_counts_as_unset(server: MockServer, config_file: Path) -> None:
    config_file.write_text('default_profile = "base"\n[profiles.base]\napi_key = "demo"\n')
    result = run("balance", "--json", "--base-url", server.url, env={"STRUCTOCR_PROFILE": ""})
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("suffix", ["/account/balance", "/account/balance/"])
def test_the_endpoints_url_as_base_url_is_refused_with_the_base_url_to_use(
    server: MockServer, suffix: str
) -> None:
    result = run("balance", "--api-key", "demo", "--base-url", server.url + suffix)
    assert result.returncode == 2
    assert f"Leave out /account/balance: {server.url}" in result.stderr
    assert "/v1/v1" not in result.stderr
    before = server.requests("demo")
    run("balance", "--api-key", "demo", "--base-url", server.url + suffix)
    assert server.requests("demo") == before  # refused before any request


def test_no_suggestion_adds_a_second_v1(server: MockServer) -> None:
    result = run("balance", "--api-key", "demo", "--base-url", server.url + "/other")
    assert result.returncode == 61
    assert "/v1/other/v1" not in result.stderr
    assert "Check --base-url points at the StructOCR API" in result.stderr
    bare = run("balance", "--api-key", "demo", "--base-url", server.url.removesuffix("/v1"))
    assert f"try --base-url {server.url}" in bare.stderr  # the one case /v1 is missing


def test_the_exporter_never_advises_an_option_it_does_not_take() -> None:
    result = run("exporter")
    assert result.returncode == 41
    assert "--api-key" not in result.stderr
    assert "serve a --keys-file FILE" in result.stderr


def test_a_refused_key_from_a_keys_file_is_fixed_in_that_file(
    server: MockServer, tmp_path: Path
) -> None:
    keys = tmp_path / "keys.txt"
    keys.write_text("ok = demo\nold = wrong-key-12345\n")
    result = run("balance", "--base-url", server.url, "--keys-file", str(keys), "-o", "tsv")
    assert result.returncode == 41
    assert f"Check the key named old in {keys}" in result.stderr
    assert "--api-key-file" not in result.stderr


def test_the_exporter_logs_advice_it_can_follow(server: MockServer) -> None:
    from structocr_cli.core import BalanceRequest
    from structocr_cli.exporter.cache import Exporter
    from structocr_cli.runs.exporter import MISSING_HINT, REFUSED_HINT
    from structocr_cli.settings.resolve import Flags
    from structocr_cli.settings.selection import KeySpec

    logged: list[str] = []
    spec = KeySpec("default", Flags(api_key="wrong-key-12345", base_url=server.url,
                                    api_key_from="env STRUCTOCR_API_KEY"))  # fmt: skip
    request = BalanceRequest(timeout=5, missing_hint=MISSING_HINT, refused_hint=REFUSED_HINT)
    served = Exporter([spec], request, {}, log=lambda level, message, **_: logged.append(message))
    served.scrape()
    assert logged
    assert REFUSED_HINT in logged[0]
    assert "--api-key-file" not in logged[0]


@pytest.mark.parametrize(
    ("args", "says"),
    [(("--field", "credits_remaining"),
      "unknown field 'credits_remaining': a path names its section too. Did you mean "
      "account.credits_remaining?"),
     (("--json", "account.credits_remaining"),
      "Got unexpected extra argument(s) (account.credits_remaining)"),
     (("-o", "openmetrics", "ci-production-key"), "(ci-production-key)"),
     (("--field", "xcredits_remainingx"), "unknown field 'xcre…ingx'"),  # no name of ours
     (("--timeout", LONG_KEY), "sk_l…2b1c"),  # a key in the wrong place: masked, as before
    ],
)  # fmt: skip
def test_names_the_cli_knows_are_shown_as_typed_keys_are_masked(
    config_file: Path, args: tuple[str, ...], says: str
) -> None:
    config_file.write_text('[profiles.ci-production-key]\napi_key = "demo"\n')
    result = run("balance", "--api-key", "demo", *args)
    assert result.returncode == 2
    assert says in result.stderr
    assert LONG_KEY not in result.stderr


@pytest.mark.parametrize(("given", "named"), [(("--json",), "--json"),
                                              (("-o", "tsv"), "--output tsv")])  # fmt: skip
def test_a_conflict_names_the_options_given(given: tuple[str, ...], named: str) -> None:
    result = run("balance", "--api-key", "demo", *given, "--field", "account.credits_remaining")
    assert result.returncode == 2
    assert f"it cannot be combined with {named}" in result.stderr


def test_a_bare_structocr_prints_its_help_on_stdout_and_exits_0() -> None:
    for args in ((), ("config",)):
        result = run(*args)
        assert result.returncode == 0
        assert result.stdout.startswith("Usage: structocr")
        assert result.stderr == ""


@pytest.mark.parametrize(
    ("words", "usage"),
    [((), "Usage: structocr [OPTIONS] COMMAND"), (("balance",), "Usage: structocr balance"),
     (("config", "use"), "Usage: structocr config use")],
)  # fmt: skip
def test_help_names_a_command(words: tuple[str, ...], usage: str) -> None:
    result = run("help", *words)
    assert result.returncode == 0
    assert result.stdout.startswith(usage)


def test_conventions_of_other_clis() -> None:
    from structocr_cli import __version__

    assert run("-V").stdout == f"structocr-cli {__version__}\n"
    assert "Usage: structocr config use [OPTIONS] NAME\n" in run("config", "use", "-h").stdout
    assert "Usage: structocr completion [OPTIONS] SHELL\n" in run("completion", "-h").stdout


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_and_no_color_before_or_after_the_command(server: MockServer, where: str) -> None:
    flags = ["--debug", "--no-color"]
    command = ["balance", "--base-url", server.url, "--api-key", "demo"]
    args = [*flags, *command] if where == "before" else [*command, *flags]
    result = run(*args, env={"FORCE_COLOR": "1"})
    assert result.returncode == 0
    assert "structocr: debug: GET" in result.stderr
    assert "\x1b[3" not in result.stdout  # no colour, even forced
