"""Shell completion: the scripts, and how TAB-time candidates reach each shell as plain text.

A candidate (a profile name read from a hand-edited file, say) must never become code in the
user's shell, whatever it contains. So no script here runs ``eval`` on what the program
prints, candidates with control characters are dropped, and each shell gets them in the form
it inserts literally: bash backslash-escaped, zsh through ``compadd`` (which quotes), fish as
is (fish escapes on insertion), PowerShell single-quoted.

Every TAB runs ``structocr`` again (fish runs it twice), so this path imports nothing heavy.
typer's parsing of the shell's request is reused; that is typer's private API, used only in
``_typer_shell_classes`` (a test fails there first when a typer upgrade moves it).
"""

import os
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from structocr_cli.cli.options import Call

PROG = "structocr"
COMPLETE_VAR = "_STRUCTOCR_COMPLETE"

# Characters every shell takes literally in a word (no regexes: this runs on every TAB).
_PLAIN = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_@%+=,./-")

# The options whose value is a path: the only places where the shell offers file names.
# Anywhere else (a profile, a format, a number) an empty answer stays empty.
PATH_OPTIONS = ("--api-key-file", "--keys-file", "--ca-bundle", "--fixtures")
_PATHS = "|".join(PATH_OPTIONS)

# One candidate per line into an array: no word splitting, no globbing, no empty candidate.
_BASH = f"""\
_structocr_completion() {{
    local line
    COMPREPLY=()
    case ${{COMP_WORDS[COMP_CWORD-1]}} in
        {_PATHS})
            compopt -o filenames 2>/dev/null
            mapfile -t COMPREPLY < <(compgen -f -- "${{COMP_WORDS[COMP_CWORD]}}")
            return 0 ;;
    esac
    while IFS= read -r line; do
        [[ -n $line ]] && COMPREPLY+=("$line")
    done < <(env COMP_WORDS="${{COMP_WORDS[*]}}" COMP_CWORD="$COMP_CWORD" \\
        _STRUCTOCR_COMPLETE=complete_bash "$1")
    return 0
}}

complete -F _structocr_completion structocr
"""

# Candidates arrive as "value", "help" line pairs and go to compadd/_describe, which quote
# what they insert: nothing the program prints is evaluated. The last line completes on the
# first TAB when zsh autoloads this file from $fpath (a bare compdef would only register).
_ZSH = (
    """\
#compdef structocr

_structocr_completion() {
  local -a response described plain
  local value help
  response=("${(@f)$(env _TYPER_COMPLETE_ARGS="${words[1,$CURRENT]}" \\
    _STRUCTOCR_COMPLETE=complete_zsh structocr)}")
  for value help in "${response[@]}"; do
    [[ -z $value ]] && continue
    if [[ $help == _ ]]; then
      plain+=("$value")
    else
      described+=("${value//:/\\\\:}:$help")
    fi
  done
  (( ${#described} )) && _describe -V unsorted described -U
  (( ${#plain} )) && compadd -U -V unsorted -a plain
  if (( ${#described} + ${#plain} == 0 )); then
    case ${words[CURRENT-1]} in
      """
    + _PATHS
    + """) _files ;;
    esac
  fi
}

if [[ $zsh_eval_context[-1] == loadautofunc ]]; then _structocr_completion "$@"; \
else compdef _structocr_completion structocr; fi
"""
)

# fish offers file names wherever no rule says otherwise: none for structocr, except after
# the path options.
_FISH = (
    "complete --command structocr --no-files\n"
    'complete --command structocr --no-files --arguments "(env _STRUCTOCR_COMPLETE=complete_fish'
    ' _TYPER_COMPLETE_FISH_ACTION=get-args _TYPER_COMPLETE_ARGS=(commandline -cp) structocr)"'
    ' --condition "env _STRUCTOCR_COMPLETE=complete_fish _TYPER_COMPLETE_FISH_ACTION=is-args'
    ' _TYPER_COMPLETE_ARGS=(commandline -cp) structocr"\n'
    + "".join(
        f"complete --command structocr --long-option {option[2:]} --require-parameter"
        " --force-files\n"
        for option in PATH_OPTIONS
    )
)

_POWERSHELL = """\
Import-Module PSReadLine
Set-PSReadLineKeyHandler -Chord Tab -Function MenuComplete
$scriptblock = {
    param($wordToComplete, $commandAst, $cursorPosition)
    $Env:_STRUCTOCR_COMPLETE = "complete_powershell"
    $Env:_TYPER_COMPLETE_ARGS = $commandAst.ToString()
    $Env:_TYPER_COMPLETE_WORD_TO_COMPLETE = $wordToComplete
    structocr | ForEach-Object {
        $commandArray = $_ -Split ":::"
        $command = $commandArray[0]
        $helpString = $commandArray[1]
        [System.Management.Automation.CompletionResult]::new(
            $command, $command, 'ParameterValue', $helpString)
    }
    $Env:_STRUCTOCR_COMPLETE = ""
    $Env:_TYPER_COMPLETE_ARGS = ""
    $Env:_TYPER_COMPLETE_WORD_TO_COMPLETE = ""
}
Register-ArgumentCompleter -Native -CommandName structocr -ScriptBlock $scriptblock
"""

SCRIPTS = {"bash": _BASH, "zsh": _ZSH, "fish": _FISH, "powershell": _POWERSHELL}


def script(shell: str) -> str:
    """The completion script for ``shell``, the same bytes on every run."""
    return SCRIPTS[shell]


def usable(value: str) -> bool:
    """A candidate that can travel as one line and be shown without side effects: no control
    or other non-printable character (``str.isprintable`` refuses C0, DEL and C1)."""
    return bool(value) and value.isprintable() and ":::" not in value


def one_line(help_text: str | None) -> str:
    text = "".join(char if char.isprintable() else " " for char in help_text or "")
    return " ".join(text.split())


def bash_word(value: str) -> str:
    """``value`` backslash-escaped: bash inserts COMPREPLY entries as typed text."""
    return "".join(char if char in _PLAIN or char == ":" else "\\" + char for char in value)


def powershell_word(value: str) -> str:
    """``value`` as a PowerShell literal: PowerShell inserts completions as typed text."""
    if all(char in _PLAIN for char in value):
        return value
    return "'" + value.replace("'", "''").replace("\u2019", "\u2019\u2019") + "'"


def format_candidate(shell: str, value: str, help_text: str | None) -> str | None:
    """One candidate in the form ``shell``'s script expects; None drops it."""
    if not usable(value):
        return None
    shown = one_line(help_text)
    if shell == "bash":
        return bash_word(value)
    if shell == "zsh":
        return f"{value}\n{shown or '_'}"
    if shell == "fish":
        return f"{value}\t{shown}" if shown else value
    return f"{powershell_word(value)}:::{shown or ' '}"


def enable() -> None:
    """Register this module's shell classes for the ``complete_<shell>`` instructions."""
    from typer._click.shell_completion import add_completion_class

    for shell, cls in _typer_shell_classes().items():
        add_completion_class(cls, shell)


def _typer_shell_classes() -> dict[str, Any]:
    """typer's request parsing for each shell, with our own output format.

    typer's private API: a typer upgrade that moves it makes ``test_typer_private_api``
    fail, and the typer pin in pyproject.toml says so.
    """
    from typer import _completion_classes as typer_shells

    def formatted(base: Any, shell: str) -> Any:
        class Shell(base):  # type: ignore[misc]
            def complete(self) -> str:
                args, incomplete = self.get_completion_args()
                found = self.get_completions(args, incomplete)
                if not found and not incomplete and not (args and args[-1].startswith("-")):
                    # Nothing to complete here (balance takes no arguments): its options,
                    # rather than the shell's fallback of file names.
                    found = self.get_completions(args, "-")
                lines = (format_candidate(shell, item.value, item.help) for item in found)
                text = "\n".join(line for line in lines if line is not None)
                if shell == "fish" and os.environ.get("_TYPER_COMPLETE_FISH_ACTION") == "is-args":
                    raise SystemExit(0 if text else 1)
                return text

        return Shell

    powershell = formatted(typer_shells.PowerShellComplete, "powershell")
    return {
        "bash": formatted(typer_shells.BashComplete, "bash"),
        "zsh": formatted(typer_shells.ZshComplete, "zsh"),
        "fish": formatted(typer_shells.FishComplete, "fish"),
        "powershell": powershell,
        "pwsh": powershell,
    }


def install_path(shell: str, env: dict[str, str] | os._Environ[str]) -> Path:
    """Where each shell looks for user completions (or, for PowerShell, a file to source)."""
    home = Path.home()
    data = Path(env.get("XDG_DATA_HOME") or home / ".local" / "share")
    config = Path(env.get("XDG_CONFIG_HOME") or home / ".config")
    return {
        "bash": data / "bash-completion" / "completions" / PROG,
        "zsh": home / ".zfunc" / "_structocr",
        "fish": config / "fish" / "completions" / "structocr.fish",
        "powershell": config / "powershell" / "structocr.ps1",
    }[shell]


def next_step(shell: str, path: Path) -> str:
    """What the user still has to do, if anything; no dotfile is edited for them."""
    if shell == "bash":
        return "new bash shells load it (needs the bash-completion package)"
    if shell == "zsh":
        return (
            f"make sure ~/.zshrc has fpath=({path.parent} $fpath) before compinit, "
            "then start a new shell"
        )
    if shell == "fish":
        return "new fish shells load it"
    return f'add this line to your PowerShell profile ($PROFILE): . "{path}"'


def install(shell: str, env: dict[str, str] | os._Environ[str]) -> tuple[Path, str]:
    path = install_path(shell, env)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(script(shell), encoding="utf-8")
    return path, next_step(shell, path)


class Shell(str, Enum):
    bash = "bash"
    zsh = "zsh"
    fish = "fish"
    powershell = "powershell"


def completion(
    shell: Annotated[
        Shell,
        typer.Argument(
            metavar="SHELL", case_sensitive=False, help="bash, zsh, fish or powershell."
        ),
    ],
    to_file: Annotated[
        bool,
        typer.Option("--install", help="Write it where the shell looks for completions."),
    ] = False,
) -> Call:
    """Print the shell completion script (or install it with --install).

    \b
      structocr completion zsh \\
        > ~/.zfunc/_structocr
      structocr completion --install fish
    """

    def run(started: float) -> int:
        from structocr_cli.runs.common import say

        if not to_file:
            sys.stdout.write(script(shell.value))
            return 0
        path, step = install(shell.value, os.environ)
        say(f"wrote {path}; {step}")
        return 0

    return Call(run)


def register(app: typer.Typer) -> None:
    app.command(short_help="Print or install the shell completion script.")(completion)
