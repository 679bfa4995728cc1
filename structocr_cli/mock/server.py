"""A local StructOCR server for demos, tests and offline rehearsal. Standard library only.

Each API key maps to a *behaviour*: a function from the request to a ``Reply``. Built-in
demo keys live in ``BUILTIN``; ``--fixtures`` and ``MockServer(behaviours=...)`` add or
replace keys, so new failure modes are one function each.
"""

from __future__ import annotations

import queue
import signal
import socket
import ssl
import struct
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from structocr_cli.api.errors import UsageError
from structocr_cli.api.keys import mask, sanitize
from structocr_cli.api.urls import local_url
from structocr_cli.mock.replies import (
    BUILTIN,
    Behaviour,
    Reply,
    Request,
    load_fixtures,
)

API_PATH = "/v1/account/balance"


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    # The head and the body are separate writes; on a kept-alive connection Nagle's
    # algorithm would hold the body until the client's delayed ACK, 40 ms later.
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        key = self.headers.get("x-api-key")
        reply = self.server.reply_for(self.path, key)
        self.server.log(
            f'{self.client_address[0]} "GET {self.path}" key={_shown(key)} -> {reply.status}'
        )
        with self.server.answering():
            time.sleep(self.server.latency)
            self._send(reply)

    def _send(self, reply: Reply) -> None:
        self.close_connection = not reply.keeps_alive
        time.sleep(reply.delay)
        if not reply.drop:
            self._write(_head(reply), reply.head_drip)
            body = reply.body if reply.cut is None else reply.body[: reply.cut]
            self._write(body, reply.drip)
        if reply.reset:  # linger 0: close() sends RST, as a crashed proxy would
            self.connection.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
            )

    def _write(self, data: bytes, drip: float) -> None:
        if not drip:
            self.wfile.write(data)
            return
        for byte in data:
            self.wfile.write(bytes([byte]))
            self.wfile.flush()
            time.sleep(drip)

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default per-request line; ``do_GET`` logs its own, key masked."""


def _base_url(server: _Server) -> str:
    return local_url(server.server_address, "/v1")


def _head(reply: Reply) -> bytes:
    """The status line and headers, written by hand so that they can be dripped."""
    try:
        phrase = HTTPStatus(reply.status).phrase
    except ValueError:
        phrase = ""
    lines = [f"HTTP/1.1 {reply.status} {phrase}".rstrip()]
    lines += [f"{name}: {value}" for name, value in reply.headers]
    if reply.length:
        declared = len(reply.body) if reply.declared is None else reply.declared
        lines.append(f"Content-Length: {declared}")
    lines.append("Connection: keep-alive" if reply.keeps_alive else "Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


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
        self.latency = 0.0
        """Seconds added before every answer (--latency-ms)."""
        self.in_flight = self.most_in_flight = 0
        self.connections = 0
        """Connections accepted so far (a client that reuses them opens few)."""
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()

    @contextmanager
    def answering(self) -> Iterator[None]:
        """Counts the requests being answered at once (most_in_flight: the peak)."""
        with self._lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            yield
        finally:
            with self._lock:
                self.in_flight -= 1

    def reply_for(self, path: str, key: str | None) -> Reply:
        # A proxy's request names the whole URL ("absolute-form"); servers must accept it.
        if urlsplit(path).path != API_PATH:  # as a web server says it, not as the API would
            return Reply(404, b"404 page not found\n", (("Content-Type", "text/plain"),))
        if key is None:
            return Reply.error(401, "Missing x-api-key header")
        behaviour = self.behaviours.get(key)
        if behaviour is None:
            return Reply.error(401, "Invalid or inactive API key")
        with self._lock:
            count = self._counts[key] = self._counts.get(key, 0) + 1
        return behaviour(Request(key, count))

    def count(self, key: str) -> int:
        with self._lock:
            return self._counts.get(key, 0)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._lock:
            self.connections += 1
        super().process_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up mid-answer (the CLI does, past its size cap or deadline)
        # is part of the job; anything else is logged as one line too, never a traceback.
        error = sys.exc_info()[1]
        self.log(f"{client_address[0]}: {type(error).__name__} while answering")

    def log(self, line: str) -> None:
        with self._lock:
            print(f"mock: {sanitize(line)}", file=self.log_stream, flush=True)


class _Target(_Server):
    """Where ``fault-redirect`` points: answers nothing useful, records any key it is sent."""

    def __init__(self, host: str, log: IO[str]) -> None:
        super().__init__((host, 0), {}, log)
        self.keys_received = 0

    def reply_for(self, path: str, key: str | None) -> Reply:
        if key is not None:
            with self._lock:
                self.keys_received += 1
        return Reply.error(404, "Not found")


class MockServer:
    """The mock on a port of its own (``port=0`` picks a free one), with the demo keys, the
    fault keys of ``faults.catalogue`` and any ``behaviours`` given."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        behaviours: Mapping[str, Behaviour] | None = None,
        log: IO[str] | None = None,
        tls: ssl.SSLContext | None = None,
        latency_ms: float = 0.0,
    ) -> None:
        """``tls``: serve HTTPS with this server-side context (tests make its certificate);
        ``latency_ms``: wait this long before every answer."""
        from structocr_cli.mock.faults import catalogue

        stream = log or sys.stderr
        self.target = _Target(host, stream)
        self.faults = catalogue(_base_url(self.target))
        fault_keys = {key: fault.behaviour for key, fault in self.faults.items()}
        merged = {**BUILTIN, **fault_keys, **(behaviours or {})}
        try:
            self._server = _Server((host, port), merged, stream)
        except OSError:
            self.target.server_close()
            raise
        self._server.latency = max(latency_ms, 0.0) / 1000
        self.scheme = "http"
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
            self.scheme = "https"
        self._threads: list[threading.Thread] = []
        self._serving: list[_Server] = []

    @property
    def connections(self) -> int:
        """How many connections clients have opened to this mock."""
        return self._server.connections

    @property
    def most_in_flight(self) -> int:
        """The most requests this mock has answered at once."""
        return self._server.most_in_flight

    def requests(self, key: str) -> int:
        """How many requests have been made with ``key`` so far."""
        return self._server.count(key)

    @property
    def keys_at_redirect_target(self) -> int:
        """How many requests carrying a key reached ``fault-redirect``'s target."""
        return self.target.keys_received

    @property
    def url(self) -> str:
        return _base_url(self._server).replace("http://", f"{self.scheme}://", 1)

    def start(self) -> MockServer:
        self._serve(self.target)
        self._serve(self._server)
        return self

    def _serve(self, server: _Server) -> None:
        self._serving.append(server)
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        thread.start()
        self._threads.append(thread)

    def stop(self) -> None:
        for server in self._serving:  # shutdown() waits forever on one that never served
            server.shutdown()
        for server in (self._server, self.target):
            server.server_close()
        for thread in self._threads:
            thread.join()

    def __enter__(self) -> MockServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def run(
    host: str,
    port: int,
    fixtures: Path | None,
    out: IO[str],
    log: IO[str],
    latency_ms: float = 0.0,
) -> None:
    """Serve until Ctrl-C or SIGTERM; the first line on ``out`` is the base URL."""
    behaviours = load_fixtures(fixtures) if fixtures else {}
    try:
        server = MockServer(host, port, behaviours, log, latency_ms=latency_ms)
    except OSError as exc:
        raise UsageError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}",
            "Choose another --port, or --port 0 for any free one",
        ) from None
    # Fixture keys are the user's and are not listed; built-in demo keys are public.
    listed = ", ".join(BUILTIN) + (f" and {len(behaviours)} from fixtures" if behaviours else "")
    # Signals are handled before the URL is printed (whoever reads it may signal at once),
    # and only noted: an interrupt raised in the middle of starting the servers would leave
    # stop() waiting for a server loop that never ran.
    stops: queue.SimpleQueue[int] = queue.SimpleQueue()  # put() is safe in a handler
    wanted = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, lambda signum, _: stops.put(signum)) for sig in wanted}
    try:
        print(server.url, file=out, flush=True)
        print(
            f"mock: serving {API_PATH}; keys: {listed}; {len(server.faults)} fault keys "
            "(structocr mock --list-faults); Ctrl-C to stop",
            file=log,
            flush=True,
        )
        server.start()
        while True:
            try:
                stops.get(timeout=0.5)
                break
            except queue.Empty:
                continue
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        server.stop()
    print("mock: stopped", file=log, flush=True)


def list_faults(out: IO[str]) -> None:
    """One line per fault key: the key, the exit code structocr balance gives, what it does."""
    from structocr_cli.mock.faults import catalogue

    faults = catalogue("http://127.0.0.1:0/v1")
    width = max(len(key) for key in faults)
    for key, fault in faults.items():
        out.write(f"{key:<{width}}  {fault.exit_code:>3}  {fault.description}\n")
