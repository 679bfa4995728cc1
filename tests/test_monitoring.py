"""What the exporter ships for monitoring, read by the real tools: the rules (promtool
check and unit tests), the Grafana dashboard, the systemd unit of the README
(systemd-analyze), and a real Prometheus server scraping a real exporter. Each real tool's
test skips where the tool is not installed (.ci/run installs them when it can)."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from structocr_cli.exporter.rules import BURN_PER_HOUR, RUNWAY_DAYS, Thresholds, rules
from structocr_cli.mock.server import MockServer
from tests.conftest import LONG_KEY, STRUCTOCR, _recorded, promtool, run
from tests.manual import MANUAL as README

METRIC = re.compile(r"(?<![:\w])structocr_[a-z_]+(?![:\w])")
"""A metric name in PromQL (not part of a recording rule's level:name:operation)."""
needs_promtool = pytest.mark.skipif(not shutil.which("promtool"), reason="no promtool")


def served_metric_names() -> set[str]:
    """Every metric name the exporter can serve."""
    from structocr_cli.exporter.cache import _OWN_HELP
    from structocr_cli.report.machine import METRICS

    names = {f"structocr_{name}" for name, _, _ in METRICS}
    names |= {f"structocr_{name}" for name in _OWN_HELP if name != "fetch_errors"}
    return names | {"structocr_fetch_errors_total"}


def printed_rules(*args: str) -> str:
    result = run("exporter", "--print-rules", *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_rules_use_the_thresholds_given_and_only_served_metrics() -> None:
    text = printed_rules("--alert-credits", "250", "--alert-runway-days", "3.5",
                         "--alert-error-ratio", "0.1", "--job", "ocr")  # fmt: skip
    document = yaml.safe_load(text)
    alerts = {rule["alert"]: rule for group in document["groups"] for rule in group["rules"]
              if "alert" in rule}  # fmt: skip
    assert alerts["StructOCRCreditsLow"]["expr"] == "structocr_account_credits_remaining < 250"
    assert alerts["StructOCRRunwayShort"]["expr"] == f"{RUNWAY_DAYS} < 3.5"
    assert alerts["StructOCRKeyErrorsHigh"]["expr"] == "structocr_key_error_ratio > 0.1"
    assert 'up{job="ocr"}' in alerts["StructOCRExporterDown"]["expr"]
    for rule in alerts.values():
        assert "summary" in rule["annotations"]
        assert "description" in rule["annotations"]
    every_expr = " ".join(rule["expr"] for group in document["groups"] for rule in group["rules"])
    used = set(re.findall(METRIC, every_expr))
    assert used <= served_metric_names(), used - served_metric_names()


@needs_promtool
def test_promtool_checks_the_rules(tmp_path: Path) -> None:
    path = tmp_path / "rules.yml"
    path.write_text(printed_rules())
    assert "SUCCESS: 7 rules found" in promtool("check", "rules", str(path))


def _series(name: str, profile: str, values: str) -> dict[str, str]:
    return {"series": f'{name}{{profile="{profile}",job="structocr",instance="x:9811"}}',
            "values": values}  # fmt: skip


def _expected(profile: str, severity: str, summary: str, description: str) -> dict[str, Any]:
    return {
        "exp_labels": {"profile": profile, "job": "structocr", "instance": "x:9811",
                       "severity": severity},
        "exp_annotations": {"summary": summary, "description": description},
    }  # fmt: skip


@needs_promtool
def test_promtool_unit_tests_each_alert_at_its_time(tmp_path: Path) -> None:
    """Series over time in; the alerts expected at given times out (promtool test rules)."""
    (tmp_path / "rules.yml").write_text(rules(Thresholds()))
    hours = "x600"  # ten hours of one-minute samples
    series = [
        # "low": 500 credits left, nothing used: low, but no runway alert (no burn).
        _series("structocr_account_credits_remaining", "low", f"500{hours}"),
        _series("structocr_account_credits_used", "low", f"1000{hours}"),
        # "busy": 50,000 left, burning 100 a minute: runway 0.35 days.
        _series("structocr_account_credits_remaining", "busy", f"50000{hours}"),
        _series("structocr_account_credits_used", "busy", f"0+100{hours}"),
        # "fine": plenty left, burning slowly (10 a minute: 347 days).
        _series("structocr_account_credits_remaining", "fine", f"5000000{hours}"),
        _series("structocr_account_credits_used", "fine", f"0+10{hours}"),
        _series("structocr_key_error_ratio", "flaky", f"0.2{hours}"),
        _series("structocr_key_error_ratio", "fine", f"0.01{hours}"),
        _series("structocr_up", "gone", f"0{hours}"),
        _series("structocr_up", "fine", f"1{hours}"),
        _series("structocr_key_credits_used", "fine", f"0+10{hours}"),
        {"series": 'up{job="structocr",instance="x:9811"}', "values": f"1x60 0{hours}"},
    ]
    runway_summary = "StructOCR credits of busy run out within 7 days"
    tests = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": series,
            "alert_rule_test": [
                {"eval_time": "5m", "alertname": "StructOCRCreditsLow", "exp_alerts": []},
                {"eval_time": "15m", "alertname": "StructOCRCreditsLow", "exp_alerts": [
                    _expected("low", "warning", "StructOCR credits low for low",
                              "The account of profile low has 500 credits left (alert below "
                              "1000).")]},
                {"eval_time": "20m", "alertname": "StructOCRRunwayShort", "exp_alerts": []},
                {"eval_time": "7h", "alertname": "StructOCRRunwayShort", "exp_alerts": [
                    # 50,000 credits at 144,000 a day: 0.3472 days, as humanize writes it.
                    _expected("busy", "page", runway_summary,
                              "At the last 6 hours' pace, the account of profile busy runs out "
                              "of credits in 347.2m days. Buy credits or slow usage down.")]},
                {"eval_time": "1h", "alertname": "StructOCRKeyErrorsHigh", "exp_alerts": [
                    _expected("flaky", "warning", "StructOCR requests of flaky fail often",
                              "20% of the requests made with the key of profile flaky failed "
                              "this billing period (alert above 0.05).")]},
                {"eval_time": "10m", "alertname": "StructOCRBalanceUnknown", "exp_alerts": []},
                {"eval_time": "20m", "alertname": "StructOCRBalanceUnknown", "exp_alerts": [
                    _expected("gone", "warning",
                              "The StructOCR balance of gone cannot be fetched",
                              "structocr exporter has not fetched the balance of profile gone "
                              "recently; structocr_fetch_errors_total says why (its code "
                              "label), and the exporter's log has the error.")]},
                {"eval_time": "50m", "alertname": "StructOCRExporterDown", "exp_alerts": []},
                {"eval_time": "70m", "alertname": "StructOCRExporterDown", "exp_alerts": [{
                    "exp_labels": {"job": "structocr", "instance": "x:9811",
                                   "severity": "warning"},
                    "exp_annotations": {
                        "summary": "structocr exporter is down",
                        "description": "Prometheus cannot scrape job structocr: no StructOCR "
                                       "balance is being watched."}}]},
            ],
        }],
    }  # fmt: skip
    # 10 credits a minute is 600 an hour; 5,000,000 credits at 14,400 a day last 347.2 days.
    tests["tests"][0]["promql_expr_test"] = [
        {"expr": f'{BURN_PER_HOUR}{{profile="fine"}}', "eval_time": "3h",
         "exp_samples": [{"labels": f'{BURN_PER_HOUR}{{profile="fine",job="structocr",'
                                    'instance="x:9811"}', "value": 600}]},
        {"expr": f'{RUNWAY_DAYS}{{profile="fine"}}', "eval_time": "7h",
         "exp_samples": [{"labels": f'{RUNWAY_DAYS}{{profile="fine",job="structocr",'
                                    'instance="x:9811"}', "value": 5000000 / 14400}]},
    ]  # fmt: skip
    path = tmp_path / "rules_test.yml"
    path.write_text(yaml.safe_dump(tests, sort_keys=False))
    promtool("test", "rules", str(path))


def test_the_dashboard_queries_only_what_the_exporter_serves() -> None:
    result = run("exporter", "--print-dashboard")
    assert result.returncode == 0
    dashboard = json.loads(result.stdout)
    assert dashboard["title"] == "StructOCR credits"
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    assert len(exprs) >= 5
    used = {name for expr in exprs for name in re.findall(METRIC, expr)}
    assert used <= served_metric_names(), used - served_metric_names()
    assert {"structocr_account_credits_remaining", "structocr_key_credits_used",
            "structocr_forecast_runway_seconds", "structocr_key_error_ratio"} <= used  # fmt: skip
    titles = {panel["title"] for panel in dashboard["panels"]}
    assert {"Credits remaining", "Runway", "Error rate, by key"} <= titles
    assert dashboard["templating"]["list"][0]["type"] == "datasource"


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="no systemd-analyze")
def test_the_readme_systemd_unit_verifies(tmp_path: Path) -> None:
    (unit,) = re.findall(r"^```ini\n(.*?)^```", README, re.M | re.S)
    assert "DynamicUser=yes" in unit
    assert "ProtectSystem=strict" in unit
    assert "LoadCredential=keys:" in unit
    assert "Environment=STRUCTOCR_CONFIG=" in unit
    path = tmp_path / "structocr-exporter.service"
    # The installed script stands in for /usr/local/bin/structocr, which verify looks for.
    path.write_text(unit.replace("/usr/local/bin/structocr", str(STRUCTOCR)))
    check = subprocess.run(["systemd-analyze", "verify", "--man=no", str(path)],
                           capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    problems = [line for line in (check.stdout + check.stderr).splitlines()
                if path.name in line or "structocr" in line]  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr
    assert not problems, problems


# A real Prometheus server scraping a real exporter.


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _query(base: str, promql: str) -> list[dict[str, Any]]:
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(url, timeout=5) as response:
        answer = json.loads(response.read())
    result: list[dict[str, Any]] = answer["data"]["result"]
    return result


@pytest.mark.skipif(not shutil.which("prometheus"), reason="no prometheus")
def test_a_real_prometheus_scrapes_the_exporter(server: MockServer, tmp_path: Path) -> None:
    keys = tmp_path / "keys.txt"
    keys.write_text(f"ok = {LONG_KEY}\nbad = wrong-key-12345\nbroken = demo-500\n")
    (tmp_path / "structocr.rules.yml").write_text(rules(Thresholds(min_credits=100000)))
    exporter_log = tmp_path / "exporter.log"
    port = _free_port()
    with exporter_log.open("w") as log:
        exporter = subprocess.Popen(
            [str(STRUCTOCR), "exporter", "--listen", "127.0.0.1:0", "--keys-file", str(keys),
             "--base-url", server.url, "--min-interval", "1"],
            stdout=subprocess.PIPE, stderr=log, text=True,
        )  # fmt: skip
    prometheus = None
    try:
        assert exporter.stdout is not None
        target = urllib.parse.urlsplit(exporter.stdout.readline().strip()).netloc
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": ["structocr.rules.yml"],
            "scrape_configs": [{"job_name": "structocr",
                                "static_configs": [{"targets": [target]}]}],
        }  # fmt: skip
        (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
        prometheus = subprocess.Popen(
            ["prometheus", f"--config.file={tmp_path / 'prometheus.yml'}",
             f"--storage.tsdb.path={tmp_path / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        wanted = {
            'structocr_account_credits_remaining{profile="ok"}': 48849.0,
            'structocr_up{profile="bad"}': 0.0,
            'structocr_up{profile="broken"}': 0.0,
            'structocr_up{profile="ok"}': 1.0,
            'up{job="structocr"}': 1.0,
            'ALERTS{alertname="StructOCRCreditsLow",profile="ok"}': 1.0,  # pending, at least
        }
        seen: dict[str, float] = {}
        give_up = time.monotonic() + 40  # its discovery passes targets on after 5 s
        while len(seen) < len(wanted) and time.monotonic() < give_up:
            time.sleep(0.5)
            for promql in wanted:
                try:
                    result = _query(base, promql)
                except OSError:  # not listening yet
                    break
                if result:
                    seen[promql] = float(result[0]["value"][1])
        assert seen == wanted
        with urllib.request.urlopen(f"{base}/api/v1/rules", timeout=5) as response:
            groups = json.loads(response.read())["data"]["groups"]
        assert {group["name"] for group in groups} == {"structocr-recording", "structocr-alerts"}
        assert all(rule["health"] == "ok" for group in groups for rule in group["rules"])
    finally:
        for process in (prometheus, exporter):
            if process is not None:
                process.terminate()
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        _recorded(exporter_log.read_text())
    assert exporter.returncode == 0
