"""The terminal report, exactly, for the reference example at a fixed time."""

from __future__ import annotations

import io
import json
from datetime import datetime, timezone

from structocr_cli.derive import derive
from structocr_cli.model import parse_balance
from structocr_cli.render import bar, report
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
    return "\n".join(line.rstrip() for line in out.getvalue().splitlines()) + "\n"


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
