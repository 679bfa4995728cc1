"""The balance document: strict parsing of the server's JSON into typed, checked values.

A budget gate that compares against NaN, ``True`` or a missing field passes wrongly, so
anything that is not exactly the documented shape is refused, naming the offending field.
Unknown extra fields are kept (they are printed by ``--json``) and otherwise ignored.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, NamedTuple

from structocr_cli.api.errors import HINT_BASE_URL, BadAnswerError
from structocr_cli.api.keys import sanitize

Number = int | float

ACCOUNT_NUMBERS = (
    "credits_total",
    "credits_used",
    "credits_remaining",
    "credits_this_period",
    "requests_this_period",
)
KEY_NUMBERS = ("credits_used", "requests")
# Beyond 2**53 integers lose exactness as floats; no credit count comes near it.
MAX_MAGNITUDE = 2**53
# ASCII digits only ("\d" also matches other scripts' digits), nothing around the value.
_PERCENT = re.compile(r"(-?[0-9]{1,15}(?:\.[0-9]{1,15})?)%")
# RFC 3339: "T" or a space between date and time, an optional fraction, Z or an offset (a
# time without an offset is taken as UTC).
_TIMESTAMP = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?"
    r"(?:[Zz]|[+-][0-9]{2}:[0-9]{2})?"
)


class Period(NamedTuple):
    start: datetime
    end: datetime


class Account(NamedTuple):
    credits_total: Number
    credits_used: Number
    credits_remaining: Number
    credits_this_period: Number
    requests_this_period: Number
    error_rate: Decimal
    avg_latency_ms: Number


class KeyUsage(NamedTuple):
    credits_used: Number
    requests: Number
    error_rate: Decimal
    avg_latency_ms: Number


class Balance(NamedTuple):
    period: Period
    account: Account
    this_key: KeyUsage
    document: dict[str, Any]
    """The whole document as the server sent it, unknown fields included."""
    moved_to: str | None = None
    """The base URL that answered, when the API redirected there (see client.py)."""


def account_groups(balances: Sequence[Balance | None]) -> list[list[int]]:
    """The positions of ``balances`` grouped by account, in order of first appearance: keys
    whose account sections are the same belong to one account (None: not had, left out)."""
    sections: list[object] = []
    groups: list[list[int]] = []
    for index, balance in enumerate(balances):
        if balance is None:
            continue
        section = balance.document.get("account")
        if section in sections:
            groups[sections.index(section)].append(index)
        else:
            sections.append(section)
            groups.append([index])
    return groups


def _bad(message: str) -> BadAnswerError:
    return BadAnswerError(f"unusable answer from the server: {message}", HINT_BASE_URL)


def _reject_constant(name: str) -> float:
    raise _bad(f"{name} is not a number JSON allows")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _bad(f"number {sanitize(text, 40)} is out of range")
    return value


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name, value in pairs:
        if name in result:
            raise _bad(f'field "{sanitize(name, 60)}" appears twice')
        result[name] = value
    return result


def loads_strict(body: bytes) -> Any:
    """``json.loads`` without NaN, Infinity, overflowing floats or duplicate keys."""
    try:
        return json.loads(
            body,
            parse_constant=_reject_constant,
            parse_float=_finite_float,
            object_pairs_hook=_no_duplicates,
        )
    except BadAnswerError:
        raise
    except (ValueError, RecursionError) as exc:
        # ValueError covers JSONDecodeError, bad UTF-8 and integers over 4300 digits.
        raise _bad(f"not JSON ({sanitize(str(exc), 80)})") from None


def _section(document: dict[str, Any], name: str) -> dict[str, Any]:
    if name not in document:
        raise _bad(f'section "{name}" is missing')
    section = document[name]
    if not isinstance(section, dict):
        raise _bad(f'"{name}" is {_type_name(section)}, expected an object')
    return section


def _type_name(value: Any) -> str:
    names = {bool: "a boolean", str: "a string", list: "an array", dict: "an object"}
    return "null" if value is None else names.get(type(value), "a number")


def _field(section: dict[str, Any], path: str) -> Any:
    name = path.rsplit(".", 1)[1]
    if name not in section:
        raise _bad(f'field "{path}" is missing')
    return section[name]


def _number(section: dict[str, Any], path: str) -> Number:
    value = _field(section, path)
    # bool is a subclass of int: true must not count as 1 credit.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _bad(f'field "{path}" is {_type_name(value)}, expected a number')
    if abs(value) > MAX_MAGNITUDE:
        raise _bad(f'field "{path}" is out of range (more than 2**53 in size)')
    return value


def _percent(section: dict[str, Any], path: str) -> Decimal:
    value = _field(section, path)
    if not isinstance(value, str):
        raise _bad(f'field "{path}" is {_type_name(value)}, expected a string like "4.37%"')
    match = _PERCENT.fullmatch(value)
    if not match:
        shown = sanitize(value, 40)
        raise _bad(f'field "{path}" is "{shown}", expected a percentage like "4.37%"')
    return Decimal(match.group(1))


def _timestamp(section: dict[str, Any], path: str) -> datetime:
    value = _field(section, path)
    if not isinstance(value, str):
        raise _bad(f'field "{path}" is {_type_name(value)}, expected an ISO 8601 time')
    if not _TIMESTAMP.fullmatch(value):
        raise _bad(f'field "{path}" is "{sanitize(value, 40)}", expected an ISO 8601 time')
    # Python 3.10's fromisoformat takes neither "Z" nor a fraction of other than 3 or 6 digits.
    text = value[:10] + "T" + value[11:]
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    if "." in text:
        text = re.sub(r"\.([0-9]+)", lambda m: "." + (m.group(1) + "000000")[:6], text)
    try:
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        return moment.astimezone(timezone.utc)
    except (ValueError, OverflowError):  # e.g. month 13, or the end of time in UTC
        shown = sanitize(value, 40)
        raise _bad(f'field "{path}" is "{shown}", not a time that exists') from None


def parse_balance(body: bytes) -> Balance:
    """Parse and check a 200 answer of ``GET /account/balance``."""
    return balance_of(loads_strict(body))


def balance_of(document: Any) -> Balance:
    """Check a parsed document (from ``loads_strict``) as ``parse_balance`` does."""
    if not isinstance(document, dict):
        raise _bad(f"the document is {_type_name(document)}, expected an object")
    period = _section(document, "period")
    account = _section(document, "account")
    key = _section(document, "this_key")
    return Balance(
        period=Period(
            start=_timestamp(period, "period.start"),
            end=_timestamp(period, "period.end"),
        ),
        account=Account(
            **{n: _number(account, f"account.{n}") for n in ACCOUNT_NUMBERS},
            error_rate=_percent(account, "account.error_rate"),
            avg_latency_ms=_number(account, "account.avg_latency_ms"),
        ),
        this_key=KeyUsage(
            **{n: _number(key, f"this_key.{n}") for n in KEY_NUMBERS},
            error_rate=_percent(key, "this_key.error_rate"),
            avg_latency_ms=_number(key, "this_key.avg_latency_ms"),
        ),
        document=document,
    )


def error_text(body: bytes) -> str | None:
    """The ``error`` string of an error answer, sanitised, or None if there is none."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if isinstance(document, dict) and isinstance(document.get("error"), str):
        return sanitize(document["error"], 200)
    return None
