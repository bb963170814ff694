"""Complaints and follow-ups: apologise first; when they name an order, answer with that order's status.

"DD202405012 怎么还没到，太慢了" is a delivery complaint and a status question at once: the customer gets
the apology and where the order is (late, with its tracking number), not a request for the number
they just gave.
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from actions.deps import latest_intent
from actions.order_changes import IN_TRANSIT
from actions.orders import fits_status, lookup_order, named_order_id, only_fitting_order, say_status


async def apologise_then_status(
    dispatcher: CollectingDispatcher, tracker: Tracker, apology: str, pending: str, order_id: str | None
) -> list[EventType]:
    """The apology (naming the order when there is one), then that order's status."""
    dispatcher.utter_message(response=apology, order_id=order_id or "")
    if not order_id:
        return []
    order, events = await lookup_order(dispatcher, tracker, pending)
    if order is not None:
        say_status(dispatcher, tracker, order)
    return events


class ActionComplaint(Action):
    """A complaint: the apology, and the status of the order it names (or of the identified customer's
    only order in transit, for a delivery complaint)."""

    def name(self) -> str:
        """Action name in the domain."""
        return "action_complaint"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        """Apologise; answer with the order's status when the complaint is about a known order."""
        order_id = named_order_id(tracker)
        if order_id is None and latest_intent(tracker) == "complaint_delivery":
            order_id = await only_fitting_order(tracker, fits_status(IN_TRANSIT))
        return await apologise_then_status(dispatcher, tracker, "utter_complaint", self.name(), order_id)


class ActionFollowup(Action):
    """ "Still not solved": the apology, and the status of the order the message names, if it names one."""

    def name(self) -> str:
        """Action name in the domain."""
        return "action_followup"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        """Apologise and ask for details, or answer with the named order's status."""
        return await apologise_then_status(dispatcher, tracker, "utter_followup", self.name(), named_order_id(tracker))
