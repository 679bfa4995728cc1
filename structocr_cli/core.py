"""What commands do, as functions that return data and never print."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from structocr_cli.errors import DeadlineError, HTTPStatusError
from structocr_cli.settings import Settings

if TYPE_CHECKING:
    from structocr_cli.client import BalanceClient
    from structocr_cli.model import Balance


def fetch_balance(
    settings: Settings, timeout: float, client: BalanceClient | None = None
) -> Balance:
    """The balance for the resolved key; errors name the key's source (masked)."""
    if client is None:
        from structocr_cli.client import BalanceClient

        client = BalanceClient()
    try:
        return within(timeout, client.fetch, settings.base_url.value, settings.api_key.value)
    except HTTPStatusError as exc:
        if exc.status in (401, 403, 404):
            exc.message += f" (key {settings.key_description})"
        raise


# The client checks its deadline between reads; this outer bound also covers what it cannot
# interrupt (a DNS lookup, headers dripped a byte at a time) by leaving the work behind.
_GRACE = 0.5


def within(timeout: float, fetch: Any, base_url: str, api_key: str) -> Balance:
    outcome: list[Any] = []

    def work() -> None:
        try:
            outcome.append(fetch(base_url, api_key, timeout))
        except BaseException as exc:  # re-raised in the caller's thread
            outcome.append(exc)

    worker = threading.Thread(target=work, name="structocr-fetch", daemon=True)
    worker.start()
    worker.join(timeout + _GRACE)
    if not outcome:
        raise DeadlineError(
            f"no complete answer within the {timeout:g} s deadline",
            "Retry, or allow more time with --timeout or STRUCTOCR_TIMEOUT",
        )
    if isinstance(outcome[0], BaseException):
        raise outcome[0]
    result: Balance = outcome[0]
    return result
