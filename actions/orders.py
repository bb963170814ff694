"""Order actions: status, and resuming a question once the customer gives the order id."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.deps import latest_text, message_metadata, services
from bot.crm.records import SHOP_TZ, OrderInfo, OrderStatus
from bot.locale import to_simplified

# Which of a customer's orders a question can be about (an identified customer with exactly one such order
# is not asked for its number).
OrderFits = Callable[[OrderInfo], bool]
OPEN = frozenset({OrderStatus.PAID, OrderStatus.SHIPPED, OrderStatus.DELAYED})


def fits_status(statuses: Iterable[OrderStatus]) -> OrderFits:
    """Orders in one of these statuses."""
    wanted = frozenset(statuses)
    return lambda order: order.status in wanted


def normalise_order_id(value: object) -> str:
    """An order id as the CRM writes it: upper case, "DD" put back before the digits alone."""
    text = str(value).strip().upper()
    return f"DD{text}" if text.isdigit() else text


def named_order_id(tracker: Tracker) -> str | None:
    """The order id the latest message names, if any."""
    for value in tracker.get_latest_entity_values("order_id"):
        return normalise_order_id(value)
    return None


def order_id_from(tracker: Tracker) -> str | None:
    """The order id of the latest message, else the one the conversation is about."""
    slot = tracker.get_slot("order_id")
    return named_order_id(tracker) or (normalise_order_id(slot) if slot else None)


def shop_day(moment: dt.datetime | None) -> dt.date | None:
    """The shop's calendar day of a moment (CRM times are UTC: a delivery at 07:30 in Shanghai is the
    previous day in UTC)."""
    return moment.astimezone(SHOP_TZ).date() if moment else None


def order_arguments(order: OrderInfo, locale: str | None) -> dict[str, Any]:
    """Template variables describing an order (the product named in the customer's locale)."""
    delivered = shop_day(order.delivered_at)
    return {
        "order_id": order.id,
        "status": str(order.status),
        "carrier": order.carrier or "",
        "tracking_number": order.tracking_number or "",
        "eta": order.eta.isoformat() if order.eta else "",
        "delivered_at": delivered.isoformat() if delivered else "",
        "product": order.product_name(locale),
        "customer_id": order.customer_id,
    }


def _mentions_product(order: OrderInfo, mentioned: list[str]) -> bool:
    product = order.product
    names = [to_simplified(n).lower() for n in (product.name_zh_cn, product.name_zh_tw, product.name_en)]
    return any(m in name for m in mentioned for name in names)


async def only_fitting_order(tracker: Tracker, fits: OrderFits | None) -> str | None:
    """The id of the identified customer's one order the question fits (and the product named fits), if
    exactly one does; a guest's orders are unknown until they name one."""
    owner = message_metadata(tracker).customer_id
    if fits is None or not owner:
        return None
    candidates = [o for o in await services().shop.orders_for(owner) if fits(o)]
    mentioned = [to_simplified(str(p)).lower() for p in tracker.get_latest_entity_values("product") if str(p).strip()]
    if mentioned:
        candidates = [o for o in candidates if _mentions_product(o, mentioned)]
    return candidates[0].id if len(candidates) == 1 else None


async def lookup_order(
    dispatcher: CollectingDispatcher,
    tracker: Tracker,
    pending: str,
    fits: OrderFits | None = None,
    *,
    order_id: str | None = None,
) -> tuple[OrderInfo | None, list[EventType]]:
    """Find the order the customer means, or say why not; the second item holds slot events.

    `order_id` when the caller resolved it already; else the order named, else the one the conversation
    is about, else the identified customer's only order that `fits` the question; otherwise the customer
    is asked for the number.
    """
    order_id = order_id or order_id_from(tracker) or await only_fitting_order(tracker, fits)
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


async def order_to_mention(
    dispatcher: CollectingDispatcher, tracker: Tracker, pending: str, fits: OrderFits | None = None
) -> tuple[OrderInfo | None, list[EventType]] | None:
    """For an answer that stands without an order (a policy, guidance) and adds an order's details when
    one is known: None to answer without one, else `lookup_order`'s result (no order: it said why).

    None when no order is known, and when the order is only remembered from earlier in the conversation
    (this message names none) by a guest who has not proved to own it here: a general question after an
    order question ("退货政策是什么") gets the general answer, not a request for a second factor.
    """
    order_id = order_id_from(tracker) or await only_fitting_order(tracker, fits)
    if not order_id:
        return None
    if not named_order_id(tracker) and not message_metadata(tracker).customer_id:
        access = services().access
        if access is None or not await access.is_verified(str(tracker.sender_id), order_id):
            return None
    return await lookup_order(dispatcher, tracker, pending, fits, order_id=order_id)


async def _guest_may_see(dispatcher: CollectingDispatcher, tracker: Tracker, order_id: str, pending: str) -> bool:
    """Whether the guest proved to own the order in this conversation; if not, ask (or say it is locked)."""
    access = services().access
    if access is not None:
        # One round trip: verified, locked, or the challenge recorded.
        state = await access.guest_access(str(tracker.sender_id), order_id, pending, latest_text(tracker))
        if state == "verified":
            return True
        if state == "locked":
            minutes = access.policy.lock_minutes
            dispatcher.utter_message(response="utter_verify_locked", order_id=order_id, minutes=minutes)
            return False
    dispatcher.utter_message(response="utter_verify_order", order_id=order_id)
    return False


class ActionOrderStatus(Action):
    """Where is my order: status, carrier, tracking number and ETA from the CRM."""

    def name(self) -> str:
        """Action name in the domain."""
        return "action_order_status"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        """Answer with the order's status, or ask for the order id."""
        order, events = await lookup_order(dispatcher, tracker, self.name(), fits_status(OPEN))
        if order is not None:
            say_status(dispatcher, tracker, order)
        return events


def say_status(dispatcher: CollectingDispatcher, tracker: Tracker, order: OrderInfo) -> None:
    """The order's status, carrier, tracking number and dates."""
    dispatcher.utter_message(response="utter_order_status", **order_arguments(order, message_metadata(tracker).locale))
