"""A local StructOCR server for demos, tests and offline rehearsal. Standard library only.

Each API key maps to a *behaviour*: a function from the request to a ``Reply``. Built-in
demo keys live in ``BUILTIN``; ``--fixtures`` and ``MockServer(behaviours=...)`` add or
replace keys, so new failure modes are one function each.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from structocr_cli.errors import UsageError
from structocr_cli.keys import mask, sanitize

API_PATH = "/v1/account/balance"


@dataclass(frozen=True)
class Request:
    key: str | None
    count: int
    """How many requests this key has made, this one included (1 for the first)."""


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    drip: float = 0.0
    """Seconds to wait between body bytes (0: send at once)."""
    delay: float = 0.0
    """Seconds to wait before answering at all."""
    drop: bool = False
    """Close the connection without answering."""
    length: bool = True
    """Send Content-Length (False: the body ends when the connection closes)."""

    @classmethod
    def json(cls, status: int, document: Any, **kwargs: Any) -> Reply:
        body = json.dumps(document, indent=2).encode()
        headers = (("Content-Type", "application/json"), *kwargs.pop("headers", ()))
        return cls(status, body, headers, **kwargs)

    @classmethod
    def error(cls, status: int, message: str) -> Reply:
        return cls.json(status, {"error": message})


Behaviour = Callable[[Request], Reply]


def current_period(now: datetime | None = None) -> dict[str, str]:
    """The calendar month (UTC) around ``now``, formatted as the API does."""
    now = now or datetime.now(timezone.utc)
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    following = (start.replace(day=28) + timedelta(days=4)).replace(day=1)
    end = following - timedelta(seconds=1)
    return {"start": _iso(start), "end": _iso(end)}


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


DEMO_ACCOUNT = {
    "credits_total": 50569,
    "credits_used": 1720,
    "credits_remaining": 48849,
    "credits_this_period": 337,
    "requests_this_period": 206,
    "error_rate": "4.37%",
    "avg_latency_ms": 2720,
}
DEMO_KEY = {"credits_used": 79, "requests": 45, "error_rate": "2.22%", "avg_latency_ms": 2424}
LOW_ACCOUNT = {
    **DEMO_ACCOUNT,
    "credits_total": 2000,
    "credits_used": 1988,
    "credits_remaining": 12,
    "credits_this_period": 1410,
    "requests_this_period": 903,
}


def balance_document(
    account: Mapping[str, Any] | None = None,
    this_key: Mapping[str, Any] | None = None,
    period: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A 200 body: the reference example, with any given fields replaced."""
    return {
        "period": {**current_period(), **(period or {})},
        "account": {**DEMO_ACCOUNT, **(account or {})},
        "this_key": {**DEMO_KEY, **(this_key or {})},
    }


def _flaky(request: Request) -> Reply:
    if request.count % 2:
        return Reply.error(500, "Failed to fetch usage data")
    return Reply.json(200, balance_document())


BUILTIN: dict[str, Behaviour] = {
    "demo": lambda _: Reply.json(200, balance_document()),
    "demo-low": lambda _: Reply.json(200, balance_document(LOW_ACCOUNT)),
    "demo-404": lambda _: Reply.error(404, "Account not found"),
    "demo-500": lambda _: Reply.error(500, "Failed to fetch usage data"),
    "demo-flaky": _flaky,
}


def load_fixtures(path: Path) -> dict[str, Behaviour]:
    """Keys from a TOML or JSON file: ``{KEY: {account, this_key, period, status, error}}``."""
    try:
        raw = path.read_bytes()
        if path.suffix.lower() == ".json":
            data = json.loads(raw)
        else:
            from structocr_cli.config import parse_toml

            data = parse_toml(path, raw, what="fixtures")
    except OSError as exc:
        raise UsageError(f"cannot read fixtures {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise UsageError(f"invalid fixtures {path}: {sanitize(str(exc), 200)}") from None
    if not isinstance(data, dict):
        raise UsageError(f"invalid fixtures {path}: expected a table of keys")
    return {str(key): _fixture(path, str(key), entry) for key, entry in data.items()}


_FIXTURE_FIELDS = {"account", "this_key", "period", "status", "error"}


def _fixture(path: Path, key: str, entry: Any) -> Behaviour:
    if not isinstance(entry, dict) or not set(entry) <= _FIXTURE_FIELDS:
        raise UsageError(
            f'invalid fixtures {path}: key "{sanitize(key, 40)}" must be a table of '
            + ", ".join(sorted(_FIXTURE_FIELDS))
        )
    status = entry.get("status", 200)
    if not isinstance(status, int) or not 100 <= status <= 599:
        raise UsageError(f'invalid fixtures {path}: "{sanitize(key, 40)}".status must be 100-599')
    if status != 200:
        reply = Reply.error(status, str(entry.get("error", HTTPStatus(status).phrase)))
        return lambda _: reply
    return lambda _: Reply.json(
        200, balance_document(entry.get("account"), entry.get("this_key"), entry.get("period"))
    )


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        key = self.headers.get("x-api-key")
        reply = self.server.reply_for(self.path, key)
        self.server.log(
            f'{self.client_address[0]} "GET {self.path}" key={_shown(key)} -> {reply.status}'
        )
        self._send(reply)

    def _send(self, reply: Reply) -> None:
        time.sleep(reply.delay)
        if reply.drop:
            self.close_connection = True
            return
        self.send_response(reply.status)
        for name, value in reply.headers:
            self.send_header(name, value)
        if reply.length:
            self.send_header("Content-Length", str(len(reply.body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        if not reply.drip:
            self.wfile.write(reply.body)
            return
        for byte in reply.body:
            self.wfile.write(bytes([byte]))
            self.wfile.flush()
            time.sleep(reply.drip)

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default per-request line; ``do_GET`` logs its own, key masked."""


def _shown(key: str | None) -> str:
    return "(none)" if key is None else mask(key)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self, address: tuple[str, int], behaviours: Mapping[str, Behaviour], log: IO[str]
    ) -> None:
        super().__init__(address, _Handler)
        self.behaviours = dict(behaviours)
        self.log_stream = log
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def reply_for(self, path: str, key: str | None) -> Reply:
        # A proxy's request names the whole URL ("absolute-form"); servers must accept it.
        if urlsplit(path).path != API_PATH:
            return Reply.error(404, "Not found")
        if key is None:
            return Reply.error(401, "Missing x-api-key header")
        behaviour = self.behaviours.get(key)
        if behaviour is None:
            return Reply.error(401, "Invalid or inactive API key")
        with self._lock:
            count = self._counts[key] = self._counts.get(key, 0) + 1
        return behaviour(Request(key, count))

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up mid-answer (the CLI does, past its size cap or deadline)
        # is part of the job; anything else is logged as one line too, never a traceback.
        error = sys.exc_info()[1]
        self.log(f"{client_address[0]}: {type(error).__name__} while answering")

    def log(self, line: str) -> None:
        with self._lock:
            print(f"mock: {sanitize(line)}", file=self.log_stream, flush=True)


class MockServer:
    """The mock on a port of its own; ``port=0`` picks a free one."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        behaviours: Mapping[str, Behaviour] | None = None,
        log: IO[str] | None = None,
    ) -> None:
        merged = {**BUILTIN, **(behaviours or {})}
        self._server = _Server((host, port), merged, log or sys.stderr)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        host = host.decode() if isinstance(host, bytes) else str(host)
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}/v1"

    def serve_forever(self) -> None:
        self._server.serve_forever(poll_interval=0.1)

    def start(self) -> MockServer:
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()

    def __enter__(self) -> MockServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextmanager
def _stop_on_sigterm() -> Iterator[None]:
    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run(host: str, port: int, fixtures: Path | None, out: IO[str], log: IO[str]) -> None:
    """Serve until Ctrl-C or SIGTERM; the first line on ``out`` is the base URL."""
    behaviours = load_fixtures(fixtures) if fixtures else {}
    try:
        server = MockServer(host, port, behaviours, log)
    except OSError as exc:
        raise UsageError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}",
            "Choose another --port, or --port 0 for any free one",
        ) from None
    print(server.url, file=out, flush=True)
    # Fixture keys are the user's and are not listed; built-in demo keys are public.
    listed = ", ".join(BUILTIN) + (f" and {len(behaviours)} from fixtures" if behaviours else "")
    print(f"mock: serving {API_PATH}; keys: {listed}; Ctrl-C to stop", file=log, flush=True)
    with _stop_on_sigterm():
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.stop()
    print("mock: stopped", file=log, flush=True)
