"""The handoff decision: when to step aside, and what the agent needs to know."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.deps import latest_intent, message_metadata

# Which agents' queue an intent belongs to.
SKILL_OF_INTENT = {
    "order_status": "logistics",
    "change_address": "logistics",
    "cancel_order": "logistics",
    "complaint_delivery": "complaints",
    "return_exchange": "after_sales",
    "warranty": "after_sales",
    "repair": "after_sales",
    "refund_status": "billing",
    "invoice": "billing",
    "payment_issue": "billing",
    "complaint_product": "complaints",
    "complaint_service": "complaints",
    "product_inquiry": "general",
}
# Intents that say nothing about the topic, skipped when looking for the skill.
_NEUTRAL = {"request_human", "followup_unresolved", "inform", "affirm", "deny", "greet", "thank", "nlu_fallback"}


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


def topic_skill(intents: list[str]) -> str:
    """The skill of the latest intent that names a topic."""
    for intent in reversed(intents):
        if intent not in _NEUTRAL and intent in SKILL_OF_INTENT:
            return SKILL_OF_INTENT[intent]
    return "general"


def summarise(tracker: Tracker, reason: str) -> str:
    """One paragraph for the agent: why, what the customer asked, which order, what the bot said."""
    intents = [i for i in user_intents(tracker) if i]
    order_id = tracker.get_slot("order_id")
    said = " | ".join(t.replace("\n", " ")[:160] for t in bot_texts(tracker))
    parts = [f"Handoff reason: {reason}.", f"Customer intents: {', '.join(intents) or 'none'}."]
    if order_id:
        parts.append(f"Order: {order_id}.")
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
        reason = "requested" if latest_intent(tracker) == "request_human" else "followups"
        vip = bool(message_metadata(tracker).get("vip"))
        priority = 1 + (2 if vip else 0)
        handoff = {
            "reason": reason,
            "skill": topic_skill(user_intents(tracker)),
            "priority": priority,
            "summary": summarise(tracker, reason),
        }
        dispatcher.utter_message(response="utter_handoff", json_message={"handoff": handoff})
        return [SlotSet("handoff_reason", reason)]
