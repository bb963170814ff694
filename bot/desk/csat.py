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
import time
import unicodedata
from dataclasses import dataclass

from bot import keys
from bot.conversations.model import MAX_PRIORITY, Handoff, Skill
from bot.conversations.ports import Interception, Turn
from bot.conversations.store import ConversationStore
from bot.templates import TemplateRegistry

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


class SurveyInterceptor:
    """Reads the answer to an open survey before the engine sees it (a router interceptor).

    The survey is asked once: whatever the customer writes next closes it, a score or not; only a
    score is taken out of the engine's way.
    """

    def __init__(self, store: ConversationStore, templates: TemplateRegistry, policy: CsatPolicy) -> None:
        self.store = store
        self.templates = templates
        self.policy = policy

    async def intercept(self, turn: Turn) -> Interception | None:
        """Thank for (and record) a score; a low one goes to a supervisor in the complaints queue."""
        conv = turn.conversation
        if conv.survey is None:
            return None
        survey = conv.survey
        conv.survey = None
        await self.store.update(conv, "survey")
        score = parse_rating(turn.message.text)
        asked_at = float(survey.get("asked_at") or 0)
        if score is None or time.time() - asked_at > self.policy.window_seconds:
            return None
        low = self.policy.is_low(score)
        await self.store.record_event(
            keys.stats_csat(),
            {
                "event": "score",
                "score": score,
                "conversation_id": conv.id,
                "agent": survey.get("agent", ""),
                "channel": conv.channel,
                "skill": survey.get("skill", ""),
                "low": int(low),
            },
        )
        locale = conv.locale or "zh-CN"
        customer = turn.customer
        name = customer.masked_name(locale) if customer is not None else ""
        rendered = self.templates.render(
            "utter_csat_low" if low else "utter_csat_thanks", conv.channel, locale, {"name": name, "score": score}
        )
        if not low:
            return Interception(replies=[rendered])
        summary = (
            f"Satisfaction follow-up: the customer rated {score}/5 the help {survey.get('agent') or 'an agent'} "
            f"gave after a '{survey.get('reason', '')}' handoff ({survey.get('skill', '')}). "
            "A supervisor should review the transcript and contact the customer."
        )
        if customer is not None and customer.vip:
            summary += " VIP customer."
        handoff = Handoff(reason="low_csat", skill=Skill.COMPLAINTS, priority=MAX_PRIORITY - 1, summary=summary)
        return Interception(replies=[rendered], handoff=handoff)
