"""What every run shares: writing to a stdout whose reader may leave, messages and warnings
on stderr, and the --ca-bundle path."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from structocr_cli.history.recorder import Recorder
    from structocr_cli.settings.config import Config


def ca_path(ca_bundle: str | None) -> str | None:
    if ca_bundle is None:
        return None
    path = Path(ca_bundle).expanduser()
    if not path.is_file():
        from structocr_cli.api.errors import UsageError
        from structocr_cli.api.keys import sanitize

        raise UsageError(
            f"--ca-bundle {sanitize(ca_bundle, 120)}: no such file",
            "Pass a PEM file of CA certificates",
        )
    return str(path)


def write_out(write: Callable[[], None], out: IO[str]) -> None:
    """Write and flush; a reader that went away (``| head -1``) is not an error here: the
    gates still decide the exit code."""
    try:
        write()
        out.flush()
    except BrokenPipeError:
        silence(out)


def silence(out: IO[str]) -> None:
    """Point a closed pipe's descriptor at /dev/null, so that the flush at exit finds
    somewhere to write instead of failing again."""
    try:
        fileno = out.fileno()
    except (OSError, ValueError):  # not a real file (tests capture in memory)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fileno)
    os.close(devnull)


def say(message: str) -> None:
    print(f"structocr: {message}", file=sys.stderr)


def tell(kind: str, message: str, as_json: bool = False) -> None:
    """A warning or a note on stderr: a line, or under the JSON formats a JSON document
    (``{"warning": ...}``), so that every line a --json run writes parses."""
    if not as_json:
        say(f"{kind}: {message}")
        return
    import json

    from structocr_cli.api.keys import redact

    print(json.dumps({kind: redact(message)}, ensure_ascii=True), file=sys.stderr)


def config_warnings(config: Config) -> list[str]:
    """What the user should know about the config file: others can read it, or part of it
    is ignored."""
    loose = [config.permission_advice()] if config.loose_permissions else []
    return loose + list(config.warnings)


def warn_about(config: Config, as_json: bool = False) -> None:
    for warning in config_warnings(config):
        tell("warning", warning, as_json)


def recorder(off: bool, as_json: bool = False, warn: Callable[[str], None] | None = None
             ) -> Recorder | None:  # fmt: skip
    """Where this run records its balances (None: --no-history or STRUCTOCR_HISTORY=off);
    what goes wrong there is a warning (on stderr, or given to ``warn``), never a failure."""
    if off:
        return None
    from structocr_cli.api.errors import UsageError
    from structocr_cli.settings.config import DEFAULT_KEEP_DAYS, history_keep_days, history_path

    path = history_path(os.environ)
    if path is None:
        return None
    from structocr_cli.history.recorder import Recorder

    warn = warn or (lambda message: tell("warning", message, as_json))
    try:
        keep = history_keep_days(os.environ)
    except UsageError as exc:  # a retention typo must not fail a balance check
        warn(f"{exc.message}; keeping {DEFAULT_KEEP_DAYS} days")
        keep = DEFAULT_KEEP_DAYS
    return Recorder(path, warn, keep)
