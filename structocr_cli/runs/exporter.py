"""The exporter's runs that need no server: the keys it serves, and the printed rules and
dashboard."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from structocr_cli.runs.balance import one_key, selected

if TYPE_CHECKING:
    from structocr_cli.settings.selection import KeySpec


MISSING_HINT = (
    "Save a key with: structocr config set-key; or set STRUCTOCR_API_KEY; or serve a "
    "--keys-file FILE"
)
REFUSED_HINT = "Check the key, or serve others with -p, --all-profiles or --keys-file"
"""The exporter's advice about keys: it takes no --api-key or --api-key-file."""


def exporter_keys(
    profiles: list[str], every: bool, keys_file: str | None, base_url: str | None, timeout: float
) -> list[KeySpec]:
    """The keys to serve: those selected; by default every profile, else the one key that
    ``balance`` would use. Called again on SIGHUP."""
    import time

    from structocr_cli.settings.resolve import Flags, read_config

    deadline = time.monotonic() + timeout
    if profiles or every or keys_file is not None:
        return selected(profiles, every, keys_file, base_url, deadline)
    if read_config(os.environ).profiles:
        return selected([], True, None, base_url, deadline)
    from structocr_cli.api.errors import NoApiKeyError

    try:
        return [one_key(Flags(base_url=base_url, key_options=()), deadline, warn=False)]
    except NoApiKeyError as exc:
        raise NoApiKeyError(exc.message, MISSING_HINT) from None


def print_monitoring(
    dashboard: bool, credits: float, runway_days: float, error_ratio: float, job: str
) -> int:
    if dashboard:
        from importlib.resources import files

        sys.stdout.write(
            files("structocr_cli.exporter").joinpath("dashboard.json").read_text("utf-8")
        )
        return 0
    from structocr_cli.exporter.rules import Thresholds, rules

    sys.stdout.write(rules(Thresholds(credits, runway_days, error_ratio, job)))
    return 0
