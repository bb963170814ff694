"""The handoff decision, in one place: pure functions over the conversation's user turns.

Kept free of Rasa imports so it can be unit-tested and reasoned about on its own; the policy in
`ar_engine.policy` feeds it from the tracker.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

COMPLAINTS = frozenset({"complaint_product", "complaint_service", "complaint_delivery"})
# A follow-up: the customer says the answer did not help, or the bot did not understand.
FOLLOWUP_INTENTS = frozenset({"followup_unresolved", "nlu_fallback"})
# Confirming the answer helped ends a run of follow-ups.
RESOLVING_INTENTS = frozenset({"affirm", "thank", "goodbye"})
# Turns that neither continue nor end a run (giving the order id that was asked for, small talk).
NEUTRAL_INTENTS = frozenset({"inform", "greet", "deny", "bot_challenge"})

SKILL_OF_INTENT = {
    "order_status": "logistics",
    "change_address": "logistics",
    "cancel_order": "logistics",
    "return_exchange": "after_sales",
    "warranty": "after_sales",
    "repair": "after_sales",
    "refund_status": "billing",
    "invoice": "billing",
    "payment_issue": "billing",
    "complaint_product": "complaints",
    "complaint_service": "complaints",
    "complaint_delivery": "complaints",
    "product_inquiry": "general",
}

# Priority: higher is more urgent; 9 is the top of the queue.
BASE_PRIORITY = {"requested": 1, "followups": 2, "sentiment": 3, "vip_complaint": 9}
VIP_BONUS = 2
MAX_PRIORITY = 9


@dataclass(frozen=True)
class Thresholds:
    """Configuration of the decision (from config.yml, overridden by AUTORESPONDER_* variables)."""

    followup_limit: int = 3
    sentiment_threshold: float = 0.5


# Words that ask for a person whatever else the message says (simplified script, lower case). An angry
# "垃圾机器人，气死我了，马上给我转人工" may be classified as a complaint; the request is explicit all the same.
HUMAN_REQUEST_WORDS = (
    "转人工", "人工客服", "真人客服", "找人工", "要人工", "接人工", "转接人工",
    "human agent", "real person", "talk to a human", "speak to a human", "live agent", "talk to a person",
    "speak to a person", "talk to someone", "speak to someone",
)  # fmt: skip


def asks_for_human(text: str) -> bool:
    """Whether a message (folded to simplified script) explicitly asks for a person."""
    folded = text.lower()
    return any(word in folded for word in HUMAN_REQUEST_WORDS)


@dataclass(frozen=True)
class Turn:
    """One customer message as the decision sees it."""

    intent: str
    sentiment: float = 0.0
    # The message asks for a person in so many words, whatever intent it was classified as.
    asks_human: bool = False


@dataclass(frozen=True)
class Decision:
    """Hand off: why, to whom, how urgently."""

    reason: str
    skill: str
    priority: int


def consecutive_followups(turns: Sequence[Turn]) -> int:
    """Follow-ups at the end of the conversation: "still not solved", fallbacks, the same question again.

    The run ends at a new topic or when the customer confirms the answer helped; the first asking
    of the question being followed up is the question itself, not a follow-up.
    """
    run: list[str] = []
    topic: str | None = None
    for turn in reversed(turns):
        intent = turn.intent
        if intent in RESOLVING_INTENTS:
            break
        if intent in FOLLOWUP_INTENTS or intent in NEUTRAL_INTENTS:
            run.append(intent)
        elif topic is None or intent == topic:
            topic = intent
            run.append(intent)
        else:
            break
    run.reverse()
    if topic is not None:
        # Only what came after the question was first asked follows it up.
        run = run[run.index(topic) + 1 :]
    return sum(1 for intent in run if intent in FOLLOWUP_INTENTS or intent == topic)


def topic_skill(turns: Sequence[Turn]) -> str:
    """The skill of the latest message that names a topic."""
    for turn in reversed(turns):
        if turn.intent in SKILL_OF_INTENT:
            return SKILL_OF_INTENT[turn.intent]
    return "general"


def _priority(reason: str, vip: bool, complaint: bool, angry: bool) -> int:
    if reason == "vip_complaint":
        return MAX_PRIORITY
    # An angry customer is as urgent whatever the reason recorded (an angry request for a human included).
    base = max(BASE_PRIORITY[reason], BASE_PRIORITY["sentiment"] if angry else 0)
    return min(MAX_PRIORITY - 1, base + (VIP_BONUS if vip else 0) + (1 if complaint else 0))


def decide(turns: Sequence[Turn], vip: bool, thresholds: Thresholds) -> Decision | None:
    """Whether the latest message hands the conversation to a human, and how."""
    if not turns:
        return None
    latest = turns[-1]
    complaint = latest.intent in COMPLAINTS
    angry = latest.sentiment >= thresholds.sentiment_threshold
    reason: str | None = None
    # Most specific first: a VIP complaint, then the explicit request (an angry customer who asks for a
    # human asked for one: the anger raises the priority, not the reason), then anger, then repeated
    # follow-ups.
    if vip and complaint:
        reason = "vip_complaint"
    elif latest.intent == "request_human" or latest.asks_human:
        reason = "requested"
    elif angry:
        reason = "sentiment"
    elif (latest.intent in FOLLOWUP_INTENTS or latest.intent in SKILL_OF_INTENT) and consecutive_followups(
        turns
    ) >= thresholds.followup_limit:
        reason = "followups"
    if reason is None:
        return None
    return Decision(reason=reason, skill=topic_skill(turns), priority=_priority(reason, vip, complaint, angry))


def as_tuple(decision: Decision) -> tuple[str, str, int]:
    """The decision as (reason, skill, priority)."""
    return decision.reason, decision.skill, decision.priority
