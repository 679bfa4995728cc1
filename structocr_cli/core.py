"""What commands do, as functions that return data and never print."""

from __future__ import annotations

from typing import TYPE_CHECKING

from structocr_cli.errors import HTTPStatusError
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
        return client.fetch(settings.base_url.value, settings.api_key.value, timeout)
    except HTTPStatusError as exc:
        if exc.status in (401, 403, 404):
            exc.message += f" (key {settings.key_description})"
        raise
