"""The JSON Lines that ``balance --watch`` writes into a pipe, read back as observations
(``history import``). Every line is checked as strictly as an answer from the server."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone

from structocr_cli.api.errors import BadAnswerError
from structocr_cli.api.keys import sanitize
from structocr_cli.api.model import balance_of, loads_strict
from structocr_cli.history.store import Observation, observation

IMPORTED_HOST = "imported"
"""The host of imported series: a log does not say which base URL answered."""
MAX_LINE = 1 << 20
"""A line of a watch log holds a few keys' documents; a longer one is not such a line."""


class BadLine(ValueError):
    def __init__(self, number: int, message: str) -> None:
        super().__init__(message)
        self.number = number


_TIME = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})Z")


def _time(number: int, text: object) -> float:
    """A refresh's ``time`` as Unix time (a regular expression and ``datetime``, a few times
    faster than ``strptime`` over a million lines)."""
    if not isinstance(text, str):
        raise BadLine(number, 'no "time" of the refresh')
    match = _TIME.fullmatch(text)
    try:
        if match is None:
            raise ValueError(text)
        year, month, day, hour, minute, second = map(int, match.groups())
        return datetime(year, month, day, hour, minute, second, tzinfo=timezone.utc).timestamp()
    except ValueError:  # the form, or a day that does not exist (02-30)
        raise BadLine(
            number, f'"time" {sanitize(text, 40)!r} is not YYYY-MM-DDTHH:MM:SSZ'
        ) from None


def observations(lines: Iterable[bytes]) -> Iterator[tuple[str, str, Observation]]:
    """(name, masked key, observation) for each key a line had a balance of; a key that
    failed in that refresh is skipped. ``BadLine`` names the first line that is not a
    watch document."""
    for number, line in enumerate(lines, 1):
        if len(line) > MAX_LINE:
            raise BadLine(number, "longer than 1 MiB: not a line of a --watch log")
        if not line.strip():
            continue
        try:
            document = loads_strict(line)
        except BadAnswerError as exc:
            message = exc.message.removeprefix("unusable answer from the server: ")
            raise BadLine(number, message) from None
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise BadLine(number, 'not a --watch document (no "keys" list)')
        at = _time(number, document.get("time"))
        for item in document["keys"]:
            yield from _entry(number, item, at)


def _entry(number: int, item: object, at: float) -> Iterator[tuple[str, str, Observation]]:
    if not isinstance(item, dict):
        raise BadLine(number, 'an entry of "keys" is not an object')
    name, key = item.get("profile"), item.get("key")
    if not isinstance(name, str) or not isinstance(key, str) or not 0 < len(name) <= 200:
        raise BadLine(number, 'an entry of "keys" has no "profile" and "key"')
    if item.get("ok") is not True:
        return  # that key failed in this refresh: nothing was observed
    try:
        balance = balance_of(item.get("data"))
    except BadAnswerError as exc:
        message = exc.message.removeprefix("unusable answer from the server: ")
        raise BadLine(number, f"{sanitize(name, 60)}: {message}") from None
    yield name, key, observation(balance, at)
