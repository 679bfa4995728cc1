"""Plain text and JSON that need no third-party library: error lines and documents, the
JSON writer, and the layouts of ``config list`` and ``config show``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import IO, TYPE_CHECKING, Any

from structocr_cli.api.errors import StructocrError
from structocr_cli.api.keys import mask, redact, sanitize

if TYPE_CHECKING:
    from structocr_cli.core import Outcome
    from structocr_cli.gates import Check
    from structocr_cli.settings.profiles import Row, Status
    from structocr_cli.settings.resolve import Sourced


def write_json(document: Any, out: IO[str]) -> None:
    # ASCII-only JSON cannot carry a terminal escape sequence, whatever FORCE_COLOR says.
    out.write(json.dumps(document, indent=2, ensure_ascii=True) + "\n")


def json_value(value: object) -> object:
    """A figure as JSON has it: a number (an integer when it is one), a time or date as
    ISO 8601 text, null when unknown or not finite (JSON has no Infinity)."""
    import math
    from datetime import date, datetime
    from decimal import Decimal

    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal | float | int):
        number = float(value)
        if not math.isfinite(number):
            return None
        return int(number) if number.is_integer() and abs(number) < 2**53 else number
    return str(value)


def check_object(check: Check) -> dict[str, object]:
    """A gate's check as JSON: what it compared, and whether it is breached."""
    return {
        "option": check.gate.option, "path": check.gate.path, "operator": check.operator,
        "threshold": json_value(check.threshold), "value": json_value(check.value),
        "breached": check.breached, "message": check.line(),
    }  # fmt: skip


def report_document(outcome: Outcome) -> dict[str, object]:
    """``-o report-json``: the server's sections with the figures derived from them added
    to each, the forecast, the gates checked, and where the key came from (masked)."""
    from structocr_cli.report.fields import FIELDS

    balance, derived = outcome.figures()
    settings = outcome.resolved()
    document: dict[str, object] = {k: dict(v) if isinstance(v, dict) else v
                                   for k, v in balance.document.items()}  # fmt: skip
    for field in FIELDS:
        if field.derived:
            section, name = field.path.split(".")
            part = document.setdefault(section, {})
            if isinstance(part, dict):
                part[name] = json_value(field.get(balance, derived))
    document["gates"] = [check_object(check) for check in outcome.checks]
    document["key"] = {
        "masked": mask(settings.api_key.value), "source": str(settings.api_key.source),
        "profile": settings.profile_label, "base_url": settings.base_url.value,
    }  # fmt: skip
    return document


def error_line(error: StructocrError) -> str:
    # Messages quote what was given; escaping here too is the last guard for the terminal.
    return redact(sanitize(f"structocr: error: {error.one_line()}", 4000))


def error_object(error: StructocrError) -> dict[str, Any]:
    """The error as the JSON outputs describe it (key redacted)."""
    return _failure(error.code, int(error.exit_code), error.one_line(), error.status)


def error_document(error: StructocrError) -> str:
    return json.dumps({"error": error_object(error)}, ensure_ascii=True)


def failure_document(code: str, exit_code: int, message: str, status: int | None = None) -> str:
    """The one-line JSON error object of ``--json`` runs, for any failure."""
    return json.dumps({"error": _failure(code, exit_code, message, status)}, ensure_ascii=True)


def _failure(code: str, exit_code: int, message: str, status: int | None) -> dict[str, Any]:
    return {"code": code, "status": status, "exit_code": exit_code, "message": redact(message)}


def profile_lines(rows: Sequence[Row]) -> str:
    """``config list``: one aligned line per profile, ``*`` on the default."""
    width = max((len(row.name) for row in rows), default=0)
    lines = []
    for row in rows:
        marker = "*" if row.default else " "
        url = sanitize(row.base_url or "", 200)  # as written in a file anyone may have edited
        lines.append(f"{marker} {row.name:<{width}}  {row.key:<12}  {url}".rstrip())
    return "".join(f"{line}\n" for line in lines)


def origin(setting: Sourced) -> str:
    """Where a setting came from, as a parenthesis after its value."""
    from structocr_cli.settings.resolve import Kind

    if setting.source.kind is Kind.DEFAULT:
        return "(the built-in default)"
    return f"(from {setting.source})"


def status_document(now: Status, history: str) -> dict[str, Any]:
    """``config show --json``: the same settings, each with its value and source."""

    def setting(value: str, source: str) -> dict[str, str]:
        return {"value": value, "source": source}

    return {
        "profile": setting(now.profile.value, str(now.profile.source)),
        "api_key": setting(mask(now.key.value), str(now.key.source)) if now.key else None,
        "problem": now.problem_text,
        "base_url": setting(now.base_url.value, str(now.base_url.source)),
        "config_file": {"path": str(now.config.path), "permissions": now.permissions},
        "history_file": history,
    }


def profile_tsv(rows: Sequence[Row]) -> str:
    """``config list -o tsv``: name, masked key, base URL, key store, default (yes or no)."""
    return "".join(
        "\t".join([row.name, row.key, sanitize(row.base_url or "", 200), row.key_store,
                   "yes" if row.default else "no"]) + "\n"
        for row in rows
    )  # fmt: skip


def status_lines(now: Status, history: str) -> str:
    """``config show``: each setting, its value and where it came from."""
    key = f"{mask(now.key.value)} {origin(now.key)}" if now.key else f"none: {now.problem_text}"
    lines = [
        ("Profile", f"{now.profile.value} {origin(now.profile)}"),
        ("API key", key),
        ("Base URL", f"{now.base_url.value} {origin(now.base_url)}"),
        ("Config file", f"{now.config.path} ({now.permissions})"),
        ("History", history),
    ]
    return "".join(f"{label + ':':<13}{value}\n" for label, value in lines)
