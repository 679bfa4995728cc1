"""The session's key-leak scan (conftest.pytest_sessionfinish) finds the canary key in every
form it could leak in, and not in what the CLI shows instead."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote

import pytest

from structocr_cli.api.keys import mask
from tests.conftest import CANARY, leaks


@pytest.mark.parametrize(
    "text",
    [
        f"error: {CANARY}",
        f"key ...{CANARY[5:13]}...",
        base64.b64encode(f"user:{CANARY}".encode()).decode(),
        base64.b64encode(CANARY.encode()).decode(),
        f"GET /?key={quote(CANARY, safe='')}",
        json.dumps({"key": CANARY}),
    ],
)
def test_the_scan_finds_each_form_of_the_canary(text: str) -> None:
    assert leaks([text]) == [text]


def test_the_masked_key_is_no_leak() -> None:
    assert leaks([f"key {mask(CANARY)} from --api-key", "********"]) == []
