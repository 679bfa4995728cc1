"""API-key hygiene: validation before sending, masking for display, redaction as a last guard."""

from __future__ import annotations

import re
import threading

_KEY_CHARS = re.compile(r"[\x21-\x7e]+")
# Control characters C0, DEL and C1: terminals interpret some of them (ESC starts sequences).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")

_known_lock = threading.Lock()
_known: set[str] = set()


def key_problem(key: str) -> str | None:
    """Why ``key`` cannot be sent as a header value, or None. Never quotes the key."""
    if not key:
        return "it is empty"
    if _KEY_CHARS.fullmatch(key):
        return None
    for position, char in enumerate(key, start=1):
        if not _KEY_CHARS.fullmatch(char):
            kind = "whitespace" if char.isspace() else "a non-printable or non-ASCII character"
            return f"character {position} is {kind}; keys are printable ASCII without spaces"
    return None  # pragma: no cover - the loop always finds the culprit


def mask(key: str) -> str:
    """First and last four characters of a long key, asterisks for a short one."""
    if len(key) >= 16:
        return f"{key[:4]}…{key[-4:]}"
    return "*" * max(len(key), 4)


# Shorter strings are not worth redacting and would mangle ordinary words ("x" in "example").
_MIN_REDACTED = 8


def remember(key: str) -> None:
    """Register a key so that ``redact`` removes it from any text shown to the user."""
    if len(key) >= _MIN_REDACTED:
        with _known_lock:
            _known.add(key)


def redact(text: str) -> str:
    """Replace every remembered key in ``text`` by its masked form, and any run of 8 or more
    of its characters (a server that echoes part of the key) by asterisks."""
    with _known_lock:
        keys = sorted(_known, key=len, reverse=True)
    for key in keys:
        text = text.replace(key, mask(key))
        text = _mask_fragments(text, key)
    return text


def _mask_fragments(text: str, key: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(text):
        # The longest run of the key's characters, in the key's order, starting here.
        j = i + _MIN_REDACTED
        if j <= len(text) and text[i:j] in key:
            while j < len(text) and text[i : j + 1] in key:
                j += 1
            out.append("*" * 8)
            i = j
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def may_be_secret(value: str) -> bool:
    """Whether a value the user typed could be an API key typed in the wrong place: long
    enough, printable ASCII without spaces, and no path separator."""
    return len(value) >= 16 and bool(_KEY_CHARS.fullmatch(value)) and "/" not in value


def shown(value: str, limit: int = 120) -> str:
    """A value the user typed, as it may be echoed: masked if it could be a key."""
    return mask(value) if may_be_secret(value) else sanitize(value, limit)


def sanitize(text: str, limit: int = 300) -> str:
    """Server-provided text made safe for one terminal line, length capped: control
    characters escaped (\\x1b), and so are the invisible ones that reorder or hide what is
    shown, bidi controls and zero-width characters (\\u202e, \\u200b)."""
    if len(text) > limit:
        text = text[:limit] + "…"
    text = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
    if text.isascii():
        return text
    import unicodedata  # only for text that is not ASCII

    return "".join(
        f"\\u{ord(char):04x}" if unicodedata.category(char) in _INVISIBLE else char
        for char in text
    )


# Unicode format characters (bidi overrides and isolates, zero-width spaces and joiners, the
# byte-order mark) and the line and paragraph separators, which end a line as a newline does.
_INVISIBLE = frozenset({"Cf", "Zl", "Zp"})
