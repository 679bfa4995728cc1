"""Budget gates: thresholds checked against one balance. Pure: no I/O.

Comparisons are exact: values and thresholds are compared as ``Decimal``, so 1000 remaining
passes ``--min-remaining 1000`` and an error rate of "4.37%" passes ``--max-error-rate 4.37``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Literal

from structocr_cli.errors import UsageError

if TYPE_CHECKING:  # the CLI reads GATES for --help, which must not load the model
    from structocr_cli.derive import Derived
    from structocr_cli.model import Balance, Number

    Reading = Callable[[Balance, Derived], Number | Decimal | None]


@dataclass(frozen=True)
class Gate:
    option: str
    path: str
    bound: Literal["min", "max"]
    read: Reading


GATES: tuple[Gate, ...] = (
    Gate("--min-remaining", "account.credits_remaining", "min",
         lambda b, _: b.account.credits_remaining),
    Gate("--max-period-credits", "account.credits_this_period", "max",
         lambda b, _: b.account.credits_this_period),
    Gate("--max-key-credits", "this_key.credits_used", "max",
         lambda b, _: b.this_key.credits_used),
    Gate("--max-error-rate", "account.error_rate_pct", "max",
         lambda _, d: d.account_error_rate_pct),
    Gate("--max-key-error-rate", "this_key.error_rate_pct", "max",
         lambda _, d: d.key_error_rate_pct),
    Gate("--max-latency-ms", "account.avg_latency_ms", "max",
         lambda b, _: b.account.avg_latency_ms),
    Gate("--min-runway-days", "forecast.runway_days", "min",
         lambda _, d: d.runway_days),
)  # fmt: skip


@dataclass(frozen=True)
class Check:
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
        if self.value is None:
            return "none"
        # Derived floats carry many digits; two decimals say enough in a message.
        if self.value == self.value.to_integral_value():
            return str(self.value.quantize(Decimal(1)))
        return str(self.value.quantize(Decimal("0.01")).normalize())

    def line(self) -> str:
        op = self.operator
        return (
            f"gate failed: {self.gate.path} {self.shown_value()} {op} {self.threshold} "
            f"({self.gate.option})"
        )


def parse_threshold(option: str, text: str) -> Decimal:
    """A finite decimal threshold; a trailing % is allowed (``--max-error-rate 5%``)."""
    cleaned = text.strip().removesuffix("%").strip()
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite():
        raise UsageError(f"{option} needs a number, not {text!r}", f"e.g. {option} 1000")
    return value


def _exact(value: Number | Decimal | None) -> Decimal | None:
    if value is None or isinstance(value, Decimal):
        return value
    # repr gives the shortest decimal that round-trips, so 0.1 compares as 0.1.
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


def evaluate(thresholds: Mapping[str, Decimal], balance: Balance, derived: Derived) -> list[Check]:
    """Check each given threshold (by option name), in the order of ``GATES``."""
    return [
        Check(gate, thresholds[gate.option], _exact(gate.read(balance, derived)))
        for gate in GATES
        if gate.option in thresholds
    ]
