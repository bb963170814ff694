"""Customer satisfaction: the survey after an agent hands back, and reading the customer's score.

When an agent hands a conversation back, the customer is asked to rate the service from 1 to 5
(buttons in the web chat and Telegram, "reply with a number" by email). The next message is read as
a score when it is one: a digit (also full-width, "5分", "5/5", "5 stars"), a Chinese numeral with
分 or 星, a row of stars, or a satisfaction word (非常满意, 不满意, very satisfied …). Anything
else is an ordinary message for the assistant, and the survey is dropped without a second asking.
A score at or below the low mark (2 by default; the seeds' "低于3分") returns the conversation to the
complaints queue for a supervisor's follow-up ("二次挽回工单").
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

SCALE = (1, 2, 3, 4, 5)

_CHINESE_DIGITS = {"一": 1, "二": 2, "两": 2, "兩": 2, "三": 3, "四": 4, "五": 5}
# Longest first, so that 非常不满意 is not read as 满意.
_WORDS = sorted(
    {
        "非常满意": 5,
        "非常滿意": 5,
        "很满意": 5,
        "很滿意": 5,
        "超满意": 5,
        "超滿意": 5,
        "满意": 4,
        "滿意": 4,
        "还可以": 3,
        "還可以": 3,
        "一般": 3,
        "不满意": 2,
        "不滿意": 2,
        "很不满意": 1,
        "很不滿意": 1,
        "非常不满意": 1,
        "非常不滿意": 1,
        "very satisfied": 5,
        "extremely satisfied": 5,
        "excellent": 5,
        "satisfied": 4,
        "good": 4,
        "neutral": 3,
        "dissatisfied": 2,
        "unsatisfied": 2,
        "poor": 2,
        "bad": 2,
        "very dissatisfied": 1,
        "very unsatisfied": 1,
        "terrible": 1,
        "awful": 1,
    }.items(),
    key=lambda item: -len(item[0]),
)
_DIGIT = re.compile(r"^([1-5])\s*(?:分|星|颗星|顆星|stars?|points?|/\s*5|out of 5)?$")
_CHINESE = re.compile(r"^([一二两兩三四五])\s*(?:分|星|颗星|顆星)$")
_STARS = re.compile(r"^[★⭐]{1,5}$")
_TRAILING = re.compile(r"[\s。.!！~～、,，]+$")


def parse_rating(text: str) -> int | None:
    """The 1-5 score a message gives, or None when it is not a rating."""
    clean = _TRAILING.sub("", unicodedata.normalize("NFKC", text).strip().lower())
    clean = clean.replace("\ufe0f", "")  # emoji variation selector after ⭐
    if not clean or len(clean) > 24:
        return None
    if m := _DIGIT.match(clean):
        return int(m.group(1))
    if m := _CHINESE.match(clean):
        return _CHINESE_DIGITS[m.group(1)]
    if _STARS.match(clean):
        return len(clean)
    for word, score in _WORDS:
        if clean == word:
            return score
    return None


@dataclass(frozen=True)
class CsatPolicy:
    """Whether to ask, which scores call for a supervisor, and how long an answer counts."""

    enabled: bool = True
    low_score: int = 2
    window_seconds: float = 24 * 3600

    def is_low(self, score: int) -> bool:
        """A score that returns the conversation to a supervisor."""
        return score <= self.low_score
