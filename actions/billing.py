"""Billing actions: invoices and payment problems."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from actions.orders import fits_status, lookup_order, order_to_mention
from bot.crm.records import OrderStatus

INVOICEABLE = {OrderStatus.PAID, OrderStatus.SHIPPED, OrderStatus.DELAYED, OrderStatus.DELIVERED}


class ActionInvoice(Action):
    """Invoices: issued for paid orders, not for cancelled or refunded ones."""

    def name(self) -> str:
        """Action name in the domain."""
        return "action_invoice"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        """Explain how the order's invoice is issued, or why there is none."""
        order, events = await lookup_order(dispatcher, tracker, self.name(), fits_status(INVOICEABLE))
        if order is None:
            return events
        dispatcher.utter_message(
            response="utter_invoice" if order.status in INVOICEABLE else "utter_invoice_not_available",
            order_id=order.id,
            status=str(order.status),
            amount=f"{order.amount:.2f}",
            currency=order.currency,
            customer_id=order.customer_id,
        )
        return events


class ActionPaymentIssue(Action):
    """Payment problems: the steps to try; with an order id, whether the payment went through."""

    def name(self) -> str:
        """Action name in the domain."""
        return "action_payment_issue"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        """Guidance, and the order's payment state when the customer named one."""
        arguments: dict[str, Any] = {"order_id": "", "paid": False}
        events: list[EventType] = []
        found = await order_to_mention(dispatcher, tracker, self.name())
        if found is not None:
            order, events = found
            if order is None:
                return events
            arguments = {"order_id": order.id, "paid": order.paid_at is not None, "customer_id": order.customer_id}
        dispatcher.utter_message(response="utter_payment_issue", **arguments)
        return events
