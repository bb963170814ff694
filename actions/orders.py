"""Order actions: status, and resuming a question once the customer gives the order id."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.deps import latest_text, message_metadata, services
from bot.crm.records import OrderInfo


def order_id_from(tracker: Tracker) -> str | None:
    """The order id of the latest message, else the one the conversation is about."""
    for value in tracker.get_latest_entity_values("order_id"):
        return str(value).strip().upper()
    slot = tracker.get_slot("order_id")
    return str(slot).strip().upper() if slot else None


def order_arguments(order: OrderInfo, locale: str | None) -> dict[str, Any]:
    """Template variables describing an order (the product named in the customer's locale)."""
    return {
        "order_id": order.id,
        "status": str(order.status),
        "carrier": order.carrier or "",
        "tracking_number": order.tracking_number or "",
        "eta": order.eta.isoformat() if order.eta else "",
        "product": order.product_name(locale),
        "customer_id": order.customer_id,
    }


async def lookup_order(
    dispatcher: CollectingDispatcher, tracker: Tracker, pending: str
) -> tuple[OrderInfo | None, list[EventType]]:
    """Find the order the customer means, or say why not; the second item holds slot events."""
    order_id = order_id_from(tracker)
    if not order_id:
        dispatcher.utter_message(response="utter_ask_order_id")
        return None, [SlotSet("pending_action", pending)]
    order = await services().shop.order(order_id)
    if order is None:
        dispatcher.utter_message(response="utter_order_not_found", order_id=order_id)
        return None, [SlotSet("order_id", None), SlotSet("pending_action", pending)]
    owner = message_metadata(tracker).customer_id
    if owner and order.customer_id != owner:
        # An identified customer asking about someone else's order learns nothing about it.
        dispatcher.utter_message(response="utter_order_not_yours", order_id=order_id)
        return None, [SlotSet("order_id", None), SlotSet("pending_action", None)]
    if not owner and not await _guest_may_see(dispatcher, tracker, order.id, pending):
        # The order number alone proves nothing: the guest is asked for a second factor (bot.access.guard
        # reads the answer and, when it is right, sends this question to the engine again).
        return None, [SlotSet("order_id", order.id), SlotSet("pending_action", pending)]
    return order, [SlotSet("order_id", order.id), SlotSet("pending_action", None)]


async def _guest_may_see(dispatcher: CollectingDispatcher, tracker: Tracker, order_id: str, pending: str) -> bool:
    """Whether the guest proved to own the order in this conversation; if not, ask (or say it is locked)."""
    access = services().access
    conv_id = str(tracker.sender_id)
    if access is not None and await access.is_verified(conv_id, order_id):
        return True
    if access is not None and await access.is_locked(conv_id, order_id):
        minutes = access.policy.lock_minutes
        dispatcher.utter_message(response="utter_verify_locked", order_id=order_id, minutes=minutes)
        return False
    if access is not None:
        await access.ask(conv_id, order_id, pending, latest_text(tracker))
    dispatcher.utter_message(response="utter_verify_order", order_id=order_id)
    return False


class ActionOrderStatus(Action):
    """Where is my order: status, carrier, tracking number and ETA from the CRM."""

    def name(self) -> str:
        """Action name in the domain."""
        return "action_order_status"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        """Answer with the order's status, or ask for the order id."""
        order, events = await lookup_order(dispatcher, tracker, self.name())
        if order is not None:
            locale = message_metadata(tracker).locale
            dispatcher.utter_message(response="utter_order_status", **order_arguments(order, locale))
        return events
