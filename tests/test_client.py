"""Client rules, each pinned: requests intercepted with `responses`, timing on loopback."""

from __future__ import annotations

import io
import itertools
import json
import threading
import time

import pytest
import requests
import responses
from responses.registries import OrderedRegistry

from structocr_cli.api.client import USER_AGENT, BalanceClient
from structocr_cli.api.errors import (
    BadAnswerError,
    DeadlineError,
    HTTPStatusError,
    NoAnswerError,
    RedirectError,
)
from structocr_cli.api.failures import retry_after
from structocr_cli.mock.replies import Reply, balance_document
from structocr_cli.mock.server import MockServer

BASE = "https://api.test/v1"
URL = BASE + "/account/balance"


class FakeClock:
    """Sleeps advance a fake monotonic clock, so retry tests neither wait nor flake."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def client(clock: FakeClock) -> BalanceClient:
    return BalanceClient(sleep=clock.sleep, clock=clock)


@responses.activate
def test_sends_key_accept_and_user_agent(client: BalanceClient) -> None:
    responses.get(URL, json=balance_document())
    client.fetch(BASE, "demo-key", 5)
    sent = responses.calls[0].request.headers
    assert sent["x-api-key"] == "demo-key"
    assert sent["Accept"] == "application/json"
    assert sent["User-Agent"] == USER_AGENT
    assert USER_AGENT.startswith("structocr-cli/")


@responses.activate
def test_no_cookie_carries_over_from_one_key_to_the_next(client: BalanceClient) -> None:
    # Sessions are reused between keys (their connections): a cookie set for one key's
    # request must not tie the next key's request to it.
    responses.get(URL, json=balance_document(), headers={"Set-Cookie": "sid=for-key-a; Path=/"})
    client.fetch(BASE, "key-a-123456789", 5)
    client.fetch(BASE, "key-b-123456789", 5)
    assert len(responses.calls) == 2
    assert "Cookie" not in responses.calls[1].request.headers


@responses.activate(registry=OrderedRegistry)
@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_retries_retryable_statuses_then_succeeds(
    client: BalanceClient, clock: FakeClock, status: int
) -> None:
    responses.get(URL, status=status, json={"error": "x"})
    responses.get(URL, status=status, json={"error": "x"})
    responses.get(URL, json=balance_document())
    assert client.fetch(BASE, "k", 30).account.credits_remaining == 48849
    assert len(responses.calls) == 3
    assert len(clock.sleeps) == 2


@responses.activate
@pytest.mark.parametrize("status", [400, 401, 403, 404, 418, 501])
def test_does_not_retry_other_statuses(client: BalanceClient, status: int) -> None:
    responses.get(URL, status=status, json={"error": "nope"})
    with pytest.raises(HTTPStatusError) as caught:
        client.fetch(BASE, "k", 30)
    assert caught.value.status == status
    assert len(responses.calls) == 1


@responses.activate
def test_at_most_three_attempts_with_growing_jittered_backoff(
    client: BalanceClient, clock: FakeClock
) -> None:
    responses.get(URL, status=500, json={"error": "Failed to fetch usage data"})
    with pytest.raises(HTTPStatusError) as caught:
        client.fetch(BASE, "k", 30)
    assert len(responses.calls) == 3
    assert caught.value.exit_code == 50
    assert "Failed to fetch usage data" in caught.value.message
    first, second = clock.sleeps
    assert 0.25 <= first <= 0.5
    assert 0.5 <= second <= 1.0


def test_backoff_is_jittered() -> None:
    waits = set()
    for _ in range(5):
        clock = FakeClock()
        with responses.RequestsMock() as mocked:
            mocked.get(URL, status=503)
            with pytest.raises(HTTPStatusError):
                BalanceClient(sleep=clock.sleep, clock=clock).fetch(BASE, "k", 30)
        waits.add(clock.sleeps[0])
    assert len(waits) > 1


@responses.activate(registry=OrderedRegistry)
def test_retry_after_within_deadline_is_honoured(client: BalanceClient, clock: FakeClock) -> None:
    responses.get(URL, status=429, headers={"Retry-After": "7"})
    responses.get(URL, json=balance_document())
    client.fetch(BASE, "k", 30)
    assert clock.sleeps == [7.0]


@responses.activate
def test_retry_after_beyond_deadline_stops_at_once(
    client: BalanceClient, clock: FakeClock
) -> None:
    responses.get(URL, status=429, headers={"Retry-After": "120"})
    with pytest.raises(HTTPStatusError) as caught:
        client.fetch(BASE, "k", 30)
    assert len(responses.calls) == 1
    assert clock.sleeps == []
    assert caught.value.exit_code == 40
    assert "retry in 120 s" in caught.value.hint
    assert "UTC" in caught.value.hint


def test_retry_after_parses_seconds_and_http_dates() -> None:
    assert retry_after("5") == 5.0
    assert retry_after(None) is None
    assert retry_after("soon") is None
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    assert retry_after("\u0664\u0664") is None  # digits, but not ASCII ones


def test_retry_after_beyond_any_deadline_is_capped() -> None:
    assert retry_after("9" * 400) == 366 * 86400.0
    assert retry_after("Fri, 31 Dec 9999 23:59:59 GMT") == 366 * 86400.0


@responses.activate
@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_redirects_are_refused_naming_the_target(client: BalanceClient, status: int) -> None:
    responses.get(URL, status=status, headers={"Location": "https://evil.test/steal"})
    responses.get("https://evil.test/steal", json=balance_document())
    with pytest.raises(RedirectError) as caught:
        client.fetch(BASE, "k", 30)
    assert "evil.test" in caught.value.message
    assert caught.value.exit_code == 61
    assert [call.request.url for call in responses.calls] == [URL]


REFERENCE_BASE = "https://structocr.com/v1"
SDK_BASE = "https://api.structocr.com/v1"


@responses.activate
@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_move_between_the_apis_hosts_is_followed(client: BalanceClient, status: int) -> None:
    responses.get(REFERENCE_BASE + "/account/balance", status=status,
                  headers={"Location": SDK_BASE + "/account/balance"})  # fmt: skip
    responses.get(SDK_BASE + "/account/balance", json=balance_document())
    balance = client.fetch(REFERENCE_BASE, "k-123456789", 30)
    assert balance.account.credits_remaining == 48849
    assert balance.moved_to == SDK_BASE
    assert [call.request.headers["x-api-key"] for call in responses.calls] == ["k-123456789"] * 2


@responses.activate
@pytest.mark.parametrize(
    "location",
    [
        "http://api.structocr.com/v1/account/balance",  # not https
        "https://structocr.com.evil.test/v1/account/balance",  # not the domain
        "https://evilstructocr.com/v1/account/balance",
        "https://user:pw@api.structocr.com/v1/account/balance",  # credentials in the URL
    ],
)
def test_other_redirects_from_the_api_are_still_refused(
    client: BalanceClient, location: str
) -> None:
    responses.get(REFERENCE_BASE + "/account/balance", status=302, headers={"Location": location})
    with pytest.raises(RedirectError):
        client.fetch(REFERENCE_BASE, "k-123456789", 30)
    assert len(responses.calls) == 1  # the key went nowhere else
    assert "pw" not in str(responses.calls[0].request.url)


@responses.activate
@pytest.mark.parametrize(
    "location",
    [
        # urlsplit reads a structocr.com name; urllib3 connects to the part before the "\\"
        "https://127.0.0.1\\.structocr.com/v1/account/balance",
        "https://evil.test\\.structocr.com/v1/account/balance",
        "https://evil.test\\@structocr.com/v1/account/balance",
        "https://x.structocr.com%2eevil.test/v1/account/balance",  # urllib3 decodes the host
        "https://evil%2etest.structocr.com/v1/account/balance",  # percent-encoded host
        "https://api.structocr.com:8443/v1/account/balance",  # a port
        "https://caf\u00e9.structocr.com/v1/account/balance",  # a non-ASCII host
        "https://api.structocr.com /v1/account/balance",  # a space
        "https://api.structocr.com\t.evil.test/v1/account/balance",  # a control character
        "https://structocr.com@evil.test/v1/account/balance",
    ],
)
def test_a_location_that_parsers_read_two_ways_is_refused(
    client: BalanceClient, location: str
) -> None:
    responses.get(REFERENCE_BASE + "/account/balance", status=302, headers={"Location": location})
    with pytest.raises(RedirectError) as caught:
        client.fetch(REFERENCE_BASE, "k-123456789", 30)
    assert caught.value.exit_code == 61
    assert len(responses.calls) == 1  # the key went nowhere else


@responses.activate
@pytest.mark.parametrize(
    ("location", "shown"),
    [
        ("https://[::1/x", "cannot be parsed"),
        ("http://[evil", "cannot be parsed"),
        ("https://evil.test:99999/", "cannot be parsed"),
        ("https://caf\u00e9\xff.test/", "caf\u00e9\xff.test"),
        ("", "an empty Location"),
    ],
)
def test_a_malformed_location_is_a_refused_redirect_not_a_bug(
    client: BalanceClient, location: str, shown: str
) -> None:
    responses.get(URL, status=302, headers={"Location": location})
    with pytest.raises(RedirectError) as caught:
        client.fetch(BASE, "k-123456789", 30)
    assert caught.value.exit_code == 61
    assert shown in caught.value.message
    assert len(responses.calls) == 1


@responses.activate
@pytest.mark.parametrize(
    ("location", "requested"),
    [
        ("https://API.StructOCR.com./v1/account/balance", SDK_BASE + "/account/balance"),
        ("https://api.structocr.com:443/v1/account/balance", SDK_BASE + "/account/balance"),
        ("//api.structocr.com/v1/account/balance", SDK_BASE + "/account/balance"),
        ("/v2/account/balance", "https://structocr.com/v2/account/balance"),
    ],
)
def test_a_followed_redirect_requests_the_url_that_was_approved(
    client: BalanceClient, location: str, requested: str
) -> None:
    responses.get(REFERENCE_BASE + "/account/balance", status=302, headers={"Location": location})
    responses.get(requested, json=balance_document())
    client.fetch(REFERENCE_BASE, "k-123456789", 30)
    assert [call.request.url for call in responses.calls][1:] == [requested]


@responses.activate
def test_at_most_two_hops_are_followed(client: BalanceClient) -> None:
    hosts = ["structocr.com", "a.structocr.com", "b.structocr.com", "c.structocr.com"]
    for here, there in itertools.pairwise(hosts):
        responses.get(f"https://{here}/v1/account/balance", status=302,
                      headers={"Location": f"https://{there}/v1/account/balance"})  # fmt: skip
    with pytest.raises(RedirectError, match=r"c\.structocr\.com"):
        client.fetch("https://structocr.com/v1", "k-123456789", 30)
    assert len(responses.calls) == 3


@responses.activate
def test_the_cli_says_once_which_base_url_avoids_the_redirect() -> None:
    from tests.conftest import run

    responses.get(REFERENCE_BASE + "/account/balance", status=301,
                  headers={"Location": SDK_BASE + "/account/balance"})  # fmt: skip
    responses.get(SDK_BASE + "/account/balance", json=balance_document())
    result = run("balance", "--api-key", "k-123456789")  # the default base URL
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("note: the API answered from https://api.structocr.com/v1") == 1
    assert "--base-url https://api.structocr.com/v1" in result.stderr
    as_json = run("balance", "--json", "--api-key", "k-123456789")  # a JSON document there
    (line,) = as_json.stderr.splitlines()
    assert json.loads(line)["note"].startswith("the API answered from https://api.structocr")


@responses.activate
def test_body_over_cap_is_refused() -> None:
    responses.get(URL, body=b"x" * 2000)
    with pytest.raises(BadAnswerError, match="larger than"):
        BalanceClient(max_body=1024).fetch(BASE, "k", 5)


@responses.activate
def test_error_body_text_is_sanitised(client: BalanceClient) -> None:
    responses.get(URL, status=401, json={"error": "bad \x1b[31mkey\x07"})
    with pytest.raises(HTTPStatusError) as caught:
        client.fetch(BASE, "k", 5)
    assert "\x1b" not in caught.value.message
    assert "\\x1b[31mkey\\x07" in caught.value.message


@responses.activate
def test_tls_errors_are_not_retried(client: BalanceClient) -> None:
    responses.get(URL, body=requests.exceptions.SSLError("CERTIFICATE_VERIFY_FAILED"))
    with pytest.raises(NoAnswerError, match="TLS certificate"):
        client.fetch(BASE, "k", 5)
    assert len(responses.calls) == 1


def test_key_with_bad_characters_is_never_sent(client: BalanceClient) -> None:
    # requests would put the whole key into its InvalidHeader message.
    with pytest.raises(ValueError, match="unusable API key") as caught:
        client.fetch(BASE, "secret\r\nvalue", 5)
    assert "secret" not in str(caught.value)


# Loopback: real sockets, real time.


def quiet_server(**behaviours: Reply) -> MockServer:
    return MockServer(behaviours={k: (lambda _, r=r: r) for k, r in behaviours.items()},
                      log=io.StringIO())  # fmt: skip


def test_connection_errors_are_retried_three_times() -> None:
    server = quiet_server(drop=Reply(200, drop=True))
    with server:
        with pytest.raises(NoAnswerError):
            BalanceClient(backoff=0.01).fetch(server.url, "drop", 10)
        assert server._server._counts["drop"] == 3


@pytest.mark.timing
def test_deadline_bounds_a_dripping_body() -> None:
    # 700+ bytes at 50 ms a byte would take over 35 s; each read is quick, so only a
    # deadline on the whole call stops it.
    server = quiet_server(drip=Reply.json(200, balance_document(), drip=0.05))
    with server:
        started = time.monotonic()
        with pytest.raises(DeadlineError):
            BalanceClient().fetch(server.url, "drip", 1.0)
        elapsed = time.monotonic() - started
    assert elapsed < 15  # a hang guard, not a speed target: without a deadline it is 35 s+


def test_one_client_serves_many_threads() -> None:
    client = BalanceClient()
    results: list[int] = []
    with MockServer(log=io.StringIO()) as server:

        def work() -> None:
            results.append(int(client.fetch(server.url, "demo", 10).this_key.credits_used))

        threads = [threading.Thread(target=work) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert results == [79] * 8


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "http_proxy", "ALL_PROXY"])
def test_plain_http_to_loopback_through_a_proxy_is_refused(
    server: MockServer, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    """The key would cross the network in the clear to the proxy: exit 2, nothing sent."""
    import socket

    from tests.conftest import LONG_KEY, run

    with socket.socket() as proxy:
        proxy.bind(("127.0.0.1", 0))
        proxy.listen()
        proxy.setblocking(False)
        address = f"http://127.0.0.1:{proxy.getsockname()[1]}"
        monkeypatch.delenv("NO_PROXY")
        result = run("balance", "--base-url", server.url, env={
            variable: address, "STRUCTOCR_API_KEY": LONG_KEY})  # fmt: skip
        with pytest.raises(BlockingIOError):
            proxy.accept()  # nobody connected to the proxy
    assert result.returncode == 2, result.stderr
    assert "plain http would go through the proxy 127.0.0.1:" in result.stderr
    assert "NO_PROXY=127.0.0.1" in result.stderr


def test_plain_http_to_loopback_exempted_from_the_proxy_goes_direct(
    server: MockServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.conftest import run

    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    result = run("balance", "--json", "--base-url", server.url, env={
        "HTTP_PROXY": "http://127.0.0.1:9", "STRUCTOCR_API_KEY": "demo"})  # fmt: skip
    assert result.returncode == 0, result.stderr
