"""Many keys at once: key selection, the concurrent fetcher on top of the one-key core, and
``balance`` over several keys in every format."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from structocr_cli.api.errors import ExitCode, UsageError
from structocr_cli.core import BalanceRequest, check_many, combined_exit_code
from structocr_cli.gates import BY_OPTION, parse_threshold
from structocr_cli.mock.replies import Reply, balance_document
from structocr_cli.mock.server import MockServer
from structocr_cli.settings.config import Config, load_config
from structocr_cli.settings.resolve import Flags
from structocr_cli.settings.selection import (
    KeySpec,
    all_profiles,
    combined,
    from_keys_file,
    from_profiles,
    parse_keys_file,
    read_keys_path,
)
from tests.conftest import LONG_KEY, Result, run

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
        from_keys_file("c = kc\n", "keys.txt"),
    )  # fmt: skip
    assert [spec.name for spec in selected] == ["b", "a", "c"]  # b named twice, kept once
    assert selected[1].flags.profile == "a"
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
    assert slow_mock.connections <= 3  # each connection serves several keys in turn


def test_a_client_reuses_its_connections_between_runs(server: MockServer) -> None:
    from structocr_cli.api.client import BalanceClient

    client = BalanceClient()
    specs = from_keys_file("a = demo\nb = demo-low\n", "keys.txt", base_url=server.url)
    before = server.connections
    for _ in range(3):  # as --watch refreshes
        check_many(specs, BalanceRequest(), {}, concurrency=2, client=client)
    assert server.connections - before <= 2


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


@pytest.mark.timing
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


# As users run it: balance over several keys.

KEYS = f"ci = {LONG_KEY}\nlow = demo-low\nbad = wrong-key-12345\nbroken = t-501\n"


def several(
    server: MockServer,
    tmp_path: Path,
    *args: str,
    keys: str = KEYS,
    env: dict[str, str] | None = None,
) -> Result:
    path = tmp_path / "keys.txt"
    path.write_text(keys)
    return run("balance", "--base-url", server.url, "--keys-file", str(path), *args, env=env)


def test_several_keys_in_a_table_with_totals_and_errors_in_rows(
    server: MockServer, tmp_path: Path
) -> None:
    result = several(server, tmp_path, "--min-remaining", "100", env={"COLUMNS": "400"})
    assert result.returncode == 50  # the largest error code: t-501's
    lines = result.stdout.splitlines()
    assert lines[0].split() == [
        "KEY",
        "MASKED",
        "CREDITS",
        "REQUESTS",
        "ERRORS",
        "LATENCY",
        "SHARE",
    ]
    assert lines[1].split()[:4] == ["ci", "sk_l…2b1c", "79", "45"]
    assert lines[2].split()[0] == "low"
    assert "Invalid or inactive API key" in lines[3]
    assert "HTTP 501" in lines[4]
    assert lines[5].split() == ["TOTAL", "158", "90"]
    assert "These keys belong to 2 different accounts." in result.stdout
    stderr = result.stderr
    assert "low: gate failed: account.credits_remaining 12 < 100" in stderr
    assert "2 of 4 keys could not be checked" in stderr


def test_several_keys_as_one_json_array(server: MockServer, tmp_path: Path) -> None:
    result = several(server, tmp_path, "--json")
    items = json.loads(result.stdout)
    assert [(i["profile"], i["ok"], i["exit_code"]) for i in items] == [
        ("ci", True, 0), ("low", True, 0), ("bad", False, 41), ("broken", False, 50),
    ]  # fmt: skip
    assert items[0]["key"] == "sk_l…2b1c"
    assert items[0]["data"]["account"]["credits_remaining"] == 48849
    assert items[2]["error"]["code"] == "unauthorized"
    assert result.returncode == 50


def test_profiles_and_all_profiles_combine_and_sort(
    server: MockServer, config_file: Path, tmp_path: Path
) -> None:
    config_file.write_text('[profiles.a]\napi_key = "demo"\n[profiles.b]\napi_key = "demo-low"\n')
    result = several(server, tmp_path, "--all-profiles", "--sort", "name",
                     keys="z = demo\nc = demo-404\n")  # fmt: skip
    names = [line.split()[0] for line in result.stdout.splitlines()[1:5]]
    assert names == ["a", "b", "z", "c"]  # by name, a key that failed last
    both = run("balance", "--base-url", server.url, "-p", "a", "-p", "b", "--json")
    assert [item["profile"] for item in json.loads(both.stdout)] == ["a", "b"]


def test_a_keys_file_on_stdin(server: MockServer) -> None:
    result = run("balance", "--base-url", server.url, "--keys-file", "-", "--json",
                 stdin="one = demo\n")  # fmt: skip
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("args", "says"),
    [(("--api-key", "demo"), "--api-key and --api-key-file name a single key"),
     (("--sort", "size"), "--sort takes one of"),
     (("--count", "2"), "--count needs --watch")],
)  # fmt: skip
def test_what_several_keys_do_not_take(
    server: MockServer, tmp_path: Path, args: tuple[str, ...], says: str
) -> None:
    result = several(server, tmp_path, *args)
    assert result.returncode == 2
    assert says in result.stderr


def test_several_keys_in_tsv_led_by_their_names(server: MockServer, tmp_path: Path) -> None:
    result = several(server, tmp_path, "-o", "tsv")
    assert result.returncode == 50
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert {row[0] for row in rows} == {"ci", "low"}  # the failed keys have no lines
    assert ["low", "account.credits_remaining", "12"] in rows
    assert ["ci", "this_key.credits_used", "79"] in rows
    assert all(len(row) == 3 for row in rows)
    single = run("balance", "--base-url", server.url, "--api-key", "demo", "-o", "tsv")
    assert len(rows) == 2 * len(single.stdout.splitlines())  # every field, for each key
    # Each failed key is a line on stderr, with its name and masked key.
    assert "structocr: error: bad: HTTP 401 Unauthorized" in result.stderr
    assert "structocr: error: broken: HTTP 501" in result.stderr


def test_several_keys_as_env_variables_named_after_them(
    server: MockServer, tmp_path: Path
) -> None:
    import shlex

    result = several(server, tmp_path, "-o", "env", keys="ci-main = demo\nlow = demo-low\n")
    assert result.returncode == 0, result.stderr
    assert "STRUCTOCR_CI_MAIN_ACCOUNT_CREDITS_REMAINING=48849\n" in result.stdout
    assert "STRUCTOCR_LOW_ACCOUNT_CREDITS_REMAINING=12\n" in result.stdout
    for line in result.stdout.splitlines():  # each line is NAME=word for the shell
        name, _, value = line.partition("=")
        assert name.isidentifier()
        assert len(shlex.split(value)) <= 1


def test_env_refuses_names_that_would_overwrite_each_other(
    server: MockServer, tmp_path: Path
) -> None:
    before = server.requests("demo")
    result = several(server, tmp_path, "-o", "env", keys="a-b = demo\nA_B = demo\n")
    assert result.returncode == 2
    assert "the keys 'a-b' and 'A_B' would both be named STRUCTOCR_A_B_*" in result.stderr
    assert server.requests("demo") == before  # refused before anything was fetched


def test_fields_of_several_keys_one_line_each(server: MockServer, tmp_path: Path) -> None:
    result = several(server, tmp_path, "--field", "account.credits_remaining",
                     "--field", "this_key.credits_used", "--sort", "name")  # fmt: skip
    assert result.returncode == 50
    assert result.stdout.splitlines() == ["ci\t48849\t79", "low\t12\t79"]
    assert result.stderr.count("structocr: ") == 2  # bad and broken, one line each


def test_one_profile_is_still_the_single_key_report(server: MockServer, config_file: Path) -> None:
    config_file.write_text('[profiles.a]\napi_key = "demo"\n')
    result = run("balance", "--base-url", server.url, "-p", "a")
    assert result.returncode == 0
    assert result.stdout.startswith("StructOCR balance")


def test_several_keys_in_openmetrics_one_series_each(server: MockServer, tmp_path: Path) -> None:
    from tests.test_formats import parsed_families

    result = several(server, tmp_path, "-o", "openmetrics")
    assert result.returncode == 50
    families = parsed_families(result.stdout)  # promtool (if installed) and both parsers agree
    assert families["structocr_up"] == {"ci": 1.0, "low": 1.0, "bad": 0.0, "broken": 0.0}
    assert families["structocr_account_credits_remaining"] == {"ci": 48849.0, "low": 12.0}
    assert result.stdout.count("# HELP structocr_up ") == 1  # a family's HELP once


def test_account_gates_once_per_account_key_gates_per_key(
    server: MockServer, tmp_path: Path
) -> None:
    keys = f"a = demo\nb = {LONG_KEY}\nlow = demo-low\n"  # a and b: the same account
    result = several(server, tmp_path, "--min-remaining", "100000", "--max-key-credits", "1",
                     keys=keys)  # fmt: skip
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert lines.count("structocr: a, b: gate failed: account.credits_remaining 48849 < 100000 "
                       "(--min-remaining)") == 1  # fmt: skip
    assert ("structocr: low: gate failed: account.credits_remaining 12 < 100000 "
            "(--min-remaining)") in lines  # fmt: skip
    for name in ("a", "b", "low"):
        assert (f"structocr: {name}: gate failed: this_key.credits_used 79 > 1 "
                "(--max-key-credits)") in lines  # fmt: skip


def test_openmetrics_gives_an_account_its_figures_once(server: MockServer, tmp_path: Path) -> None:
    from tests.test_formats import parsed_families

    keys = f"a = demo\nb = {LONG_KEY}\nlow = demo-low\n"  # a and b: one account
    result = several(server, tmp_path, "-o", "openmetrics", keys=keys)
    families = parsed_families(result.stdout)
    assert families["structocr_account_credits_remaining"] == {"a": 48849.0, "low": 12.0}
    assert set(families["structocr_key_credits_used"]) == {"a", "b", "low"}
    assert set(families["structocr_up"]) == {"a", "b", "low"}


@pytest.mark.parametrize("output", ["table", "json", "tsv"])
def test_a_malformed_redirect_fails_its_own_key_only(
    server: MockServer, tmp_path: Path, output: str
) -> None:
    keys = "good = demo\nmoved = fault-redirect-bad-ipv6\nport = fault-redirect-bad-port\n"
    result = several(server, tmp_path, "-o", output, keys=keys)
    assert result.returncode == 61, result.stderr
    assert "internal error" not in result.stdout + result.stderr
    rows = [line for line in result.stdout.splitlines() if line.lstrip(' "').startswith("good")]
    assert rows or output == "json"
    if output == "json":  # the good key is reported as usual, the others as errors
        items = json.loads(result.stdout)
        assert [(i["profile"], i["exit_code"]) for i in items] == [
            ("good", 0), ("moved", 61), ("port", 61)]  # fmt: skip


@pytest.mark.parametrize(
    "text", ["", "# only a comment\n\n", None], ids=["empty", "comments", "devnull"]
)
@pytest.mark.parametrize("output", [(), ("--json",), ("-o", "tsv"), ("--watch", "5")])
def test_no_keys_selected_is_a_usage_error_not_a_passed_gate(
    server: MockServer, tmp_path: Path, text: str | None, output: tuple[str, ...]
) -> None:
    path = tmp_path / "keys.txt"
    if text is not None:
        path.write_text(text)
    name = "/dev/null" if text is None else str(path)
    result = run("balance", "--base-url", server.url, "--keys-file", name,
                 "--min-remaining", "1000000", *output)  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert f"no keys selected: {name} has no name=key line" in result.stderr
    assert result.stdout == ""


def test_a_name_given_twice_in_a_keys_file_names_both_lines(
    server: MockServer, tmp_path: Path
) -> None:
    text = "a = demo\n# a comment\na = demo-low\n"
    result = several(server, tmp_path, "--min-remaining", "1000", keys=text)
    assert result.returncode == 2
    assert "keys.txt, lines 1 and 3: the name 'a' is given twice" in result.stderr
    assert result.stdout == ""


def test_a_profile_and_a_keys_file_line_with_one_name_and_two_keys(
    server: MockServer, tmp_path: Path, config_file: Path
) -> None:
    config_file.write_text('[profiles.a]\napi_key = "demo"\n')
    result = several(server, tmp_path, "-p", "a", keys="a = demo-low\n")
    assert result.returncode == 2
    assert 'the name "a" stands for two different keys' in result.stderr


def test_a_byte_order_mark_before_the_first_name_is_not_part_of_it(
    server: MockServer, tmp_path: Path
) -> None:
    result = several(server, tmp_path, "-o", "tsv", keys="\ufeffa = demo\nb = demo-low\n")
    assert result.returncode == 0, result.stderr
    assert {line.split("\t")[0] for line in result.stdout.splitlines()} == {"a", "b"}


@pytest.mark.parametrize("columns", [40, 80, 200])
def test_the_table_of_many_keys_fits_the_terminal(
    server: MockServer, tmp_path: Path, columns: int
) -> None:
    keys = "".join(f"k{n:02d} = demo\n" for n in range(20)) + "bad = wrong-key-12345\n"
    result = several(server, tmp_path, keys=keys, env={"COLUMNS": str(columns)})
    lines = result.stdout.splitlines()
    assert all(len(line) <= columns for line in lines), [x for x in lines if len(x) > columns]
    text = " ".join(" ".join(lines).split())
    assert "Invalid or inactive API key" in text  # the whole error, wrapped in its row
    assert "Account of k00, k01 and 18 more keys:" in text  # counted, not listed
    assert lines[0].split()[:3] == ["KEY", "MASKED", "CREDITS"]
