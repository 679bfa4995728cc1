"""Budget gates: each declared once in ``GATES``, checked against one balance. No I/O.

The CLI builds one option per gate from ``GATES`` (name, metavar, help), so adding a gate is
one entry here plus its test. This module is read for ``--help`` and TAB, so it imports
nothing at module level beyond typing; ``decimal`` is loaded only when a gate is checked.

Comparisons are exact: values and thresholds are compared as ``Decimal``, so 1000 remaining
passes ``--min-remaining 1000`` and an error rate of "4.37%" passes ``--max-error-rate 4.37``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Literal, NamedTuple

if TYPE_CHECKING:
    from decimal import Decimal

    from structocr_cli.api.model import Balance, Number
    from structocr_cli.derive import Derived

    Reading = Callable[[Balance, Derived], Number | Decimal | None]


class Gate(NamedTuple):
    option: str
    metavar: str
    help: str
    path: str
    """The figure compared, by its --field path."""
    bound: Literal["min", "max"]
    example: str
    """A threshold that fits the option, for error messages."""
    read: Reading

    @property
    def parameter(self) -> str:
        """The option's name as a Python identifier (``--min-remaining``: min_remaining)."""
        return self.option.lstrip("-").replace("-", "_")


GATES: tuple[Gate, ...] = (
    Gate("--min-remaining", "N", "Fail (exit 1) if account.credits_remaining < N.",
         "account.credits_remaining", "min", "1000",
         lambda b, _: b.account.credits_remaining),
    Gate("--max-period-credits", "N", "Fail if account.credits_this_period > N.",
         "account.credits_this_period", "max", "1000",
         lambda b, _: b.account.credits_this_period),
    Gate("--max-key-credits", "N", "Fail if this_key.credits_used > N.",
         "this_key.credits_used", "max", "1000",
         lambda b, _: b.this_key.credits_used),
    Gate("--max-error-rate", "PCT", "Fail if the account's error rate (%) > PCT.",
         "account.error_rate_pct", "max", "5",
         lambda _, d: d.account_error_rate_pct),
    Gate("--max-key-error-rate", "PCT", "Fail if this key's error rate (%) > PCT.",
         "this_key.error_rate_pct", "max", "5",
         lambda _, d: d.key_error_rate_pct),
    Gate("--max-latency-ms", "N", "Fail if account.avg_latency_ms > N.",
         "account.avg_latency_ms", "max", "3000",
         lambda b, _: b.account.avg_latency_ms),
    Gate("--min-runway-days", "D",
         "Fail if forecast.runway_days < D (passes while nothing is used this period).",
         "forecast.runway_days", "min", "7",
         lambda _, d: d.runway_days),
)  # fmt: skip

BY_OPTION = {gate.option: gate for gate in GATES}

TREND_BASIS = "trend"
RUNWAY_BASES = ("period", TREND_BASIS)
TREND_RUNWAY = Gate("--min-runway-days", "D", "", "trend.runway_days", "min", "7",
                    lambda _, d: None if d.trend is None else d.trend.runway_days)  # fmt: skip
"""--min-runway-days under --runway-basis trend: the runway at the recorded history's rate."""


class Check(NamedTuple):
    gate: Gate
    threshold: Decimal
    value: Decimal | None
    """None: the figure has no value (no burn, so no runway); the gate passes."""

    @property
    def breached(self) -> bool:
        if self.value is None:
            return False
        if self.gate.bound == "min":
            return self.value < self.threshold
        return self.value > self.threshold

    @property
    def operator(self) -> str:
        return "<" if self.gate.bound == "min" else ">"

    def shown_value(self) -> str:
        from decimal import Decimal

        if self.value is None:
            return "none"
        if abs(self.value) >= Decimal("1e15"):  # beyond what two decimals can show exactly
            return f"{self.value:.3E}"
        # Derived floats carry many digits; two decimals say enough in a message.
        if self.value == self.value.to_integral_value():
            return str(self.value.quantize(Decimal(1)))
        return str(self.value.quantize(Decimal("0.01")).normalize())

    def line(self) -> str:
        """What the check found, in one line: ``gate failed: ...`` or ``gate passed: ...``."""
        if self.breached:
            verdict, op = "failed", self.operator
        else:
            verdict, op = "passed", ">=" if self.gate.bound == "min" else "<="
        if self.value is None:
            return f"gate passed: {self.gate.path} has no value ({self.gate.option})"
        return (
            f"gate {verdict}: {self.gate.path} {self.shown_value()} {op} {self.threshold} "
            f"({self.gate.option})"
        )


def parse_thresholds(given: Mapping[str, str | None]) -> dict[str, Decimal]:
    """The thresholds given, by option name; the ones not given are left out."""
    return {
        option: parse_threshold(BY_OPTION[option], text)
        for option, text in given.items()
        if text is not None
    }


def parse_threshold(gate: Gate, text: str) -> Decimal:
    """A finite decimal threshold; a trailing % is allowed (``--max-error-rate 5%``)."""
    from decimal import Decimal, InvalidOperation

    from structocr_cli.api.errors import UsageError
    from structocr_cli.api.keys import shown

    cleaned = text.strip().removesuffix("%").strip()
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite():
        raise UsageError(
            f"{gate.option} needs a number, not {shown(text)!r}",
            f"e.g. {gate.option} {gate.example}",
        )
    return value


def _exact(value: Number | Decimal | None) -> Decimal | None:
    from decimal import Decimal

    if value is None or isinstance(value, Decimal):
        return value
    # repr gives the shortest decimal that round-trips, so 0.1 compares as 0.1.
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


def evaluate(
    thresholds: Mapping[str, Decimal], balance: Balance, derived: Derived, basis: str = "period"
) -> tuple[Check, ...]:
    """Check each given threshold (by option name), in the order of ``GATES``; ``basis``
    "trend": --min-runway-days reads the trend's runway instead of the period's."""
    chosen = [
        TREND_RUNWAY if basis == TREND_BASIS and gate is BY_OPTION["--min-runway-days"] else gate
        for gate in GATES
    ]
    return tuple(
        Check(gate, thresholds[gate.option], _exact(gate.read(balance, derived)))
        for gate in chosen
        if gate.option in thresholds
    )
