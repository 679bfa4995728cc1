"""Figures derived from one balance and the current time. Pure: no I/O, no printing.

Every function is total: no division by zero, no NaN, no infinity; a figure that has no
meaning (a share of nothing, a burn rate before any time has passed) is None.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from structocr_cli.api import clock
from structocr_cli.api.model import Balance, Number

if TYPE_CHECKING:
    from structocr_cli.history.trend import Trend

_DAY = 86400.0
# A run-out date further away than this is not a date anyone plans with (and may not exist).
_MAX_RUNWAY_DATE_DAYS = 36500.0


@dataclass(frozen=True)
class Derived:
    days_total: float
    days_elapsed: float
    """Days of the period gone, clamped to [0, days_total]."""
    days_left: float
    account_error_rate_pct: Decimal
    key_error_rate_pct: Decimal
    credits_used_pct: float | None
    """Account credits_used / credits_total x 100."""
    share_of_period_pct: float | None
    """This key's credits_used / the account's credits_this_period x 100."""
    period_credits: float | None
    """credits_this_period projected linearly to the end of the period."""
    daily_burn: float | None
    """credits_this_period / days_elapsed."""
    runway_days: float | None
    """credits_remaining / daily_burn; None when nothing is being burned."""
    runout: datetime | None
    """When credits run out at the current burn rate (None: not within 100 years)."""
    trend: Trend | None = None
    """The recorded history's trend (None: history off, or under 24 hours of it)."""


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def percent(part: Number, whole: Number) -> float | None:
    """``part`` as a percentage of ``whole``; None when ``whole`` is not positive."""
    if whole <= 0:
        return None
    return _finite(float(part) / float(whole) * 100.0)


def _forecast(
    used: Number, remaining: Number, elapsed: float, total: float
) -> tuple[float | None, float | None, float | None]:
    if elapsed <= 0:
        return None, None, None
    burn = _finite(float(used) / elapsed)
    projected = None if burn is None else _finite(burn * total)
    if burn is None or burn <= 0:
        return projected, burn, None
    runway = _finite(max(float(remaining), 0.0) / burn)
    return projected, burn, runway


def derive(balance: Balance, now: datetime, trend: Trend | None = None) -> Derived:
    start, end = balance.period.start, balance.period.end
    account, key = balance.account, balance.this_key
    total = max((end - start).total_seconds(), 0.0) / _DAY
    # Clamp to the period: before it nothing has elapsed, after it nothing is left.
    elapsed = min(max((now - start).total_seconds() / _DAY, 0.0), total)
    projected, burn, runway = _forecast(
        account.credits_this_period, account.credits_remaining, elapsed, total
    )
    runout = None
    if runway is not None and runway <= _MAX_RUNWAY_DATE_DAYS:
        runout = clock.days_after(now, runway)
    return Derived(
        days_total=total,
        days_elapsed=elapsed,
        days_left=total - elapsed,
        account_error_rate_pct=account.error_rate,
        key_error_rate_pct=key.error_rate,
        credits_used_pct=percent(account.credits_used, account.credits_total),
        share_of_period_pct=percent(key.credits_used, account.credits_this_period),
        period_credits=projected,
        daily_burn=burn,
        runway_days=runway,
        runout=runout,
        trend=trend,
    )
