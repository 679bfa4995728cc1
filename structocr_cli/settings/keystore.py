"""Keys kept in the OS keyring: the only module that imports the optional ``keyring`` package.

Every call is bounded in time (a locked keyring may wait for a password prompt that never
comes in CI), and a missing or unusable keyring is an error that says what to use instead,
never a silent fallback to the file.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from typing import Any, TypeVar

from structocr_cli.api.deadline import run_within
from structocr_cli.api.errors import KeyringError
from structocr_cli.api.keys import sanitize

SERVICE = "structocr"
TIMEOUT = 5.0
_INSTEAD = "use --store file, or set STRUCTOCR_API_KEY"

T = TypeVar("T")


def _keyring() -> Any:
    try:
        import keyring
        import keyring.backends.fail
        import keyring.errors
    except ImportError:
        import shlex
        import sys

        # Into the environment structocr runs from, whichever way it was installed: this
        # project is installed from its checkout, so no registry name of its own is given.
        python = shlex.quote(sys.executable)
        raise KeyringError(
            "the keyring store needs the optional keyring package",
            f"Install it with {python} -m pip install 'keyring>=24', or {_INSTEAD}",
        ) from None
    try:
        backend = keyring.get_keyring()
    except Exception as exc:  # the user's setup names a backend that cannot be loaded
        named = os.environ.get("PYTHON_KEYRING_BACKEND")
        where = f"PYTHON_KEYRING_BACKEND={sanitize(named, 80)}" if named else "the keyring config"
        raise KeyringError(
            f"the keyring backend set by {where} cannot be loaded ({type(exc).__name__})",
            f"Fix or unset it, or {_INSTEAD}",
        ) from None
    if isinstance(backend, keyring.backends.fail.Keyring):
        raise KeyringError(
            "no OS keyring is available here (common on headless Linux and in CI)",
            f"Set up a keyring backend, or {_INSTEAD}",
        )
    return keyring


def _bounded(action: str, call: Callable[[], T]) -> T:
    def expired() -> KeyringError:
        return KeyringError(
            f"the OS keyring did not answer within {TIMEOUT:g} s while {action}",
            f"Unlock the keyring, or {_INSTEAD}",
        )

    try:
        return run_within(TIMEOUT, call, expired, name="structocr-keyring")
    except KeyringError:
        raise
    except Exception as exc:
        raise KeyringError(
            f"the OS keyring failed while {action}: {type(exc).__name__}",
            f"Check the keyring, or {_INSTEAD}",
        ) from None


def get(profile: str) -> str | None:
    keyring = _keyring()
    value: str | None = _bounded("reading a key", lambda: keyring.get_password(SERVICE, profile))
    return value


def put(profile: str, key: str) -> None:
    keyring = _keyring()
    _bounded("storing a key", lambda: keyring.set_password(SERVICE, profile, key))


def delete(profile: str) -> None:
    keyring = _keyring()

    def remove() -> None:
        with contextlib.suppress(keyring.errors.PasswordDeleteError):  # already gone is fine
            keyring.delete_password(SERVICE, profile)

    _bounded("removing a key", remove)
