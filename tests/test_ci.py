"""GitHub Actions: annotations and the step summary, with the variables set and unset."""

from __future__ import annotations

import subprocess
from pathlib import Path

from structocr_cli.mock.server import MockServer
from tests.conftest import run


def gate(server: MockServer, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return run(
        "balance", "--base-url", server.url, "--api-key", "demo-low", "-q",
        "--min-remaining", "100", "--max-error-rate", "5", *args, env=env,
    )  # fmt: skip


def test_annotations_and_summary_on_github(server: MockServer, tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    result = gate(server, GITHUB_ACTIONS="true", GITHUB_STEP_SUMMARY=str(summary))
    assert result.returncode == 1
    assert (
        "::error title=StructOCR budget gate::gate failed: account.credits_remaining 12 < 100 "
        "(--min-remaining)"
    ) in result.stderr.splitlines()
    assert result.stdout == ""
    text = summary.read_text()
    assert text.startswith("earlier step\n<!-- structocr summary -->\n### StructOCR balance")
    assert "| Credits remaining | 12 |" in text
    assert "| `--min-remaining` (account.credits_remaining) | 12 | ≥ 100 | ❌ breached |" in text
    assert "| `--max-error-rate` (account.error_rate_pct) | 4.37 | ≤ 5 | ✅ passed |" in text


def test_nothing_github_specific_elsewhere(server: MockServer, tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    result = gate(server, GITHUB_STEP_SUMMARY=str(summary))
    assert result.returncode == 1
    assert "::error" not in result.stderr
    assert not summary.exists()


def test_no_ci_turns_it_off(server: MockServer, tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    result = gate(server, "--no-ci", GITHUB_ACTIONS="true", GITHUB_STEP_SUMMARY=str(summary))
    assert result.returncode == 1
    assert "::error" not in result.stderr
    assert "gate failed" in result.stderr
    assert not summary.exists()


def test_runs_without_gates_write_no_summary(server: MockServer, tmp_path: Path) -> None:
    # e.g. the README's second step, `-o env >> "$GITHUB_OUTPUT"`, after a gate step
    summary = tmp_path / "summary.md"
    result = run(
        "balance", "--base-url", server.url, "--api-key", "demo", "-q",
        env={"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)},
    )  # fmt: skip
    assert result.returncode == 0
    assert not summary.exists()


def test_a_second_gate_run_in_a_step_replaces_the_summary(
    server: MockServer, tmp_path: Path
) -> None:
    summary = tmp_path / "summary.md"
    summary.write_text("before\n")
    env = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)}
    assert gate(server, **env).returncode == 1
    summary.write_text(summary.read_text() + "between\n")
    assert gate(server, "--max-key-credits", "1", **env).returncode == 1
    text = summary.read_text()
    assert text.count("### StructOCR balance") == 1
    assert "--max-key-credits" in text  # the second run's table
    assert text.startswith("before\n")  # others' text is kept
    assert "between\n" in text


def test_runway_in_the_summary_agrees_with_the_report(server: MockServer, tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    env = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)}
    gate(server, **env)
    report = run("balance", "--base-url", server.url, "--api-key", "demo-low").stdout
    (runway,) = [line.split("|")[2].strip() for line in summary.read_text().splitlines()
                 if line.startswith("| Runway")]  # fmt: skip
    assert runway in report
