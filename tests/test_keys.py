"""Key validation, masking and redaction."""

from __future__ import annotations

import pytest

from structocr_cli.api.keys import key_problem, mask, redact, remember, sanitize


def test_mask_long_keys_show_first_and_last_four() -> None:
    assert mask("sk_live_4f9a8b7c6d5e4f3a2b1c") == "sk_l…2b1c"
    assert mask("0123456789abcdef") == "0123…cdef"


@pytest.mark.parametrize("key", ["demo", "0123456789abcde", "x"])
def test_mask_short_keys_are_only_asterisks(key: str) -> None:
    masked = mask(key)
    assert set(masked) == {"*"}
    assert not any(char in masked for char in key)


@pytest.mark.parametrize("key", ["", " a", "a b", "a\tb", "a\r\n", "\u00e9", "\x00", "a\x7f"])
def test_unsendable_keys_have_a_problem(key: str) -> None:
    assert key_problem(key)


def test_printable_ascii_keys_are_fine() -> None:
    assert key_problem("sk_live-ABC.123~!#$%&'*+/=?^`|") is None


def test_redact_replaces_remembered_keys() -> None:
    remember("sk_live_4f9a8b7c6d5e4f3a2b1c")
    assert redact("header: sk_live_4f9a8b7c6d5e4f3a2b1c!") == "header: sk_l…2b1c!"


def test_sanitize_escapes_controls_and_caps_length() -> None:
    assert sanitize("a\x1b[2Jb\x9bc\n") == "a\\x1b[2Jb\\x9bc\\x0a"
    assert sanitize("x" * 500, limit=10) == "x" * 10 + "…"


def test_sanitize_escapes_bidi_and_zero_width_characters_but_not_letters() -> None:
    text = "a\u202eb\u200bc\u2066d\u2069\ufeff\u2028 café 日本"
    assert sanitize(text) == "a\\u202eb\\u200bc\\u2066d\\u2069\\ufeff\\u2028 café 日本"


def test_redact_leaves_ordinary_words_alone_for_short_keys() -> None:
    remember("x")
    assert redact("http://example.com") == "http://example.com"


def test_redact_with_thousands_of_keys_masks_each_whole_and_in_part() -> None:
    keys = [f"sk_live_{n:06d}_abcdefgh" for n in range(2000)]
    for key in keys:
        remember(key)
    text = f"a {keys[1234]} b {keys[7][3:15]} c {keys[1999]}"
    assert redact(text) == f"a {mask(keys[1234])} b ******** c {mask(keys[1999])}"
    assert redact("nothing of a key here") == "nothing of a key here"
