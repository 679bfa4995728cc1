"""What the mock answers: a ``Reply`` per request, chosen by a *behaviour* (a function from
the request to a reply) per API key; the demo keys, the balance documents, and the keys a
fixtures file adds. Shared by ``server`` and ``faults``. Standard library only.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from http import HTTPStatus
from pathlib import Path
from typing import Any

from structocr_cli.api import clock
from structocr_cli.api.errors import UsageError
from structocr_cli.api.keys import sanitize


@dataclass(frozen=True)
class Request:
    key: str | None
    count: int
    """How many requests this key has made, this one included (1 for the first)."""


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    drip: float = 0.0
    """Seconds to wait between body bytes (0: send at once)."""
    delay: float = 0.0
    """Seconds to wait before answering at all."""
    drop: bool = False
    """Close the connection without answering."""
    length: bool = True
    """Send Content-Length (False: the body ends when the connection closes)."""
    head_drip: float = 0.0
    """Seconds to wait between the bytes of the status line and headers (0: at once)."""
    cut: int | None = None
    """Send only this many bytes of the body, then close (Content-Length still says all)."""
    declared: int | None = None
    """The Content-Length to claim, if not the body's length."""
    reset: bool = False
    """End with a TCP reset instead of a clean close."""

    @property
    def keeps_alive(self) -> bool:
        """A whole answer with its true length leaves the connection open for the next
        request, as the API does; any fault closes it."""
        plain = not (self.drop or self.reset or self.drip or self.head_drip or self.delay)
        return plain and self.length and self.cut is None and self.declared is None

    @classmethod
    def json(cls, status: int, document: Any, **kwargs: Any) -> Reply:
        body = json.dumps(document, indent=2).encode()
        headers = (("Content-Type", "application/json"), *kwargs.pop("headers", ()))
        return cls(status, body, headers, **kwargs)

    @classmethod
    def error(cls, status: int, message: str, **kwargs: Any) -> Reply:
        return cls.json(status, {"error": message}, **kwargs)


Behaviour = Callable[[Request], Reply]


def current_period(now: datetime | None = None) -> dict[str, str]:
    """The calendar month (UTC) around ``now``, formatted as the API does."""
    now = now or clock.now()
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    following = (start.replace(day=28) + timedelta(days=4)).replace(day=1)
    end = following - timedelta(seconds=1)
    return {"start": _iso(start), "end": _iso(end)}


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


DEMO_ACCOUNT = {
    "credits_total": 50569,
    "credits_used": 1720,
    "credits_remaining": 48849,
    "credits_this_period": 337,
    "requests_this_period": 206,
    "error_rate": "4.37%",
    "avg_latency_ms": 2720,
}
DEMO_KEY = {"credits_used": 79, "requests": 45, "error_rate": "2.22%", "avg_latency_ms": 2424}
LOW_ACCOUNT = {
    **DEMO_ACCOUNT,
    "credits_total": 2000,
    "credits_used": 1988,
    "credits_remaining": 12,
    "credits_this_period": 1410,
    "requests_this_period": 903,
}


def balance_document(
    account: Mapping[str, Any] | None = None,
    this_key: Mapping[str, Any] | None = None,
    period: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A 200 body: the reference example, with any given fields replaced."""
    return {
        "period": {**current_period(), **(period or {})},
        "account": {**DEMO_ACCOUNT, **(account or {})},
        "this_key": {**DEMO_KEY, **(this_key or {})},
    }


def _flaky(request: Request) -> Reply:
    if request.count % 2:
        return Reply.error(500, "Failed to fetch usage data")
    return Reply.json(200, balance_document())


BUILTIN: dict[str, Behaviour] = {
    "demo": lambda _: Reply.json(200, balance_document()),
    "demo-low": lambda _: Reply.json(200, balance_document(LOW_ACCOUNT)),
    "demo-404": lambda _: Reply.error(404, "Account not found"),
    "demo-500": lambda _: Reply.error(500, "Failed to fetch usage data"),
    "demo-flaky": _flaky,
}


def load_fixtures(path: Path) -> dict[str, Behaviour]:
    """Keys from a TOML or JSON file: ``{KEY: {account, this_key, period, status, error}}``."""
    try:
        raw = path.read_bytes()
        if path.suffix.lower() == ".json":
            data = json.loads(raw)
        else:
            from structocr_cli.settings.config import parse_toml

            data = parse_toml(path, raw, what="fixtures")
    except OSError as exc:
        raise UsageError(f"cannot read fixtures {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise UsageError(f"invalid fixtures {path}: {sanitize(str(exc), 200)}") from None
    if not isinstance(data, dict):
        raise UsageError(f"invalid fixtures {path}: expected a table of keys")
    return {str(key): _fixture(path, str(key), entry) for key, entry in data.items()}


_FIXTURE_FIELDS = {"account", "this_key", "period", "status", "error"}


def _fixture(path: Path, key: str, entry: Any) -> Behaviour:
    if not isinstance(entry, dict) or not set(entry) <= _FIXTURE_FIELDS:
        raise UsageError(
            f'invalid fixtures {path}: key "{sanitize(key, 40)}" must be a table of '
            + ", ".join(sorted(_FIXTURE_FIELDS))
        )
    status = entry.get("status", 200)
    if not isinstance(status, int) or not 100 <= status <= 599:
        raise UsageError(f'invalid fixtures {path}: "{sanitize(key, 40)}".status must be 100-599')
    if status != 200:
        reply = Reply.error(status, str(entry.get("error", HTTPStatus(status).phrase)))
        return lambda _: reply
    return lambda _: Reply.json(
        200, balance_document(entry.get("account"), entry.get("this_key"), entry.get("period"))
    )
