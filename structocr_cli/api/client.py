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
from collections.abc import Callable, Iterator
from urllib.parse import urljoin, urlsplit

import requests
import urllib3

from structocr_cli import __version__
from structocr_cli.api.errors import (
    HINT_NETWORK,
    HINT_TLS,
    NoAnswerError,
    RefusedURLError,
    StructocrError,
)
from structocr_cli.api.failures import (
    Answer,
    Retryable,
    deadline_error,
    describe,
    host,
    redirect_refused,
    status_error,
    too_large,
    too_late,
)
from structocr_cli.api.keys import key_problem, sanitize
from structocr_cli.api.model import Balance, parse_balance

log = logging.getLogger("structocr.client")

USER_AGENT = f"structocr-cli/{__version__}"
MAX_BODY_BYTES = 1024 * 1024
_CHUNK = 16 * 1024
_CONNECT_TIMEOUT = 10.0

MAX_HOPS = 2


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
                    return balance._replace(moved_to=url.removesuffix("/account/balance"))
                raise status_error(url, answer, attempt)
            except _Moved as moved:
                hops += 1
                target = redirect_target(url, moved.location)
                if hops > MAX_HOPS or target is None:
                    raise redirect_refused(url, moved.status, moved.location) from None
                log.debug("following HTTP %d to %s", moved.status, host(target))
                url, attempt = target, attempt - 1  # a hop is not a failed attempt
            except Retryable as failure:
                self._pause_or_raise(failure, attempt, deadline, timeout)

    def _pause_or_raise(
        self, failure: Retryable, attempt: int, deadline: float, timeout: float
    ) -> None:
        error = failure.error
        remaining = deadline - self._clock()
        if failure.retry_after is not None and failure.retry_after > remaining:
            raise too_late(failure, timeout)
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

    def _attempt(self, url: str, api_key: str, deadline: float, timeout: float) -> Answer:
        remaining = deadline - self._clock()
        if remaining <= 0:
            raise deadline_error(url, timeout)
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
    ) -> Answer:
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
                f"no request sent to {host(url)}: {sanitize(str(exc), 200)}",
                "Check --ca-bundle, REQUESTS_CA_BUNDLE and the proxy settings",
            ) from None
        with response:
            if 300 <= response.status_code < 400:
                raise _Moved(response.status_code, response.headers.get("Location", ""))
            body = self._read_body(url, response, deadline, timeout)
        log.debug("HTTP %d, %d bytes", response.status_code, len(body))
        return Answer(response.status_code, response.reason or "", response.headers, body)

    def _no_answer(
        self, url: str, exc: requests.exceptions.RequestException, deadline: float, timeout: float
    ) -> Exception:
        if self._clock() >= deadline:
            return deadline_error(url, timeout)
        message = f"no answer from {host(url)}: {describe(exc)}"
        if isinstance(exc, requests.exceptions.SSLError):
            return NoAnswerError(message, HINT_TLS)  # a certificate problem does not fix itself
        error = NoAnswerError(message, HINT_NETWORK)
        if isinstance(exc, requests.exceptions.ProxyError):  # the proxy, not the API, failed
            error = NoAnswerError(
                f"no answer from the proxy {_proxy_for(url)} (on the way to {host(url)}): "
                f"{describe(exc)}",
                "Check the proxy settings (HTTPS_PROXY, HTTP_PROXY, NO_PROXY), then retry",
            )
        if isinstance(exc, requests.exceptions.ConnectionError | requests.exceptions.Timeout):
            return Retryable(error)
        return error

    def _read_body(
        self, url: str, response: requests.Response, deadline: float, timeout: float
    ) -> bytes:
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > self.max_body:
            raise too_large(url, self.max_body)
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
                    raise too_large(url, self.max_body)
                chunks.append(chunk)
                if self._clock() >= deadline:
                    raise deadline_error(url, timeout)
        except StructocrError:
            raise
        except (OSError, ValueError, urllib3.exceptions.HTTPError) as exc:
            if self._clock() >= deadline:
                raise deadline_error(url, timeout) from None
            raise Retryable(
                NoAnswerError(
                    f"the connection to {host(url)} broke mid-answer: {describe(exc)}",
                    "Retry; if it persists, check the network and proxy settings",
                )
            ) from None
        finally:
            watchdog.cancel()
        if self._clock() >= deadline:  # the watchdog's shutdown looks like a clean end
            raise deadline_error(url, timeout)
        return b"".join(chunks)


def _shutdown(response: requests.Response) -> None:
    # The read may have ended and the connection closed just as the deadline passed.
    with contextlib.suppress(OSError):
        response.raw.shutdown()


def _refuse_plain_http_via_proxy(url: str) -> None:
    """Plain http is allowed for loopback only (settings.check_base_url), and only when the
    request goes there directly: a proxy from the environment would receive the key in the
    clear. Judged with requests' own choice of proxy (HTTP_PROXY, ALL_PROXY, NO_PROXY)."""
    if not url.startswith("http://"):
        return
    if requests.utils.select_proxy(url, requests.utils.get_environ_proxies(url)):
        raise RefusedURLError(
            f"refused base URL {host(url)}: plain http would go through the proxy "
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
