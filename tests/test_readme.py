"""The README runs as printed: each transcript (``$ command`` and its output) and each shell
block is run in a real shell against the mock, in order, with the installed structocr.

Normalised before comparing: the mock's address (the README shows the default
127.0.0.1:8787), the home directory (/home/me) and, in lines whose figures move with the
clock (the period's dates, days elapsed, the forecast), the numbers themselves. Skipped,
and said so here: installing (pipx, covered by make dist-check), make itself, the mock's
own long-running commands, and the cron line (it needs node_exporter's directory).
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from structocr_cli.mock.server import MockServer
from tests.conftest import LONG_KEY, STRUCTOCR, mock_log
from tests.manual import MANUAL as README

BLOCKS = [
    (m.group(1), m.group(2)) for m in re.finditer(r"^```(\w+)\n(.*?)^```", README, re.M | re.S)
]
TRANSCRIPTS = [text for kind, text in BLOCKS if kind == "text" and text.startswith("$ ")]
STAGING_KEY = "sk_test_5a6b78d9e"  # masked as sk_t…8d9e, as the README shows
CLOCK = re.compile(
    r"Days elapsed|Days left|Start |End |projected|credits a day|[Rr]unway|\"(start|end)\""
)
MARK = "@@structocr-readme@@"


@pytest.fixture
def shell_env(server: MockServer, tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "STRUCTOCR_CONFIG"}
    return env | {
        "PATH": f"{STRUCTOCR.parent}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local/share"),
        "STRUCTOCR_BASE_URL": server.url, "PROD_KEY": LONG_KEY, "STAGING_KEY": STAGING_KEY,
        "COLUMNS": "80",
    }  # fmt: skip


def normalised(text: str, server: MockServer, home: str) -> list[str]:
    text = text.replace(server.url.split("/")[2], "127.0.0.1:8787").replace(home, "/home/me")
    # A line that continues the one before (indented, in a table that wraps to the terminal)
    # is joined to it: where a line breaks moves with figures that move with the clock.
    text = re.sub(r"\n {2,}(?=\S)", " ", text)
    return [
        " ".join(re.sub(r"\d[\d,.:T-]*Z?", "N", line).split()) if CLOCK.search(line) else line
        for line in text.rstrip("\n").split("\n")
    ]


def steps(transcript: str) -> list[tuple[str, str]]:
    """(command, expected output) pairs of a transcript."""
    pairs: list[tuple[str, str]] = []
    for line in transcript.rstrip("\n").split("\n"):
        if line.startswith("$ "):
            pairs.append((line[2:], ""))
        else:
            command, output = pairs[-1]
            pairs[-1] = (command, output + line + "\n")
    return pairs


@pytest.mark.parametrize("transcript", TRANSCRIPTS, ids=lambda text: text.split("\n")[0][2:50])
def test_each_transcript_runs_as_printed(
    transcript: str, server: MockServer, shell_env: dict[str, str]
) -> None:
    pairs = steps(transcript)
    env = dict(shell_env)
    if any(" config " in command for command, _ in pairs):
        del env["STRUCTOCR_BASE_URL"]  # the profiles say where (and nothing is fetched)
    else:
        env["STRUCTOCR_API_KEY"] = "demo"  # the key Usage saved; a transcript may name another
    script = "".join(
        f"{{ {command} ; }} 2>&1; __status=$?; echo {MARK}; (exit $__status)\n"
        for command, _ in pairs
    )
    result = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True,
                            timeout=120, check=False, cwd=env["HOME"])  # fmt: skip
    outputs = result.stdout.split(MARK + "\n")[: len(pairs)]
    assert len(outputs) == len(pairs), result.stdout + result.stderr
    for (command, expected), actual in zip(pairs, outputs, strict=True):
        assert normalised(actual, server, env["HOME"]) == normalised(
            expected, server, env["HOME"]
        ), command


def block(first_line: str) -> str:
    (text,) = [text for kind, text in BLOCKS if kind == "sh" and text.startswith(first_line)]
    return text


def test_usage_block_runs_in_order(shell_env: dict[str, str]) -> None:
    keys = iter(["demo", "demo-low"])
    for line in block("structocr config set-key").splitlines():
        command = line.split("#")[0].strip()
        stdin = next(keys) if "set-key" in command else None  # what a user would paste
        result = subprocess.run(
            ["bash", "-c", command], env=shell_env, input=stdin,
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert result.returncode == 0, (command, result.stderr)
    assert "12" in result.stdout  # the staging profile holds demo-low's 12 credits


def _sh(script: str, env: dict[str, str], key: str) -> subprocess.CompletedProcess[str]:
    """A README recipe run by sh with ``key`` as STRUCTOCR_API_KEY."""
    return subprocess.run(["sh", "-c", script], env=env | {"STRUCTOCR_API_KEY": key},
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip


@pytest.mark.parametrize(("key", "code", "says"), [
    ("demo", 0, "starting the batch with 48849 credits left"),
    ("demo-low", 1, "not starting the batch (structocr exit 1)"),
    ("demo-500", 50, "not starting the batch (structocr exit 50)"),
])  # fmt: skip
def test_the_posix_gate_script_runs(
    shell_env: dict[str, str], key: str, code: int, says: str
) -> None:
    result = _sh(block("#!/bin/sh\n# Stop the nightly batch"), shell_env, key)
    assert result.returncode == code, result.stderr
    assert says in result.stdout + result.stderr


def test_the_fixtures_example_runs(shell_env: dict[str, str], tmp_path: Path) -> None:
    (fixtures,) = [text for kind, text in BLOCKS if kind == "toml" and "[ci-key.account]" in text]
    path = tmp_path / "keys.toml"
    path.write_text(fixtures)
    from structocr_cli.mock.replies import load_fixtures

    with MockServer(behaviours=load_fixtures(path), log=mock_log()) as mock:
        command = block("structocr balance --base-url http://127.0.0.1:8787/v1 --api-key ci-key")
        command = command.strip().replace("http://127.0.0.1:8787/v1", mock.url)
        result = subprocess.run(["bash", "-c", command + " --field account.credits_remaining"],
                                env=shell_env, capture_output=True, text=True, timeout=60,
                                check=False)  # fmt: skip
    assert (result.returncode, result.stdout) == (0, "500\n"), result.stderr


def test_completion_install_lines_run_on_a_fresh_home(shell_env: dict[str, str]) -> None:
    for line in block("structocr completion --install bash").splitlines():
        command = line.split("#")[0].strip()
        result = subprocess.run(["bash", "-c", command], env=shell_env, capture_output=True,
                                text=True, timeout=60, check=False)  # fmt: skip
        assert result.returncode == 0, (command, result.stderr)
    inline = "mkdir -p ~/.zfunc && structocr completion zsh > ~/.zfunc/_structocr"
    assert inline in " ".join(README.split())
    made = subprocess.run(["bash", "-c", inline], env=shell_env, timeout=60, check=False)
    assert made.returncode == 0


@pytest.mark.parametrize(("key", "code", "says"), [
    ("demo", 0, ""),
    ("demo-low", 1, "StructOCR credits are low: 12 left, below 1000\n"),
    ("demo-500", 50, "StructOCR credits could not be checked (structocr exit 50):\n"
                     "structocr: error: HTTP 500"),
    ("wrong-key-12345", 41, "StructOCR credits could not be checked (structocr exit 41):\n"
                            "structocr: error: HTTP 401"),
])  # fmt: skip
def test_the_cron_recipe_runs_under_sh(
    shell_env: dict[str, str], key: str, code: int, says: str
) -> None:
    result = _sh(block("#!/bin/sh\n# structocr-low-credits"), shell_env, key)
    assert result.returncode == code, result.stderr
    assert result.stderr == ""  # cron mails what is printed: all of it on stdout
    if says:
        assert result.stdout.startswith(says)
    else:
        assert result.stdout == ""  # silent while all is well
