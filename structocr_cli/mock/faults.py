"""The mock's fault keys: each one a way a server or the network can fail, chosen by the API
key sent (``fault-stall``, ``fault-html-404``, ...), in the style of stripe-mock's magic values.

Each fault says which exit code ``structocr balance`` gives for it, so users can test their
own scripts against every failure, and the test suite checks each against the CLI. Adding a
fault is one entry in ``catalogue``. Standard library only.
"""

from __future__ import annotations

import functools
import gzip
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from structocr_cli.mock.replies import Behaviour, Reply, Request

HTML = (("Content-Type", "text/html; charset=utf-8"),)


class Fault(NamedTuple):
    behaviour: Behaviour
    exit_code: int
    """What ``structocr balance`` exits with (with the default --timeout, or 2 s for the
    ones that wait)."""
    description: str


@functools.lru_cache(maxsize=1)
def _gzip_bomb() -> bytes:
    """32 MiB of zeros in about 32 KiB: it only grows once decompressed."""
    return gzip.compress(b"\0" * (32 * 1024 * 1024), compresslevel=9)


@functools.lru_cache(maxsize=1)
def _huge() -> bytes:
    return b" " * (50 * 1024 * 1024)


def _html(status: int, title: str) -> Reply:
    from structocr_cli.mock.replies import Reply

    page = f"<!doctype html><html><head><title>{title}</title></head><body><h1>{title}</h1>"
    return Reply(status, (page + "</body></html>").encode(), HTML)


def _alternate(first: Reply) -> Behaviour:
    """``first`` on odd requests, the demo balance on even ones: each run of the CLI sees
    the failure and then, on its retry, the success."""
    from structocr_cli.mock.replies import Reply, balance_document

    return lambda request: first if request.count % 2 else Reply.json(200, balance_document())


def _document(**sections: dict[str, object]) -> Behaviour:
    from structocr_cli.mock.replies import Reply, balance_document

    return lambda _: Reply.json(200, balance_document(**sections))


def _raw(body: bytes, status: int = 200) -> Behaviour:
    from structocr_cli.mock.replies import Reply

    reply = Reply(status, body, (("Content-Type", "application/json"),))
    return lambda _: reply


def _demo_body() -> bytes:
    from structocr_cli.mock.replies import balance_document

    return json.dumps(balance_document(), indent=2).encode()


def _moved(location: str) -> Behaviour:
    from structocr_cli.mock.replies import Reply

    reply = Reply(302, b"", (("Location", location),))
    return lambda _: reply


def _bad_locations() -> dict[str, tuple[Behaviour, int, str]]:
    """Redirects that no client may follow, or even fail on: each is exit 61."""
    return {
        "fault-redirect-backslash": (
            _moved("https://127.0.0.1\\.structocr.com/v1/account/balance"),
            61,
            "302 to https://127.0.0.1\\.structocr.com/... (a structocr.com name to one parser, "
            "127.0.0.1 to another)",
        ),
        "fault-redirect-bad-ipv6": (_moved("https://[::1/x"), 61, "302 to https://[::1/x"),
        "fault-redirect-bad-port": (
            _moved("https://evil.test:99999/"),
            61,
            "302 to a port beyond 65535",
        ),
        "fault-redirect-non-ascii": (
            _moved("https://caf\u00e9.structocr.com/v1/account/balance"),
            61,
            "302 to a host name with a non-ASCII byte",
        ),
    }


def catalogue(redirect_target: str) -> dict[str, Fault]:
    """Every fault by key; ``redirect_target`` is the base URL ``fault-redirect`` points at."""
    from structocr_cli.mock.replies import Reply, balance_document

    demo = _demo_body()
    control = balance_document(
        account={"error_rate": "4\x1b[31m.37%"}, period={"start": "2026-11-01\x1b[2J00:00:00Z"}
    )
    entries: dict[str, tuple[Callable[[Request], Reply], int, str]] = {
        "fault-stall": (lambda _: Reply(200, delay=3600), 60, "accepts, never answers"),
        "fault-drip": (
            lambda _: Reply(200, demo, (("Content-Type", "application/json"),), drip=0.5),
            60,
            "the body one byte every half second",
        ),
        "fault-drip-headers": (
            lambda _: Reply(200, demo, head_drip=1.0),
            60,
            "the status line and headers one byte a second",
        ),
        "fault-reset": (
            lambda _: Reply(200, demo, cut=len(demo) // 2, reset=True),
            60,
            "closes the connection with a reset halfway through the body",
        ),
        "fault-truncated": (
            lambda _: Reply(200, demo, declared=len(demo) + 100),
            60,
            "Content-Length larger than the body",
        ),
        "fault-html-502": (lambda _: _html(502, "502 Bad Gateway"), 50, "a proxy's HTML 502"),
        "fault-html-200": (
            lambda _: _html(200, "Sign in to the network"),
            61,
            "a captive portal's HTML page, status 200",
        ),
        "fault-html-404": (lambda _: _html(404, "404 Not Found"), 61, "a web server's HTML 404"),
        "fault-huge": (lambda _: Reply(200, _huge()), 61, "a 50 MB body"),
        "fault-gzip-bomb": (
            lambda _: Reply(200, _gzip_bomb(), (("Content-Encoding", "gzip"),)),
            61,
            "32 KiB of gzip that inflates to 32 MiB",
        ),
        "fault-redirect": (
            lambda _: Reply(302, b"", (("Location", f"{redirect_target}/account/balance"),)),
            61,
            "302 to another local server, which records whether it received a key",
        ),
        **_bad_locations(),
        "fault-429": (
            _alternate(Reply.error(429, "Too many requests", headers=(("Retry-After", "1"),))),
            0,
            "429 with Retry-After: 1, then success",
        ),
        "fault-429-long": (
            lambda _: Reply.error(429, "Too many requests", headers=(("Retry-After", "86400"),)),
            40,
            "429 with Retry-After: 86400",
        ),
        "fault-503-then-ok": (
            _alternate(Reply.error(503, "Service unavailable")),
            0,
            "503, then success",
        ),
        "fault-nan": (_raw(demo.replace(b"48849", b"NaN")), 61, "NaN where a number belongs"),
        "fault-bool": (_document(account={"credits_remaining": True}), 61, "true as a number"),
        "fault-string-number": (
            _document(account={"credits_remaining": "48849"}),
            61,
            'a number as a string ("48849")',
        ),
        "fault-missing-section": (
            _raw(
                json.dumps(
                    {k: v for k, v in balance_document().items() if k != "this_key"}
                ).encode()
            ),
            61,
            "no this_key section",
        ),
        "fault-list": (_raw(b"[1, 2, 3]"), 61, "a JSON array instead of an object"),
        "fault-escape": (
            lambda _: Reply.error(401, "[bold]x[/bold] :smile: \x1b]0;owned\x07\x1b[31mred\x9b2J"),
            41,
            "a 401 whose message carries terminal escapes and rich markup",
        ),
        "fault-control-chars": (
            lambda _: Reply.json(200, control),
            61,
            "control characters and odd separators inside a time and a percentage",
        ),
        "fault-overflow": (
            _document(period={"start": "9999-12-31T23:59:59-23:59"}),
            61,
            "a time at the end of the calendar, past it in UTC",
        ),
        "fault-retry-after-overflow": (
            lambda _: Reply(429, b"{}", (("Retry-After", "9" * 400),)),
            40,
            "429 with a Retry-After of 400 digits",
        ),
        "fault-tiny-burn": (
            _document(account={"credits_this_period": 1e-300}),
            0,
            "a burn rate of 1e-300 credits (a runway of about 1e304 days)",
        ),
        "fault-non-utf8": (_raw(b'{"period": "\xff\xfe"}'), 61, "a body that is not UTF-8"),
        "fault-empty": (_raw(b""), 61, "an empty 200 body"),
    }
    return {key: Fault(*entry) for key, entry in entries.items()}
