"""HTTP client for the Account Balance API: the only module that imports requests.

Rules it enforces (each pinned by a test):
- requests never follows a redirect itself, because it would re-send ``x-api-key`` to any
  target; we follow one only to an https URL on structocr.com or one of its subdomains (the
  API's two documented hosts are structocr.com and api.structocr.com), at most 2 hops, and
  refuse every other;
- at most ``attempts`` tries, retrying only connection errors and 429/500/502/503/504, with
  exponential backoff and jitter, and ``Retry-After`` honoured only if it fits the deadline;
- one deadline bounds the whole call, including a body dripped a byte at a time
  (requests' own timeout bounds each socket read, not the response);
- the body is streamed and capped, then parsed strictly by ``model``.

A client holds no per-call state; it lends each call a ``requests.Session`` from its pool
of idle ones (a Session is not safe to share between threads at once), so one instance can
serve many threads, and a connection opened for one key is reused for the next.
"""

from __future__ import annotations

import contextlib
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from urllib.parse import urljoin, urlsplit

import requests
import urllib3

from structocr_cli import __version__
from structocr_cli.api.errors import (
    HINT_BASE_URL,
    HINT_NETWORK,
    HINT_RETRY_LATER,
    HINT_TLS,
    BadAnswerError,
    DeadlineError,
    HTTPStatusError,
    NoAnswerError,
    RedirectError,
    RefusedURLError,
    StructocrError,
)
from structocr_cli.api.keys import key_problem, sanitize
from structocr_cli.api.model import Balance, error_text, parse_balance

log = logging.getLogger("structocr.client")

USER_AGENT = f"structocr-cli/{__version__}"
MAX_BODY_BYTES = 1024 * 1024
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_CHUNK = 16 * 1024
_CONNECT_TIMEOUT = 10.0

_HINTS = {
    401: "Check the key, or choose another with --api-key-file, STRUCTOCR_API_KEY or --profile",
    403: "The key may not read the balance; check it in the StructOCR console (API Management)",
    404: "No account is linked to this key; check it in the StructOCR console (API Management)",
    429: "Too many requests; wait a minute and retry",
}


@dataclass(frozen=True)
class _Answer:
    status: int
    reason: str
    headers: Mapping[str, str]
    body: bytes


MAX_HOPS = 2
_API_DOMAIN = "structocr.com"


class _Moved(Exception):
    """A redirect, before deciding whether to follow it."""

    def __init__(self, status: int, location: str) -> None:
        super().__init__(location)
        self.status = status
        self.location = location


# An https host on the API's domain, in lower-case ASCII: structocr.com or a subdomain.
_ON_DOMAIN = re.compile(r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*structocr\.com")
# What a Location may hold at all: printable ASCII, no space and no backslash (urllib3 reads
# a backslash as the start of the path, where urlsplit reads it as part of the host).
_PLAIN_URL = re.compile(r"[\x21-\x5b\x5d-\x7e]+")


def redirect_target(current: str, location: str) -> str | None:
    """The URL to follow a redirect to, or None when the key must not be sent there.

    Judged on urllib3's parse, the one the connection is made from, and the URL is rebuilt
    from that same parse, so what was approved is what is requested: https, no credentials,
    no port but 443, and a host that is exactly structocr.com or one of its subdomains.
    """
    if not _PLAIN_URL.fullmatch(location):
        return None
    from urllib3.util import parse_url

    try:
        joined = urljoin(current, location)
        parts, authority = parse_url(joined), urlsplit(joined).netloc
    except (ValueError, urllib3.exceptions.LocationValueError):
        return None
    host = (parts.host or "").lower()
    host = host[:-1] if host.endswith(".") else host
    if (
        parts.scheme != "https"
        or parts.auth is not None
        or parts.port not in (None, 443)
        or "%" in authority
        or "@" in authority
        or not _ON_DOMAIN.fullmatch(host)
    ):
        return None
    query = f"?{parts.query}" if parts.query else ""
    return f"https://{host}{parts.path or '/'}{query}"


class _Retryable(Exception):
    """An attempt failed in a way another attempt may fix."""

    def __init__(self, error: NoAnswerError | HTTPStatusError, retry_after: float | None = None):
        super().__init__(error.message)
        self.error = error
        self.retry_after = retry_after


class _Session(requests.Session):
    """A session that leaves redirects to ``redirect_target``: even with
    allow_redirects=False, requests parses a Location to prepare the next request, and a
    malformed one raises a bare ValueError or UnicodeDecodeError from inside ``get``."""

    def get_redirect_target(self, resp: requests.Response) -> None:
        return None


class BalanceClient:
    """Fetches balances; safe to share between threads."""

    def __init__(
        self,
        *,
        attempts: int = 3,
        backoff: float = 0.5,
        max_body: int = MAX_BODY_BYTES,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        ca_bundle: str | None = None,
    ) -> None:
        self.attempts = attempts
        self.ca_bundle = ca_bundle
        """CA certificates (PEM) to verify the server with; None: the system's, or
        REQUESTS_CA_BUNDLE. Verification is never turned off."""
        self.backoff = backoff
        self.max_body = max_body
        self._sleep = sleep
        self._clock = clock
        self._idle: list[requests.Session] = []
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def _session(self) -> Iterator[requests.Session]:
        """An idle session (a new one if none is), back in the pool after the call."""
        with self._lock:
            session = self._idle.pop() if self._idle else None
        if session is None:
            from http.cookiejar import DefaultCookiePolicy

            session = _Session()
            session.headers["User-Agent"] = USER_AGENT
            # The API needs no cookie, and a session serves one key after another: a cookie
            # kept from one key's answer would tie the next key's request to it.
            session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
        try:
            yield session
        finally:
            with self._lock:
                self._idle.append(session)

    def fetch(
        self, base_url: str, api_key: str, timeout: float, deadline: float | None = None
    ) -> Balance:
        """GET ``{base_url}/account/balance`` with ``api_key``, all within ``timeout`` seconds
        (or by ``deadline`` on this client's clock, when the caller's time started earlier)."""
        problem = key_problem(api_key)
        if problem:  # requests would quote the key in its own error
            raise ValueError(f"unusable API key: {problem}")
        if deadline is None:
            deadline = self._clock() + timeout
        url = first = f"{base_url}/account/balance"
        _refuse_plain_http_via_proxy(url)
        attempt = hops = 0
        while True:
            attempt += 1
            try:
                answer = self._attempt(url, api_key, deadline, timeout)
                if answer.status == 200:
                    balance = parse_balance(answer.body)
                    if url == first:
                        return balance
                    return replace(balance, moved_to=url.removesuffix("/account/balance"))
                raise _status_error(url, answer, attempt)
            except _Moved as moved:
                hops += 1
                target = redirect_target(url, moved.location)
                if hops > MAX_HOPS or target is None:
                    raise _redirect(url, moved.status, moved.location) from None
                log.debug("following HTTP %d to %s", moved.status, _host(target))
                url, attempt = target, attempt - 1  # a hop is not a failed attempt
            except _Retryable as failure:
                self._pause_or_raise(failure, attempt, deadline, timeout)

    def _pause_or_raise(
        self, failure: _Retryable, attempt: int, deadline: float, timeout: float
    ) -> None:
        error = failure.error
        remaining = deadline - self._clock()
        if failure.retry_after is not None and failure.retry_after > remaining:
            raise _too_late(failure, timeout)
        if attempt >= self.attempts:
            raise error
        wait = failure.retry_after
        if wait is None:
            step = self.backoff * 2 ** (attempt - 1)
            wait = random.uniform(step / 2, step)  # noqa: S311 - jitter, not crypto
        if wait >= remaining:
            raise error
        log.debug("attempt %d failed (%s); retrying in %.2f s", attempt, error.message, wait)
        self._sleep(wait)

    def _attempt(self, url: str, api_key: str, deadline: float, timeout: float) -> _Answer:
        remaining = deadline - self._clock()
        if remaining <= 0:
            raise _deadline(url, timeout)
        headers = {"x-api-key": api_key, "Accept": "application/json"}
        log.debug("GET %s", url)
        with self._session() as session:
            return self._get(session, url, headers, deadline, timeout, remaining)

    def _get(
        self,
        session: requests.Session,
        url: str,
        headers: dict[str, str],
        deadline: float,
        timeout: float,
        remaining: float,
    ) -> _Answer:
        try:
            response = session.get(
                url,
                headers=headers,
                timeout=(min(_CONNECT_TIMEOUT, remaining), remaining),
                allow_redirects=False,
                stream=True,
                verify=self.ca_bundle or True,
            )
        except requests.exceptions.RequestException as exc:
            raise self._no_answer(url, exc, deadline, timeout) from None
        except OSError as exc:  # requests' own: e.g. REQUESTS_CA_BUNDLE names no file
            raise NoAnswerError(
                f"no request sent to {_host(url)}: {sanitize(str(exc), 200)}",
                "Check --ca-bundle, REQUESTS_CA_BUNDLE and the proxy settings",
            ) from None
        with response:
            if 300 <= response.status_code < 400:
                raise _Moved(response.status_code, response.headers.get("Location", ""))
            body = self._read_body(url, response, deadline, timeout)
        log.debug("HTTP %d, %d bytes", response.status_code, len(body))
        return _Answer(response.status_code, response.reason or "", response.headers, body)

    def _no_answer(
        self, url: str, exc: requests.exceptions.RequestException, deadline: float, timeout: float
    ) -> Exception:
        if self._clock() >= deadline:
            return _deadline(url, timeout)
        message = f"no answer from {_host(url)}: {_describe(exc)}"
        if isinstance(exc, requests.exceptions.SSLError):
            return NoAnswerError(message, HINT_TLS)  # a certificate problem does not fix itself
        error = NoAnswerError(message, HINT_NETWORK)
        if isinstance(exc, requests.exceptions.ProxyError):  # the proxy, not the API, failed
            error = NoAnswerError(
                f"no answer from the proxy {_proxy_for(url)} (on the way to {_host(url)}): "
                f"{_describe(exc)}",
                "Check the proxy settings (HTTPS_PROXY, HTTP_PROXY, NO_PROXY), then retry",
            )
        if isinstance(exc, requests.exceptions.ConnectionError | requests.exceptions.Timeout):
            return _Retryable(error)
        return error

    def _read_body(
        self, url: str, response: requests.Response, deadline: float, timeout: float
    ) -> bytes:
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > self.max_body:
            raise _too_large(url, self.max_body)
        # A blocked read cannot see the deadline; shut the socket from a timer when it passes.
        watchdog = threading.Timer(max(deadline - self._clock(), 0), _shutdown, (response,))
        watchdog.daemon = True
        watchdog.start()
        chunks: list[bytes] = []
        size = 0
        try:
            while chunk := response.raw.read1(_CHUNK, decode_content=True):
                size += len(chunk)
                if size > self.max_body:
                    raise _too_large(url, self.max_body)
                chunks.append(chunk)
                if self._clock() >= deadline:
                    raise _deadline(url, timeout)
        except StructocrError:
            raise
        except (OSError, ValueError, urllib3.exceptions.HTTPError) as exc:
            if self._clock() >= deadline:
                raise _deadline(url, timeout) from None
            raise _Retryable(
                NoAnswerError(
                    f"the connection to {_host(url)} broke mid-answer: {_describe(exc)}",
                    "Retry; if it persists, check the network and proxy settings",
                )
            ) from None
        finally:
            watchdog.cancel()
        if self._clock() >= deadline:  # the watchdog's shutdown looks like a clean end
            raise _deadline(url, timeout)
        return b"".join(chunks)


def _shutdown(response: requests.Response) -> None:
    # The read may have ended and the connection closed just as the deadline passed.
    with contextlib.suppress(OSError):
        response.raw.shutdown()


def _too_late(failure: _Retryable, timeout: float) -> StructocrError:
    """The error when the server asks for a pause that the deadline does not leave."""
    error = failure.error
    wait = failure.retry_after or 0.0
    at = datetime.now(timezone.utc) + timedelta(seconds=wait)
    hint = (
        f"The server asked to retry in {wait:.0f} s (after {at:%H:%M:%S} UTC), "
        f"beyond the {timeout:g} s deadline; retry then"
    )
    if isinstance(error, HTTPStatusError):
        return error.with_hint(hint)
    return NoAnswerError(error.message, hint)


def _refuse_plain_http_via_proxy(url: str) -> None:
    """Plain http is allowed for loopback only (settings.check_base_url), and only when the
    request goes there directly: a proxy from the environment would receive the key in the
    clear. Judged with requests' own choice of proxy (HTTP_PROXY, ALL_PROXY, NO_PROXY)."""
    if not url.startswith("http://"):
        return
    if requests.utils.select_proxy(url, requests.utils.get_environ_proxies(url)):
        raise RefusedURLError(
            f"refused base URL {_host(url)}: plain http would go through the proxy "
            f"{_proxy_for(url)}, which would see the API key unencrypted",
            f"Exempt the host from the proxy with NO_PROXY={_hostname(url)}, or use https",
        )


def _hostname(url: str) -> str:
    return sanitize(urlsplit(url).hostname or "", 80)


def _proxy_for(url: str) -> str:
    """The proxy the environment names for ``url``, without any credentials in it."""
    proxy = requests.utils.select_proxy(url, requests.utils.get_environ_proxies(url)) or ""
    parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    return sanitize(f"{parts.hostname or '?'}:{parts.port or 'default port'}", 120)


def _host(url: str) -> str:
    return urlsplit(url).netloc


def _deadline(url: str, timeout: float) -> DeadlineError:
    return DeadlineError(
        f"no complete answer from {_host(url)} within the {timeout:g} s deadline",
        HINT_RETRY_LATER,
    )


def _too_large(url: str, cap: int) -> BadAnswerError:
    return BadAnswerError(
        f"the answer from {_host(url)} is larger than {cap // 1024} KiB", HINT_BASE_URL
    )


def _redirect(url: str, status: int, location: str) -> RedirectError:
    return RedirectError(
        f"HTTP {status} redirect from {_host(url)} to {_target_shown(url, location)} was not "
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


def _status_error(
    url: str, answer: _Answer, attempt: int
) -> HTTPStatusError | BadAnswerError | _Retryable:
    status = answer.status
    text = error_text(answer.body)
    if status == 404 and text is None:  # not the API's "no account" answer: a wrong URL
        return _not_the_endpoint(url)
    reason = sanitize(answer.reason, 60)
    message = f"HTTP {status} {reason}".rstrip() + f" from {_host(url)}"
    if text:
        message += f": {text}"
    if attempt > 1:
        message += f" (after {attempt} attempts)"
    hint = _HINTS.get(status) or (
        "The StructOCR service failed; retry later" if status >= 500 else HINT_BASE_URL
    )
    error = HTTPStatusError(message, hint, status)
    if status in RETRY_STATUSES:
        return _Retryable(error, _retry_after(answer.headers.get("Retry-After")))
    return error


# Longer waits are all "not within any deadline"; the cap keeps the arithmetic finite.
_MAX_RETRY_AFTER = 366 * 86400.0


def _not_the_endpoint(url: str) -> BadAnswerError:
    base = url.removesuffix("/account/balance")
    path = urlsplit(base).path.rstrip("/")
    hint = (
        f"The API's base URL ends in /v1: try --base-url {sanitize(base, 120)}/v1"
        if not path.endswith("/v1")
        else HINT_BASE_URL
    )
    return BadAnswerError(
        f"HTTP 404 from {_host(url)}: {sanitize(url, 160)} is not the StructOCR balance "
        "endpoint (the answer is not the API's)",
        hint,
        404,
    )


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delay-seconds or HTTP-date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return min(float(value), _MAX_RETRY_AFTER)
    import email.utils  # only for the rare HTTP-date form

    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return min(max((when - datetime.now(timezone.utc)).total_seconds(), 0.0), _MAX_RETRY_AFTER)


def _describe(exc: BaseException) -> str:
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
