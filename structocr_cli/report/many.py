"""Output for a run over several keys: one row per key, a totals row and each account's
summary, or one JSON array. Standard library only; every value is shown whole.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import IO, TYPE_CHECKING, Any

from structocr_cli.api.keys import mask, redact, sanitize
from structocr_cli.report.layout import number

if TYPE_CHECKING:
    from structocr_cli.core import Outcome
    from structocr_cli.gates import Check
    from structocr_cli.settings.selection import KeySpec

Result = tuple["KeySpec", "Outcome"]
SORTS = ("credits", "requests", "errors", "latency", "name")
_HEADINGS = ("KEY", "MASKED", "CREDITS", "REQUESTS", "ERRORS", "LATENCY", "SHARE")


def _masked(outcome: Outcome) -> str:
    return mask(outcome.settings.api_key.value) if outcome.settings else "-"


def ordered(results: Sequence[Result], by: str) -> list[Result]:
    """Fetched keys by ``by`` (the largest first, or names A to Z), then the failed ones."""
    fetched = [r for r in results if r[1].balance is not None]
    failed = [r for r in results if r[1].balance is None]
    if by == "name":
        return sorted(fetched, key=lambda r: r[0].name) + failed

    def figure(result: Result) -> float:
        balance = result[1].fetched()
        usage = balance.this_key
        return float(
            {"credits": usage.credits_used, "requests": usage.requests,
             "errors": usage.error_rate, "latency": usage.avg_latency_ms}[by]
        )  # fmt: skip

    return sorted(fetched, key=figure, reverse=True) + failed


def _row(result: Result) -> list[str]:
    spec, outcome = result
    if outcome.error is not None:
        return [spec.name, _masked(outcome), redact(outcome.error.one_line())]
    usage = outcome.fetched().this_key
    share_pct = None if outcome.derived is None else outcome.derived.share_of_period_pct
    share = "n/a" if share_pct is None else f"{share_pct:.1f}%"
    return [spec.name, _masked(outcome), number(usage.credits_used), number(usage.requests),
            f"{usage.error_rate}%", f"{number(usage.avg_latency_ms)} ms", share]  # fmt: skip


# Left out first when the terminal is too narrow: the share, latency, errors, the masked key,
# then requests; the key's name and its credits always stay.
_DROP = (6, 5, 4, 1, 3)


def table(results: Sequence[Result], by: str, out: IO[str], room: int | None = None) -> None:
    """One row per key, the totals, then a summary per account; no line wider than ``room``
    (default: the terminal's width)."""
    from structocr_cli.report import layout

    room = room or layout.width()
    rows = [[sanitize(cell, 10_000) for cell in _row(result)] for result in ordered(results, by)]
    fetched = [outcome for _, outcome in results if outcome.balance is not None]
    credits = sum(float(o.fetched().this_key.credits_used) for o in fetched)
    requests = sum(float(o.fetched().this_key.requests) for o in fetched)
    total = ["TOTAL", "", number(credits), number(requests), "", "", ""]
    shown, widths = layout.columns(_HEADINGS, [*rows, total], room, _DROP)
    left = 2 if 1 in shown else 1

    def cells(row: Sequence[str]) -> list[str]:
        return [row[column] for column in shown]

    lines = [layout.aligned(cells(_HEADINGS), widths, left)]
    for row in rows:
        if len(row) == len(_HEADINGS):
            lines.append(layout.aligned(cells(row), widths, left))
        else:  # a key that failed: its error where the numbers would be, wrapped there
            named = [row[column] for column in shown[:left]]
            first = layout.aligned(named, widths[:left], left) + "  "
            lines += layout.wrapped(row[2], room, first)
    lines.append(layout.aligned(cells(total), widths, left))
    lines += _accounts(results, room)
    out.write("".join(f"{line.rstrip()}\n" for line in lines))


def accounts(results: Sequence[Result]) -> list[tuple[list[str], Outcome]]:
    """The fetched keys grouped by account (keys whose account sections are the same): the
    names, and one outcome that stands for the account."""
    from structocr_cli.api.model import account_groups

    groups = account_groups([outcome.balance for _, outcome in results])
    return [([results[i][0].name for i in group], results[group[0]][1]) for group in groups]


def breaches(results: Sequence[Result]) -> list[tuple[tuple[str, ...], Check]]:
    """Each breached gate with the keys it concerns: a gate on a this_key figure once per
    key; any other gate concerns the account, once per account, with all its keys."""
    found = []
    for names, outcome in accounts(results):
        found += [(tuple(names), check) for check in outcome.breached
                  if not check.gate.path.startswith("this_key.")]  # fmt: skip
    for spec, outcome in results:
        found += [((spec.name,), check) for check in outcome.breached
                  if check.gate.path.startswith("this_key.")]  # fmt: skip
    return found


def breach_lines(results: Sequence[Result], as_json: bool = False) -> list[str]:
    """Each breached gate, once per account (or key), as a line for stderr."""
    if not as_json:
        return [f"structocr: {', '.join(names)}: {check.line()}"
                for names, check in breaches(results)]  # fmt: skip
    from structocr_cli.report.output import check_object

    return [json.dumps({"gate": {**check_object(check), "keys": list(names)}},
                       ensure_ascii=True) for names, check in breaches(results)]  # fmt: skip


def _accounts(results: Sequence[Result], room: int) -> list[str]:
    from structocr_cli.report.layout import named, wrapped

    groups = accounts(results)
    lines = [""]
    if len(groups) > 1:
        lines += wrapped(f"These keys belong to {len(groups)} different accounts.", room)
    for names, outcome in groups:
        balance, derived = outcome.fetched(), outcome.derived
        runway = "n/a"
        if derived is not None:
            runway = (
                "no burn" if derived.runway_days is None else f"{number(derived.runway_days)} days"
            )
        lines += wrapped(
            f"Account of {named(names)}: {number(balance.account.credits_remaining)} credits "
            f"remaining, {number(balance.account.credits_this_period)} used this period, "
            f"runway {runway}", room, indent=2,
        )  # fmt: skip
    return lines


def json_items(results: Sequence[Result], report: bool = False) -> list[dict[str, Any]]:
    """One object per key, in the order selected: the server's document (``report``: with
    the derived figures and gates, as ``-o report-json``), or the error."""
    from structocr_cli.report.output import error_object, report_document

    items: list[dict[str, Any]] = []
    for spec, outcome in results:
        item: dict[str, Any] = {
            "profile": spec.name,
            "key": _masked(outcome),
            "ok": outcome.error is None,
            "exit_code": int(outcome.exit_code),
        }
        if outcome.error is not None:
            item["error"] = error_object(outcome.error)
        elif report and outcome.derived is not None:
            item["data"] = report_document(outcome)
        else:
            item["data"] = outcome.fetched().document
        items.append(item)
    return items


def json_array(results: Sequence[Result], out: IO[str], report: bool = False) -> None:
    out.write(json.dumps(json_items(results, report), indent=2, ensure_ascii=True) + "\n")


IN_BAND = ("table", "json", "report-json", "openmetrics")
"""Formats that show a key's failure in the output itself; the others leave the key out
and the caller reports it on stderr."""


def write(results: Sequence[Result], output: str, sort: str, fields: Sequence[str],
          out: IO[str]) -> None:  # fmt: skip
    """The results in ``output`` (a name of ``formats.FORMATS``)."""
    from structocr_cli.report import machine

    if output == "table":
        table(results, sort, out)
    elif output in ("json", "report-json"):
        json_array(results, out, report=output == "report-json")
    elif output == "openmetrics":
        out.write(machine.openmetrics_many([(s.name, o.balance, o.derived) for s, o in results]))
    else:
        had = [(spec.name, *outcome.figures()) for spec, outcome in results
               if outcome.balance is not None and outcome.derived is not None]  # fmt: skip
        if output == "tsv":
            out.write(machine.tsv_many(had))
        elif output == "env":
            out.write(machine.env_many(had))
        else:
            out.write(machine.field_rows(fields, had))


def failure_lines(results: Sequence[Result]) -> list[str]:
    """Each key that could not be checked, one line: its name and the error."""
    return [f"{spec.name}: {redact(outcome.error.one_line())}"
            for spec, outcome in results if outcome.error is not None]  # fmt: skip
