"""Reading a guest's second factor and checking it: only the order's own phone digits or email verify."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.access.factor import Factor, check_factor, is_confirmation, parse_factor
from bot.crm.records import CustomerInfo

WANG = CustomerInfo(
    id="C202405001", surname="王", surname_en="Wang", given_name="伟", title="先生", email="wang.wei@example.com",
    phone="13800138001", vip=False, vip_level=0, locale="zh-CN", telegram_user_id=None,
)  # fmt: skip


@pytest.mark.parametrize(
    ("text", "factor"),
    [
        ("8001", Factor("phone", "8001")),
        ("８００１", Factor("phone", "8001")),  # full-width digits from a Chinese keyboard
        ("尾号 8001", Factor("phone", "8001")),
        ("手机后四位是8001。", Factor("phone", "8001")),
        ("138 0013 8001", Factor("phone", "13800138001")),
        ("+86 138-0013-8001", Factor("phone", "13800138001")),
        ("Wang.Wei@Example.com", Factor("email", "wang.wei@example.com")),
        ("我的邮箱是 wang.wei@example.com", Factor("email", "wang.wei@example.com")),
        ("8001\n\n> 请回复下单手机号后 4 位", Factor("phone", "8001")),  # an email reply with its quote
    ],
)
def test_factors_in_the_ways_guests_give_them(text: str, factor: Factor) -> None:
    assert parse_factor(text) == factor


@pytest.mark.parametrize(
    "text",
    ["", "你好", "DD202405001 到哪了", "转人工", "123", "12345", "我忘了", "1234 or 5678", "x" * 200 + " 8001"],
)
def test_other_messages_are_not_answers(text: str) -> None:
    assert parse_factor(text) is None


@pytest.mark.parametrize("text", ["8001", "13800138001", "wang.wei@example.com", "WANG.WEI@EXAMPLE.COM"])
def test_the_owners_factors_verify(text: str) -> None:
    factor = parse_factor(text)
    assert factor is not None and check_factor(factor, WANG)


@given(st.from_regex(r"\d{4}", fullmatch=True).filter(lambda d: d != "8001"))
def test_other_four_digits_never_verify(digits: str) -> None:
    factor = parse_factor(digits)
    assert factor is not None and not check_factor(factor, WANG)


@given(st.emails().filter(lambda e: e.lower() != WANG.email))
def test_other_email_addresses_never_verify(email: str) -> None:
    factor = parse_factor(email)
    assert factor is None or not check_factor(factor, WANG)


@given(st.text(max_size=60).filter(lambda t: "8001" not in t and "wang.wei@example.com" not in t.lower()))
def test_text_without_the_factor_never_verifies(text: str) -> None:
    factor = parse_factor(text)
    assert factor is None or not check_factor(factor, WANG)


@given(st.sampled_from(["phone", "email", "other"]), st.text(max_size=30))
def test_a_factor_verifies_only_when_equal_to_the_crms(kind: str, value: str) -> None:
    expected = {"phone": {WANG.phone[-4:], WANG.phone}, "email": {WANG.email}, "other": set()}[kind]
    assert check_factor(Factor(kind, value), WANG) == (value in expected)


@pytest.mark.parametrize(
    "text", ["确认", "確認", "确认取消", "確定", "yes", "Yes, cancel it", "OK", "/affirm", "confirm"]
)
def test_confirmations(text: str) -> None:
    assert is_confirmation(text)


@pytest.mark.parametrize(
    "text", ["", "/deny", "不", "不确认", "no", "No, keep it", "算了", "取消", "yesterday", "好像不对"]
)
def test_anything_else_is_not_a_confirmation(text: str) -> None:
    assert not is_confirmation(text)
