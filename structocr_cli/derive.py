"""Figures derived from one balance and the current time. Pure: no I/O, no printing.

Every function is total: no division by zero, no NaN; a figure that has no meaning
(a share of nothing) is None.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from structocr_cli.model import Balance, Number

_DAY = 86400.0


@dataclass(frozen=True)
class Derived:
    days_total: float
    days_elapsed: float
    days_left: float
    credits_used_pct: float | None
    """account credits_used / credits_total x 100."""
    share_of_period_pct: float | None
    """this key's credits_used / the account's credits_this_period x 100."""


def percent(part: Number, whole: Number) -> float | None:
    """``part`` as a percentage of ``whole``; None when ``whole`` is not positive."""
    if whole <= 0:
        return None
    return float(part) / float(whole) * 100.0


def derive(balance: Balance, now: datetime) -> Derived:
    start, end = balance.period.start, balance.period.end
    total = max((end - start).total_seconds(), 0.0) / _DAY
    # Clamp to the period: before it nothing has elapsed, after it nothing is left.
    elapsed = min(max((now - start).total_seconds() / _DAY, 0.0), total)
    return Derived(
        days_total=total,
        days_elapsed=elapsed,
        days_left=total - elapsed,
        credits_used_pct=percent(balance.account.credits_used, balance.account.credits_total),
        share_of_period_pct=percent(
            balance.this_key.credits_used, balance.account.credits_this_period
        ),
    )
