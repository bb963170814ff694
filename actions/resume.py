"""action_inform: the customer gave the data a question waited for (an order id); resume that question.

It knows every action that can wait for an order id, so it lives apart from them (they import
`actions.orders` for the lookup; nothing imports this module).
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from actions.after_sales import ActionRefundStatus, ActionRepair, ActionReturnExchange, ActionWarranty
from actions.billing import ActionInvoice, ActionPaymentIssue
from actions.complaints import ActionComplaint, ActionFollowup
from actions.order_changes import ActionCancelOrder, ActionChangeAddress
from actions.orders import ActionOrderStatus

WAITING_FOR_ORDER: dict[str, type[Action]] = {
    cls().name(): cls
    for cls in (
        ActionOrderStatus, ActionRefundStatus, ActionWarranty, ActionRepair, ActionReturnExchange,
        ActionChangeAddress, ActionCancelOrder, ActionInvoice, ActionPaymentIssue, ActionComplaint, ActionFollowup,
    )
}  # fmt: skip


class ActionInform(Action):
    """The customer gave data (an order id): resume the question that was waiting for it."""

    def name(self) -> str:
        """Action name in the domain."""
        return "action_inform"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        """Run the pending action, or treat an order id on its own as an order-status question."""
        pending = tracker.get_slot("pending_action") or "action_order_status"
        action = WAITING_FOR_ORDER.get(str(pending), ActionOrderStatus)()
        events: list[EventType] = await action.run(dispatcher, tracker, domain)
        return events
