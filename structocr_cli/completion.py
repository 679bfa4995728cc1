"""Shell completion scripts and TAB-time completion, on top of typer's.

Every TAB runs ``structocr`` again (fish runs it twice), so this path imports nothing heavy:
typer renders zsh/fish/PowerShell help texts through rich, which we skip (help is plain).
"""

from __future__ import annotations

import os
from pathlib import Path

PROG = "structocr"
COMPLETE_VAR = "_STRUCTOCR_COMPLETE"
SHELLS = ("bash", "zsh", "fish", "powershell")
FILES = {"bash": "structocr.bash", "zsh": "_structocr", "fish": "structocr.fish",
         "powershell": "structocr.ps1"}  # fmt: skip

# typer's zsh script only runs compdef, so autoloaded from $fpath it completes nothing on
# the first TAB; run the completion function when zsh autoloads the file.
_ZSH_COMPDEF = "compdef _structocr_completion structocr"
_ZSH_AUTOLOAD = (
    'if [[ $zsh_eval_context[-1] == loadautofunc ]]; then _structocr_completion "$@"; '
    "else compdef _structocr_completion structocr; fi"
)


def enable() -> None:
    """Register typer's shell classes (skipped by add_completion=False), without rich."""
    from typer import _completion_classes
    from typer._completion_classes import completion_init

    # Help texts are plain (rich_markup_mode=None); rendering them through rich would only
    # cost its import on every TAB.
    _completion_classes._sanitize_help_text = lambda text: text
    completion_init()


def script(shell: str) -> str:
    """The completion script for ``shell``, the same bytes on every run."""
    from typer._completion_shared import get_completion_script

    text = get_completion_script(prog_name=PROG, complete_var=COMPLETE_VAR, shell=shell)
    if shell == "zsh":
        text = text.replace(_ZSH_COMPDEF, _ZSH_AUTOLOAD)
    return text + "\n"


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
