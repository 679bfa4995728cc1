"""GitHub Actions integration: annotations for breached gates and a step summary.

Used only when ``GITHUB_ACTIONS=true`` (the CLI checks before importing this). Annotations
go to stderr (the runner reads workflow commands from both streams): stdout stays pure data.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO

from structocr_cli.api.model import Balance
from structocr_cli.derive import Derived
from structocr_cli.gates import Check
from structocr_cli.report.layout import number

_SUMMARY_ROWS: tuple[tuple[str, Callable[[Balance, Derived], str]], ...] = (
    ("Credits remaining", lambda b, d: number(b.account.credits_remaining)),
    ("Credits used (all-time)", lambda b, d: number(b.account.credits_used)),
    ("Credits this period", lambda b, d: number(b.account.credits_this_period)),
    ("This key's credits this period", lambda b, d: number(b.this_key.credits_used)),
    ("Error rate, account", lambda b, d: f"{b.account.error_rate}%"),
    ("Error rate, this key", lambda b, d: f"{b.this_key.error_rate}%"),
    ("Runway", lambda b, d: "no burn" if d.runway_days is None
     else f"{number(d.runway_days)} days"),
)  # fmt: skip


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def annotate(checks: Sequence[Check], err: IO[str]) -> None:
    """One ``::error`` workflow command per breached gate."""
    for check in checks:
        if check.breached:
            print(f"::error title=StructOCR budget gate::{escape_data(check.line())}", file=err)


# The summary is kept between these markers, so that a later run in the same step replaces
# it instead of adding a second copy.
BEGIN, END = "<!-- structocr summary -->", "<!-- /structocr summary -->"


def summary(balance: Balance, derived: Derived, checks: Sequence[Check]) -> str:
    """A Markdown summary: the balance, then each gate and its outcome."""
    lines = [BEGIN, "### StructOCR balance", "", "| figure | value |", "|---|---|"]
    lines += [f"| {label} | {read(balance, derived)} |" for label, read in _SUMMARY_ROWS]
    if checks:
        lines += ["", "| gate | value | threshold | outcome |", "|---|---|---|---|"]
        for check in checks:
            outcome = "❌ breached" if check.breached else "✅ passed"
            lines.append(
                f"| `{check.gate.option}` ({check.gate.path}) | {check.shown_value()} | "
                f"{check.operator.replace('<', '≥').replace('>', '≤')} {check.threshold} | "
                f"{outcome} |"
            )
    return "\n".join([*lines, END]) + "\n\n"


def write_summary(path: str, text: str) -> None:
    """Add ``text`` to the step summary file, replacing an earlier structocr section."""
    file = Path(path)
    try:
        current = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        current = ""
    start, end = current.find(BEGIN), current.find(END)
    if start != -1 and end > start:
        after = current[end + len(END) :].lstrip("\n")
        file.write_text(current[:start] + text + after, encoding="utf-8")
        return
    with file.open("a", encoding="utf-8") as handle:
        handle.write(text)
