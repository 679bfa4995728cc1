"""The Python API for scripts, exported from ``structocr_cli`` itself: what semantic
versioning covers. Everything else in the package is internal.

    import structocr_cli

    result = structocr_cli.get_balance(profile="ci")
    print(result.account.credits_remaining, result.derived.runway_days)

It finds the key as the CLI does, and fails with the CLI's typed errors, each carrying the
exit code the CLI would exit with (``.exit_code``) and what to do next (``.hint``).
Neither typer nor rich is imported.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from structocr_cli.api.model import Account, Balance, KeyUsage, Period
    from structocr_cli.core import Outcome
    from structocr_cli.derive import Derived
    from structocr_cli.gates import Check

Threshold = int | float | Decimal | str
"""A gate's threshold: a number, or its text as the CLI's option takes it ("1000", "2.5")."""


@dataclass(frozen=True)
class Source:
    """A setting's value, as it may be shown, and where it came from."""

    value: str
    """The key masked (``sk_l…2b1c``), the profile's name, or the base URL."""
    source: str
    """``--api-key``, ``env STRUCTOCR_API_KEY``, ``profile "ci"``, ``default``..."""


@dataclass(frozen=True)
class Sources:
    api_key: Source
    profile: Source
    base_url: Source


@dataclass(frozen=True)
class BalanceResult:
    """One key's balance: the API's three sections (strictly typed), the figures derived
    from them, where the settings came from, and the gates checked, if any were given."""

    period: Period
    account: Account
    this_key: KeyUsage
    derived: Derived
    """Days of the period, burn rate, runway, shares and the run-out forecast."""
    sources: Sources
    document: Mapping[str, object]
    """The server's JSON document, as it came."""
    checks: tuple[Check, ...] = ()

    @property
    def breached(self) -> tuple[Check, ...]:
        return tuple(check for check in self.checks if check.breached)


def get_balance(
    api_key: str | None = None,
    *,
    profile: str | None = None,
    base_url: str | None = None,
    timeout: float = 30.0,
    gates: Mapping[str, Threshold] | None = None,
) -> BalanceResult:
    """The balance of the key given, else of ``STRUCTOCR_API_KEY``, else of the profile
    (``profile``, else ``STRUCTOCR_PROFILE``, else the config file's default), within
    ``timeout`` seconds. ``gates`` (e.g. ``{"min_remaining": 1000}``) are checked as
    ``check_gates`` does. Raises ``StructocrError`` (a subclass per cause) on failure."""
    from structocr_cli.core import BalanceRequest, check_balance
    from structocr_cli.settings.resolve import Flags

    request = BalanceRequest(
        Flags(
            api_key=api_key,
            profile=profile,
            base_url=base_url,
            api_key_from="the api_key argument",
        ),
        timeout=timeout,
        thresholds=_thresholds(gates or {}),
    )
    outcome = check_balance(request, os.environ)
    if outcome.error is not None:
        raise outcome.error
    return _result(outcome)


def check_gates(result: BalanceResult, **thresholds: Threshold) -> tuple[Check, ...]:
    """The budget gates as the CLI evaluates them, one per threshold given by the option's
    name: ``min_remaining``, ``max_period_credits``, ``max_key_credits``,
    ``max_error_rate``, ``max_key_error_rate``, ``max_latency_ms``, ``min_runway_days``.
    Each ``Check`` says whether it is ``breached`` and why (``line()``)."""
    from structocr_cli.gates import evaluate

    return evaluate(_thresholds(thresholds), _balance(result), result.derived)


def _thresholds(given: Mapping[str, Threshold]) -> dict[str, Decimal]:
    from structocr_cli.api.errors import UsageError
    from structocr_cli.gates import GATES, parse_threshold

    by_name = {gate.parameter: gate for gate in GATES}
    unknown = sorted(set(given) - set(by_name))
    if unknown:
        raise UsageError(f"unknown gate {unknown[0]!r}", f"Gates: {', '.join(sorted(by_name))}")
    return {by_name[name].option: parse_threshold(by_name[name], str(value))
            for name, value in given.items()}  # fmt: skip


def _result(outcome: Outcome) -> BalanceResult:
    settings = outcome.resolved()
    balance, derived = outcome.figures()
    from structocr_cli.api.keys import mask

    sources = Sources(
        Source(mask(settings.api_key.value), str(settings.api_key.source)),
        Source(settings.profile.value, str(settings.profile.source)),
        Source(settings.base_url.value, str(settings.base_url.source)),
    )
    return BalanceResult(balance.period, balance.account, balance.this_key, derived, sources,
                         balance.document, outcome.checks)  # fmt: skip


def _balance(result: BalanceResult) -> Balance:
    from structocr_cli.api.model import Balance

    return Balance(result.period, result.account, result.this_key, dict(result.document))
