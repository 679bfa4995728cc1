"""API-key hygiene: validation before sending, masking for display, redaction as a last guard."""

from __future__ import annotations

import re
import threading

_KEY_CHARS = re.compile(r"[\x21-\x7e]+")
# Control characters C0, DEL and C1: terminals interpret some of them (ESC starts sequences).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


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


class _Known:
    """The keys seen in this process, and every run of 8 of their characters: built as keys
    are remembered, so that redacting is one pass over the text whatever the number of keys
    (thousands, with a large --keys-file)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.keys: set[str] = set()
        self.runs: set[str] = set()

    def add(self, key: str) -> None:
        with self._lock:  # membership tests need no lock: a set only grows under it
            if key not in self.keys:
                self.runs.update(key[i : i + _MIN_REDACTED] for i in range(len(key) - 7))
                self.keys.add(key)

    def clear(self) -> None:
        with self._lock:
            self.keys.clear()
            self.runs.clear()


_known = _Known()


def remember(key: str) -> None:
    """Register a key so that ``redact`` removes it from any text shown to the user."""
    if len(key) >= _MIN_REDACTED:
        _known.add(key)


def redact(text: str) -> str:
    """Replace every remembered key in ``text`` by its masked form, and any other run of 8 or
    more of a key's characters (a server that echoes part of the key) by asterisks.

    A run is a stretch of text whose every 8 characters in a row occur in some key; it is
    found in one pass, with a set lookup per character."""
    runs = _known.runs
    if not runs or len(text) < _MIN_REDACTED:
        return text
    out: list[str] = []
    i = done = 0
    last = len(text) - _MIN_REDACTED
    while i <= last:
        if text[i : i + _MIN_REDACTED] not in runs:
            i += 1
            continue
        j = i + _MIN_REDACTED
        while j < len(text) and text[j - _MIN_REDACTED + 1 : j + 1] in runs:
            j += 1
        found = text[i:j]
        out += (text[done:i], mask(found) if found in _known.keys else "*" * 8)
        i = done = j
    out.append(text[done:])
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
