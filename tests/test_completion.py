"""Shell completion: committed scripts, real shells, domain values, and a light TAB path."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from structocr_cli.cli.completion import format_candidate
from structocr_cli.settings.config import config_path, quick_config_path
from tests.conftest import STRUCTOCR, imported, run

COMPLETIONS = Path(__file__).parent.parent / "completions"
BIN = str(STRUCTOCR.parent)
FILES = {"bash": "structocr.bash", "zsh": "_structocr", "fish": "structocr.fish",
         "powershell": "structocr.ps1"}  # fmt: skip
SHELLS = tuple(FILES)


@pytest.fixture
def two_profiles(config_file: Path) -> None:
    config_file.write_text('[profiles.prod]\napi_key = "k1"\n[profiles.ci]\napi_key = "k2"\n')


def shell_env(bin_dir: str = BIN) -> dict[str, str]:
    return {**os.environ, "PATH": bin_dir + os.pathsep + os.environ["PATH"]}


@pytest.mark.parametrize("shell", SHELLS)
def test_committed_script_is_what_the_code_generates(shell: str) -> None:
    generated = run("completion", shell)
    assert generated.returncode == 0
    assert (COMPLETIONS / FILES[shell]).read_text() == generated.stdout, "run: make completions"


def test_generation_is_reproducible() -> None:
    assert run("completion", "zsh").stdout == run("completion", "zsh").stdout


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


def bash_complete(line: str, bin_dir: str = BIN, cwd: Path | None = None) -> list[str]:
    words = line.split(" ")
    script = (
        f'source "{COMPLETIONS / "structocr.bash"}"\n'
        f"COMP_WORDS=({' '.join(repr(w) for w in words)}); COMP_CWORD={len(words) - 1}\n"
        "_structocr_completion structocr\n"
        'for w in "${COMPREPLY[@]}"; do printf "%s\\n" "$w"; done\n'
    )
    result = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", script],
        capture_output=True, text=True, env=shell_env(bin_dir), timeout=30, check=True, cwd=cwd,
    )  # fmt: skip
    return result.stdout.splitlines()


def test_bash_completes_commands_and_profiles(two_profiles: None) -> None:
    assert bash_complete("structocr bal") == ["balance"]
    assert bash_complete("structocr balance --profile ") == ["ci", "prod"]
    assert bash_complete("structocr config use ") == ["ci", "prod"]
    assert bash_complete("structocr config remove p") == ["prod"]
    assert bash_complete("structocr history -p ") == ["ci", "prod"]
    assert bash_complete("structocr history --all") == ["--all-profiles"]


def test_balance_tab_offers_its_options_not_file_names(tmp_path: Path) -> None:
    (tmp_path / "somefile").touch()
    words = bash_complete("structocr balance ", cwd=tmp_path)
    assert "--api-key-file" in words
    assert "--min-remaining" in words
    assert "somefile" not in words
    assert bash_complete("structocr balance --profile ") == []  # a value is wanted: no options


def test_bash_completes_formats_and_fields() -> None:
    assert bash_complete("structocr balance --output ") == [
        "table", "json", "report-json", "tsv", "env", "openmetrics"
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


# Keys go to an interactive zsh in a pty in order: TAB (completion runs to its end), then
# Ctrl-A "echo LINE:" Ctrl-E Enter, which prints the line as completion left it, then a
# marker command. Reading up to the marker's output replaces fixed sleeps.
ZSH_DRIVER = r"""
zmodload zsh/zpty
zpty z "zsh -f -i"
zpty -w z "PS1='%% '; fpath=($1 \$fpath); autoload -Uz compinit; compinit -u -D; print RE''ADY"
zpty -r z out '*READY*'
zpty -w -n z "$2"$'\t'
zpty -w -n z $'\x01echo LINE:\x05\n'
zpty -w z "print EN''D"
zpty -r z out '*END*'
print -r -- "$out" | tr -d '\r'
zpty -d z
"""


def zsh_tab(line: str, tmp_path: Path, bin_dir: str = BIN) -> str:
    fpath = tmp_path / "zfunc"
    fpath.mkdir(exist_ok=True)
    shutil.copy(COMPLETIONS / "_structocr", fpath / "_structocr")
    result = subprocess.run(
        ["zsh", "-f", "-c", ZSH_DRIVER, "zsh", str(fpath), line],
        capture_output=True, text=True, env=shell_env(bin_dir), timeout=60, check=False,
        cwd=tmp_path,
    )  # fmt: skip
    return result.stdout


@pytest.mark.timing
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


# Names a hand-edited or shared config file might hold; each is code in some shell if a
# completion script evaluates or inserts it unquoted.
HOSTILE = [
    'x" ); touch PWNED1; #',
    "a\\",
    "b ); touch PWNED2; #",
    "$(touch PWNED3)",
    "`touch PWNED4`",
    "*",
    "it's",
    "semi;touch PWNED5",
    "c:d",
]


@pytest.fixture
def hostile_config(config_file: Path) -> Path:
    lines = []
    for number, name in enumerate(HOSTILE):
        quoted = name.replace("\\", "\\\\").replace('"', '\\"')
        lines.append(f'[profiles."{quoted}"]\napi_key = "k{number}"\n')
    config_file.write_text("".join(lines) + '[profiles.ok]\napi_key = "k"\n')
    return config_file


def test_config_with_an_invalid_profile_name_is_refused_naming_the_line(
    hostile_config: Path,
) -> None:
    result = run("balance")
    assert result.returncode == 2
    assert f"{hostile_config}, line 1: profile name" in result.stderr
    assert "letters, digits" in result.stderr
    assert result.stdout == ""


def test_invalid_profile_names_are_never_offered(hostile_config: Path) -> None:
    assert bash_complete("structocr balance --profile ") == []


@pytest.fixture
def hostile_bin(tmp_path: Path) -> str:
    """A structocr that offers the hostile names as candidates, as if the file's checks
    had let them through: the scripts alone must keep them inert."""
    bin_dir = tmp_path / "hostile-bin"
    bin_dir.mkdir()
    program = bin_dir / "structocr"
    program.write_text(
        f"#!{STRUCTOCR.parent / 'python'}\n"
        "import sys\nimport structocr_cli.settings.config as config\n"
        f"config.profile_names = lambda env: {HOSTILE!r}\n"
        "from structocr_cli.cli.app import main\nsys.exit(main())\n"
    )
    program.chmod(0o755)
    return str(bin_dir)


def planted(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.rglob("PWNED*"))


def test_bash_inserts_hostile_candidates_as_literal_text(hostile_bin: str, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "somefile").touch()  # a glob of "*" would bring it in
    words = bash_complete("structocr balance --profile ", hostile_bin, cwd=work)
    assert len(words) == len(HOSTILE)
    # What the user gets on pressing Enter: each inserted word evaluates to the name itself.
    script = 'for w in "$@"; do eval "printf \'%s\\n\' $w"; done'
    evaluated = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", script, "bash", *words],
        capture_output=True, text=True, timeout=30, check=True, cwd=work,
    )  # fmt: skip
    assert evaluated.stdout.splitlines() == HOSTILE
    assert planted(tmp_path) == []


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed")
@pytest.mark.parametrize("prefix", ["", "x", "b", "a", "i", "s"])
def test_zsh_tab_never_runs_a_candidate(prefix: str, hostile_bin: str, tmp_path: Path) -> None:
    screen = zsh_tab(f"structocr balance -p {prefix}", tmp_path, hostile_bin)
    assert planted(tmp_path) == []
    if prefix:  # one candidate: inserted, then the whole line is run by `echo LINE:`
        (name,) = [name for name in HOSTILE if name.startswith(prefix)]
        assert f"LINE:structocr balance -p {name}\n" in screen, screen


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed")
def test_zsh_tab_on_a_hostile_config_runs_nothing(hostile_config: Path, tmp_path: Path) -> None:
    zsh_tab("structocr balance -p ", tmp_path)
    zsh_tab("structocr config use b", tmp_path)
    assert planted(tmp_path) == []


@pytest.mark.skipif(shutil.which("fish") is None, reason="fish is not installed")
def test_fish_offers_hostile_candidates_as_text(hostile_bin: str, tmp_path: Path) -> None:
    script = f'source "{COMPLETIONS / "structocr.fish"}"; complete -C "structocr balance -p "'
    result = subprocess.run(
        ["fish", "--no-config", "-c", script],
        capture_output=True, text=True, env=shell_env(hostile_bin), timeout=30, check=True,
        cwd=tmp_path,
    )  # fmt: skip
    assert sorted(line.split("\t")[0] for line in result.stdout.splitlines()) == sorted(HOSTILE)
    assert planted(tmp_path) == []


@pytest.mark.parametrize("shell", SHELLS)
def test_candidates_with_control_characters_are_dropped(shell: str) -> None:
    for value in ("a\nb", "esc\x1b[31m", "tab\there", "nul\x00", "\x9bc1"):
        assert format_candidate(shell, value, "help") is None
    assert format_candidate(shell, "prod", "line one\nline two") is not None


def test_powershell_candidates_are_quoted_literals() -> None:
    assert format_candidate("powershell", "prod", None) == "prod::: "
    assert format_candidate("powershell", "$(x)", "h") == "'$(x)':::h"
    assert format_candidate("powershell", "it's", "h") == "'it''s':::h"


def test_typer_private_api() -> None:
    """The parts of typer's private API we rely on (completion.py, cli._exit_code)."""
    from structocr_cli.cli.completion import _typer_shell_classes

    for shell, cls in _typer_shell_classes().items():
        assert callable(cls.get_completion_args), shell
        assert callable(cls.get_completions), shell
    from typer._click.exceptions import ClickException
    from typer._click.shell_completion import add_completion_class

    assert callable(add_completion_class)
    assert callable(ClickException.show)  # cli._exit_code shows usage errors with it
    from typer._click import _textwrap, formatting

    assert issubclass(_textwrap.TextWrapper, __import__("textwrap").TextWrapper)
    assert callable(formatting.HelpFormatter.write_dl)  # cli._wrap_at_spaces wraps both
    from typer.core import TyperArgument

    assert callable(TyperArgument.make_metavar)  # help._plain_required_metavars wraps it


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed")
def test_zsh_keeps_apostrophes_in_descriptions(tmp_path: Path) -> None:
    # typer's script evaluated the candidates, and "the server's document" lost its quote.
    screen = zsh_tab("structocr balance --", tmp_path)
    assert "(the server's doc" in screen, screen  # zsh cuts descriptions at the screen's edge


# Where a name, a number or a format is wanted, no shell may offer the files of the current
# directory; after a path option it must.
NAME_LINES = ["structocr balance --profile ", "structocr balance --timeout ",
            "structocr config use ", "structocr exporter --listen "]  # fmt: skip
PATH_LINES = ["structocr balance --keys-file ", "structocr balance --api-key-file ",
         "structocr balance --ca-bundle ", "structocr mock --fixtures "]  # fmt: skip


@pytest.fixture
def a_directory(tmp_path: Path) -> Path:
    (tmp_path / "somefile.txt").touch()
    return tmp_path


def test_bash_offers_files_only_for_paths(a_directory: Path) -> None:
    for line in NAME_LINES:
        assert "somefile.txt" not in bash_complete(line, cwd=a_directory), line
    for line in PATH_LINES:
        assert "somefile.txt" in bash_complete(line, cwd=a_directory), line
    spec = subprocess.run(["bash", "--norc", "-c", f'source "{COMPLETIONS / "structocr.bash"}";'
                           " complete -p structocr"], capture_output=True, text=True,
                          check=True).stdout  # fmt: skip
    assert "-o default" not in spec  # readline would fall back to file names


@pytest.mark.skipif(shutil.which("fish") is None, reason="fish is not installed")
def test_fish_offers_files_only_for_paths(a_directory: Path) -> None:
    def complete(line: str) -> list[str]:
        script = f'source "{COMPLETIONS / "structocr.fish"}"; complete -C "{line}"'
        result = subprocess.run(["fish", "--no-config", "-c", script], capture_output=True,
                                text=True, env=shell_env(), timeout=30, check=True,
                                cwd=a_directory)  # fmt: skip
        return [entry.split("\t")[0] for entry in result.stdout.splitlines()]

    for line in NAME_LINES:
        assert "somefile.txt" not in complete(line), line
    for line in PATH_LINES:
        assert "somefile.txt" in complete(line), line


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed")
def test_zsh_offers_files_only_for_paths(a_directory: Path) -> None:
    assert "somefile.txt" not in zsh_tab("structocr balance --profile ", a_directory)
    assert "somefile.txt" in zsh_tab("structocr balance --keys-file ", a_directory)
