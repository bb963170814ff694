"""Reading a satisfaction score from whatever a customer answers to the survey."""

from __future__ import annotations

import pytest

from bot.desk.csat import CsatPolicy, parse_rating


@pytest.mark.parametrize(
    ("text", "score"),
    [
        ("5", 5),
        (" 4 ", 4),
        ("５", 5),  # full-width digit from a Chinese keyboard
        ("3分", 3),
        ("5 分！", 5),
        ("4/5", 4),
        ("5 stars", 5),
        ("1 star", 1),
        ("五星", 5),
        ("两分", 2),
        ("★★★", 3),
        ("⭐️⭐️⭐️⭐️⭐️", 5),
        ("非常满意", 5),
        ("非常滿意", 5),
        ("满意", 4),
        ("一般", 3),
        ("不满意", 2),
        ("非常不满意", 1),
        ("非常不滿意！", 1),
        ("Very satisfied", 5),
        ("dissatisfied.", 2),
        ("terrible", 1),
    ],
)
def test_scores_in_the_ways_customers_give_them(text: str, score: int) -> None:
    assert parse_rating(text) == score


@pytest.mark.parametrize(
    "text",
    [
        "",
        "0",
        "6",
        "12",
        "10分",
        "DD202405001",
        "5个订单都没到",
        "还是没解决",
        "谢谢",
        "不",
        "五",  # a lone numeral could be anything
        "ok",
        "I am not satisfied with the refund at all and want to talk to someone",
        "★★★★★★",
    ],
)
def test_other_messages_are_not_scores(text: str) -> None:
    assert parse_rating(text) is None


def test_low_scores_are_at_or_below_the_mark() -> None:
    policy = CsatPolicy(low_score=2)
    assert [policy.is_low(n) for n in (1, 2, 3, 4, 5)] == [True, True, False, False, False]
