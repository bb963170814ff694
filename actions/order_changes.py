"""Order changes: a new delivery address, a cancellation, each only where the status allows it."""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from actions.deps import latest_text, message_metadata, services
from actions.orders import lookup_order
from bot.crm.records import OrderInfo, OrderStatus

IN_TRANSIT = {OrderStatus.SHIPPED, OrderStatus.DELAYED}


class OrderChangeAction(Action, ABC):
    """A change to one order: find the order (asking for its id when missing), then `answer`.

    Abstract, so rasa-sdk's executor does not register it as an action of its own.
    """

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        """Look the order up, then let the subclass decide by its status."""
        order, events = await lookup_order(dispatcher, tracker, self.name())
        if order is not None:
            common = {"order_id": order.id, "status": str(order.status), "customer_id": order.customer_id}
            await self.answer(dispatcher, tracker, order, common)
        return events

    @abstractmethod
    async def answer(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, order: OrderInfo, common: dict[str, Any]
    ) -> None:
        """Reply for this order; `common` holds the template variables every answer uses."""


class ActionChangeAddress(OrderChangeAction):
    """Change the delivery address: possible before shipping (a ticket records the request)."""

    def name(self) -> str:
        """Action name in the domain."""
        return "action_change_address"

    async def answer(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, order: OrderInfo, common: dict[str, Any]
    ) -> None:
        """Accept the change for paid orders, point to the carrier in transit, refuse afterwards."""
        if order.status == OrderStatus.PAID:
            customer = message_metadata(tracker).get("customer_id") or order.customer_id
            ticket = await asyncio.to_thread(
                services().crm.create_ticket, customer, order.id, "address_change", latest_text(tracker)[:2000]
            )
            dispatcher.utter_message(response="utter_change_address_ok", ticket=ticket, **common)
        elif order.status in IN_TRANSIT:
            dispatcher.utter_message(
                response="utter_change_address_in_transit",
                carrier=order.carrier or "",
                tracking_number=order.tracking_number or "",
                **common,
            )
        else:
            dispatcher.utter_message(response="utter_change_address_not_possible", **common)


class ActionCancelOrder(OrderChangeAction):
    """Cancel an order: done at once before shipping; otherwise explain the alternatives."""

    def name(self) -> str:
        """Action name in the domain."""
        return "action_cancel_order"

    async def answer(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, order: OrderInfo, common: dict[str, Any]
    ) -> None:
        """Cancel paid orders; refuse politely for the other statuses."""
        if order.status == OrderStatus.PAID:
            cancelled = await asyncio.to_thread(services().crm.cancel_order, order.id, "customer request")
            dispatcher.utter_message(
                response="utter_cancel_done", amount=f"{cancelled.amount:.2f}", currency=cancelled.currency, **common
            )
        elif order.status in IN_TRANSIT:
            dispatcher.utter_message(response="utter_cancel_in_transit", **common)
        elif order.status == OrderStatus.CANCELLED:
            dispatcher.utter_message(response="utter_cancel_already", **common)
        else:
            dispatcher.utter_message(response="utter_cancel_not_possible", **common)
