"""The masker: customers' personal data never survives it, and ordinary text does."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.masking import ADDRESS, EMAIL, NAME, NUMBER, ORDER_ID, PHONE, mask

FULL_WIDTH = str.maketrans("0123456789@.", "０１２３４５６７８９＠．")
DIGIT_RUN = re.compile(r"\d{7,}")

CASES = [
    ("我的订单DD202405001到哪了", f"我的订单{ORDER_ID}到哪了"),
    ("订单 dd202405003 能退吗", f"订单 {ORDER_ID} 能退吗"),
    ("手机13812345678", f"手机{PHONE}"),
    ("电话 138 1234 5678", f"电话 {PHONE}"),
    ("+86 138-1234-5678 call me", f"{PHONE} call me"),
    ("１３８１２３４５６７８是我的手机", f"{PHONE}是我的手机"),
    ("快递单号SF1234567890", f"快递单号SF{NUMBER}"),
    ("邮箱 abc.d@example.com，谢谢", f"邮箱 {EMAIL}，谢谢"),
    ("邮箱ｕｓｅｒ＠ｅｘａｍｐｌｅ．ｃｏｍ", f"邮箱{EMAIL}"),
    ("我叫王小明，地址改到上海市浦东新区张江路123号5栋201室", f"我叫{NAME}，地址改到上海市{ADDRESS}"),
    ("收件人：李四", f"收件人：{NAME}"),
    ("My name is John Smith, I live at 12 Baker Street", f"My name is {NAME}, I live at {ADDRESS}"),
    # What the model needs stays: short numbers, the masked name replies use, ordinary words.
    ("退款 3 件 50元，王先生", "退款 3 件 50元，王先生"),
    ("where is my order?", "where is my order?"),
    ("@客服 你好", "@客服 你好"),
]


@pytest.mark.parametrize(("text", "masked"), CASES)
def test_masks_personal_data(text: str, masked: str) -> None:
    assert mask(text) == masked


def test_known_names_are_masked_wherever_they_appear() -> None:
    assert mask("王小明要退货，王小明的订单", known=["王小明", "", "王"]) == f"{NAME}要退货，{NAME}的订单"


chinese = st.text(st.characters(min_codepoint=0x4E00, max_codepoint=0x4FFF), max_size=8)
anything = st.text(max_size=20)


@settings(max_examples=300)
@given(before=anything, digits=st.text(st.sampled_from("0123456789"), min_size=7, max_size=20), after=anything)
def test_no_run_of_seven_digits_survives(before: str, digits: str, after: str) -> None:
    for run in (digits, digits.translate(FULL_WIDTH)):
        masked = mask(before + run + after)
        assert DIGIT_RUN.search(masked) is None, masked


@settings(max_examples=300)
@given(text=st.text(max_size=60))
def test_no_digit_run_in_any_text(text: str) -> None:
    assert DIGIT_RUN.search(mask(text)) is None


@settings(max_examples=300)
@given(before=chinese, email=st.emails(), after=chinese, full_width=st.booleans())
def test_emails_never_survive(before: str, email: str, after: str, full_width: bool) -> None:
    shown = email.translate(FULL_WIDTH) if full_width else email
    for separator in ("", " ", "，"):
        masked = mask(before + separator + shown + separator + after)
        assert shown not in masked
        assert "@" not in masked and "＠" not in masked, masked


@settings(max_examples=200)
@given(text=st.text(max_size=60))
def test_masking_twice_changes_nothing(text: str) -> None:
    once = mask(text)
    assert mask(once) == once
