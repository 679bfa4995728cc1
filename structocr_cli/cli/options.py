"""What several commands share: the ``Call`` a command returns, the options declared once
as ``Annotated`` aliases, their completion, and the checks of --timeout and float options."""

import math
import os
from collections.abc import Callable
from typing import Annotated, Any, NamedTuple

import typer


class Call(NamedTuple):
    """What a command asks ``main`` to run once its options are parsed."""

    run: Callable[[float], int]
    """Does the work, given when the command started (``time.monotonic()``, for deadlines);
    returns the exit code of an outcome, raises a typed error."""
    json_errors: bool = False
    """Errors as one JSON document on stderr instead of a line."""
    ends: bool = False
    """The run is one short piece of work (one key checked once, one read of the history),
    so the cyclic garbage collector, off since start-up (see ``launch``), stays off until
    the process exits. Any other run (many keys, ``--watch``, a server) gets it back first."""


JsonFlagOpt = Annotated[
    bool, typer.Option("--json", help="Same as --output json.", show_default=False)
]


NoHistoryOpt = Annotated[
    bool,
    typer.Option(
        "--no-history",
        help="Record nothing in the local history (as STRUCTOCR_HISTORY=off).",
        show_default=False,
    ),
]


MAX_TIMEOUT = 3600.0
"""One hour: a longer wait for one balance is a mistake (and overflows timers)."""


DEFAULT_TIMEOUT = 30.0
ENV_TIMEOUT = "STRUCTOCR_TIMEOUT"
_TIMEOUT_RULE = f"a number of seconds greater than 0 and at most {MAX_TIMEOUT:g}"


def timeout_problem(value: float) -> str | None:
    if not math.isfinite(value) or value <= 0:
        return "must be a number of seconds greater than 0"
    if value > MAX_TIMEOUT:
        return f"must be at most {MAX_TIMEOUT:g} seconds"
    return None


def check_timeout(value: float | None) -> float | None:
    problem = None if value is None else timeout_problem(value)
    if problem:
        raise typer.BadParameter(problem)
    return value


def finite(value: float | None) -> float | None:
    """A float option's value, refused when it is NaN or infinite: click's range check
    lets NaN through (every comparison with it is false)."""
    if value is not None and not math.isfinite(value):
        raise typer.BadParameter("must be a finite number")
    return value


def timeout_seconds(flag: float | None) -> float:
    """--timeout, else STRUCTOCR_TIMEOUT (an error in it names the variable), else 30."""
    if flag is not None:
        return flag
    text = os.environ.get(ENV_TIMEOUT, "").strip()
    if not text:
        return DEFAULT_TIMEOUT
    from structocr_cli.api.errors import UsageError
    from structocr_cli.api.keys import shown

    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if timeout_problem(value):
        raise UsageError(
            f"{ENV_TIMEOUT}={shown(text)!r} is not {_TIMEOUT_RULE}", "Fix or unset it"
        )
    return value


def complete_profile(incomplete: str) -> list[str]:
    from structocr_cli.settings.config import profile_names

    return [name for name in profile_names(os.environ) if name.startswith(incomplete)]


def named_profile(value: Any) -> Any:
    """A profile option's value, refused when empty: ``-p "$PROFILE"`` with the variable
    unset must not fall back to the default profile (and, with set-key, overwrite its
    key). An empty STRUCTOCR_PROFILE, by contrast, counts as unset."""
    given = value if isinstance(value, list) else [value]
    if any(name is not None and not name.strip() for name in given):
        raise typer.BadParameter("the profile name is empty (is a variable unset?)")
    return value


def complete_field(incomplete: str) -> list[str]:
    from structocr_cli.report.fields import FIELDS

    return [field.path for field in FIELDS if field.path.startswith(incomplete)]


ApiKeyOpt = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        metavar="KEY",
        help="API key. Visible to other local users in the process list: "
        "prefer --api-key-file, STRUCTOCR_API_KEY or a profile.",
        show_default=False,
    ),
]
ApiKeyFileOpt = Annotated[
    str | None,
    typer.Option(
        "--api-key-file",
        metavar="PATH",
        help="Read the API key from a file ('-' for stdin).",
        show_default=False,
    ),
]
ProfileOpt = Annotated[
    str | None,
    typer.Option(
        "--profile",
        "-p",
        metavar="NAME",
        help="Profile of the config file to use [env: STRUCTOCR_PROFILE].",
        show_default=False,
        callback=named_profile,
        autocompletion=complete_profile,
    ),
]
ProfilesOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--profile",
        "-p",
        metavar="NAME",
        help="Profile of the config file to use [env: STRUCTOCR_PROFILE]; repeat it to "
        "check several.",
        show_default=False,
        callback=named_profile,
        autocompletion=complete_profile,
    ),
]
AllProfilesOpt = Annotated[
    bool,
    typer.Option(
        "--all-profiles", help="Check every profile of the config file.", show_default=False
    ),
]
KeysFileOpt = Annotated[
    str | None,
    typer.Option(
        "--keys-file",
        metavar="PATH",
        help="Check the key of each name=key line of this file ('-' for stdin).",
        show_default=False,
    ),
]
ConcurrencyOpt = Annotated[
    int,
    typer.Option(
        "--concurrency",
        metavar="N",
        min=1,
        max=64,
        help="With several keys: at most N requests at once.",
    ),
]
CaBundleOpt = Annotated[
    str | None,
    typer.Option(
        "--ca-bundle",
        metavar="PATH",
        help="CA certificates (PEM) to verify the API's TLS certificate with, e.g. a "
        "company proxy's [env: REQUESTS_CA_BUNDLE]. Verification is never turned off.",
        show_default=False,
    ),
]
BaseUrlOpt = Annotated[
    str | None,
    typer.Option(
        "--base-url",
        metavar="URL",
        help="API base URL [env: STRUCTOCR_BASE_URL; default: https://structocr.com/v1].",
        show_default=False,
    ),
]


def timeout_option(what: str) -> Any:
    return typer.Option(
        "--timeout",
        metavar="SECONDS",
        callback=check_timeout,
        help=f"Deadline {what}, retries included "
        "[env: STRUCTOCR_TIMEOUT; default: 30, at most 3600].",
        show_default=False,
    )


TimeoutOpt = Annotated[float | None, timeout_option("for the whole command")]


FetchTimeoutOpt = Annotated[float | None, timeout_option("of each fetch")]
