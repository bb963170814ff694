"""Order changes: a new delivery address, a cancellation, each only where the status allows it, for the
verified owner (`lookup_order`), and only once the customer confirms it (`bot.access.guard` performs it)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from actions.deps import services
from actions.orders import OPEN, fits_status, lookup_order
from bot.access.state import ADDRESS_CHANGEABLE, CANCELLABLE, OrderAccess, PendingChange
from bot.crm.records import OrderInfo, OrderStatus

IN_TRANSIT = {OrderStatus.SHIPPED, OrderStatus.DELAYED}


def changes() -> OrderAccess:
    """Where a change waits for the customer's confirmation; changes are impossible without it."""
    access = services().access
    if access is None:
        raise RuntimeError("actions.deps.configure() was given no `access`: changes need it to be confirmed")
    return access


class OrderChangeAction(Action, ABC):
    """A change to one order: find the order (asking for its id when missing), then `answer`.

    Abstract, so rasa-sdk's executor does not register it as an action of its own.
    """

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        """Look the order up, then let the subclass decide by its status."""
        # Either change is asked about an order not yet delivered; which one, when there are several, is
        # for the customer to say.
        order, events = await lookup_order(dispatcher, tracker, self.name(), fits_status(OPEN))
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
        if order.status in ADDRESS_CHANGEABLE:
            # The next message is the new address (bot.access.guard collects it and asks to confirm it).
            await changes().propose(str(tracker.sender_id), PendingChange("address", order.id))
            dispatcher.utter_message(response="utter_change_address_ask", **common)
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
        if order.status in CANCELLABLE:
            # Cancelled only once the customer confirms (bot.access.guard), with its refund recorded.
            await changes().propose(str(tracker.sender_id), PendingChange("cancel", order.id))
            dispatcher.utter_message(
                response="utter_confirm_cancel", amount=f"{order.amount:.2f}", currency=order.currency, **common
            )
        elif order.status in IN_TRANSIT:
            dispatcher.utter_message(response="utter_cancel_in_transit", **common)
        elif order.status == OrderStatus.CANCELLED:
            dispatcher.utter_message(response="utter_cancel_already", **common)
        else:
            dispatcher.utter_message(response="utter_cancel_not_possible", **common)
