"""Fuzzing: whatever a server, a config file, a key file or a user sends, the parsers return a
value or raise the project's own error, and every output format stays clean.

The default suite runs 200 examples per property (the end-to-end one 50); ``make fuzz``
(HYPOTHESIS_PROFILE=fuzz) runs 10,000 of each and prints hypothesis's statistics.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import re
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import tomlkit
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from structocr_cli.api.errors import BadAnswerError, ConfigError, StructocrError
from structocr_cli.api.failures import MAX_RETRY_AFTER as _MAX_RETRY_AFTER
from structocr_cli.api.failures import retry_after as _retry_after
from structocr_cli.api.keys import key_problem, mask, may_be_secret, sanitize, shown
from structocr_cli.api.model import parse_balance
from structocr_cli.core import Outcome
from structocr_cli.derive import derive
from structocr_cli.mock.replies import Reply
from structocr_cli.mock.server import MockServer
from structocr_cli.report.fields import FIELDS
from structocr_cli.report.formats import FORMATS
from structocr_cli.settings.config import Config, parse_config, valid_profile_name
from structocr_cli.settings.resolve import Kind, Settings, Source, Sourced, _read_key_file
from tests.conftest import mock_log, run
from tests.test_model import REFERENCE

CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # all but tab and newline
E2E_EXAMPLES = 50

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
FIELD_PATHS = [(section, name) for section in ("period", "account", "this_key")
               for name in REFERENCE[section]]  # fmt: skip


# The server's answer


@given(st.binary(max_size=2000))
def test_any_bytes_parse_or_are_a_bad_answer(body: bytes) -> None:
    with contextlib.suppress(BadAnswerError):
        parse_balance(body)


@given(json_values)
def test_any_json_document_parses_or_is_a_bad_answer(value: Any) -> None:
    with contextlib.suppress(BadAnswerError):
        parse_balance(json.dumps(value).encode())


@given(st.sampled_from(FIELD_PATHS), json_values)
def test_any_field_of_a_valid_document_may_be_anything(path: tuple[str, str], value: Any) -> None:
    document = json.loads(json.dumps(REFERENCE))
    document[path[0]][path[1]] = value
    with contextlib.suppress(BadAnswerError):
        parse_balance(json.dumps(document).encode())


@given(st.text(max_size=500))
def test_retry_after_is_none_or_a_finite_wait(text: str) -> None:
    wait = _retry_after(text)
    assert wait is None or 0 <= wait <= _MAX_RETRY_AFTER


# Config files


# Hostile Location headers: pieces that one URL parser reads one way and another another way.
_LOCATION_PIECES = st.sampled_from([
    "https://", "http://", "//", "/", "\\", "@", ":", ":443", ":0", ":99999", "%2e", "%40",
    "[", "]", "::1", "127.0.0.1", "evil.test", ".", "structocr.com", "api.structocr.com",
    "\u00e9", "\t", " ", "#", "?", "user:pw", "/v1/account/balance", "xn--", "STRUCTOCR.COM",
])  # fmt: skip
hostile_locations = st.lists(_LOCATION_PIECES | st.text(max_size=4), min_size=1, max_size=10).map(
    "".join
)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(hostile_locations)
def test_a_redirect_sends_the_key_only_where_the_allow_list_approved(location: str) -> None:
    """Whatever the Location, the key reaches no host but structocr.com's, over https on
    port 443, as urllib3 (which makes the connection) reads the URL requested; and a
    refusal is the redirect error (61), never a bug."""
    import responses
    from urllib3.util import parse_url

    from structocr_cli.api.client import BalanceClient

    origin = "https://structocr.com/v1/account/balance"
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        mocked.add(responses.GET, origin, status=302, headers={"Location": location})
        mocked.add(responses.GET, re.compile(r".*"), json={"redirected": True})
        with contextlib.suppress(BadAnswerError):  # refused (61); anything else fails it
            BalanceClient(attempts=1).fetch("https://structocr.com/v1", "k-123456789", 5)
        for call in mocked.calls[1:]:
            url = str(call.request.url)
            parts = parse_url(url)
            assert parts.scheme == "https", url
            assert parts.port in (None, 443), url
            host = (parts.host or "").rstrip(".")
            assert host == "structocr.com" or host.endswith(".structocr.com"), url
            assert re.fullmatch(r"[a-z0-9.-]+", host), url


@given(st.text(max_size=2000))
def test_any_config_text_parses_or_is_a_config_error(text: str) -> None:
    with contextlib.suppress(ConfigError):
        parse_config(Path("config.toml"), text.encode("utf-8", errors="surrogatepass"))


@given(st.binary(max_size=1000))
def test_any_config_bytes_parse_or_are_a_config_error(raw: bytes) -> None:
    with contextlib.suppress(ConfigError):
        parse_config(Path("config.toml"), raw)


@given(st.integers(min_value=0, max_value=3000), st.sampled_from(["[]", "{}"]))
def test_configs_nested_to_any_depth_parse_or_are_a_config_error(depth: int, kind: str) -> None:
    opening, closing = ("[" * depth, "]" * depth) if kind == "[]" else ("{a=" * depth, "}" * depth)
    with contextlib.suppress(ConfigError):
        parse_config(Path("config.toml"), f"a = {opening}1{closing}\n".encode())


profile_tables = st.dictionaries(
    st.sampled_from(["api_key", "base_url", "key_store", "other"]),
    st.one_of(
        st.text(max_size=30), st.integers(), st.booleans(), st.lists(st.integers(), max_size=3)
    ),
    max_size=4,
)


@given(
    st.dictionaries(st.text(min_size=1, max_size=70), profile_tables, max_size=5),
    st.one_of(st.none(), st.text(max_size=70)),
    st.integers(min_value=0, max_value=60),
)
def test_structured_configs_with_hostile_names_and_nesting(
    profiles: dict[str, Any], default: str | None, depth: int
) -> None:
    document: dict[str, Any] = {"profiles": profiles, "nested": {}}
    if default is not None:
        document["default_profile"] = default
    inner = document["nested"]
    for _ in range(depth):
        inner = inner.setdefault("x", {})
    try:
        text = tomlkit.dumps(document)
    except (ValueError, TypeError):  # tomlkit cannot write it: not a file anyone could have
        return
    try:
        config = parse_config(Path("config.toml"), text.encode("utf-8", errors="surrogatepass"))
    except ConfigError:
        return
    assert all(valid_profile_name(name) for name in config.profiles)  # never an inert name


# Keys and key files


@given(st.text(max_size=200))
def test_key_helpers_never_fail_or_show_a_key(text: str) -> None:
    key_problem(text)
    mask(text)
    assert not CONTROL.search(sanitize(text))
    assert "\n" not in sanitize(text)
    if may_be_secret(text):
        assert text not in shown(text)


@pytest.fixture(scope="module")
def key_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("keys")


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=6000))
def test_any_key_file_reads_or_is_a_usage_error(key_dir: Path, data: bytes) -> None:
    path = key_dir / "key"
    path.write_bytes(data)
    try:
        key = _read_key_file(str(path), time.monotonic() + 5)
    except StructocrError:
        return
    assert key == key.strip()


# Every output format, for any valid balance

numbers = st.one_of(
    st.integers(min_value=-(2**53), max_value=2**53),
    st.floats(min_value=-(2.0**53), max_value=2.0**53, allow_nan=False, allow_infinity=False),
    st.sampled_from([0, 0.0, -0.0, 1e-300, 5e-324, 0.1]),
)
percentages = st.builds(
    lambda whole, part, negative: f"{'-' if negative else ''}{whole}{part}%",
    st.integers(min_value=0, max_value=10**15 - 1),
    st.one_of(st.just(""), st.integers(min_value=0, max_value=10**15 - 1).map(lambda n: f".{n}")),
    st.booleans(),
)
moments = st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1))
offsets = st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59)


def _rfc3339(moment: datetime, offset: int, separator: str) -> str:
    if offset == 0:
        return moment.strftime(f"%Y-%m-%d{separator}%H:%M:%S") + "Z"
    sign = "+" if offset > 0 else "-"
    hours, minutes = divmod(abs(offset), 60)
    return moment.strftime(f"%Y-%m-%d{separator}%H:%M:%S") + f"{sign}{hours:02d}:{minutes:02d}"


times = st.builds(_rfc3339, moments, offsets, st.sampled_from(["T", " "]))
documents = st.builds(
    lambda account, key, start, end: {
        "period": {"start": start, "end": end},
        "account": account,
        "this_key": key,
    },
    st.fixed_dictionaries(
        {name: numbers for name in REFERENCE["account"] if name != "error_rate"}
        | {"error_rate": percentages}
    ),
    st.fixed_dictionaries(
        {name: numbers for name in REFERENCE["this_key"] if name != "error_rate"}
        | {"error_rate": percentages}
    ),
    times,
    times,
)
SETTINGS = Settings(
    api_key=Sourced("sk_test_fuzz_0123456789", Source(Kind.FLAG, "--api-key")),
    profile=Sourced("default", Source(Kind.DEFAULT)),
    base_url=Sourced("https://structocr.com/v1", Source(Kind.DEFAULT)),
    config=Config(path=Path("config.toml"), exists=False),
)


def _accepted(document: dict[str, Any]) -> bool:
    try:
        parse_balance(json.dumps(document).encode())
    except BadAnswerError:  # e.g. a time that does not exist in UTC
        return False
    return True


@given(documents.filter(_accepted), st.datetimes(timezones=st.just(timezone.utc)))
def test_every_format_writes_any_valid_balance_cleanly(
    document: dict[str, Any], now: datetime
) -> None:
    balance = parse_balance(json.dumps(document).encode())
    outcome = Outcome(SETTINGS, balance, derive(balance, now))
    for name, fmt in FORMATS.items():
        out = io.StringIO()
        fmt.write(outcome, [field.path for field in FIELDS], out)
        text = out.getvalue()
        assert text.endswith("\n"), name
        assert not CONTROL.search(text), (name, text)
        if name == "table":
            continue
        assert not re.search(r"\b(nan|inf|infinity)\b", text, re.IGNORECASE), (name, text)
        lines = text.splitlines()
        if name in ("tsv", "env", "field"):
            assert len(lines) == len(FIELDS), name  # one line per field
        if name == "tsv":
            assert all(line.count("\t") == 1 for line in lines)
        if name == "env":
            assert all(re.match(r"STRUCTOCR_[A-Z0-9_]+=", line) for line in lines)
        if name == "json":
            assert json.loads(text) == json.loads(json.dumps(document))


@given(
    documents.filter(_accepted),
    st.datetimes(timezones=st.just(timezone.utc)),
    st.floats(min_value=0, max_value=4e9),
    st.sampled_from(["ci", "a.b-c_d", "x" * 64]),
)
def test_the_exporter_serves_any_valid_balance_in_both_formats(
    document: dict[str, Any], now: datetime, fetched_at: float, name: str
) -> None:
    from prometheus_client.openmetrics.parser import (
        text_string_to_metric_families as openmetrics_families,
    )
    from prometheus_client.parser import text_string_to_metric_families as classic_families

    from structocr_cli.exporter.cache import View, exposition

    balance = parse_balance(json.dumps(document).encode())
    views = [View(name, True, Outcome(SETTINGS, balance, derive(balance, now)), fetched_at,
                  0.25, {"server_error": 3})]  # fmt: skip
    read = {}
    for openmetrics, parse in ((True, openmetrics_families), (False, classic_families)):
        text = exposition(views, openmetrics)
        assert not CONTROL.search(text)
        assert not re.search(r"\b(nan|inf|infinity)\b", text, re.IGNORECASE), text
        read[openmetrics] = {
            sample.name: sample.value for family in parse(text) for sample in family.samples
        }
    assert read[True] == read[False]  # the two formats say the same
    assert read[True]["structocr_up"] == 1
    assert read[True]["structocr_fetch_errors_total"] == 3


# End to end: random valid answers from the mock, through the CLI, in every format

_CURRENT: dict[str, bytes] = {}


@pytest.fixture(scope="module")
def fuzz_server() -> Iterator[MockServer]:
    def answer(_: object) -> Reply:
        return Reply(200, _CURRENT["body"], (("Content-Type", "application/json"),))

    with MockServer(behaviours={"fuzz-key": answer}, log=mock_log()) as mock:
        yield mock


@settings(
    max_examples=E2E_EXAMPLES if settings().max_examples < 1000 else settings().max_examples,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(documents.filter(_accepted))
def test_any_valid_answer_renders_in_every_format_with_exit_0(
    fuzz_server: MockServer, document: dict[str, Any]
) -> None:
    _CURRENT["body"] = json.dumps(document).encode()
    for args in ((), ("--json",), ("-o", "tsv"), ("-o", "env"), ("-o", "openmetrics")):
        result = run(
            "balance", "--base-url", fuzz_server.url, *args, env={"STRUCTOCR_API_KEY": "fuzz-key"}
        )
        assert result.returncode == 0, (args, result.stderr)
        assert not CONTROL.search(result.stdout), args
        assert result.stderr == "", args


def test_derived_figures_stay_finite_at_the_extremes() -> None:
    document = json.loads(json.dumps(REFERENCE))
    document["account"].update(credits_this_period=5e-324, credits_remaining=2**53)
    balance = parse_balance(json.dumps(document).encode())
    figures = derive(balance, datetime(2026, 6, 16, tzinfo=timezone.utc) + timedelta(seconds=1))
    assert all(not isinstance(v, float) or math.isfinite(v) for v in vars(figures).values())


# The exporter's HTTP parser, given what any client may send.

_HEADER_LINES = st.sampled_from([
    b"Host: x", b"Content-Length: 0", b"Content-Length: -1", b"Content-Length:  7 ",
    b"Accept: application/openmetrics-text", b"Connection: keep-alive", b"Connection: close",
    b" folded", b"X-Prometheus-Scrape-Timeout-Seconds: nan", b"Expect: 100-continue", b"\x00",
    b":", b"Content-Length: 99999999999999999999", b"Transfer-Encoding: identity",
])  # fmt: skip
_BODY_HEADERS = st.sampled_from([
    b"Content-Length: 40", b"Content-Length: 5", b"Transfer-Encoding: chunked",
    b"Transfer-Encoding: gzip, chunked", b"transfer-encoding: CHUNKED", b"Content-Length: +5",
])  # fmt: skip
_REQUEST_LINES = st.sampled_from([
    b"GET /metrics HTTP/1.1", b"HEAD / HTTP/1.1", b"GET /healthz HTTP/1.0",
    b"GET http://x/metrics HTTP/1.1", b"HEAD /metrics HTTP/1.1",
])  # fmt: skip
_SMUGGLED = st.sampled_from([b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", b"0\r\n\r\n", b""])
_STATUS_LINE = re.compile(rb"(?:^|\r\n)HTTP/1\.[01] \d{3} ")


def _request(line: bytes, headers: list[bytes], body: bytes) -> bytes:
    return line + b"\r\n" + b"".join(header + b"\r\n" for header in headers) + b"\r\n" + body


declaring_a_body = st.builds(
    lambda line, before, declared, after, body: _request(line, [*before, declared, *after], body),
    _REQUEST_LINES,
    st.lists(_HEADER_LINES, max_size=3),
    _BODY_HEADERS,
    st.lists(_HEADER_LINES, max_size=3),
    _SMUGGLED | st.binary(max_size=200),
)


_EXPORTER: list[Any] = []


def _exporter_server() -> Any:
    """One exporter with no key (nothing to fetch), for every example."""
    if not _EXPORTER:
        import threading

        from structocr_cli.core import BalanceRequest
        from structocr_cli.exporter import server as serve
        from structocr_cli.exporter.cache import Exporter

        log = io.StringIO()
        served = Exporter([], BalanceRequest(timeout=1), {}, min_interval=3600)
        server = serve.listen(served, "127.0.0.1", 0, serve.Logger("text", log))
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        _EXPORTER.extend([server, log])
    return _EXPORTER[0]


def _send(request: bytes) -> bytes:
    """``request`` on a connection of its own, which the client then half-closes; all the
    exporter answered, until it closed its side."""
    import socket

    host, port = _exporter_server().server_address[:2]
    with socket.create_connection((host, port), timeout=15) as conn:
        conn.sendall(request)
        conn.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := conn.recv(65536):
            received += chunk
    return received


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(declaring_a_body)
def test_a_request_declaring_a_body_gets_one_400_whatever_the_body_holds(request: bytes) -> None:
    """A body is never read as a request of its own (two answers to one request): a request
    that declares one, however it says so, is answered once, with 400 at the latest."""
    received = _send(request)
    statuses = _STATUS_LINE.findall(received)
    assert len(statuses) == 1, (request, received)
    assert received.startswith(b"HTTP/1.1 400 ") or b"HTTP/1.0 400" in received, received
    assert "Traceback" not in _EXPORTER[1].getvalue()


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000) | st.builds(_request, _REQUEST_LINES,
                                            st.lists(_HEADER_LINES, max_size=6),
                                            st.binary(max_size=100)))  # fmt: skip
def test_any_request_bytes_are_answered_without_a_crash(request: bytes) -> None:
    """Whatever the bytes, every answer has a status line (or is the one HTTP/0.9 reply to
    a bare "GET /"), nothing reaches the log as a traceback, and the exporter goes on."""
    received = _send(request)
    assert received == b"" or _STATUS_LINE.match(received) or not request.startswith(b"HTTP")
    assert "Traceback" not in _EXPORTER[1].getvalue()
    assert _send(b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n").endswith(b"ok\n")


# The history: the trend fit and the watch-log reader.

_series_steps = st.lists(
    st.floats(min_value=0, max_value=1e6, allow_nan=False), min_size=2, max_size=60
)


@given(_series_steps, st.booleans(), st.floats(min_value=60, max_value=86400))
def test_the_trend_of_a_monotone_series_has_the_series_sign(
    steps: list[float], falling: bool, spacing: float
) -> None:
    from structocr_cli.history.trend import trend

    now = datetime(2026, 11, 30, tzinfo=timezone.utc)
    start = now.timestamp() - spacing * len(steps)
    level, points = 5e7, []
    for n, step in enumerate(steps):
        level += -step if falling else step
        points.append((start + n * spacing, level))
    found = trend(points, points[-1][1], points[-1][0], now)
    if points[-1][0] - points[0][0] < 86400:
        assert found is None
        return
    assert found is not None
    assert math.isfinite(found.daily_burn)
    assert (found.daily_burn >= 0) if falling else (found.daily_burn <= 0)
    if found.runout is not None:
        assert found.runway_days is not None
        assert found.runway_days >= 0
        early, late = found.runout_early, found.runout_late
        assert early is None or early <= found.runout
        assert late is None or found.runout <= late


_watch_line = st.one_of(
    st.binary(max_size=300),
    st.builds(lambda value: json.dumps(value).encode(), json_values),
    st.builds(
        lambda time_text, keys: json.dumps({"time": time_text, "keys": keys}).encode(),
        st.one_of(st.just("2026-11-30T07:33:42Z"), st.text(max_size=30)),
        st.lists(json_values, max_size=3),
    ),
)


@given(st.lists(_watch_line, max_size=5))
def test_any_watch_log_lines_import_or_name_a_bad_line(lines: list[bytes]) -> None:
    from structocr_cli.history.watchlog import BadLine, observations

    bad: BadLine | None = None
    found = []
    try:
        found = list(observations(line + b"\n" for line in lines))
    except BadLine as exc:
        bad = exc
    if bad is not None:
        assert 1 <= bad.number <= len(lines)
        assert str(bad)
    assert all(isinstance(name, str) and isinstance(key, str) for name, key, _ in found)
