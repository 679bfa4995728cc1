"""Every raw and derived figure by path (``account.credits_remaining``), in one stable order.

The one list behind ``--field``, ``-o tsv``, ``-o env`` and the README's field table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from structocr_cli.api.model import Balance
from structocr_cli.derive import Derived

Value = int | float | Decimal | str | None
Getter = Callable[[Balance, Derived], Value]


@dataclass(frozen=True)
class Field:
    path: str
    help: str
    get: Getter
    derived: bool = False


def _raw(path: str, help_text: str) -> Field:
    section, name = path.split(".")
    return Field(path, help_text, lambda balance, _: balance.document[section][name])


def _derived(path: str, attribute: str, help_text: str) -> Field:
    return Field(path, help_text, lambda _, derived: getattr(derived, attribute), derived=True)


def _runout(_: Balance, derived: Derived) -> str | None:
    return None if derived.runout is None else f"{derived.runout:%Y-%m-%d}"


def _trend(attribute: str) -> Getter:
    def get(_: Balance, derived: Derived) -> Value:
        value = None if derived.trend is None else getattr(derived.trend, attribute)
        return f"{value:%Y-%m-%d}" if isinstance(value, datetime) else value

    return get


FIELDS: tuple[Field, ...] = (
    _raw("period.start", "start of the billing period, as sent"),
    _raw("period.end", "end of the billing period, as sent"),
    _derived("period.days_total", "days_total", "length of the period, days"),
    _derived("period.days_elapsed", "days_elapsed", "days of the period gone"),
    _derived("period.days_left", "days_left", "days of the period left"),
    _raw("account.credits_total", "credits bought and awarded, all-time"),
    _raw("account.credits_used", "credits used by all keys, all-time"),
    _raw("account.credits_remaining", "credits available"),
    _raw("account.credits_this_period", "credits used this period, all keys"),
    _raw("account.requests_this_period", "requests this period, all keys"),
    _raw("account.error_rate", 'error rate this period, as sent ("4.37%")'),
    _derived("account.error_rate_pct", "account_error_rate_pct", "the same as a number (4.37)"),
    _raw("account.avg_latency_ms", "average latency this period, ms"),
    _derived("account.credits_used_pct", "credits_used_pct", "credits_used / credits_total, %"),
    _raw("this_key.credits_used", "credits used by this key this period"),
    _raw("this_key.requests", "requests by this key this period"),
    _raw("this_key.error_rate", 'this key\'s error rate, as sent ("2.22%")'),
    _derived("this_key.error_rate_pct", "key_error_rate_pct", "the same as a number (2.22)"),
    _raw("this_key.avg_latency_ms", "this key's average latency, ms"),
    _derived(
        "this_key.share_of_period_pct",
        "share_of_period_pct",
        "this key's share of the account's credits this period, %",
    ),
    _derived("forecast.period_credits", "period_credits", "credits this period, projected"),
    _derived("forecast.daily_burn", "daily_burn", "credits a day so far this period"),
    _derived("forecast.runway_days", "runway_days", "days until credits run out (empty: no burn)"),
    Field("forecast.runout_date", "date credits run out, UTC (empty: no burn)", _runout, True),
    Field("trend.daily_burn", "credits a day at the recorded history's trend (last 7 days; "
          "empty: under 24 h of history)", _trend("daily_burn"), True),
    Field("trend.runway_days", "days until credits run out at that trend", _trend("runway_days"),
          True),
    Field("trend.runout_date", "date credits run out at that trend, UTC", _trend("runout"), True),
    Field("trend.runout_early", "the earliest plausible run-out date (about 95%)",
          _trend("runout_early"), True),
    Field("trend.runout_late", "the latest plausible run-out date (empty: perhaps never)",
          _trend("runout_late"), True),
)  # fmt: skip

BY_PATH = {field.path: field for field in FIELDS}


def text(value: Value, derived: bool = False) -> str:
    """A value as scripts want it: no separators, 2 decimals for derived floats, "" for none."""
    if value is None:
        return ""
    if isinstance(value, float) and derived:
        return f"{value:.2f}"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def rows(balance: Balance, derived: Derived) -> list[tuple[str, str]]:
    """Every field as (path, text), in the stable order above."""
    return [(f.path, text(f.get(balance, derived), f.derived)) for f in FIELDS]
