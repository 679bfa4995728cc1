"""Output formats: one table from format name to writer, read for ``--help`` too.

Each writer takes the outcome and the stream it writes to, and says what it prints when the
balance could not be had (most print nothing; openmetrics prints ``structocr_up 0`` so an
alert can fire). Adding a format is one entry in ``FORMATS`` plus its test. What a writer
needs (rich, the field list) is imported when it writes, so ``--help`` pays nothing for it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import IO, TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from structocr_cli.core import Outcome

Write = Callable[["Outcome", Sequence[str], IO[str]], None]


def _nothing(outcome: Outcome, out: IO[str]) -> None:
    """Most formats print nothing on stdout when the balance is unknown."""


class Format(NamedTuple):
    name: str
    write: Write
    """Writes a fetched balance (``outcome.balance`` is set)."""
    write_failure: Callable[[Outcome, IO[str]], None] = _nothing
    """Writes what a consumer should see when the balance is unknown."""
    derived: bool = True
    """Whether the writer uses derived figures (forecast, percentages)."""


def _table(outcome: Outcome, fields: Sequence[str], out: IO[str]) -> None:
    from structocr_cli.report.render import report

    balance, derived = outcome.figures()
    settings = outcome.resolved()
    report(balance, derived, f"{settings.base_url.value}, key from {settings.api_key.source}", out)


def _json(outcome: Outcome, fields: Sequence[str], out: IO[str]) -> None:
    from structocr_cli.report.output import write_json

    write_json(outcome.fetched().document, out)


def _report_json(outcome: Outcome, fields: Sequence[str], out: IO[str]) -> None:
    from structocr_cli.report.output import report_document, write_json

    write_json(report_document(outcome), out)


def _tsv(outcome: Outcome, fields: Sequence[str], out: IO[str]) -> None:
    from structocr_cli.report.machine import tsv

    out.write(tsv(*outcome.figures()))


def _env(outcome: Outcome, fields: Sequence[str], out: IO[str]) -> None:
    from structocr_cli.report.machine import env

    out.write(env(*outcome.figures()))


def _openmetrics(outcome: Outcome, fields: Sequence[str], out: IO[str]) -> None:
    from structocr_cli.report.machine import openmetrics

    out.write(openmetrics(*outcome.figures(), outcome.profile_label))


def _fields(outcome: Outcome, fields: Sequence[str], out: IO[str]) -> None:
    from structocr_cli.report.machine import field_lines

    out.write(field_lines(fields, *outcome.figures()))


def _openmetrics_down(outcome: Outcome, out: IO[str]) -> None:
    from structocr_cli.report.machine import openmetrics_down

    out.write(openmetrics_down(outcome.profile_label))


REPORT_JSON = "report-json"
"""The server's document with the derived figures, gates and key added (``--json`` stays
the server's document as it is)."""
JSON_FORMATS = frozenset({"json", REPORT_JSON})
"""Formats whose stderr lines are JSON documents too."""

FIELD = "field"
"""Chosen by ``--field``, not by ``--output``."""

FORMATS: dict[str, Format] = {
    fmt.name: fmt
    for fmt in (
        Format("table", _table),
        Format("json", _json, derived=False),
        Format(REPORT_JSON, _report_json),
        Format("tsv", _tsv),
        Format("env", _env),
        Format("openmetrics", _openmetrics, _openmetrics_down),
        Format(FIELD, _fields),
    )
}
CHOICES = tuple(name for name in FORMATS if name != FIELD)
"""The values of ``--output``."""


def choose(output: str | None, json_flag: bool, fields: Sequence[str]) -> Format:
    """The format the options ask for; contradictory options are a usage error (the field
    paths themselves are checked by ``machine.check_fields``)."""
    from structocr_cli.api.errors import UsageError

    if json_flag and output not in (None, "json"):
        raise UsageError(f"--json and --output {output} contradict each other", "Pick one")
    if fields and (output is not None or json_flag):
        given = "--json" if json_flag else f"--output {output}"
        raise UsageError(
            f"--field prints bare values; it cannot be combined with {given}",
            f"Leave out {given.split(maxsplit=1)[0]}, or --field",
        )
    if fields:
        return FORMATS[FIELD]
    return FORMATS["json" if json_flag else output or "table"]
