"""The terminal report, exactly, for the reference example at a fixed time."""

from __future__ import annotations

import io
import json
from datetime import datetime, timezone

import pytest

from structocr_cli.api.model import parse_balance
from structocr_cli.derive import derive
from structocr_cli.report.render import bar, report, sections
from tests.test_model import REFERENCE

NOW = datetime(2026, 6, 16, tzinfo=timezone.utc)

EXPECTED = """\
StructOCR balance (https://structocr.com/v1, key from env STRUCTOCR_API_KEY)

Billing period
  Start                 2026-06-01 00:00 UTC
  End                   2026-06-30 23:59 UTC
  Days elapsed                          15.0  of 30.0 (50.0%)
  Days left                             15.0

Account
  Credits total                       50,569
  Credits used                         1,720
  Credits remaining                   48,849
  Used of total                         3.4%  █░░░░░░░░░░░░░░░░░░░
  Credits this period                    337
  Requests this period                   206
  Error rate                           4.37%
  Avg latency                       2,720 ms

This key, this period
  Credits used                            79
  Share of account                     23.4%  of 337 credits this period
  Requests                                45
  Error rate                           2.22%
  Avg latency                       2,424 ms

Forecast at this period's pace
  Credits this period                 674.00  projected to the end
  Daily burn                           22.47  credits a day
  Runway                       2,174.29 days  runs out ~2032-05-29
"""


def render(document: object, source: str) -> str:
    balance = parse_balance(json.dumps(document).encode())
    out = io.StringIO()
    report(balance, derive(balance, NOW), source, out)
    return out.getvalue()  # as printed: a trailing space would show in a pipe


def test_report_exactly() -> None:
    assert (
        render(REFERENCE, "https://structocr.com/v1, key from env STRUCTOCR_API_KEY") == EXPECTED
    )


def test_text_is_never_read_as_markup() -> None:
    text = render(REFERENCE, "[bold red]x[/bold red] :smile: [/")
    assert "[bold red]x[/bold red] :smile: [/" in text


def test_report_without_burn_or_totals_says_so() -> None:
    document = json.loads(json.dumps(REFERENCE))
    document["account"].update(credits_total=0, credits_this_period=0)
    text = render(document, "s")
    assert "Used of total                          n/a" in text
    assert "Runway                             no burn  nothing used yet" in text


def test_bar_is_clamped_and_has_an_ascii_form() -> None:
    assert bar(50.0) == "█" * 10 + "░" * 10
    assert bar(250.0, unicode=False) == "#" * 20
    assert bar(-5.0, unicode=False) == "-" * 20
    assert bar(None, unicode=False) == "-" * 20


HUGE = json.loads(json.dumps(REFERENCE))
HUGE["account"].update(credits_total=2**53, credits_remaining=2**53 - 1, avg_latency_ms=12345678.5)


@pytest.mark.parametrize("document", [REFERENCE, HUGE], ids=["reference", "huge"])
def test_at_every_width_no_value_is_cut(
    document: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    balance = parse_balance(json.dumps(document).encode())
    derived = derive(balance, NOW)
    rows = [row for _, section in sections(balance, derived, True) for row in section]
    values = {row.value for row in rows}
    for width in range(20, 251):
        monkeypatch.setenv("COLUMNS", str(width))
        out = io.StringIO()
        report(balance, derived, "https://structocr.com/v1, key from env STRUCTOCR_API_KEY", out)
        lines = out.getvalue().splitlines()
        for row in rows:  # each value whole, on one line
            assert any(row.value in line for line in lines), (width, row.value)
        words = {word for line in lines for word in line.split()}
        for row in rows:  # notes wrap at spaces only: every word survives
            assert set(row.note.split()) <= words, (width, row.note)
        for line in lines:
            assert line == line.rstrip(), (width, line)
            if len(line) > width:  # only a word or a value too long for any line may overflow
                assert " " not in line.strip() or line.strip() in values, (width, line)
            if "█" in line or "░" in line:
                assert len(line) <= width, (width, line)  # the bar fits, or is left out
        assert any("█" in line or "░" in line for line in lines) == (width >= 24), width
