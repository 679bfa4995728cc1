"""tsv, env, openmetrics and --field, exactly, for the reference example at a fixed time."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

from structocr_cli.api.model import parse_balance
from structocr_cli.derive import derive
from structocr_cli.mock.server import MockServer
from structocr_cli.report import machine as formats
from structocr_cli.report.fields import FIELDS
from tests.conftest import imported, promtool, run
from tests.test_model import REFERENCE

NOW = datetime(2026, 6, 16, tzinfo=timezone.utc)
BALANCE = parse_balance(json.dumps(REFERENCE).encode())
DERIVED = derive(BALANCE, NOW)

EXPECTED_TSV = """\
period.start\t2026-06-01T00:00:00.000Z
period.end\t2026-06-30T23:59:59.000Z
period.days_total\t30.00
period.days_elapsed\t15.00
period.days_left\t15.00
account.credits_total\t50569
account.credits_used\t1720
account.credits_remaining\t48849
account.credits_this_period\t337
account.requests_this_period\t206
account.error_rate\t4.37%
account.error_rate_pct\t4.37
account.avg_latency_ms\t2720
account.credits_used_pct\t3.40
this_key.credits_used\t79
this_key.requests\t45
this_key.error_rate\t2.22%
this_key.error_rate_pct\t2.22
this_key.avg_latency_ms\t2424
this_key.share_of_period_pct\t23.44
forecast.period_credits\t674.00
forecast.daily_burn\t22.47
forecast.runway_days\t2174.29
forecast.runout_date\t2032-05-29
trend.daily_burn\t
trend.runway_days\t
trend.runout_date\t
trend.runout_early\t
trend.runout_late\t
"""


def test_tsv_exactly() -> None:
    assert formats.tsv(BALANCE, DERIVED) == EXPECTED_TSV


def test_env_exactly() -> None:
    expected = "".join(
        "STRUCTOCR_" + path.upper().replace(".", "_") + "=" + value + "\n"
        for path, value in (line.split("\t") for line in EXPECTED_TSV.splitlines())
    )
    assert formats.env(BALANCE, DERIVED) == expected


def test_field_lines_in_the_order_asked() -> None:
    paths = ["forecast.runway_days", "account.credits_remaining", "account.error_rate_pct"]
    assert formats.field_lines(paths, BALANCE, DERIVED) == "2174.29\n48849\n4.37\n"


def test_env_round_trips_through_a_real_shell(tmp_path: Path) -> None:
    document = json.loads(json.dumps(REFERENCE))
    document["period"]["start"] = "2026-06-01 00:00:00Z"  # a space: must be quoted for eval
    balance = parse_balance(json.dumps(document).encode())
    text = formats.env(balance, derive(balance, NOW))
    script = tmp_path / "vars.sh"
    script.write_text(text)
    names = [formats.env_name(field.path) for field in FIELDS]
    shell = 'eval "$(cat "$1")"; ' + " ".join(f'printf "%s\\n" "${n}";' for n in names)
    out = subprocess.run(
        ["sh", "-c", shell, "sh", str(script)], capture_output=True, text=True, check=True
    ).stdout
    values = dict(zip(names, out.splitlines(), strict=True))
    assert values["STRUCTOCR_PERIOD_START"] == "2026-06-01 00:00:00Z"
    assert values["STRUCTOCR_ACCOUNT_CREDITS_REMAINING"] == "48849"
    assert values["STRUCTOCR_FORECAST_RUNOUT_DATE"] == "2032-05-29"


def parsed(text: str) -> dict[str, tuple[dict[str, str], float]]:
    """The samples, as both of prometheus_client's parsers read them (they must agree), after
    promtool's lint when promtool is installed."""
    assert text.endswith("\n# EOF\n")
    samples = {}
    for parse in (text_string_to_metric_families, openmetrics_families):
        found = {}
        for family in parse(text):
            assert family.type == "gauge"
            assert family.documentation
            for sample in family.samples:
                found[sample.name] = (sample.labels, sample.value)
        samples[parse] = found
    assert samples[text_string_to_metric_families] == samples[openmetrics_families]
    if shutil.which("promtool"):
        promtool("check", "metrics", stdin=text)
    return samples[openmetrics_families]


def parsed_families(text: str) -> dict[str, dict[str, float]]:
    """Every sample by family and profile label, checked as ``parsed`` checks."""
    parsed(text)
    families: dict[str, dict[str, float]] = {}
    for family in openmetrics_families(text):
        for sample in family.samples:
            families.setdefault(sample.name, {})[sample.labels.get("profile", "")] = sample.value
    return families


def test_no_gauge_is_named_like_a_counter() -> None:
    assert not [name for name in parsed(formats.openmetrics(BALANCE, DERIVED, None))
                if name.endswith("_total")]  # fmt: skip
    assert parsed(formats.openmetrics(BALANCE, DERIVED, None))[
        "structocr_account_credits_granted"
    ] == ({}, 50569)


def test_openmetrics_parses_with_the_reference_parser() -> None:
    samples = parsed(formats.openmetrics(BALANCE, DERIVED, "prod"))
    assert samples["structocr_up"] == ({"profile": "prod"}, 1.0)
    assert samples["structocr_account_credits_remaining"][1] == 48849
    assert samples["structocr_key_credits_used"][1] == 79
    assert samples["structocr_account_error_ratio"][1] == pytest.approx(0.0437)
    assert samples["structocr_key_error_ratio"][1] == pytest.approx(0.0222)
    assert samples["structocr_account_avg_latency_seconds"][1] == pytest.approx(2.72)
    assert samples["structocr_period_start_timestamp_seconds"][1] == 1780272000
    assert samples["structocr_forecast_runway_seconds"][1] == pytest.approx(
        2174.2878 * 86400, 1e-6
    )
    assert all(labels == {"profile": "prod"} for labels, _ in samples.values())


def test_openmetrics_without_a_profile_has_no_labels_and_escapes_odd_names() -> None:
    assert parsed(formats.openmetrics(BALANCE, DERIVED, None))["structocr_up"] == ({}, 1.0)
    odd = parsed(formats.openmetrics(BALANCE, DERIVED, 'a"b\\c'))
    assert odd["structocr_up"][0] == {"profile": 'a"b\\c'}


def test_openmetrics_down_is_a_valid_scrape() -> None:
    assert parsed(formats.openmetrics_down("ci")) == {"structocr_up": ({"profile": "ci"}, 0.0)}


# As users run them.


def test_cli_outputs_agree_with_each_other(server: MockServer) -> None:
    def out(*args: str) -> str:
        result = run("balance", "--base-url", server.url, "--api-key", "demo", *args)
        assert result.returncode == 0, result.stderr
        return result.stdout

    tsv = dict(line.split("\t") for line in out("-o", "tsv").splitlines())
    assert list(tsv) == [field.path for field in FIELDS]
    env = dict(line.split("=", 1) for line in out("-o", "env").splitlines())
    assert env["STRUCTOCR_ACCOUNT_CREDITS_REMAINING"] == tsv["account.credits_remaining"]
    assert out("--field", "account.credits_remaining", "--field", "this_key.error_rate") == (
        "48849\n2.22%\n"
    )
    samples = parsed(out("-o", "openmetrics"))
    assert samples["structocr_up"] == ({}, 1.0)


def test_cli_openmetrics_labels_the_profile(server: MockServer, config_file: Path) -> None:
    config_file.write_text(f'[profiles.ci]\napi_key = "demo"\nbase_url = "{server.url}"\n')
    result = run("balance", "-p", "ci", "-o", "openmetrics")
    assert parsed(result.stdout)["structocr_up"] == ({"profile": "ci"}, 1.0)


def test_cli_openmetrics_on_failure_prints_up_0_and_fails(server: MockServer) -> None:
    result = run("balance", "--base-url", server.url, "--api-key", "demo-404", "-o", "openmetrics")
    assert result.returncode == 44
    assert parsed(result.stdout) == {"structocr_up": ({}, 0.0)}
    assert "Account not found" in result.stderr


def test_unknown_field_exits_2_listing_valid_ones(server: MockServer) -> None:
    result = run("balance", "--base-url", server.url, "--api-key", "demo", "--field", "credits")
    assert result.returncode == 2
    assert "unknown field 'credits'" in result.stderr
    assert "account.credits_remaining" in result.stderr
    assert result.stdout == ""


def test_field_and_output_are_exclusive() -> None:
    result = run("balance", "--api-key", "demo", "--field", "account.credits_used", "-o", "tsv")
    assert result.returncode == 2


def test_machine_formats_do_not_import_rich(server: MockServer) -> None:
    for args in (["-o", "tsv"], ["-o", "env"], ["-o", "openmetrics"], ["--field", "period.end"]):
        loaded = imported("balance", "--base-url", server.url, "--api-key", "demo", *args)
        assert "requests" in loaded
        assert "rich" not in loaded, args


def test_a_runway_too_long_for_seconds_is_left_out_not_inf() -> None:
    # Found by fuzzing: a finite runway in days overflowed once converted to seconds.
    document = json.loads(json.dumps(REFERENCE))
    document["period"] = {"start": "2000-01-01T00:00:00+00:01", "end": "2000-01-01T00:00:00Z"}
    document["account"].update(credits_this_period=1e-300, credits_remaining=2996156)
    balance = parse_balance(json.dumps(document).encode())
    text = formats.openmetrics(
        balance, derive(balance, datetime(2000, 1, 1, tzinfo=timezone.utc)), None
    )
    assert "structocr_forecast_runway_seconds" not in text
    values = [line.rsplit(" ", 1)[1] for line in text.splitlines() if not line.startswith("#")]
    assert all(math.isfinite(float(value)) for value in values), values


def test_report_json_adds_the_derived_figures_gates_and_key(server: MockServer) -> None:
    from tests.conftest import LONG_KEY, run

    result = run("balance", "-o", "report-json", "--base-url", server.url,
                 "--min-remaining", "1000", env={"STRUCTOCR_API_KEY": LONG_KEY})  # fmt: skip
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["account"]["credits_remaining"] == 48849  # the server's figures, as sent
    assert document["account"]["error_rate"] == "4.37%"
    assert document["account"]["error_rate_pct"] == 4.37  # derived ones beside them
    assert set(document["forecast"]) == {"period_credits", "daily_burn", "runway_days",
                                         "runout_date"}  # fmt: skip
    assert document["period"]["days_total"] == pytest.approx(30, abs=0.001)
    (checked,) = document["gates"]
    assert checked == {
        "option": "--min-remaining", "path": "account.credits_remaining", "operator": "<",
        "threshold": 1000, "value": 48849, "breached": False,
        "message": "gate passed: account.credits_remaining 48849 >= 1000 (--min-remaining)",
    }  # fmt: skip
    assert document["key"]["masked"] == "sk_l…2b1c"
    assert LONG_KEY not in result.stdout
    jq = shutil.which("jq")
    if jq:  # as scripts read it
        out = subprocess.run([jq, "-r", ".forecast.runway_days"], input=result.stdout,
                             capture_output=True, text=True, check=True).stdout  # fmt: skip
        assert float(out) > 0


def test_under_json_every_stderr_line_is_a_json_document(
    server: MockServer, config_file: Path
) -> None:
    from tests.conftest import run

    config_file.write_text('[profiles.low]\napi_key = "demo-low"\n[oops]\nx = 1\n')
    config_file.chmod(0o644)  # a warning
    for output in (("--json",), ("-o", "report-json")):
        result = run("balance", "-p", "low", "--base-url", server.url, "--min-remaining",
                     "1000", *output)  # fmt: skip
        assert result.returncode == 1
        parsed = [json.loads(line) for line in result.stderr.splitlines()]
        kinds = [next(iter(item)) for item in parsed]
        assert kinds.count("warning") == 2
        assert kinds[-1] == "gate"
        assert parsed[-1]["gate"]["breached"] is True


def test_several_keys_in_report_json(server: MockServer, tmp_path: Path) -> None:
    from tests.conftest import run

    keys = tmp_path / "keys.txt"
    keys.write_text("ok = demo\nbad = wrong-key-12345\n")
    result = run("balance", "--base-url", server.url, "--keys-file", str(keys), "-o",
                 "report-json")  # fmt: skip
    items = json.loads(result.stdout)
    assert items[0]["data"]["forecast"]["runway_days"] > 0
    assert items[1]["error"]["exit_code"] == 41
    assert result.returncode == 41
