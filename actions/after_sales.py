"""After-sales actions: refunds, warranty, repairs, returns and exchanges."""

from __future__ import annotations

import datetime as dt
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from actions.deps import latest_text, message_locale, services
from actions.order_changes import changes
from actions.orders import fits_status, lookup_order, order_to_mention, shop_day
from bot.access.state import REPAIRABLE, PendingChange
from bot.crm.records import OrderStatus

RETURN_DAYS = 7  # no-reason returns after delivery
EXCHANGE_DAYS = 15  # exchanges for a quality problem after delivery
# The orders a return, warranty or repair question can be about: the ones the customer received.
RECEIVED = fits_status({OrderStatus.DELIVERED})


class ActionRefundStatus(Action):
    """Where is my refund: from the order's refund record."""

    def name(self) -> str:
        """Action name in the domain."""
        return "action_refund_status"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        """Answer with the refund's state, or say there is no refund on the order."""
        order, events = await lookup_order(dispatcher, tracker, self.name(), lambda o: o.refund_status is not None)
        if order is None:
            return events
        if order.refund_status is None:
            dispatcher.utter_message(
                response="utter_refund_none", order_id=order.id, status=str(order.status), customer_id=order.customer_id
            )
            return events
        dispatcher.utter_message(
            response="utter_refund_status",
            order_id=order.id,
            refund_status=str(order.refund_status),
            refund_amount=f"{order.refund_amount or order.amount:.2f}",
            currency=order.currency,
            refunded_at=refunded.isoformat() if (refunded := shop_day(order.refunded_at)) else "",
            customer_id=order.customer_id,
        )
        return events


class ActionWarranty(Action):
    """Is it under warranty: the end date from the purchase date and the product's warranty."""

    def name(self) -> str:
        """Action name in the domain."""
        return "action_warranty"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        """Answer with purchase date, warranty length and end date, and whether it still covers today."""
        order, events = await lookup_order(dispatcher, tracker, self.name(), RECEIVED)
        if order is None:
            return events
        today = services().today()
        dispatcher.utter_message(
            response="utter_warranty",
            order_id=order.id,
            product=order.product_name(message_locale(tracker)),
            purchase_date=order.purchase_date.isoformat(),
            warranty_months=order.warranty_months,
            warranty_until=order.warranty_until.isoformat(),
            in_warranty=order.in_warranty(today),
            customer_id=order.customer_id,
        )
        return events


class ActionRepair(Action):
    """A repair request for a delivered order: opens a service ticket once the customer confirms it."""

    def name(self) -> str:
        """Action name in the domain."""
        return "action_repair"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        """Create the ticket and tell the customer its number and what happens next."""
        order, events = await lookup_order(dispatcher, tracker, self.name(), fits_status(REPAIRABLE))
        if order is None:
            return events
        if order.status not in REPAIRABLE:
            dispatcher.utter_message(
                response="utter_repair_not_possible", order_id=order.id, status=str(order.status),
                customer_id=order.customer_id,
            )  # fmt: skip
            return events
        # The ticket is opened once the customer confirms (bot.access.guard).
        await changes().propose(str(tracker.sender_id), PendingChange("repair", order.id, latest_text(tracker)))
        dispatcher.utter_message(
            response="utter_confirm_repair",
            order_id=order.id,
            product=order.product_name(message_locale(tracker)),
            in_warranty=order.in_warranty(services().today()),
            warranty_until=order.warranty_until.isoformat(),
            customer_id=order.customer_id,
        )
        return events


class ActionReturnExchange(Action):
    """Returns and exchanges: the policy, and the order's own deadline when it is known."""

    def name(self) -> str:
        """Action name in the domain."""
        return "action_return_exchange"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        """The policy; with an order id, the deadlines that apply to it."""
        arguments: dict[str, Any] = {"return_days": RETURN_DAYS, "exchange_days": EXCHANGE_DAYS, "order_id": ""}
        events: list[EventType] = []
        found = await order_to_mention(dispatcher, tracker, self.name(), RECEIVED)
        if found is not None:
            order, events = found
            if order is None:
                return events
            delivered = shop_day(order.delivered_at)
            arguments.update(
                order_id=order.id,
                status=str(order.status),
                delivered_at=delivered.isoformat() if delivered else "",
                return_until=(delivered + dt.timedelta(days=RETURN_DAYS)).isoformat() if delivered else "",
                exchange_until=(delivered + dt.timedelta(days=EXCHANGE_DAYS)).isoformat() if delivered else "",
                customer_id=order.customer_id,
            )
        dispatcher.utter_message(response="utter_return_exchange", **arguments)
        return events
