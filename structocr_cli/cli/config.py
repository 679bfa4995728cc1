"""``structocr config``: store, list, switch and remove keys and profiles."""

import os
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from structocr_cli.cli.options import (
    Call,
    JsonFlagOpt,
    ProfileOpt,
    TimeoutOpt,
    complete_profile,
    named_profile,
    timeout_seconds,
)

config_app = typer.Typer(
    name="config",
    help="Store, list, switch and remove API keys and profiles.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


class Store(str, Enum):
    file = "file"
    keyring = "keyring"


def _config_path() -> Path:
    from structocr_cli.settings.config import config_path

    return config_path(os.environ)


@config_app.command("set-key")
def config_set_key(
    profile: Annotated[
        str | None,
        typer.Option(
            "--profile",
            "-p",
            metavar="NAME",
            help="Profile to save the key in [env: STRUCTOCR_PROFILE; default: the default "
            "profile, or 'default'].",
            show_default=False,
            callback=named_profile,
            autocompletion=complete_profile,
        ),
    ] = None,
    base_url: Annotated[
        str | None,
        typer.Option(
            metavar="URL", help="Also save this API base URL in the profile.", show_default=False
        ),
    ] = None,
    verify: Annotated[
        bool, typer.Option("--verify", help="Save only if the key works (calls the API).")
    ] = False,
    make_default: Annotated[
        bool, typer.Option("--default", help="Make this the default profile.")
    ] = False,
    store: Annotated[
        Store,
        typer.Option(
            metavar="STORE",
            help="Where to keep the key: file (in the config file) or keyring (in the OS "
            "keyring; the config file then records only that it is there).",
        ),
    ] = Store.file,
    timeout: TimeoutOpt = None,
) -> Call:
    """Save an API key typed at a hidden prompt or piped on stdin.

    The key is never an argument (arguments are visible to other users). From a script:

    \b
      printf %s "$KEY" |
        structocr config set-key -p ci
    """

    def run(started: float) -> int:
        from structocr_cli.api.keys import mask
        from structocr_cli.report.output import origin
        from structocr_cli.runs.common import say
        from structocr_cli.settings import profiles
        from structocr_cli.settings.config import load_config
        from structocr_cli.settings.resolve import Kind, Source, Sourced, check_base_url

        url = base_url
        if url is not None:
            url = check_base_url(Sourced(url, Source(Kind.FLAG, "--base-url")))
        path = _config_path()
        chosen = profiles.target_profile(profile, os.environ, load_config(path))
        name, seconds = chosen.value, timeout_seconds(timeout)
        deadline = started + seconds
        key = profiles.read_new_key(_read_secret(f"API key for profile {name!r}: ", deadline))
        credits = ""
        if verify:
            where = profiles.verify_base_url(load_config(path), os.environ, name, url)
            credits = _verify(key, where, seconds, deadline)
        change = profiles.SetKey(name, key, url, make_default, store.value)
        before = profiles.set_key(path, change)
        place = "the OS keyring" if store is Store.keyring else str(path)
        default = make_default or not before.profiles
        note = "; it is the default profile" if default else ""
        told = "" if chosen.source.kind is Kind.FLAG else f" {origin(chosen)}"
        say(f'saved the key {mask(key)} for profile "{name}"{told} in {place}{note}{credits}')
        return 0

    return Call(run)


def _read_secret(prompt: str, deadline: float) -> str:
    """The key typed at a hidden prompt, or piped (at most a few KiB, before ``deadline``)."""
    if sys.stdin is not None and not sys.stdin.closed and sys.stdin.isatty():
        import getpass

        try:
            return getpass.getpass(prompt)
        except KeyboardInterrupt:
            print(file=sys.stderr)  # what follows starts on a line of its own, not the prompt's
            raise
        except EOFError:  # Ctrl-D: no key given
            print(file=sys.stderr)
            return ""
    from structocr_cli.settings.reads import KEY_CAP, read_stdin

    return read_stdin(KEY_CAP, deadline, "the key")


def _verify(key: str, base_url: str, timeout: float, deadline: float) -> str:
    from structocr_cli.api.errors import HTTPStatusError, StructocrError
    from structocr_cli.core import verify_key
    from structocr_cli.report.layout import number

    try:
        balance = verify_key(key, base_url, timeout, deadline=deadline)
    except StructocrError as exc:
        hint = "Nothing was saved; check the key and run structocr config set-key again"
        if isinstance(exc, HTTPStatusError):
            raise exc.with_hint(hint) from None
        raise type(exc)(exc.message, f"Nothing was saved. {exc.hint}") from None
    return f" (verified: {number(balance.account.credits_remaining)} credits remaining)"


class ListFormat(str, Enum):
    table = "table"
    json = "json"
    tsv = "tsv"


@config_app.command("list")
def config_list(
    json_out: JsonFlagOpt = False,
    output: Annotated[
        ListFormat | None,
        typer.Option(
            "--output",
            "-o",
            metavar="FORMAT",
            case_sensitive=False,
            help="table, json (one array, keys masked) or tsv (name, key, base URL, store, "
            "default). [default: table]",
            show_default=False,
        ),
    ] = None,
) -> Call:
    """List profiles: name, masked key, base URL, and * on the default."""
    chosen = "json" if json_out else (output.value if output else "table")

    def run(started: float) -> int:
        from structocr_cli.api.errors import UsageError
        from structocr_cli.report import output as shown
        from structocr_cli.runs.common import say, warn_about
        from structocr_cli.settings.profiles import rows
        from structocr_cli.settings.resolve import read_config

        if json_out and output not in (None, ListFormat.json):
            raise UsageError(f"--json and --output {output.value} contradict each other")
        config = read_config(os.environ)
        warn_about(config)
        found = rows(config)
        if chosen == "json":
            shown.write_json([row.as_json() for row in found], sys.stdout)
        elif chosen == "tsv":
            sys.stdout.write(shown.profile_tsv(found))
        elif found:
            sys.stdout.write(shown.profile_lines(found))
        else:
            say(f"no profiles in {config.path}; add one with: structocr config set-key")
        return 0

    return Call(run, json_errors=chosen == "json")


ProfileArg = Annotated[str, typer.Argument(metavar="NAME", autocompletion=complete_profile)]


@config_app.command("set-base-url")
def config_set_base_url(
    url: Annotated[
        str,
        typer.Argument(metavar="URL", help="The API base URL, or 'default' for the public API."),
    ],
    profile: ProfileOpt = None,
) -> Call:
    """Change a profile's API base URL; its key stays as it is."""

    def run(started: float) -> int:
        from structocr_cli.runs.common import say
        from structocr_cli.settings import profiles
        from structocr_cli.settings.config import load_config
        from structocr_cli.settings.resolve import (
            DEFAULT_BASE_URL,
            Kind,
            Source,
            Sourced,
            check_base_url,
        )

        new = None
        if url != "default":
            new = check_base_url(Sourced(url, Source(Kind.FLAG, "URL")))
        path = _config_path()
        name = profiles.target_profile(profile, os.environ, load_config(path)).value
        profiles.set_base_url(path, name, new)
        say(f'profile "{name}" now uses {new or DEFAULT_BASE_URL}')
        return 0

    return Call(run)


@config_app.command("use")
def config_use(name: ProfileArg) -> Call:
    """Make NAME the default profile."""

    def run(started: float) -> int:
        from structocr_cli.runs.common import say
        from structocr_cli.settings import profiles

        profiles.use(_config_path(), name)
        say(f'"{name}" is now the default profile')
        return 0

    return Call(run)


@config_app.command("remove")
def config_remove(
    name: ProfileArg,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Do not ask for confirmation on a terminal.")
    ] = False,
) -> Call:
    """Delete profile NAME (and its key); on a terminal, after asking."""

    def run(started: float) -> int:
        from structocr_cli.runs.common import say
        from structocr_cli.settings import profiles

        if not yes and _confirming() and not _confirmed(f'Remove profile "{name}" and its key?'):
            say("nothing removed")
            return 0
        notes = profiles.remove(_config_path(), name)
        say(f'removed profile "{name}"')
        for note in notes:
            say(note)
        return 0

    return Call(run)


def _confirming() -> bool:
    """Whether a person can answer: scripts (no terminal) are never asked."""
    return sys.stdin is not None and not sys.stdin.closed and sys.stdin.isatty()


def _confirmed(question: str) -> bool:
    sys.stderr.write(f"{question} [y/N] ")
    sys.stderr.flush()
    return sys.stdin.readline().strip().lower() in ("y", "yes")


@config_app.command("path")
def config_path_command() -> Call:
    """Print the config file's path (STRUCTOCR_CONFIG overrides it)."""

    def run(started: float) -> int:
        print(_config_path())
        return 0

    return Call(run)


@config_app.command("show")
def config_show(
    profile: ProfileOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object, key masked.")] = False,
) -> Call:
    """Show what balance would use now, and why (no network)."""

    def run(started: float) -> int:
        from structocr_cli.report.output import status_document, status_lines, write_json
        from structocr_cli.runs.common import warn_about
        from structocr_cli.settings.config import ENV_HISTORY, history_path
        from structocr_cli.settings.profiles import status

        now = status(profile, os.environ)
        warn_about(now.config)
        recorded = history_path(os.environ)
        history = f"off ({ENV_HISTORY}=off)" if recorded is None else str(recorded)
        if json_out:
            write_json(status_document(now, history), sys.stdout)
        else:
            sys.stdout.write(status_lines(now, history))
        return now.exit_code

    return Call(run, json_errors=json_out)


def register(app: typer.Typer) -> None:
    app.add_typer(config_app)
