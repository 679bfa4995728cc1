"""What a failed attempt comes to: the typed error for an HTTP status, a transport failure,
a deadline, an oversized body or a refused redirect, each with its hint, and the waits a
server asks for (Retry-After). Standard library only: ``client`` makes the requests.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timezone
from typing import NamedTuple
from urllib.parse import urljoin, urlsplit

from structocr_cli.api import clock
from structocr_cli.api.errors import (
    HINT_BASE_URL,
    HINT_RETRY_LATER,
    BadAnswerError,
    DeadlineError,
    HTTPStatusError,
    NoAnswerError,
    RedirectError,
    StructocrError,
)
from structocr_cli.api.keys import sanitize
from structocr_cli.api.model import error_text

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})

_HINTS = {
    401: "Check the key, or choose another with --api-key-file, STRUCTOCR_API_KEY or --profile",
    403: "The key may not read the balance; check it in the StructOCR console (API Management)",
    404: "No account is linked to this key; check it in the StructOCR console (API Management)",
    429: "Too many requests; wait a minute and retry",
}


class Answer(NamedTuple):
    status: int
    reason: str
    headers: Mapping[str, str]
    body: bytes


class Retryable(Exception):
    """An attempt failed in a way another attempt may fix."""

    def __init__(self, error: NoAnswerError | HTTPStatusError, retry_after: float | None = None):
        super().__init__(error.message)
        self.error = error
        self.retry_after = retry_after


def too_late(failure: Retryable, timeout: float) -> StructocrError:
    """The error when the server asks for a pause that the deadline does not leave."""
    error = failure.error
    wait = failure.retry_after or 0.0
    now = clock.now()
    at = clock.days_after(now, wait / 86400)  # None past the year 9999
    if at is None:
        when = ""
    elif at.date() == now.date():
        when = f" (after {at:%H:%M:%S} UTC)"
    else:
        when = f" (after {at:%Y-%m-%d %H:%M:%S} UTC)"
    hint = (
        f"The server asked to retry in {wait:.0f} s{when}, "
        f"beyond the {timeout:g} s deadline; retry then"
    )
    if isinstance(error, HTTPStatusError):
        return error.with_hint(hint)
    return NoAnswerError(error.message, hint)


def host(url: str) -> str:
    return urlsplit(url).netloc


def deadline_error(url: str, timeout: float) -> DeadlineError:
    return DeadlineError(
        f"no complete answer from {host(url)} within the {timeout:g} s deadline",
        HINT_RETRY_LATER,
    )


def too_large(url: str, cap: int) -> BadAnswerError:
    return BadAnswerError(
        f"the answer from {host(url)} is larger than {cap // 1024} KiB", HINT_BASE_URL
    )


def redirect_refused(url: str, status: int, location: str) -> RedirectError:
    return RedirectError(
        f"HTTP {status} redirect from {host(url)} to {_target_shown(url, location)} was not "
        "followed (the API key is sent only to https addresses on structocr.com)",
        "If the API has moved, set --base-url to the new address",
    )


def _target_shown(url: str, location: str) -> str:
    """Where a refused Location points, as far as it can be told: its host and port only (a
    Location may carry credentials)."""
    if not location.strip():
        return "nowhere (an empty Location)"
    try:
        parts = urlsplit(urljoin(url, location))
        host, port = parts.hostname, parts.port
    except ValueError:
        return "an address that cannot be parsed"
    if not host:
        return "an address without a host"
    return sanitize(f"{host}:{port}" if port else host, 100)


def status_error(
    url: str, answer: Answer, attempt: int
) -> HTTPStatusError | BadAnswerError | Retryable:
    status = answer.status
    text = error_text(answer.body)
    if status == 404 and text is None:  # not the API's "no account" answer: a wrong URL
        return _not_the_endpoint(url)
    reason = sanitize(answer.reason, 60)
    message = f"HTTP {status} {reason}".rstrip() + f" from {host(url)}"
    if text:
        message += f": {text}"
    if attempt > 1:
        message += f" (after {attempt} attempts)"
    hint = _HINTS.get(status) or (
        "The StructOCR service failed; retry later" if status >= 500 else HINT_BASE_URL
    )
    error = HTTPStatusError(message, hint, status)
    if status in RETRY_STATUSES:
        return Retryable(error, retry_after(answer.headers.get("Retry-After")))
    return error


# Longer waits are all "not within any deadline"; the cap keeps the arithmetic finite.
MAX_RETRY_AFTER = 366 * 86400.0


def _not_the_endpoint(url: str) -> BadAnswerError:
    base = url.removesuffix("/account/balance")
    path = urlsplit(base).path.rstrip("/")
    hint = (
        f"The API's base URL ends in /v1: try --base-url {sanitize(base, 120)}/v1"
        if "v1" not in path.split("/")  # never a second /v1
        else HINT_BASE_URL
    )
    return BadAnswerError(
        f"HTTP 404 from {host(url)}: {sanitize(url, 160)} is not the StructOCR balance "
        "endpoint (the answer is not the API's)",
        hint,
        404,
    )


def retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delay-seconds or HTTP-date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return min(float(value), MAX_RETRY_AFTER)
    import email.utils  # only for the rare HTTP-date form

    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return min(max((when - clock.now()).total_seconds(), 0.0), MAX_RETRY_AFTER)


def describe(exc: BaseException) -> str:
    """A short reason for a transport failure, without requests' nested reprs."""
    text = str(exc)
    checks = (
        (
            ("NameResolutionError", "Name or service not known", "getaddrinfo", "nodename nor"),
            "the host name could not be resolved",
        ),
        (("Connection refused", "ConnectionRefusedError"), "connection refused"),
        (
            (
                "RemoteDisconnected",
                "Connection reset",
                "Connection aborted",
                "ConnectionResetError",
                "IncompleteRead",
                "BadStatusLine",
            ),
            "the connection was closed without a complete answer",
        ),
        (("CERTIFICATE_VERIFY_FAILED",), "TLS certificate verification failed"),
        (("SSL", "TLS"), "TLS handshake failed"),
        (("timed out", "Timeout"), "timed out"),
    )
    for needles, reason in checks:
        if any(needle in text for needle in needles):
            return reason
    return sanitize(type(exc).__name__, 60)
