"""Strict parsing of the balance document."""

from __future__ import annotations

import copy
import json
import math
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from structocr_cli.api.errors import BadAnswerError
from structocr_cli.api.model import parse_balance
from structocr_cli.derive import Derived, derive, percent
from structocr_cli.mock.replies import DEMO_ACCOUNT, DEMO_KEY

# The API reference's example: the mock's demo data, in the reference's billing period.
REFERENCE: dict[str, Any] = {
    "period": {"start": "2026-06-01T00:00:00.000Z", "end": "2026-06-30T23:59:59.000Z"},
    "account": dict(DEMO_ACCOUNT),
    "this_key": dict(DEMO_KEY),
}


def encode(document: Any) -> bytes:
    return json.dumps(document).encode()


def changed(path: str, value: Any) -> bytes:
    document = copy.deepcopy(REFERENCE)
    section, name = path.split(".")
    document[section][name] = value
    return encode(document)


def removed(path: str) -> bytes:
    document = copy.deepcopy(REFERENCE)
    section, _, name = path.partition(".")
    if name:
        del document[section][name]
    else:
        del document[section]
    return encode(document)


def test_reference_example_parses() -> None:
    balance = parse_balance(encode(REFERENCE))
    assert balance.account.credits_remaining == 48849
    assert balance.account.error_rate == Decimal("4.37")
    assert balance.this_key.error_rate == Decimal("2.22")
    assert balance.period.start == datetime(2026, 6, 1, tzinfo=timezone.utc)
    assert balance.document == REFERENCE


def test_unknown_fields_are_kept() -> None:
    document = {**copy.deepcopy(REFERENCE), "new_section": {"a": 1}}
    document["account"]["plan"] = "pro"
    assert parse_balance(encode(document)).document["new_section"] == {"a": 1}


@pytest.mark.parametrize(
    "path", ["period", "account", "this_key", "account.credits_remaining", "this_key.error_rate",
             "period.end"],
)  # fmt: skip
def test_missing_section_or_field_is_named(path: str) -> None:
    with pytest.raises(BadAnswerError, match=rf'"{path}" is missing'):
        parse_balance(removed(path))


@pytest.mark.parametrize("value", [True, "48849", None, [1], {"n": 1}])
def test_non_numbers_where_numbers_belong_are_refused(value: Any) -> None:
    with pytest.raises(
        BadAnswerError, match=r'"account.credits_remaining" is .*expected a number'
    ):
        parse_balance(changed("account.credits_remaining", value))


@pytest.mark.parametrize(
    "body",
    [
        b'{"period": NaN}',
        b'{"period": Infinity}',
        b'{"period": -Infinity}',
        b'{"period": 1e999}',
    ],
)
def test_nan_and_infinity_are_refused(body: bytes) -> None:
    with pytest.raises(BadAnswerError):
        parse_balance(body)


@pytest.mark.parametrize("body", [b"[]", b'"text"', b"42", b"null", b"true"])
def test_non_object_documents_are_refused(body: bytes) -> None:
    with pytest.raises(BadAnswerError, match="expected an object"):
        parse_balance(body)


@pytest.mark.parametrize("body", [b"", b"<html>", b"{", b"\xff\xfe", b"1" * 5000])
def test_not_json_is_refused(body: bytes) -> None:
    with pytest.raises(BadAnswerError, match="not JSON"):
        parse_balance(body)


def test_duplicate_fields_are_refused() -> None:
    body = encode(REFERENCE).replace(
        b'"credits_total": 50569', b'"credits_total": 1, "credits_total": 2'
    )
    with pytest.raises(BadAnswerError, match=r'"credits_total" appears twice'):
        parse_balance(body)


def test_numbers_beyond_2_pow_53_are_refused() -> None:
    with pytest.raises(BadAnswerError, match="out of range"):
        parse_balance(changed("account.credits_total", 10**400))


@pytest.mark.parametrize(
    "value",
    [
        "4.37",
        "lots",
        "4,37%",
        4.37,
        "%",
        "\u0664\u0664.\u0663\u0667%",
        "4.37 %",
        " 4.37%",
        "4.37%\n",
    ],
)
def test_error_rate_must_be_a_percentage_string(value: Any) -> None:
    with pytest.raises(BadAnswerError, match=r"account\.error_rate"):
        parse_balance(changed("account.error_rate", value))


@pytest.mark.parametrize(
    "value",
    [
        "yesterday",
        1717200000,
        "2026-13-01T00:00:00Z",
        "2026-06-01\x1b00:00:00Z",  # any separator but T or a space
        "2026-06-01\u202e00:00:00Z",
        "2026-06-01'00:00:00Z",
        "2026-06-01=00:00:00Z",
        "\n2026-06-01T00:00:00Z",  # surrounding whitespace
        "2026-06-01T00:00:00Z\t",
        "2026-06-01T00:00:00Z\x1c",
        "\u0662\u0660\u0662\u0666-06-01T00:00:00Z",  # digits of another script
        "9999-12-31T23:59:59-23:59",  # the end of time, past it in UTC
        "0001-01-01T00:00:00+23:59",
    ],
)
def test_period_times_must_be_rfc_3339(value: Any) -> None:
    with pytest.raises(BadAnswerError, match=r"period\.start"):
        parse_balance(changed("period.start", value))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-06-01T00:00:00Z", datetime(2026, 6, 1, tzinfo=timezone.utc)),
        ("2026-06-01 02:00:00+02:00", datetime(2026, 6, 1, tzinfo=timezone.utc)),
        ("2026-06-01t00:00:00.5z", datetime(2026, 6, 1, 0, 0, 0, 500000, tzinfo=timezone.utc)),
        ("2026-06-01T00:00:00", datetime(2026, 6, 1, tzinfo=timezone.utc)),
    ],
)
def test_period_times_in_rfc_3339_forms(value: str, expected: datetime) -> None:
    assert parse_balance(changed("period.start", value)).period.start == expected


def test_floats_are_numbers() -> None:
    assert (
        parse_balance(changed("account.avg_latency_ms", 2720.5)).account.avg_latency_ms == 2720.5
    )


def test_derived_figures_for_the_reference() -> None:
    balance = parse_balance(encode(REFERENCE))
    figures = derive(balance, datetime(2026, 6, 16, tzinfo=timezone.utc))
    assert figures.days_elapsed == pytest.approx(15.0)
    assert figures.days_left == pytest.approx(30.0 - 1 / 86400 - 15.0)
    assert figures.credits_used_pct == pytest.approx(1720 / 50569 * 100)
    assert figures.share_of_period_pct == pytest.approx(79 / 337 * 100)


def test_derived_days_are_clamped_to_the_period() -> None:
    balance = parse_balance(encode(REFERENCE))
    before = derive(balance, datetime(2026, 1, 1, tzinfo=timezone.utc))
    after = derive(balance, datetime(2027, 1, 1, tzinfo=timezone.utc))
    assert (before.days_elapsed, before.days_left) == (0.0, before.days_total)
    assert (after.days_elapsed, after.days_left) == (after.days_total, 0.0)


def test_a_runout_past_the_calendar_is_no_date_not_a_crash() -> None:
    balance = parse_balance(encode(REFERENCE))
    figures = derive(balance, datetime(9990, 1, 1, tzinfo=timezone.utc))  # a clock gone wild
    assert figures.runway_days is not None
    assert figures.runout is None


def at(now: datetime, **account: Any) -> Derived:
    document = copy.deepcopy(REFERENCE)
    document["account"].update(account)
    return derive(parse_balance(encode(document)), now)


JUNE_16 = datetime(2026, 6, 16, tzinfo=timezone.utc)


def test_forecast_for_the_reference() -> None:
    figures = at(JUNE_16)
    assert figures.daily_burn == pytest.approx(337 / 15)
    assert figures.period_credits == pytest.approx(337 / 15 * figures.days_total)
    assert figures.runway_days == pytest.approx(48849 / (337 / 15))
    assert figures.runout is not None
    assert figures.runout.date().isoformat() == "2032-05-29"


def test_forecast_before_the_period_starts_has_no_burn() -> None:
    figures = at(datetime(2026, 5, 1, tzinfo=timezone.utc))
    assert (figures.daily_burn, figures.period_credits, figures.runway_days) == (None, None, None)
    assert figures.runout is None


def test_forecast_after_the_period_uses_the_whole_period() -> None:
    figures = at(datetime(2026, 8, 1, tzinfo=timezone.utc))
    assert figures.daily_burn == pytest.approx(337 / figures.days_total)
    assert figures.period_credits == pytest.approx(337)


def test_end_before_start_is_an_empty_period() -> None:
    document = copy.deepcopy(REFERENCE)
    document["period"] = {"start": "2026-06-30T00:00:00Z", "end": "2026-06-01T00:00:00Z"}
    figures = derive(parse_balance(encode(document)), JUNE_16)
    assert (figures.days_total, figures.days_elapsed, figures.days_left) == (0.0, 0.0, 0.0)
    assert figures.daily_burn is None


def test_nothing_burned_means_no_runway() -> None:
    figures = at(JUNE_16, credits_this_period=0)
    assert figures.daily_burn == 0.0
    assert figures.runway_days is None
    assert figures.runout is None


def test_negative_figures_do_not_make_negative_runway() -> None:
    assert at(JUNE_16, credits_remaining=-50).runway_days == 0.0
    assert at(JUNE_16, credits_this_period=-5).runway_days is None


def test_zero_totals_give_no_percentages() -> None:
    figures = at(JUNE_16, credits_total=0, credits_this_period=0)
    assert figures.credits_used_pct is None
    assert figures.share_of_period_pct is None


def test_huge_runway_has_no_date() -> None:
    figures = at(JUNE_16, credits_remaining=2**53, credits_this_period=1)
    assert figures.runway_days is not None
    assert figures.runout is None


def test_percent_of_nothing_is_none() -> None:
    assert percent(5, 0) is None
    assert percent(5, -3) is None


numbers = st.one_of(
    st.integers(min_value=-(2**53), max_value=2**53),
    st.floats(min_value=-1e15, max_value=1e15, allow_nan=False, allow_infinity=False),
)
moments = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(timezone.utc)
)


@given(
    total=numbers, used=numbers, period=numbers, key_used=numbers,
    start=moments, end=moments, now=moments,
)  # fmt: skip
def test_any_valid_document_parses_and_derives_without_nan(
    total: float, used: float, period: float, key_used: float,
    start: datetime, end: datetime, now: datetime,
) -> None:  # fmt: skip
    document = copy.deepcopy(REFERENCE)
    document["period"] = {"start": start.isoformat(), "end": end.isoformat()}
    document["account"].update(credits_total=total, credits_used=used, credits_this_period=period)
    document["this_key"]["credits_used"] = key_used
    figures = derive(parse_balance(encode(document)), now)
    for value in vars(figures).values():
        assert not isinstance(value, float) or math.isfinite(value)
    assert 0 <= figures.days_elapsed <= figures.days_total
    assert figures.days_left >= 0
    assert figures.runway_days is None or figures.runway_days >= 0
