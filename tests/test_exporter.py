"""structocr exporter: the cache and its rules, the HTTP endpoints, and the exposition as
Prometheus's parsers and promtool read it. In process, against the real mock; the
real-process tests (signals, reload, the first line) are in test_exporter_process.py.
"""

from __future__ import annotations

import shutil
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families as classic_families

from structocr_cli.core import BalanceRequest
from structocr_cli.exporter import server as serve
from structocr_cli.exporter.cache import Exporter, View, exposition
from structocr_cli.mock.replies import Reply, balance_document
from structocr_cli.mock.server import MockServer
from structocr_cli.settings.selection import from_keys_file
from tests.conftest import LONG_KEY, StoppedClock, _recorded, mock_log, promtool

OK = Reply.json(200, balance_document())


def _then(first: Reply, later: Reply) -> Any:
    return lambda request: first if request.count == 1 else later


BEHAVIOURS = {
    LONG_KEY: lambda _: OK,
    "fine-key-2-123456": lambda _: Reply.json(200, balance_document(account={"credits_total": 9})),
    # Fine once, then the key is revoked.
    "revoked-later-1234": _then(OK, Reply.error(401, "Invalid or inactive API key")),
    # Fine once, then two seconds per answer.
    "slow-later-123456": _then(OK, Reply.json(200, balance_document(), delay=2)),
}


@pytest.fixture
def api() -> Iterator[MockServer]:
    with MockServer(behaviours=BEHAVIOURS, log=mock_log()) as mock:
        yield mock


class Logged(list[tuple[str, str, dict[str, str]]]):
    def __call__(self, level: str, message: str, **fields: str) -> None:
        self.append((level, message, fields))
        _recorded(level, message, *fields.values())


def exporter(api: MockServer, keys: str, **options: Any) -> tuple[Exporter, Logged]:
    from structocr_cli.api.client import BalanceClient

    log = Logged()
    specs = from_keys_file(keys, "keys.txt", base_url=api.url)
    client = BalanceClient(attempts=1)  # a 500 at once, not after the retries' backoff
    return Exporter(specs, BalanceRequest(timeout=5), {}, log=log, client=client,
                    **options), log  # fmt: skip


def samples(text: str, openmetrics: bool = True) -> dict[str, dict[str, float]]:
    """Value by family and profile, as the parser of that format reads it; promtool lints the
    classic format (it reads no other; the real Prometheus test reads OpenMetrics)."""
    parse = openmetrics_families if openmetrics else classic_families
    found: dict[str, dict[str, float]] = {}
    for family in parse(text):
        assert family.documentation
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            found.setdefault(sample.name, {})[labels] = sample.value
    if shutil.which("promtool") and not openmetrics:
        promtool("check", "metrics", stdin=text)
    _recorded(text)
    return found


KEYS = f"ok = {LONG_KEY}\nbad = wrong-key-12345\nbroken = demo-500\n"


def test_a_failing_key_never_breaks_the_others(api: MockServer) -> None:
    served, log = exporter(api, KEYS)
    text = exposition(served.scrape(), openmetrics=True)
    found = samples(text)
    assert found["structocr_up"] == {"profile=bad": 0, "profile=broken": 0, "profile=ok": 1}
    assert found["structocr_account_credits_remaining"] == {"profile=ok": 48849}
    assert found["structocr_fetch_errors_total"] == {
        "code=unauthorized,profile=bad": 1, "code=server_error,profile=broken": 1,
    }  # fmt: skip
    assert "profile=ok" in found["structocr_last_success_timestamp_seconds"]
    assert set(found["structocr_scrape_duration_seconds"]) == {
        "profile=bad", "profile=broken", "profile=ok"}  # fmt: skip
    errors = {fields["profile"]: message for level, message, fields in log if level == "error"}
    assert set(errors) == {"bad", "broken"}
    assert "HTTP 401" in errors["bad"]
    assert all(LONG_KEY not in message for _, message, _ in log)


def test_scrapes_within_min_interval_are_served_from_the_cache(api: MockServer) -> None:
    served, _ = exporter(api, f"ok = {LONG_KEY}\n", min_interval=60)
    before = api.requests(LONG_KEY)
    first = served.scrape()
    for _ in range(9):
        assert served.scrape()[0].fetched_at == first[0].fetched_at  # its real time, kept
    assert api.requests(LONG_KEY) - before == 1


def test_concurrent_scrapes_share_one_fetch_per_key() -> None:
    keys = {f"slow-{n}-123456789": (lambda _: Reply.json(200, balance_document()))
            for n in range(3)}  # fmt: skip
    with MockServer(behaviours=keys, log=mock_log(), latency_ms=300) as slow:
        served, _ = exporter(slow, "".join(f"k{n} = slow-{n}-123456789\n" for n in range(3)))
        threads = [threading.Thread(target=served.scrape) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        assert [slow.requests(f"slow-{n}-123456789") for n in range(3)] == [1, 1, 1]
        assert slow.most_in_flight == 3  # the keys concurrently


@pytest.mark.timing
def test_a_slow_key_is_served_from_cache_within_the_scrape_timeout(api: MockServer) -> None:
    served, _ = exporter(api, "slow = slow-later-123456\n", min_interval=0.01,
                         scrape_timeout=0.3, stale_after=60)  # fmt: skip
    first = served.scrape()[0]
    time.sleep(0.02)
    started = time.monotonic()
    second = served.scrape()[0]  # its fetch takes 2 s
    waited = time.monotonic() - started
    assert second.up
    assert second.fetched_at == first.fetched_at  # the cached balance
    assert second.outcome is first.outcome
    assert waited < 1.5  # a hang guard: the scrape timeout is 0.3 s, the fetch 2 s


def test_a_key_is_up_until_its_last_success_is_stale(api: MockServer, clock: StoppedClock) -> None:
    served, _ = exporter(api, "rev = revoked-later-1234\n", min_interval=0.01,
                           stale_after=0.4)  # fmt: skip
    assert served.scrape()[0].up
    time.sleep(0.02)
    second = served.scrape()[0]  # the key is now refused, but its balance is recent
    assert second.up
    assert second.outcome is not None
    assert second.errors == {"unauthorized": 1}
    time.sleep(0.02)
    clock.advance(0.45)  # past stale_after
    third = served.scrape()[0]
    assert not third.up
    assert third.outcome is None  # stale figures are left out, not served as current
    found = samples(exposition([third], openmetrics=True))
    assert found["structocr_up"] == {"profile=rev": 0}
    assert "structocr_account_credits_remaining" not in found
    assert "profile=rev" in found["structocr_last_success_timestamp_seconds"]


def test_a_key_failing_the_same_way_is_logged_once(api: MockServer) -> None:
    served, log = exporter(api, "bad = wrong-key-12345\n", min_interval=0.001)
    for _ in range(5):
        served.scrape()
        time.sleep(0.005)
    errors = [entry for entry in log if entry[0] == "error"]
    assert len(errors) == 1
    assert errors[0][2] == {"profile": "bad", "key": "***************"}
    assert served.scrape()[0].errors["unauthorized"] >= 5  # every failure is counted


def test_a_key_that_recovers_is_logged_once_more(api: MockServer) -> None:
    from structocr_cli.exporter.cache import Exporter as Served

    flips = {"flip-key-123456789": lambda r: OK if r.count % 2 == 0 else Reply.error(401, "no")}
    with MockServer(behaviours=flips, log=mock_log()) as mock:
        log = Logged()
        served = Served(from_keys_file("f = flip-key-123456789\n", "keys.txt", mock.url),
                        BalanceRequest(timeout=5), {}, min_interval=0.001, log=log)  # fmt: skip
        for _ in range(3):
            served.scrape()
            time.sleep(0.005)
    assert [(level, message[:8]) for level, message, _ in log] == [
        ("error", "HTTP 401"), ("info", "the bala"), ("error", "HTTP 401"),
    ]  # fmt: skip


def test_reloading_keeps_the_cache_of_unchanged_keys(api: MockServer, clock: StoppedClock) -> None:
    served, _ = exporter(api, f"ok = {LONG_KEY}\n")
    first = served.scrape()[0]
    served.use(from_keys_file(f"ok = {LONG_KEY}\nnew = fine-key-2-123456\n", "keys.txt", api.url))
    views = {view.name: view for view in served.scrape()}
    assert views["ok"].fetched_at == first.fetched_at  # not fetched again
    assert views["new"].up
    served.use(from_keys_file("ok = fine-key-2-123456\n", "k", api.url))  # another key
    assert served.names == ["ok"]
    clock.advance(1)
    assert served.scrape()[0].fetched_at != first.fetched_at


def test_account_figures_once_per_account_key_figures_per_key(api: MockServer) -> None:
    keys = f"a = {LONG_KEY}\nb = demo\nc = fine-key-2-123456\n"  # a and b: one account
    served, _ = exporter(api, keys)
    found = samples(exposition(served.scrape(), openmetrics=True))
    assert found["structocr_account_credits_remaining"] == {"profile=a": 48849, "profile=c": 48849}
    assert found["structocr_account_credits_granted"] == {"profile=a": 50569, "profile=c": 9}
    assert set(found["structocr_key_credits_used"]) == {"profile=a", "profile=b", "profile=c"}


def test_odd_profile_names_are_escaped_in_labels() -> None:
    views = [View('we"ird\\name\nx', False, None, None, 0.5, {"no_answer": 2})]
    for openmetrics in (True, False):
        found = samples(exposition(views, openmetrics), openmetrics)
        assert found["structocr_up"] == {'profile=we"ird\\name\nx': 0}


# Over HTTP.


@pytest.fixture
def endpoint(api: MockServer) -> Iterator[str]:
    served, _ = exporter(api, KEYS)
    server = serve.listen(served, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield serve.url_of(server).removesuffix("/metrics")
    server.shutdown()
    server.server_close()


def get(url: str, accept: str | None = None) -> tuple[int, str, str]:
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read().decode()


PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)


def test_openmetrics_when_the_scraper_asks_for_it(endpoint: str) -> None:
    status, content_type, text = get(f"{endpoint}/metrics", PROMETHEUS_ACCEPT)
    assert status == 200  # whatever the keys' state
    assert content_type == serve.OPENMETRICS_TYPE
    assert text.endswith("# EOF\n")
    assert samples(text)["structocr_up"]["profile=ok"] == 1
    assert "# TYPE structocr_fetch_errors counter" in text


def test_the_classic_text_format_otherwise(endpoint: str) -> None:
    status, content_type, text = get(f"{endpoint}/metrics")
    assert status == 200
    assert content_type == serve.CLASSIC_TYPE
    assert "# EOF" not in text
    assert "# TYPE structocr_fetch_errors_total counter" in text
    found = samples(text, openmetrics=False)
    assert found["structocr_account_credits_remaining"] == {"profile=ok": 48849}
    assert LONG_KEY not in text


@pytest.mark.parametrize(
    ("path", "status", "says"),
    [("/", 200, 'href="/metrics"'), ("/healthz", 200, "ok"), ("/nope", 404, "/metrics"),
     ("/metrics/../x", 404, "not found")],
)  # fmt: skip
def test_the_other_paths(endpoint: str, path: str, status: int, says: str) -> None:
    got, _, body = get(endpoint + path)
    assert got == status
    assert says in body


@pytest.mark.parametrize(
    ("accept", "openmetrics"),
    [("", False), ("text/plain", False), ("application/openmetrics-text", True),
     (PROMETHEUS_ACCEPT, True), ("text/plain;version=0.0.4,application/openmetrics-text;q=0.5",
      False), ("application/openmetrics-text;q=0", False), ("*/*", False),
     ("application/openmetrics-text;q=oops", False)],
)  # fmt: skip
def test_content_negotiation(accept: str, openmetrics: bool) -> None:
    assert serve.wants_openmetrics(accept) is openmetrics


@pytest.mark.parametrize(
    ("text", "expected"),
    [("127.0.0.1:9811", ("127.0.0.1", 9811)), ("[::1]:0", ("::1", 0)),
     ("0.0.0.0:80", ("0.0.0.0", 80))],  # noqa: S104 (a parsing case)
)  # fmt: skip
def test_listen_addresses(text: str, expected: tuple[str, int]) -> None:
    assert serve.parse_listen(text) == expected


@pytest.mark.parametrize("text", ["9811", ":9811", "host:", "host:99999", "host:x"])
def test_bad_listen_addresses_are_usage_errors(text: str) -> None:
    from structocr_cli.api.errors import UsageError

    with pytest.raises(UsageError, match="is not HOST:PORT"):
        serve.parse_listen(text)


def test_loopback_or_not() -> None:
    assert serve.is_loopback("127.0.0.1")
    assert serve.is_loopback("::1")
    assert serve.is_loopback("localhost")
    assert not serve.is_loopback("0.0.0.0")  # noqa: S104
    assert not serve.is_loopback("example.com")


def test_log_lines_in_text_and_json() -> None:
    import io
    import json

    for form in ("text", "json"):
        stream = io.StringIO()
        serve.Logger(form, stream)("error", "HTTP 401\x1b[2J", profile="ci", key="sk_l…2b1c")
        line = stream.getvalue()
        assert line.count("\n") == 1
        assert "\x1b" not in line  # a terminal control from a server is escaped
        if form == "json":
            entry = json.loads(line)
            assert entry["profile"] == "ci"
            assert entry["level"] == "error"
        else:
            assert " error profile=ci key=sk_l…2b1c: HTTP 401" in line


def test_a_bug_while_rendering_is_a_500_and_one_log_line(
    api: MockServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    def broken(*args: object) -> str:
        raise RuntimeError(f"boom {LONG_KEY}")

    monkeypatch.setattr("structocr_cli.exporter.cache.exposition", broken)
    served, _ = exporter(api, f"ok = {LONG_KEY}\n")
    stream = io.StringIO()
    server = serve.listen(served, "127.0.0.1", 0, serve.Logger("text", stream))
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        status, _, body = get(serve.url_of(server))
    finally:
        server.shutdown()
        server.server_close()
    assert status == 500
    assert "internal error" in body
    assert stream.getvalue().count("\n") == 1
    assert "error: internal error while rendering: RuntimeError" in stream.getvalue()
    assert LONG_KEY not in stream.getvalue() + body


def test_a_silent_client_does_not_hold_a_thread_for_ever(
    endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    monkeypatch.setattr(serve._Handler, "timeout", 0.2)
    host, port = endpoint.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as silent:
        silent.sendall(b"GET /metrics HTTP/1.1\r\n")  # and never the rest
        assert silent.recv(1024) == b""  # closed by the server, not left waiting


def test_listening_on_ipv6_loopback(api: MockServer) -> None:
    import socket

    try:
        socket.socket(socket.AF_INET6).bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback here")
    served, _ = exporter(api, f"ok = {LONG_KEY}\n")
    server = serve.listen(served, "::1", 0)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        url = serve.url_of(server)
        status, _, text = get(url)
    finally:
        server.shutdown()
        server.server_close()
    assert url.startswith("http://[::1]:")
    assert status == 200
    assert 'structocr_up{profile="ok"} 1' in text


def test_a_malformed_redirect_is_a_counted_fetch_error(api: MockServer) -> None:
    served, log = exporter(api, f"ok = {LONG_KEY}\nmoved = fault-redirect-bad-ipv6\n")
    found = samples(exposition(served.scrape(), openmetrics=True))
    assert found["structocr_up"] == {"profile=moved": 0, "profile=ok": 1}
    assert found["structocr_fetch_errors_total"] == {"code=bad_answer,profile=moved": 1}
    assert not [message for _, message, _ in log if "internal error" in message]


def test_the_text_log_escapes_bidi_and_zero_width_characters() -> None:
    import io

    stream = io.StringIO()
    serve.Logger("text", stream)("error", "HTTP 403: \u202eyrev\u202c \u200b", profile="p")
    assert "\\u202eyrev\\u202c \\u200b" in stream.getvalue()
    assert "\u202e" not in stream.getvalue()
