"""Exit codes, the typed errors that map to them, and the hints they share.

Lower layers raise these and never exit; ``cli.main`` turns them into exit codes in one
place. An error is complete when raised: its message and hint are never edited afterwards.
Messages never contain the API key: they name where a key came from and show it masked.
"""

from __future__ import annotations

from enum import IntEnum
from typing import ClassVar


class ExitCode(IntEnum):
    """The exit-code contract scripts and CI gates rely on (see the README)."""

    OK = 0
    GATE_BREACHED = 1
    USAGE = 2
    NO_TREND = 3
    HTTP_CLIENT_ERROR = 40
    UNAUTHORIZED = 41
    NOT_FOUND = 44
    SERVER_ERROR = 50
    NO_ANSWER = 60
    BAD_ANSWER = 61
    INTERNAL = 70
    INTERRUPTED = 130


def http_status_to_exit_code(status: int) -> ExitCode:
    """The exit code for a final HTTP error status (after any retries)."""
    if status == 401:
        return ExitCode.UNAUTHORIZED
    if status == 404:
        return ExitCode.NOT_FOUND
    if 400 <= status < 500:
        return ExitCode.HTTP_CLIENT_ERROR
    if 500 <= status < 600:
        return ExitCode.SERVER_ERROR
    return ExitCode.BAD_ANSWER


# Hints more than one error gives.
HINT_BASE_URL = "Check --base-url points at the StructOCR API"
HINT_RETRY_LATER = "Retry, or allow more time with --timeout or STRUCTOCR_TIMEOUT"
HINT_COPY_KEY = "Copy the key again from the StructOCR console (API Management)"
HINT_NETWORK = "Check the network, proxy settings and --base-url, then retry"
HINT_TLS = (
    "Check the system clock and proxy settings; if the server's certificate comes from a "
    "private CA (a company proxy), pass that CA with --ca-bundle or REQUESTS_CA_BUNDLE"
)


class StructocrError(Exception):
    """An error the user can act on: ``message`` says what failed, ``hint`` what to do next."""

    exit_code: ExitCode = ExitCode.INTERNAL
    code: str = "error"

    def __init__(self, message: str, hint: str = "", status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.status = status

    def one_line(self) -> str:
        text = f"{self.message}. {self.hint}" if self.hint else self.message
        return " ".join(text.split())


class UsageError(StructocrError):
    exit_code = ExitCode.USAGE
    code = "usage_error"


class ConfigError(UsageError):
    code = "invalid_config"


class UnknownProfileError(UsageError):
    code = "unknown_profile"


class RefusedURLError(UsageError):
    code = "refused_base_url"


class KeyringError(UsageError):
    """The OS keyring is missing, locked or failing."""

    code = "keyring_unavailable"


class NoTrendError(StructocrError):
    """A gate on the trend (--runway-basis trend) with too little history to fit one."""

    exit_code = ExitCode.NO_TREND
    code = "no_trend"


class NoApiKeyError(StructocrError):
    exit_code = ExitCode.UNAUTHORIZED
    code = "no_api_key"


class HTTPStatusError(StructocrError):
    """The server answered with an error status (retries, if any, are spent)."""

    _codes: ClassVar[dict[int, str]] = {
        401: "unauthorized",
        403: "forbidden",
        404: "not_found",
        429: "rate_limited",
    }

    def __init__(self, message: str, hint: str, status: int) -> None:
        super().__init__(message, hint, status)
        self.exit_code = http_status_to_exit_code(status)
        self.code = self._codes.get(status) or ("server_error" if status >= 500 else "http_error")

    def about_key(self, description: str) -> HTTPStatusError:
        """The same error, naming the key it is about (masked, with its source)."""
        return HTTPStatusError(f"{self.message} (key {description})", self.hint, self.status or 0)

    def with_hint(self, hint: str) -> HTTPStatusError:
        return HTTPStatusError(self.message, hint, self.status or 0)


class NoAnswerError(StructocrError):
    """No HTTP answer at all: DNS, refused, reset, TLS, or the deadline passed."""

    exit_code = ExitCode.NO_ANSWER
    code = "no_answer"


class DeadlineError(NoAnswerError):
    code = "timeout"


class BadAnswerError(StructocrError):
    """An answer that cannot be used: not JSON, wrong shape, a redirect, too large."""

    exit_code = ExitCode.BAD_ANSWER
    code = "bad_answer"


class RedirectError(BadAnswerError):
    code = "redirect_refused"
