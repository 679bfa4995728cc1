"""The exporter's HTTP layer as an attacker meets it: request bodies and chunked requests,
HEAD, clients that trickle or never finish, more connections than it may hold, a scraper's
own timeout, a closed stderr and dying fetch workers. In process, on loopback."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from structocr_cli.core import BalanceRequest
from structocr_cli.exporter import server as serve
from structocr_cli.exporter.cache import Exporter, exposition
from structocr_cli.mock.replies import Reply, balance_document
from structocr_cli.mock.server import MockServer
from structocr_cli.settings.selection import from_keys_file
from tests.conftest import LONG_KEY, mock_log


@pytest.fixture
def api() -> Iterator[MockServer]:
    behaviours = {
        LONG_KEY: lambda _: Reply.json(200, balance_document()),
        "stalled-key-123456": lambda _: Reply(200, delay=30),
    }
    with MockServer(behaviours=behaviours, log=mock_log()) as mock:
        yield mock


def make(api: MockServer, keys: str, **options: object) -> Exporter:
    from structocr_cli.api.client import BalanceClient

    specs = from_keys_file(keys, "keys.txt", base_url=api.url)
    client = BalanceClient(attempts=1)
    return Exporter(specs, BalanceRequest(timeout=5), {}, client=client, **options)  # type: ignore[arg-type]


@pytest.fixture
def server(api: MockServer) -> Iterator[serve._Server]:
    import io

    running = serve.listen(make(api, f"ok = {LONG_KEY}\n"), "127.0.0.1", 0,
                           serve.Logger("text", io.StringIO()))  # fmt: skip
    threading.Thread(target=running.serve_forever, args=(0.05,), daemon=True).start()
    yield running
    running.shutdown()
    running.server_close()


def address(server: serve._Server) -> tuple[str, int]:
    host, port = server.server_address[:2]
    return str(host), int(port)


def exchange(server: serve._Server, request: bytes, wait: float = 5) -> bytes:
    """Send ``request`` raw and read until the server closes the connection."""
    with socket.create_connection(address(server), timeout=wait) as conn:
        conn.sendall(request)
        received = b""
        while chunk := conn.recv(65536):
            received += chunk
    return received


def test_a_request_with_a_body_gets_one_400_and_the_connection_closes(
    server: serve._Server,
) -> None:
    smuggled = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
    head = f"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: {len(smuggled)}\r\n\r\n"
    received = exchange(server, head.encode() + smuggled)
    assert received.startswith(b"HTTP/1.1 400 ")
    assert received.count(b"HTTP/1.1 ") == 1  # the body was not answered as a request
    assert b"Connection: close" in received


def test_a_chunked_request_gets_a_proper_400(server: serve._Server) -> None:
    request = (b"GET /metrics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5\r\nhello\r\n0\r\n\r\n")  # fmt: skip
    received = exchange(server, request)
    assert received.startswith(b"HTTP/1.1 400 ")
    assert b"Content-Type:" in received  # a head, not an HTTP/0.9-style bare body
    assert received.count(b"HTTP/1.1 ") == 1


@pytest.mark.parametrize("path", ["/", "/metrics", "/healthz"])
def test_head_answers_like_get_without_the_body(server: serve._Server, path: str) -> None:
    received = exchange(server, f"HEAD {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                        .encode())  # fmt: skip
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    length = next(line for line in head.split(b"\r\n") if line.startswith(b"Content-Length:"))
    assert int(length.split(b":")[1]) > 0
    assert body == b""


def test_a_request_trickled_a_byte_at_a_time_is_dropped_at_the_deadline(
    server: serve._Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each byte comes well within the socket timeout; the whole request never does."""
    monkeypatch.setattr(serve, "REQUEST_DEADLINE", 1.0)
    with socket.create_connection(address(server), timeout=10) as conn:
        conn.sendall(b"GET /metrics HTTP/1.1\r\n")
        closed = False
        for _ in range(40):  # 40 x 0.2 s: long past the deadline and the reaper's round
            try:
                conn.sendall(b"X")
            except OSError:
                closed = True
                break
            time.sleep(0.2)
        if not closed:
            conn.settimeout(1)
            closed = conn.recv(1024) == b""
    assert closed
    assert server.dropped >= 1


def test_more_connections_than_the_cap_drop_the_oldest_idle_and_scrapes_go_on(
    server: serve._Server,
) -> None:
    server.max_connections = 8
    held = [socket.create_connection(address(server), timeout=5) for _ in range(30)]
    try:
        for conn in held:
            conn.sendall(b"GET /metrics HTTP/1.1\r\n")  # never finished
        received = exchange(server, b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n")
        assert received.startswith(b"HTTP/1.1 200 ")
        assert received.endswith(b"ok\n")
        assert server.dropped >= 22
        assert held[0].recv(1024) == b""  # the oldest was let go
    finally:
        for conn in held:
            conn.close()


def test_the_connection_cap_follows_the_descriptor_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    resource = pytest.importorskip("resource")
    monkeypatch.setattr(resource, "getrlimit", lambda _: (1024, 4096))
    assert serve.connection_cap() == 256
    monkeypatch.setattr(resource, "getrlimit", lambda _: (60, 4096))
    assert serve.connection_cap() == 20


@pytest.mark.parametrize(
    ("configured", "header", "budget"),
    [(8.0, None, 8.0), (8.0, "10", 8.0), (8.0, "3", 2.5), (8.0, "0.4", 0.0),
     (8.0, "nan", 8.0), (8.0, "inf", 8.0), (8.0, "-1", 8.0), (8.0, "soon", 8.0),
     (30.0, "10", 9.0)],
)  # fmt: skip
def test_a_scrape_waits_no_longer_than_the_scraper_does(
    configured: float, header: str | None, budget: float
) -> None:
    assert serve.scrape_budget(configured, header) == pytest.approx(budget)


@pytest.mark.timing
def test_a_stalled_key_does_not_cost_the_scraper_the_whole_target(api: MockServer) -> None:
    """Prometheus says it gives up after 1 s: the answer comes before, the stalled key
    down and the good one up (a hang guard, not a benchmark)."""
    import io
    import urllib.request

    served = make(api, f"ok = {LONG_KEY}\nstalled = stalled-key-123456\n", scrape_timeout=30)
    running = serve.listen(served, "127.0.0.1", 0, serve.Logger("text", io.StringIO()))
    threading.Thread(target=running.serve_forever, args=(0.05,), daemon=True).start()
    try:
        request = urllib.request.Request(serve.url_of(running),
                                         headers={serve.SCRAPE_TIMEOUT_HEADER: "1"})  # fmt: skip
        started = time.monotonic()
        with urllib.request.urlopen(request, timeout=20) as response:
            text = response.read().decode()
        took = time.monotonic() - started
    finally:
        running.shutdown()
        running.server_close()
    assert 'structocr_up{profile="ok"} 1' in text
    assert 'structocr_up{profile="stalled"} 0' in text
    assert took < 10  # the configured 30 s was not waited for


def test_a_closed_stderr_never_stops_the_fetch_workers(api: MockServer) -> None:
    failing = "".join(f"bad{n} = wrong-key-{n:08d}\n" for n in range(10))

    def closed_stderr(level: str, message: str, **fields: str) -> None:
        raise BrokenPipeError(32, "Broken pipe")

    served = make(api, failing + f"ok = {LONG_KEY}\n", log=closed_stderr, concurrency=4,
                  min_interval=0.01)  # fmt: skip
    for _ in range(3):
        views = {view.name: view for view in served.scrape()}
        time.sleep(0.02)
    assert views["ok"].up
    workers = [t for t in threading.enumerate() if t.name.startswith("structocr-fetch-")]
    assert len([t for t in workers if t.is_alive()]) >= 4
    assert served.worker_restarts == 0


def test_the_text_logger_survives_a_closed_stream() -> None:
    import io

    stream = io.StringIO()
    stream.close()
    logger = serve.Logger("text", stream)
    logger("error", "nowhere to go")
    assert logger.dropped == 1


def test_a_worker_that_dies_is_replaced_and_counted(api: MockServer) -> None:
    served = make(api, f"ok = {LONG_KEY}\n", concurrency=1)
    served._jobs.put(None)  # type: ignore[arg-type]  # no key: fails even its error handling
    give_up = time.monotonic() + 5
    while served.worker_restarts == 0 and time.monotonic() < give_up:
        time.sleep(0.01)
    assert served.worker_restarts == 1
    view = served.scrape(5)[0]
    assert view.up  # the replacement fetched it
    text = exposition([view], openmetrics=False, restarts=served.worker_restarts)
    assert "structocr_exporter_worker_restarts_total 1" in text


def test_ipv4_mapped_loopback_is_loopback() -> None:
    assert serve.is_loopback("::ffff:127.0.0.1")
    assert not serve.is_loopback("::ffff:10.0.0.1")


def test_a_host_name_listens_on_the_family_it_resolves_to(
    api: MockServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``ip6-localhost`` names ::1 only: it must not be bound as an IPv4 address."""
    try:
        socket.socket(socket.AF_INET6).bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback here")
    real = socket.getaddrinfo

    def resolve(host: str, *args: object, **kwargs: object) -> object:
        if host == "ip6-localhost":
            return [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("::1", 0, 0, 0))]
        return real(host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    running = serve.listen(make(api, f"ok = {LONG_KEY}\n"), "ip6-localhost", 0)
    try:
        assert running.address_family == socket.AF_INET6
        assert serve.url_of(running).startswith("http://[::1]:")
    finally:
        running.server_close()


@pytest.mark.parametrize(
    "headers",
    [b"Content-Length: 0\r\nContent-Length: 40\r\n",  # two lengths: a proxy may read the other
     b"\x00\r\nContent-Length: 40\r\n",  # a line that is no header hides the ones after it
     b"Expect: 100-continue\r\nContent-Length: 40\r\n"],  # no interim 100 answer either
)  # fmt: skip
def test_a_body_hidden_from_a_naive_parser_is_still_refused(
    server: serve._Server, headers: bytes
) -> None:
    smuggled = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
    received = exchange(server, b"GET /healthz HTTP/1.1\r\n" + headers + b"\r\n" + smuggled)
    assert received.startswith(b"HTTP/1.1 400 ")
    assert received.count(b"HTTP/1.1 ") == 1


def test_a_closed_server_leaves_no_reaper_behind(api: MockServer) -> None:
    before = set(threading.enumerate())
    running = serve.listen(make(api, f"ok = {LONG_KEY}\n"), "127.0.0.1", 0)
    (reaper,) = [t for t in set(threading.enumerate()) - before if t.name == "structocr-reaper"]
    running.server_close()
    reaper.join(2)
    assert not reaper.is_alive()
