"""Shell completion: committed scripts, real shells, domain values, and a light TAB path."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from structocr_cli.completion import FILES, SHELLS
from structocr_cli.config import config_path, quick_config_path
from tests.conftest import STRUCTOCR, imported, run

COMPLETIONS = Path(__file__).parent.parent / "completions"
BIN = str(STRUCTOCR.parent)


@pytest.fixture
def two_profiles(config_file: Path) -> None:
    config_file.write_text('[profiles.prod]\napi_key = "k1"\n[profiles.ci]\napi_key = "k2"\n')


def shell_env() -> dict[str, str]:
    return {**os.environ, "PATH": BIN + os.pathsep + os.environ["PATH"]}


@pytest.mark.parametrize("shell", SHELLS)
def test_committed_script_is_what_the_code_generates(shell: str) -> None:
    generated = run("completion", shell)
    assert generated.returncode == 0
    assert (COMPLETIONS / FILES[shell]).read_text() == generated.stdout, "run: make completions"


def test_generation_is_reproducible() -> None:
    assert run("completion", "zsh").stdout == run("completion", "zsh").stdout


def test_zsh_script_completes_on_the_first_tab_when_autoloaded() -> None:
    assert "loadautofunc" in (COMPLETIONS / "_structocr").read_text()


def test_install_writes_the_users_location_and_no_dotfile(isolated: Path) -> None:
    home = isolated / "home"
    env = {"XDG_DATA_HOME": "", "XDG_CONFIG_HOME": ""}
    expected = {
        "bash": home / ".local/share/bash-completion/completions/structocr",
        "zsh": home / ".zfunc/_structocr",
        "fish": home / ".config/fish/completions/structocr.fish",
        "powershell": home / ".config/powershell/structocr.ps1",
    }
    for shell, path in expected.items():
        result = run("completion", "--install", shell, env=env)
        assert result.returncode == 0, result.stderr
        assert str(path) in result.stderr
        assert path.read_text() == (COMPLETIONS / FILES[shell]).read_text()
    dotfiles = {p.name for p in home.iterdir() if p.is_file()}
    assert dotfiles == set()  # no .bashrc, .zshrc or profile was touched


def test_unknown_shell_is_a_usage_error() -> None:
    assert run("completion", "tcsh").returncode == 2


@pytest.mark.parametrize(
    "env",
    [{}, {"XDG_CONFIG_HOME": "/srv/xdg"}, {"XDG_CONFIG_HOME": "relative/ignored"},
     {"STRUCTOCR_CONFIG": "/x/c.toml"}],
)  # fmt: skip
def test_quick_config_path_agrees_with_platformdirs(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STRUCTOCR_CONFIG")
    monkeypatch.delenv("XDG_CONFIG_HOME")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert quick_config_path(os.environ) == config_path(os.environ)


TAB_REQUESTS = {
    "bash": {"COMP_WORDS": "structocr balance --profile ", "COMP_CWORD": "3"},
    "zsh": {"_TYPER_COMPLETE_ARGS": "structocr balance --profile "},
    "fish": {"_TYPER_COMPLETE_ARGS": "structocr balance --profile ",
             "_TYPER_COMPLETE_FISH_ACTION": "get-args"},
    "powershell": {"_TYPER_COMPLETE_ARGS": "structocr balance --profile ",
                   "_TYPER_COMPLETE_WORD_TO_COMPLETE": ""},
}  # fmt: skip


@pytest.mark.parametrize("shell", SHELLS)
def test_tab_imports_nothing_heavy(
    shell: str, two_profiles: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {"_STRUCTOCR_COMPLETE": f"complete_{shell}", **TAB_REQUESTS[shell]}.items():
        monkeypatch.setenv(name, value)
    result = run()
    assert "prod" in result.stdout  # the request really completed profiles
    loaded = imported()
    assert "typer" in loaded
    assert not loaded & {"requests", "urllib3", "rich", "pydantic", "platformdirs", "tomlkit"}


def bash_complete(line: str) -> list[str]:
    words = line.split(" ")
    script = (
        f'source "{COMPLETIONS / "structocr.bash"}"\n'
        f"COMP_WORDS=({' '.join(repr(w) for w in words)}); COMP_CWORD={len(words) - 1}\n"
        '_structocr_completion structocr; printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    result = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", script],
        capture_output=True, text=True, env=shell_env(), timeout=30, check=True,
    )  # fmt: skip
    return result.stdout.split()


def test_bash_completes_commands_and_profiles(two_profiles: None) -> None:
    assert bash_complete("structocr bal") == ["balance"]
    assert bash_complete("structocr balance --profile ") == ["ci", "prod"]
    assert bash_complete("structocr config use ") == ["ci", "prod"]
    assert bash_complete("structocr config remove p") == ["prod"]


def test_bash_completes_formats_and_fields() -> None:
    assert bash_complete("structocr balance --output ") == [
        "table", "json", "tsv", "env", "openmetrics"
    ]  # fmt: skip
    assert bash_complete("structocr balance --field this_key.err") == [
        "this_key.error_rate", "this_key.error_rate_pct"
    ]  # fmt: skip


@pytest.mark.skipif(shutil.which("fish") is None, reason="fish is not installed")
def test_fish_completes_commands_and_profiles(two_profiles: None) -> None:
    def complete(line: str) -> list[str]:
        script = f'source "{COMPLETIONS / "structocr.fish"}"; complete -C "{line}"'
        result = subprocess.run(
            ["fish", "--no-config", "-c", script],
            capture_output=True, text=True, env=shell_env(), timeout=30, check=True,
        )  # fmt: skip
        return [line.split("\t")[0] for line in result.stdout.splitlines()]

    assert "balance" in complete("structocr bal")
    assert complete("structocr balance --profile ") == ["ci", "prod"]


ZSH_DRIVER = r"""
zmodload zsh/zpty
zpty z "zsh -f -i"
zpty -w z "PS1='%% '; fpath=($1 \$fpath); autoload -Uz compinit; compinit -u -D"
zpty -w -n z "$2"$'\t'
sleep 3
zpty -w -n z $'\x01echo LINE:\x05\n'
sleep 1
out=""
while zpty -r -t z chunk; do out+=$chunk; done
print -r -- "$out" | tr -d '\r'
zpty -d z
"""


def zsh_tab(line: str, tmp_path: Path) -> str:
    fpath = tmp_path / "zfunc"
    fpath.mkdir(exist_ok=True)
    shutil.copy(COMPLETIONS / "_structocr", fpath / "_structocr")
    result = subprocess.run(
        ["zsh", "-f", "-c", ZSH_DRIVER, "zsh", str(fpath), line],
        capture_output=True, text=True, env=shell_env(), timeout=60, check=False,
    )  # fmt: skip
    return result.stdout


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed")
def test_zsh_completes_on_the_first_tab_from_fpath(two_profiles: None, tmp_path: Path) -> None:
    started = time.monotonic()
    assert "LINE:structocr balance" in zsh_tab("structocr bal", tmp_path)
    assert "LINE:structocr balance --profile prod" in zsh_tab(
        "structocr balance --profile p", tmp_path
    )
    listing = zsh_tab("structocr balance --profile ", tmp_path)
    assert re.search(r"(^|\x1b\[J)ci +prod\b", listing, re.MULTILINE), listing
    assert time.monotonic() - started < 60  # a hang guard, not a speed target
