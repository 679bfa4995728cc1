"""Key files, stdin and the config file are read with a bound on size and time: none of them
can hang the command past --timeout, fill memory, or crash it."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from structocr_cli.mock.server import MockServer
from tests.conftest import STRUCTOCR, run


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "fifo"
    os.mkfifo(path)
    return path


def test_a_key_file_that_never_ends_is_refused() -> None:
    result = run("balance", "--api-key-file", "/dev/zero")
    assert result.returncode == 2
    assert "cannot read --api-key-file /dev/zero: it holds more than 4 KiB" in result.stderr


def test_a_fifo_with_no_writer_as_key_file_does_not_hang(fifo: Path) -> None:
    result = run("balance", "--api-key-file", str(fifo), "--timeout", "2")
    assert result.returncode == 2
    assert "it is empty" in result.stderr


def test_a_key_file_through_process_substitution_works(server: MockServer) -> None:
    script = f'"{STRUCTOCR}" balance --base-url {server.url} --json --api-key-file <(printf demo)'
    result = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("kind", ["fifo", "device", "directory", "large"])
def test_only_a_regular_config_file_of_at_most_1_mib_is_read(
    kind: str, fifo: Path, tmp_path: Path
) -> None:
    large = tmp_path / "large.toml"
    large.write_text("# padding\n" * 120_000)
    path = {"fifo": fifo, "device": Path("/dev/zero"), "directory": tmp_path, "large": large}
    result = run("balance", "--api-key", "demo", env={"STRUCTOCR_CONFIG": str(path[kind])})
    assert result.returncode == 2
    assert f"cannot read config file {path[kind]}" in result.stderr


def test_dev_null_is_an_empty_config() -> None:
    result = run("config", "list", env={"STRUCTOCR_CONFIG": os.devnull})
    assert result.returncode == 0
    assert "no profiles" in result.stderr


def test_tab_with_a_fifo_as_config_answers_at_once(fifo: Path) -> None:
    env = {"STRUCTOCR_CONFIG": str(fifo), "_STRUCTOCR_COMPLETE": "complete_bash",
           "COMP_WORDS": "structocr balance --profile ", "COMP_CWORD": "3"}  # fmt: skip
    result = run(env=env)
    assert (result.returncode, result.stdout.strip()) == (0, "")


# What only a real process shows: a real stdin that stays silent, is closed, or never ends.


@pytest.mark.timing
def test_silent_stdin_is_bounded_by_the_timeout() -> None:
    started = time.monotonic()
    with subprocess.Popen(
        [str(STRUCTOCR), "balance", "--api-key-file", "-", "--timeout", "1"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    ) as proc:  # fmt: skip
        proc.wait(timeout=30)  # stdin is held open and silent meanwhile
        elapsed = time.monotonic() - started
        assert proc.stderr is not None
        err = proc.stderr.read()
    assert elapsed < 1.5 + 1.0  # --timeout, its grace, and a loaded machine
    assert proc.returncode == 2
    assert "nothing arrived before the --timeout deadline" in err


def test_closed_stdin_is_a_usage_error() -> None:
    result = subprocess.run(
        [str(STRUCTOCR), "balance", "--api-key-file", "-"],
        capture_output=True, text=True, timeout=30, check=False,
        preexec_fn=lambda: os.close(0),
    )  # fmt: skip
    assert result.returncode == 2
    assert "stdin is closed" in result.stderr


def test_set_key_from_an_endless_stdin_is_refused(isolated: Path) -> None:
    with open("/dev/zero", "rb") as zero:
        result = subprocess.run(
            [str(STRUCTOCR), "config", "set-key", "-p", "z"],
            stdin=zero, capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
    assert result.returncode == 2
    assert "more than 4 KiB" in result.stderr
    assert not (isolated / "config.toml").exists()


def test_running_out_of_descriptors_is_named_as_such_not_as_permissions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    from structocr_cli.api.errors import ConfigError
    from structocr_cli.settings import reads
    from structocr_cli.settings.config import read_config_bytes

    path = tmp_path / "config.toml"
    path.write_text("")

    def exhausted(*args: object) -> int:
        raise OSError(errno.EMFILE, "Too many open files")

    monkeypatch.setattr(reads.os, "open", exhausted)
    with pytest.raises(ConfigError) as caught:
        read_config_bytes(path)
    assert "Too many open files (no file descriptor left)" in caught.value.message
    assert "LimitNOFILE" in caught.value.hint
    assert "permission" not in caught.value.one_line()
