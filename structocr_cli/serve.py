"""``structocr exporter`` over HTTP: ``/metrics``, ``/`` and ``/healthz`` on a threading
server, one log line per event, and the signals (SIGINT and SIGTERM stop, SIGHUP reloads
the keys). Standard library only.
"""

from __future__ import annotations

import ipaddress
import json
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

from structocr_cli.errors import StructocrError, UsageError
from structocr_cli.keys import redact, sanitize

if TYPE_CHECKING:
    from structocr_cli.exporter import Exporter
    from structocr_cli.selection import KeySpec

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
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


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
        self._lock = threading.Lock()

    def __call__(self, level: str, message: str, **fields: str) -> None:
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        if self.form == "json":
            line = json.dumps({"time": when, "level": level, "message": message, **fields},
                              ensure_ascii=True)  # fmt: skip
        else:
            named = "".join(f" {name}={sanitize(value, 80)}" for name, value in fields.items())
            line = f"{when} {level}{named}: {sanitize(message, 1000)}"
        with self._lock:
            print(line, file=self.stream, flush=True)


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a stop never waits for a scrape
    exporter: Exporter
    log: Logger

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A scraper that hangs up mid-answer is routine; nothing here prints a traceback.
        error = sys.exc_info()[1]
        self.log("warning", f"while answering {client_address[0]}: {type(error).__name__}")


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    timeout = 30
    """Seconds a connection may stay silent: an idle or stalled client does not hold a
    thread for ever (a scraper keeping its connection between scrapes reconnects)."""

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path == "/metrics":
            self._metrics()
        elif path == "/":
            self._send(200, "text/html; charset=utf-8", _HOME)
        elif path == "/healthz":
            self._send(200, "text/plain; charset=utf-8", b"ok\n")
        else:
            self._send(404, "text/plain; charset=utf-8", b"not found: try /metrics\n")

    def _metrics(self) -> None:
        from structocr_cli.exporter import exposition

        openmetrics = wants_openmetrics(self.headers.get("Accept", ""))
        try:
            text = exposition(self.server.exporter.scrape(), openmetrics)
        except Exception as exc:  # a bug: said once, and Prometheus sees a failed scrape
            self.server.log("error", f"internal error while rendering: {type(exc).__name__}")
            self._send(500, "text/plain; charset=utf-8", b"internal error: see the log\n")
            return
        self._send(200, OPENMETRICS_TYPE if openmetrics else CLASSIC_TYPE, text.encode())

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes are not logged: one a second would drown what matters."""


def listen(exporter: Exporter, host: str, port: int, log: Logger | None = None) -> _Server:
    """A server for ``exporter`` bound to (host, port), not yet serving."""
    kind = _Server6 if ":" in host else _Server
    try:
        server = kind((host, port), _Handler)
    except OSError as exc:
        raise UsageError(
            f"cannot listen on {sanitize(host, 80)}:{port}: {exc.strerror or exc}",
            "Choose another --listen address or port (port 0 picks a free one)",
        ) from None
    server.exporter = exporter
    server.log = log or Logger("text")
    return server


def url_of(server: _Server) -> str:
    host, port = server.server_address[:2]
    host = host.decode() if isinstance(host, bytes) else str(host)
    return f"http://{f'[{host}]' if ':' in host else host}:{port}/metrics"


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
        log("info", f"serving {len(exporter.names)} keys at {url}")
        serving.start()
        while True:
            try:
                event = events.get(timeout=0.5)
            except queue.Empty:
                continue
            if event == "stop":
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
    from structocr_cli.selection import NoKeysError

    try:
        specs = reload()
    except NoKeysError as exc:  # serving no key, no alert could ever fire
        log("warning", f"reload refused, still serving the {len(exporter.names)} keys in use: "
            f"{redact(exc.one_line())}")  # fmt: skip
        return
    except StructocrError as exc:
        log("error", f"reload failed, still serving the {len(exporter.names)} keys in use: "
            f"{redact(exc.one_line())}")  # fmt: skip
        return
    exporter.use(specs)
    log("info", f"reloaded: serving {len(specs)} keys")
