"""action_handoff: phrase the handoff the engine's HandoffPolicy decided, with a summary for the agent.

The decision itself (reason, skill, priority) is made in one place, `ar_engine.policy.HandoffPolicy`,
which passes it here in the handoff_* slots.
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from actions.deps import latest_intent, message_metadata, services
from bot.engine.contract import HandoffRequest


def user_intents(tracker: Tracker) -> list[str]:
    """The customer's intents in this conversation, oldest first."""
    return [
        str((e.get("parse_data") or {}).get("intent", {}).get("name") or "")
        for e in tracker.events
        if e.get("event") == "user"
    ]


def bot_texts(tracker: Tracker, last: int = 3) -> list[str]:
    """The bot's latest replies."""
    texts = [str(e.get("text")) for e in tracker.events if e.get("event") == "bot" and e.get("text")]
    return texts[-last:]


def summarise(tracker: Tracker, reason: str) -> str:
    """One paragraph for the agent: why, what the customer asked, which order, what the bot said, mood."""
    intents = [i for i in user_intents(tracker) if i]
    order_id = tracker.get_slot("order_id")
    said = " | ".join(t.replace("\n", " ")[:160] for t in bot_texts(tracker))
    sentiment = (tracker.latest_message.get("sentiment") or {}).get("score")
    parts = [f"Handoff reason: {reason}.", f"Customer intents: {', '.join(intents) or 'none'}."]
    if order_id:
        parts.append(f"Order: {order_id}.")
    if message_metadata(tracker).vip:
        parts.append("VIP customer.")
    if sentiment is not None:
        parts.append(f"Latest message anger score: {float(sentiment):.2f}.")
    last_text = str(tracker.latest_message.get("text") or "")
    parts.append(f"Last message: {last_text[:200]!r}.")
    if said:
        parts.append(f"Bot already said: {said}")
    return " ".join(parts)


class ActionHandoff(Action):
    """Hand the conversation to a human: acknowledge, and tell the app where to queue it."""

    def name(self) -> str:
        """Action name in the domain."""
        return "action_handoff"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        """Emit the handoff acknowledgement with reason, skill, priority and summary."""
        fallback = "requested" if latest_intent(tracker) == "request_human" else "followups"
        reason = str(tracker.get_slot("handoff_reason") or fallback)
        # Whoever is angry, kept waiting or let down hears an apology before anything else; a calm request
        # for a human is simply granted.
        score = (tracker.latest_message.get("sentiment") or {}).get("score")
        angry = score is not None and float(score) >= services().sentiment_threshold
        apologise = angry or reason != "requested"
        handoff = HandoffRequest(
            reason=reason,
            skill=str(tracker.get_slot("handoff_skill") or "general"),
            priority=int(float(tracker.get_slot("handoff_priority") or 1)),
            summary=summarise(tracker, reason),
        )
        dispatcher.utter_message(response="utter_handoff", json_message=handoff.to_custom(), apologise=apologise)
        return []
