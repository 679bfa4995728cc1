"""The command line: options in, one exit code out.

Each command (one module per command group) turns its options into a ``Call``: what to run
once parsing is done. ``main`` runs it and is the one place where outcomes and errors
become exit codes and error lines (plain, or a JSON document under ``--json``), so
in-process tests see what users see. typer is imported here and in the command modules;
requests, rich and platformdirs only inside the calls that need them, so ``--help`` and TAB
start fast.
"""

import gc
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import IO, Annotated, Any

import typer
from typer.core import TyperGroup

from structocr_cli import __version__
from structocr_cli.cli.help import exit_code_list, fit_to_terminal
from structocr_cli.cli.options import Call

ENV_DEBUG = "STRUCTOCR_DEBUG"

COMMANDS = ("balance", "history", "exporter", "mock", "completion", "help", "config")
"""The commands, in the order help lists them; each is the module of cli/ that registers it
(``help`` is below), imported only when the command is wanted."""


class _LazyGroup(TyperGroup):
    """The root command, loading a command's module only when that command is wanted: a run
    of balance, or a TAB inside it, pays nothing for the exporter's or config's options."""

    help_width = 78

    def list_commands(self, ctx: Any) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            single = typer.Typer(add_completion=False, rich_markup_mode=None,
                                 pretty_exceptions_enable=False)  # fmt: skip
            if cmd_name == "help":
                single.command("help")(help_command)
            else:  # __import__, not importlib: -X importtime (the import budget) sees it
                name = f"structocr_cli.cli.{cmd_name}"
                __import__(name)
                sys.modules[name].register(single)
            command = typer.main.get_command(single)
            if cmd_name in ("config", "history"):  # a group of its own, under a root of its own
                command = command.commands[cmd_name]  # type: ignore[attr-defined]
            if cmd_name == "balance":
                command.epilog = exit_code_list(self.help_width)
            self.commands[cmd_name] = command
        return self.commands.get(cmd_name)


app = typer.Typer(
    cls=_LazyGroup,
    name="structocr",
    help="Check StructOCR API credits and usage from a terminal, a script or a CI job.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _debug() -> bool:
    return os.environ.get(ENV_DEBUG, "") not in ("", "0")


@contextmanager
def _debug_log(err: IO[str]) -> Iterator[None]:
    """With STRUCTOCR_DEBUG set, the client's log to stderr, keys redacted."""
    if not _debug():
        yield
        return
    import logging

    from structocr_cli.api.keys import redact

    class RedactingFormatter(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            return redact(super().format(record))

    handler = logging.StreamHandler(err)
    handler.setFormatter(RedactingFormatter("structocr: debug: %(message)s"))
    logger = logging.getLogger("structocr")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        logger.removeHandler(handler)


def _version(value: bool) -> None:
    if value:
        print(f"structocr-cli {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            "-V",
            help="Show the version and exit.",
            callback=_version,
            is_eager=True,
        ),
    ] = False,
    debug: Annotated[
        bool,
        typer.Option(
            "--debug", help=f"Log each request to stderr (keys masked); as {ENV_DEBUG}=1."
        ),
    ] = False,
    no_color: Annotated[
        bool, typer.Option("--no-color", help="No colour in the output; as NO_COLOR=1.")
    ] = False,
) -> None:
    """Check StructOCR API credits and usage from a terminal, a script or a CI job."""
    # Read where they apply (the debug log, rich) from the environment, like their variables.
    if debug:
        os.environ[ENV_DEBUG] = "1"
    if no_color:
        os.environ["NO_COLOR"] = "1"


def help_command(
    command: Annotated[
        list[str] | None,
        typer.Argument(metavar="[COMMAND]...", help="The command, e.g. balance or config use."),
    ] = None,
) -> Call:
    """Show the help of structocr or of a command."""

    def run(started: float) -> int:
        return int(app(args=[*(command or []), "--help"], prog_name="structocr",
                       standalone_mode=False) or 0)  # fmt: skip

    return Call(run)


_GLOBAL_FLAGS = ("--debug", "--no-color")
"""Root options that are also taken after the command (``structocr balance --debug``)."""


def _arguments(args: list[str]) -> list[str]:
    """The arguments as the app parses them: help for a bare ``structocr`` or group, and
    the global flags moved before the command wherever they were typed (before ``--``)."""
    if not args or args == ["config"]:
        return [*args, "--help"]
    end = args.index("--") if "--" in args else len(args)
    moved = [arg for arg in args[:end] if arg in _GLOBAL_FLAGS]
    rest = [arg for arg in args[:end] if arg not in _GLOBAL_FLAGS]
    return [*moved, *rest, *args[end:]]


def main(argv: Sequence[str] | None = None, started: float | None = None) -> int:
    """Console-script entry point: parse, run, and turn whatever happens into an exit code.

    The one place where errors become exit codes and messages (the README's table).
    ``started`` is when the process began, for deadlines (default: now).
    """
    import time

    started = time.monotonic() if started is None else started
    if "_STRUCTOCR_COMPLETE" in os.environ:  # completion.COMPLETE_VAR, without the import
        from structocr_cli.cli.completion import enable

        enable()
    json_errors = False
    try:
        # Known before parsing, so that a usage error under --json is JSON too.
        args = _arguments(sys.argv[1:] if argv is None else list(argv))
        json_errors = _asks_for_json(args)
        if "_STRUCTOCR_COMPLETE" not in os.environ:  # any run may show help; TAB never does
            _LazyGroup.help_width = fit_to_terminal(app)
        call = app(args=args, prog_name="structocr", standalone_mode=False)
        if not isinstance(call, Call):  # --help, --version: typer has answered already
            code = int(call or 0)
            if code == 130:  # typer turns a Ctrl-C during parsing into a silent exit 130
                _fail("interrupted", code, "interrupted", json_errors)
            return code
        json_errors = call.json_errors
        if not call.ends:
            gc.enable()
        with _debug_log(sys.stderr):
            return call.run(started)
    except BaseException as exc:  # the funnel every exception reaches
        return _exit_code(exc, json_errors)


def _asks_for_json(args: list[str]) -> bool:
    if "--" in args:
        args = args[: args.index("--")]
    from itertools import pairwise

    pairs = pairwise(args)
    return (
        "--json" in args
        or "--output=json" in args
        or "-ojson" in args
        or any(flag in ("-o", "--output") and value == "json" for flag, value in pairs)
    )


def _exit_code(exc: BaseException, json_errors: bool) -> int:
    """Report ``exc`` on stderr, once, and return the exit code it stands for."""
    if isinstance(exc, SystemExit):  # completion ends so; checked first, as TAB is hot
        return exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
    # typer's own click; its usage errors know how to show themselves (test_typer_private_api).
    from typer._click.exceptions import ClickException

    from structocr_cli.api.errors import ExitCode, StructocrError

    if isinstance(exc, StructocrError):
        from structocr_cli.report.output import error_document, error_line

        print(error_document(exc) if json_errors else error_line(exc), file=sys.stderr)
        return exc.exit_code
    if isinstance(exc, ClickException):  # a usage error found while parsing
        _show_usage_error(exc, json_errors)
        return exc.exit_code
    if isinstance(exc, BrokenPipeError):  # the reader went away (`| head -1`)
        from structocr_cli.runs.common import silence

        silence(sys.stdout)
        return ExitCode.OK
    if isinstance(exc, typer.Abort):
        print("structocr: error: aborted", file=sys.stderr)
        return 1
    from structocr_cli.cli.interrupts import interrupted

    if interrupted(exc):  # a Ctrl-C, an error CPython made of one, or one that followed it
        _fail("interrupted", ExitCode.INTERRUPTED, "interrupted", json_errors)
        return ExitCode.INTERRUPTED
    _report_bug(exc, json_errors)
    return ExitCode.INTERNAL


def _show_usage_error(exc: Any, json_errors: bool) -> None:
    """click's usage error in the voice of every other error (``structocr: error: ...``),
    then click's usage line and its -h pointer (or the JSON error object); a value it echoes
    that could be an API key typed in the wrong place (``balance KEY``, ``--timeout KEY``)
    is masked."""
    import io

    message = _mask_values(exc.format_message())
    if json_errors:
        _fail("usage_error", exc.exit_code, message, True)
        return
    shown = io.StringIO()
    exc.show(file=shown)
    usage = [line for line in shown.getvalue().split("\n")[:-2] if line]  # click's own Error:
    sys.stderr.write("\n".join([f"structocr: error: {message}", *usage]) + "\n")


def _mask_values(text: str) -> str:
    """Each quoted or parenthesised value in ``text`` that could be a key, masked; a name
    this CLI knows (a field, a format, a command, a profile) is shown as typed."""
    import re

    from structocr_cli.api.keys import mask, may_be_secret

    known = _known_words()

    def masked(match: re.Match[str]) -> str:
        quoted = match.group(0)
        words = quoted[1:-1].split(" ")
        inner = " ".join(
            mask(word)
            if may_be_secret(word) and not word.startswith("-") and word not in known
            else word
            for word in words
        )
        return quoted[0] + inner + quoted[-1]

    return re.sub(r"'[^']*'|\([^)]*\)", masked, text)


def _known_words() -> set[str]:
    """Names a user types that are never keys: field paths and their last parts, output
    formats, commands, and the profiles of the config file (if it can be read)."""
    from structocr_cli.report.fields import FIELDS
    from structocr_cli.report.formats import CHOICES
    from structocr_cli.settings.config import profile_names

    words = {field.path for field in FIELDS} | {f.path.rpartition(".")[2] for f in FIELDS}
    words |= set(CHOICES) | set(COMMANDS)
    with suppress(Exception):  # a broken config file must not hide the usage error
        words |= set(profile_names(os.environ))
    return words


def _fail(code: str, exit_code: int, message: str, json_errors: bool) -> None:
    """A failure that is no StructocrError, said as one line or the JSON error object."""
    if json_errors:
        from structocr_cli.report.output import failure_document

        print(failure_document(code, exit_code, message), file=sys.stderr)
    else:
        print(f"structocr: {message}", file=sys.stderr)


def _report_bug(exc: BaseException, json_errors: bool) -> None:
    from structocr_cli.api.errors import ExitCode
    from structocr_cli.api.keys import redact, sanitize

    if _debug():
        import traceback

        text = "".join(traceback.format_exception(exc))
        print(redact(text), file=sys.stderr, end="")
    name = type(exc).__name__
    message = (
        f"error: internal error ({name}: {sanitize(str(exc))}). This is a bug: please report it, "
        f"with the output of the same command run with {ENV_DEBUG}=1"
    )
    _fail("internal_error", ExitCode.INTERNAL, redact(message), json_errors)
