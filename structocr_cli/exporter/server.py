"""``structocr exporter`` over HTTP: ``/metrics``, ``/`` and ``/healthz`` on a threading
server, one log line per event, and the signals (SIGINT and SIGTERM stop, SIGHUP reloads
the keys). Standard library only.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import math
import queue
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import urlsplit

from structocr_cli.api import clock
from structocr_cli.api.errors import StructocrError, UsageError
from structocr_cli.api.keys import redact, sanitize

if TYPE_CHECKING:
    from structocr_cli.exporter.cache import Exporter
    from structocr_cli.settings.selection import KeySpec

DEFAULT_LISTEN = "127.0.0.1:9811"
OPENMETRICS_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"
CLASSIC_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_HOME = b"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>StructOCR exporter</title></head>
<body><h1>StructOCR exporter</h1>
<p>The balance of every selected StructOCR API key, as Prometheus metrics:
<a href="/metrics">/metrics</a>. Health: <a href="/healthz">/healthz</a>.</p></body></html>
"""


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6) as (host, port)."""
    host, sep, port = text.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise UsageError(
            f"--listen {sanitize(text, 80)!r} is not HOST:PORT",
            f"For example --listen {DEFAULT_LISTEN}, or 127.0.0.1:0 for a free port",
        )
    return host, int(port)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host.partition("%")[0])
    except ValueError:  # a host name: it may resolve to anything
        return False
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1 is 127.0.0.1
    return bool(address.is_loopback or (mapped is not None and mapped.is_loopback))


def wants_openmetrics(accept: str) -> bool:
    """Whether an ``Accept`` header prefers OpenMetrics to the classic text format."""
    weights: dict[str, float] = {}
    for part in accept.split(","):
        media, *params = (piece.strip() for piece in part.split(";"))
        weight = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        media = media.lower()
        weights[media] = max(weights.get(media, 0.0), weight)
    openmetrics = weights.get("application/openmetrics-text", 0.0)
    classic = max(weights.get("text/plain", 0.0), weights.get("*/*", 0.0))
    return openmetrics > 0 and openmetrics >= classic


class Logger:
    """One line per event on ``stream``: text (``TIME LEVEL name=value: message``) or a
    JSON object. The fields never hold a key: keys are passed masked."""

    def __init__(self, form: str, stream: IO[str] | None = None) -> None:
        self.form = form
        self.stream = stream or sys.stderr
        self.dropped = 0
        """Lines that could not be written (a closed stderr)."""
        self._lock = threading.Lock()

    def __call__(self, level: str, message: str, **fields: str) -> None:
        when = f"{clock.now():%Y-%m-%dT%H:%M:%SZ}"
        if self.form == "json":
            line = json.dumps({"time": when, "level": level, "message": message, **fields},
                              ensure_ascii=True)  # fmt: skip
        else:
            named = "".join(f" {name}={sanitize(value, 80)}" for name, value in fields.items())
            line = f"{when} {level}{named}: {sanitize(message, 1000)}"
        with self._lock:
            try:
                print(line, file=self.stream, flush=True)
            except (OSError, ValueError):  # stderr closed or gone: the work goes on
                self.dropped += 1


REQUEST_DEADLINE = 10.0
"""Seconds a client has to send a whole request, from when the server starts waiting for
it, however slowly it trickles in: a socket timeout is reset by every byte."""


class _Server(ThreadingHTTPServer):
    """A threading server that holds at most ``max_connections`` connections, dropping the
    oldest that is not being answered when a new one comes, and drops any connection whose
    request is not complete ``REQUEST_DEADLINE`` seconds after the wait for it began: slow
    clients cannot use up the threads or the file descriptors that scrapes need."""

    daemon_threads = True  # a stop never waits for a scrape
    request_queue_size = 512  # a burst of connections waits in the kernel, not refused
    exporter: Exporter
    log: Logger
    max_connections = 256

    def server_activate(self) -> None:
        super().server_activate()
        self._waiting: dict[socket.socket, float] = {}
        """Connections not being answered, by when the wait for their request began."""
        self._answering: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        self.dropped = 0
        """Connections dropped: the oldest idle when the cap was reached, or too slow."""
        self._closed = threading.Event()
        threading.Thread(target=self._reap, name="structocr-reaper", daemon=True).start()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            if len(self._waiting) + len(self._answering) >= self.max_connections:
                oldest = min(self._waiting, key=self._waiting.__getitem__, default=None)
                if oldest is None:  # every connection is being answered: refuse this one
                    self.dropped += 1
                    self.shutdown_request(request)
                    return
                self._drop(oldest)
            self._waiting[request] = time.monotonic()
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._waiting.pop(request, None)
            self._answering.discard(request)
        super().shutdown_request(request)

    def waiting(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._answering.discard(connection)
            self._waiting[connection] = time.monotonic()

    def answering(self, connection: socket.socket) -> None:
        with self._connections_lock:
            if self._waiting.pop(connection, None) is not None:
                self._answering.add(connection)

    def _drop(self, connection: socket.socket) -> None:
        """Wake the connection's thread with an end of file; it closes the socket itself
        (called with the lock held)."""
        self._waiting.pop(connection, None)
        self.dropped += 1
        with contextlib.suppress(OSError):  # already gone
            connection.shutdown(socket.SHUT_RDWR)

    def server_close(self) -> None:
        super().server_close()
        closed = getattr(self, "_closed", None)
        if closed is not None:
            closed.set()

    def _reap(self) -> None:
        while not self._closed.wait(0.5):  # until the server closes
            late = time.monotonic() - REQUEST_DEADLINE
            with self._connections_lock:
                for connection in [c for c, since in self._waiting.items() if since < late]:
                    self._drop(connection)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up or is dropped mid-answer is routine, and under a flood of
        # them a line each would drown the log; anything else is one line, never a traceback.
        error = sys.exc_info()[1]
        if not isinstance(error, ConnectionError | TimeoutError):
            self.log("warning", f"while answering {client_address[0]}: {type(error).__name__}")


class _Server6(_Server):
    address_family = socket.AF_INET6


SCRAPE_TIMEOUT_HEADER = "X-Prometheus-Scrape-Timeout-Seconds"


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    timeout = 30
    """Seconds a single read or write may block (the whole request has REQUEST_DEADLINE)."""

    def handle_one_request(self) -> None:
        self.server.waiting(self.connection)
        super().handle_one_request()

    def parse_request(self) -> bool:
        if not super().parse_request():
            return False
        # No request here has a body; one that claims one would be read as the next
        # request (two answers to one), and a chunked one as garbage: refuse, and close.
        # Two Content-Length headers (0 and 40) are a claim too.
        if self.headers.defects or self.headers.get_payload():  # a line that is no header:
            self.send_error(400, "Malformed header line")  # what follows it went unread
            return False
        lengths = [value.strip() for value in self.headers.get_all("Content-Length", [])]
        if lengths not in ([], ["0"]) or "Transfer-Encoding" in self.headers:
            self.send_error(400, "A request body is not accepted here")
            return False
        self.server.answering(self.connection)
        return True

    def handle_expect_100(self) -> bool:
        """No "100 Continue": no request here may send a body (parse_request refuses it)."""
        return True

    def do_GET(self) -> None:
        self._route(body=True)

    def do_HEAD(self) -> None:
        self._route(body=False)

    def _route(self, body: bool) -> None:
        path = urlsplit(self.path).path
        if path == "/metrics":
            self._metrics(body)
        elif path == "/":
            self._send(200, "text/html; charset=utf-8", _HOME, body)
        elif path == "/healthz":
            self._send(200, "text/plain; charset=utf-8", b"ok\n", body)
        else:
            self._send(404, "text/plain; charset=utf-8", b"not found: try /metrics\n", body)

    def _metrics(self, body: bool) -> None:
        from structocr_cli.exporter.cache import exposition

        exporter = self.server.exporter
        openmetrics = wants_openmetrics(self.headers.get("Accept", ""))
        budget = scrape_budget(exporter.scrape_timeout, self.headers.get(SCRAPE_TIMEOUT_HEADER))
        try:
            text = exposition(exporter.scrape(budget), openmetrics, exporter.worker_restarts)
        except Exception as exc:  # a bug: said once, and Prometheus sees a failed scrape
            self.server.log("error", f"internal error while rendering: {type(exc).__name__}")
            self._send(500, "text/plain; charset=utf-8", b"internal error: see the log\n", body)
            return
        kind = OPENMETRICS_TYPE if openmetrics else CLASSIC_TYPE
        self._send(200, kind, text.encode(), body)

    def _send(self, status: int, content_type: str, content: bytes, body: bool = True) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        if body:
            self.wfile.write(content)

    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes are not logged: one a second would drown what matters."""


def scrape_budget(configured: float, header: str | None) -> float:
    """How long a scrape may wait for fetches: ``--scrape-timeout``, or less when the
    scraper says it gives up sooner (Prometheus sends its scrape_timeout), so that the
    answer arrives in time and every key's series survives one stalled key."""
    try:
        theirs = float(header or "nan")
    except ValueError:
        return configured
    if not math.isfinite(theirs) or theirs <= 0:
        return configured
    margin = max(0.5, theirs / 10)  # rendering and the trip back
    return max(min(configured, theirs - margin), 0.0)


def listen(exporter: Exporter, host: str, port: int, log: Logger | None = None) -> _Server:
    """A server for ``exporter`` bound to (host, port), not yet serving. A host name binds
    the first address it resolves to (``ip6-localhost`` is ::1 only)."""
    try:
        family, *_, where = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        kind = _Server6 if family == socket.AF_INET6 else _Server
        server = kind((str(where[0]), port), _Handler)
    except OSError as exc:
        raise UsageError(
            f"cannot listen on {sanitize(host, 80)}:{port}: {exc.strerror or exc}",
            "Choose another --listen address or port (port 0 picks a free one)",
        ) from None
    server.exporter = exporter
    server.log = log or Logger("text")
    server.max_connections = connection_cap()
    return server


def connection_cap() -> int:
    """At most 256 connections, and at most a third of the file descriptors this process
    may open: the rest are for fetches, the config file and the keys file."""
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (ImportError, OSError, ValueError):  # no such limit here (Windows)
        return 256
    if soft == resource.RLIM_INFINITY:
        return 256
    return max(min(256, soft // 3), 8)


def url_of(server: _Server) -> str:
    from structocr_cli.api.urls import local_url

    return local_url(server.server_address, "/metrics")


def run(
    exporter: Exporter,
    server: _Server,
    log: Logger,
    reload: Callable[[], Sequence[KeySpec]],
    out: IO[str],
) -> int:
    """Serve until SIGINT or SIGTERM (exit 0); SIGHUP reloads the keys. The first line on
    ``out`` is the URL of /metrics, for scripts that started us on port 0."""
    events: queue.SimpleQueue[str] = queue.SimpleQueue()  # put() is safe in a handler
    wanted: dict[int, str] = {signal.SIGINT: "stop", signal.SIGTERM: "stop"}
    if hasattr(signal, "SIGHUP"):
        wanted[signal.SIGHUP] = "reload"
    # Handled before the URL is printed: whoever reads it may signal at once.
    previous = {sig: signal.signal(sig, lambda s, _: events.put(wanted[s])) for sig in wanted}
    serving = threading.Thread(target=server.serve_forever, args=(0.2,), daemon=True)
    try:
        url = url_of(server)
        print(url, file=out, flush=True)
        host = str(server.server_address[0])
        if not is_loopback(host):
            log("warning", f"listening on {host}, not loopback: whoever can reach it can read "
                "the usage figures of every key")  # fmt: skip
        log("info", f"serving {_keys(len(exporter.names))} at {url}")
        serving.start()
        while True:
            try:
                pending = {events.get(timeout=0.5)}
            except queue.Empty:
                continue
            while not events.empty():  # signals that came together are one each
                pending.add(events.get())
            if "stop" in pending:  # before any reload
                break
            _reload(exporter, reload, log)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if serving.is_alive():  # shutdown() waits for a serve_forever() that never ran
            server.shutdown()
        server.server_close()
    log("info", "stopped")
    return 0


def _reload(exporter: Exporter, reload: Callable[[], Sequence[KeySpec]], log: Logger) -> None:
    from structocr_cli.settings.selection import NoKeysError

    try:
        specs = reload()
    except NoKeysError as exc:  # serving no key, no alert could ever fire
        log("warning", f"reload refused, still serving the {_keys(len(exporter.names))} in use: "
            f"{redact(exc.one_line())}")  # fmt: skip
        return
    except StructocrError as exc:
        log("error", f"reload failed, still serving the {_keys(len(exporter.names))} in use: "
            f"{redact(exc.one_line())}")  # fmt: skip
        return
    exporter.use(specs)
    log("info", f"reloaded: serving {_keys(len(specs))}")


def _keys(count: int) -> str:
    return f"{count} key" if count == 1 else f"{count} keys"
