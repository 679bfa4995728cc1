"""``structocr exporter --print-rules``: Prometheus recording and alerting rules for the
exporter's metrics, with the thresholds given. Standard library only; the YAML is written
out by hand (its shape is fixed, and every value in it is checked here).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from structocr_cli.api.errors import UsageError

_JOB = re.compile(r"[A-Za-z0-9_.:-]{1,64}")

BURN_PER_HOUR = "profile:structocr_key_credits_burned:per_hour"
RUNWAY_DAYS = "profile:structocr_account_runway_days:burn6h"


@dataclass(frozen=True)
class Thresholds:
    min_credits: float = 1000
    """StructOCRCreditsLow: fewer credits than this remain."""
    runway_days: float = 7
    """StructOCRRunwayShort: at the last 6 h's burn, credits run out within this many days."""
    error_ratio: float = 0.05
    """StructOCRKeyErrorsHigh: more than this share of a key's requests fail (0-1)."""
    job: str = "structocr"
    """The scrape job's name, for StructOCRExporterDown."""

    def __post_init__(self) -> None:
        if not _JOB.fullmatch(self.job):
            raise UsageError(
                f"--job {self.job!r} is not a job name",
                "Use letters, digits, '_', '.', ':' and '-'",
            )
        for name, value in (("--alert-credits", self.min_credits),
                            ("--alert-runway-days", self.runway_days)):  # fmt: skip
            if not 0 <= value < 1e15:
                raise UsageError(f"{name} must be between 0 and 1e15")
        if not 0 <= self.error_ratio <= 1:
            raise UsageError("--alert-error-ratio is a share of requests, from 0 to 1")


def _number(value: float) -> str:
    return f"{value:g}" if abs(value) < 1e6 else str(int(value))


def rules(thresholds: Thresholds) -> str:
    """The rules file, for ``rule_files`` in prometheus.yml."""
    t = thresholds
    credits, days, ratio = _number(t.min_credits), _number(t.runway_days), _number(t.error_ratio)
    return f"""\
# Rules for structocr exporter's metrics (structocr exporter --print-rules).
# Check them with: promtool check rules FILE
groups:
  - name: structocr-recording
    rules:
      # Credits each key burned in the last hour (a key's count restarts with each billing
      # period: the drop at the start of a period is not counted as burn).
      - record: {BURN_PER_HOUR}
        expr: clamp_min(delta(structocr_key_credits_used[1h]), 0)
      # Days until the account's credits run out at the pace of the last 6 hours
      # (+Inf while nothing is being used).
      - record: {RUNWAY_DAYS}
        expr: >-
          structocr_account_credits_remaining
          / (clamp_min(delta(structocr_account_credits_used[6h]), 0) / 6 * 24)
  - name: structocr-alerts
    rules:
      - alert: StructOCRCreditsLow
        expr: structocr_account_credits_remaining < {credits}
        for: 10m
        labels:
          severity: warning
        annotations:
          summary: "StructOCR credits low for {{{{ $labels.profile }}}}"
          description: >-
            The account of profile {{{{ $labels.profile }}}} has {{{{ $value }}}} credits left
            (alert below {credits}).
      - alert: StructOCRRunwayShort
        expr: {RUNWAY_DAYS} < {days}
        for: 30m
        labels:
          severity: page
        annotations:
          summary: >-
            StructOCR credits of {{{{ $labels.profile }}}} run out within {days} days
          description: >-
            At the last 6 hours' pace, the account of profile {{{{ $labels.profile }}}} runs out of
            credits in {{{{ $value | humanize }}}} days. Buy credits or slow usage down.
      - alert: StructOCRKeyErrorsHigh
        expr: structocr_key_error_ratio > {ratio}
        for: 30m
        labels:
          severity: warning
        annotations:
          summary: "StructOCR requests of {{{{ $labels.profile }}}} fail often"
          description: >-
            {{{{ $value | humanizePercentage }}}} of the requests made with the key of profile
            {{{{ $labels.profile }}}} failed this billing period (alert above {ratio}).
      - alert: StructOCRBalanceUnknown
        expr: structocr_up == 0
        for: 15m
        labels:
          severity: warning
        annotations:
          summary: "The StructOCR balance of {{{{ $labels.profile }}}} cannot be fetched"
          description: >-
            structocr exporter has not fetched the balance of profile {{{{ $labels.profile }}}}
            recently; structocr_fetch_errors_total says why (its code label), and the exporter's
            log has the error.
      - alert: StructOCRExporterDown
        expr: up{{job="{t.job}"}} == 0 or absent(up{{job="{t.job}"}})
        for: 5m
        labels:
          severity: warning
        annotations:
          summary: "structocr exporter is down"
          description: >-
            Prometheus cannot scrape job {t.job}: no StructOCR balance is being watched.
"""
