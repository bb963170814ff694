"""Locale detection and script conversion."""

from __future__ import annotations

import pytest

from bot.locale import detect_locale, normalise_locale, resolve_locale, to_simplified, to_traditional


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("DD202405001 到哪了", "zh-CN"),
        ("我的快递怎么还没到", "zh-CN"),
        ("我的訂單到哪裡了", "zh-TW"),
        ("請問物流進度", "zh-TW"),
        ("where is my order DD202405002", "en"),
        ("DD202405001", None),
        ("13800138001", None),
        ("li.na@example.com", None),
    ],
)
def test_detect_locale(text: str, expected: str | None) -> None:
    assert detect_locale(text) == expected


def test_resolve_keeps_the_conversation_locale_for_neutral_messages() -> None:
    assert resolve_locale("DD202405001", "zh-TW", None) == "zh-TW"
    assert resolve_locale("ok", "zh-CN", None) == "zh-CN"
    assert resolve_locale("where is my parcel please", "zh-CN", None) == "en"
    assert resolve_locale("DD202405001", None, "en-US") == "en"
    assert resolve_locale("DD202405001", None, None) == "zh-CN"


@pytest.mark.parametrize(
    ("tag", "expected"),
    [("zh-CN", "zh-CN"), ("zh", "zh-CN"), ("zh-Hant", "zh-TW"), ("zh_HK", "zh-TW"), ("en-GB", "en"), ("fr", None)],
)
def test_normalise_locale(tag: str, expected: str | None) -> None:
    assert normalise_locale(tag) == expected


def test_script_conversion_round_trip() -> None:
    assert to_traditional("订单已发货") != "订单已发货"
    assert to_simplified(to_traditional("订单已发货")) == "订单已发货"
