"""The building blocks for checking many keys at once: key selection and the concurrent
fetcher, on top of the one-key core (not yet wired to options: see the README)."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from structocr_cli.config import Config, load_config
from structocr_cli.core import BalanceRequest, check_many, combined_exit_code
from structocr_cli.errors import ExitCode, UsageError
from structocr_cli.gates import BY_OPTION, parse_threshold
from structocr_cli.mock import MockServer, Reply, balance_document
from structocr_cli.selection import (
    KeySpec,
    all_profiles,
    combined,
    from_keys_file,
    from_profiles,
    parse_keys_file,
    read_keys_path,
)
from structocr_cli.settings import Flags
from tests.conftest import LONG_KEY, run

SECRET = "sk_live_never_echo_me_0123456789"


def test_keys_file_lines_blank_lines_and_comments() -> None:
    text = "# team keys\n\nci = k-ci-123456789\n  batch=k-batch-123456789  \n"
    assert parse_keys_file(text, "keys.txt") == [
        ("ci", "k-ci-123456789"), ("batch", "k-batch-123456789"),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (f"ok = k\n{SECRET}\n", "keys.txt, line 2: not a name=key line"),
        (f"ok = k\n = {SECRET}\n", "keys.txt, line 2: not a name=key line"),
        (f"ok = k\nbad name = {SECRET}\n", "keys.txt, line 2: the name 'bad name' is not valid"),
        ("ok =\n", "keys.txt, line 1: not a name=key line"),
    ],
)
def test_a_malformed_keys_file_line_is_named_never_echoed(text: str, says: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_keys_file(text, "keys.txt")
    assert says in caught.value.one_line()
    assert SECRET[8:20] not in caught.value.one_line()
    assert caught.value.exit_code == 2


def test_selections_combine_in_order_each_name_once(config_file: Path) -> None:
    config_file.write_text('[profiles.b]\napi_key = "kb"\n[profiles.a]\napi_key = "ka"\n')
    selected = combined(
        from_profiles(["b"]), all_profiles(load_config(config_file)),
        from_keys_file("c = kc\na = other\n", "keys.txt"),
    )  # fmt: skip
    assert [spec.name for spec in selected] == ["b", "a", "c"]
    assert selected[1].flags.profile == "a"  # the first selection of a name wins
    assert selected[2].flags.api_key == "kc"


def test_all_profiles_of_an_empty_config_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no profiles"):
        all_profiles(Config(path=tmp_path / "none.toml", exists=False))


def test_a_keys_file_is_read_from_a_file_or_stdin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "keys.txt"
    path.write_text("a = k1\n")
    assert read_keys_path(str(path), None) == "a = k1\n"
    monkeypatch.setattr("sys.stdin", io.StringIO("b = k2\n"))
    assert read_keys_path("-", time.monotonic() + 5) == "b = k2\n"
    with pytest.raises(UsageError, match="cannot read --keys-file"):
        read_keys_path(str(tmp_path / "missing"), None)


@pytest.fixture
def slow_mock() -> Iterator[MockServer]:
    keys = {f"key-{n:02d}-123456789": (lambda _: Reply.json(200, balance_document()))
            for n in range(10)}  # fmt: skip
    with MockServer(behaviours=keys, log=io.StringIO(), latency_ms=60) as mock:
        yield mock


def test_keys_are_checked_concurrently_within_the_bound(slow_mock: MockServer) -> None:
    specs = from_keys_file(
        "".join(f"k{n} = key-{n:02d}-123456789\n" for n in range(10)), "keys.txt",
        base_url=slow_mock.url,
    )  # fmt: skip
    results = check_many(specs, BalanceRequest(timeout=20), {}, concurrency=3)
    assert [spec.name for spec, _ in results] == [f"k{n}" for n in range(10)]
    assert all(outcome.exit_code == ExitCode.OK for _, outcome in results)
    assert 2 <= slow_mock.most_in_flight <= 3  # concurrent, and never more than asked


def test_mixed_outcomes_give_the_largest_error_code(server: MockServer) -> None:
    specs = from_keys_file(
        "ok = demo\nlow = demo-low\nwrong = wrong-key-1234\nbroken = t-501\n", "keys.txt",
        base_url=server.url,
    )  # fmt: skip
    gate = {"--min-remaining": parse_threshold(BY_OPTION["--min-remaining"], "100")}
    results = dict(check_many(specs, BalanceRequest(thresholds=gate), {}, concurrency=4))
    codes = {spec.name: outcome.exit_code for spec, outcome in results.items()}
    assert codes == {"ok": 0, "low": 1, "wrong": 41, "broken": 50}
    assert combined_exit_code(results.values()) == 50
    fine = [outcome for spec, outcome in results.items() if spec.name in ("ok", "low")]
    assert combined_exit_code(fine) == 1  # a breach, once every balance is known
    wrong = next(o for s, o in results.items() if s.name == "wrong")
    assert wrong.error is not None
    assert "from keys.txt (wrong)" in wrong.error.one_line()  # named as the file gave it


def test_many_keys_share_one_deadline(server: MockServer) -> None:
    specs = [KeySpec(f"h{n}", Flags(api_key="t-hang", base_url=server.url)) for n in range(4)]
    started = time.monotonic()
    results = check_many(specs, BalanceRequest(timeout=1), {}, concurrency=2)
    assert all(outcome.exit_code == ExitCode.NO_ANSWER for _, outcome in results)
    # Two rounds of hanging keys still end at the one deadline, not at two (a hang guard).
    assert time.monotonic() - started < 1 + 1.5


def test_the_mock_refuses_a_negative_latency() -> None:
    result = run("mock", "--latency-ms", "-5")
    assert result.returncode == 2
    assert "--latency-ms" in result.stderr
    assert LONG_KEY not in result.stderr
