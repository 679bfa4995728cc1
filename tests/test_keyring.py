"""Keys in the OS keyring, with a test backend; and what happens when no keyring works."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("keyring")

import keyring
from keyring.backend import KeyringBackend

from structocr_cli.api.errors import KeyringError
from structocr_cli.mock.server import MockServer
from structocr_cli.settings import keystore
from structocr_cli.settings.config import load_config
from tests.conftest import LONG_KEY, run

BACKEND = "tests.keyring_backend.TestKeyring"


@pytest.fixture
def vault(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "keyring.json"
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", BACKEND)
    monkeypatch.setenv("STRUCTOCR_TEST_KEYRING", str(path))
    return path


def test_keyring_profile_round_trip(vault: Path, config_file: Path, server: MockServer) -> None:
    saved = run("config", "set-key", "-p", "kr", "--store", "keyring", "--base-url", server.url,
                stdin="demo-low")  # fmt: skip
    assert saved.returncode == 0, saved.stderr
    assert "OS keyring" in saved.stderr
    text = config_file.read_text()
    assert 'key_store = "keyring"' in text
    assert "demo-low" not in text
    assert json.loads(vault.read_text()) == {"structocr/kr": "demo-low"}

    result = run("balance", "-p", "kr", "--field", "account.credits_remaining")
    assert result.stdout == "12\n", result.stderr
    assert "(keyring)" in run("config", "list").stdout
    assert 'from profile "kr" (keyring)' in run("config", "show").stdout

    assert run("config", "remove", "kr").returncode == 0
    assert json.loads(vault.read_text()) == {}


def test_moving_a_key_back_to_the_file_clears_the_keyring(vault: Path, config_file: Path) -> None:
    run("config", "set-key", "-p", "kr", "--store", "keyring", stdin=LONG_KEY)
    assert run("config", "set-key", "-p", "kr", stdin=LONG_KEY).returncode == 0
    assert load_config(config_file).profiles["kr"].api_key == LONG_KEY
    assert load_config(config_file).profiles["kr"].key_store is None
    assert json.loads(vault.read_text()) == {}


def test_no_keyring_backend_says_what_to_use_instead(
    config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    result = run("config", "set-key", "-p", "kr", "--store", "keyring", stdin=LONG_KEY)
    assert result.returncode == 2
    assert "no OS keyring is available" in result.stderr
    assert "--store file" in result.stderr
    assert "STRUCTOCR_API_KEY" in result.stderr
    assert not config_file.exists()  # no silent fallback to the file


def test_keyring_profile_without_a_working_keyring_exits_41(
    config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_file.write_text('[profiles.kr]\nkey_store = "keyring"\n')
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    result = run("balance", "-p", "kr")
    assert result.returncode == 41
    assert "keeps its key in the OS keyring" in result.stderr


def test_without_the_keyring_package_the_store_is_refused(
    config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "keyring", None)  # import keyring now fails
    result = run("config", "set-key", "-p", "kr", "--store", "keyring", stdin=LONG_KEY)
    assert result.returncode == 2
    assert f"Install it with {sys.executable} -m pip install 'keyring>=24'" in result.stderr
    assert "structocr-cli[" not in result.stderr  # no registry name this project does not own
    import subprocess  # the advice works as printed: that interpreter has pip

    subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True, check=True)
    assert not config_file.exists()


class SlowKeyring(KeyringBackend):
    priority = 1  # type: ignore[assignment]

    def get_password(self, service: str, username: str) -> str | None:
        time.sleep(3)
        return "late"

    def set_password(self, service: str, username: str, password: str) -> None:
        raise NotImplementedError

    def delete_password(self, service: str, username: str) -> None:
        raise NotImplementedError


def test_keyring_reads_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keystore, "TIMEOUT", 0.2)
    previous = keyring.get_keyring()
    keyring.set_keyring(SlowKeyring())
    try:
        with pytest.raises(KeyringError, match=r"did not answer within 0\.2 s"):
            keystore.get("any")
    finally:
        keyring.set_keyring(previous)


def test_a_broken_file_leaves_the_keyring_untouched(vault: Path, config_file: Path) -> None:
    config_file.write_text("[profiles.x\n")
    result = run("config", "set-key", "-p", "kr", "--store", "keyring", stdin=LONG_KEY)
    assert result.returncode == 2
    assert not vault.exists()


def test_list_json_names_the_keyring_store(vault: Path, config_file: Path) -> None:
    run("config", "set-key", "-p", "kr", "--store", "keyring", stdin=LONG_KEY)
    (row,) = json.loads(run("config", "list", "--json").stdout)
    assert (row["key"], row["key_store"]) == ("(keyring)", "keyring")
