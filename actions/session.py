"""action_session_start: carry the customer's identity from the app's metadata into slots."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActionExecuted, EventType, SessionStarted, SlotSet
from rasa_sdk.executor import CollectingDispatcher


class ActionSessionStart(Action):
    """Start a session with customer_id and customer_vip set from the first message's metadata."""

    def name(self) -> str:
        """Rasa's session start action, overridden."""
        return "action_session_start"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        """Session start, carried-over slots, identity slots, then listen."""
        events: list[EventType] = [SessionStarted()]
        carried = {"order_id", "customer_id", "customer_vip"}
        events += [
            SlotSet(name, value) for name, value in tracker.slots.items() if name in carried and value is not None
        ]
        metadata = tracker.get_slot("session_started_metadata") or {}
        if isinstance(metadata, dict):
            if metadata.get("customer_id"):
                events.append(SlotSet("customer_id", str(metadata["customer_id"])))
            events.append(SlotSet("customer_vip", bool(metadata.get("vip"))))
        events.append(ActionExecuted("action_listen"))
        return events
