"""The guard interceptor: reads a guest's answer to a second-factor challenge, the new address of an
address change, and the confirmation of a change, before the engine sees the message.

A right factor marks the order verified for the conversation and sends the guest's original question to
the engine again, so that it is answered; a wrong one says how many tries are left, and the last one
locks the order for the conversation (a note tells agents). A message that is clearly not an answer (a
new question) drops the challenge and goes to the engine. A waiting change is performed only on an
explicit confirmation (a button, or a reply starting with 确认 / 確認 / yes); anything else keeps the order
as it was. Every change and lock is written to the conversation's notes for agents.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from typing import Any

from bot.access.factor import KEEP_PAYLOAD, Factor, check_factor, is_confirmation, parse_factor
from bot.access.state import ADDRESS_CHANGEABLE, CANCELLABLE, Challenge, OrderAccess, PendingChange
from bot.conversations.ports import Interception, Turn
from bot.conversations.store import ConversationStore
from bot.crm.directory import AsyncCRM
from bot.crm.records import SHOP_TZ, OrderInfo, OrderStatusError
from bot.templates import Rendered, TemplateRegistry

log = logging.getLogger(__name__)

# Who the notes written here are by, in the agent console.
NOTE_AUTHOR = "assistant"
MAX_ADDRESS_CHARS = 200
# A reply to "confirm?" longer than this is read as a new question (answered after "nothing changed").
MAX_SHORT_REPLY_CHARS = 12
# How a customer asked for a new address says they no longer want the change.
_CHANGED_MIND = ("算了", "不用", "不改", "不要", "取消", "no", "cancel", "never mind", "forget it")
_ORDER_ID = re.compile(r"DD\s*\d{3,}", re.IGNORECASE)


class GuardInterceptor:
    """Second factors, new addresses and confirmations (a router interceptor)."""

    def __init__(
        self, access: OrderAccess, crm: AsyncCRM, store: ConversationStore, templates: TemplateRegistry
    ) -> None:
        self.access = access
        self.crm = crm
        self.store = store
        self.templates = templates

    async def intercept(self, turn: Turn) -> Interception | None:
        """Answer what waits for this message, or None to let the engine answer it."""
        if turn.access_waits is False:
            return None  # nothing was asked of this conversation (its marker, read with the lease)
        factor = parse_factor(turn.message.text)
        # A message that names no factor cannot answer a challenge: the read drops an open one at once.
        change, challenge = await self.access.waiting(turn.conversation.id, drop_challenge=factor is None)
        if change is not None:
            return await self._change(turn, change)
        if challenge is not None and factor is not None:
            return await self._challenge(turn, challenge, factor)
        return None

    def _render(self, turn: Turn, template: str, variables: dict[str, Any]) -> Rendered:
        conv = turn.conversation
        return self.templates.render(template, conv.channel, conv.locale or "zh-CN", {"name": "", **variables})

    # --- the second factor ---

    async def _challenge(self, turn: Turn, challenge: Challenge, factor: Factor) -> Interception | None:
        conv_id = turn.conversation.id
        order = await self.crm.order(challenge.order_id)
        owner = await self.crm.get(order.customer_id) if order is not None else None
        if order is None or owner is None:
            await self.access.drop_challenge(conv_id)
            return None
        minutes = self.access.policy.lock_minutes

        def locked() -> Interception:
            return Interception(
                replies=[self._render(turn, "utter_verify_locked", {"order_id": order.id, "minutes": minutes})]
            )

        if check_factor(factor, owner):
            if not await self.access.verify(conv_id, order.id):
                return locked()  # wrong ones read beside it locked the order first
            await self.store.add_note(
                conv_id, NOTE_AUTHOR, f"The guest proved to own order {order.id} (second factor: {factor.kind})."
            )
            return Interception(engine_text=challenge.question or order.id)
        failure = await self.access.fail(conv_id, order.id)
        if failure.left > 0:
            return Interception(
                replies=[
                    self._render(turn, "utter_verify_failed", {"order_id": order.id, "attempts_left": failure.left})
                ]
            )
        policy = self.access.policy
        if failure.locked_for_everyone:
            note = (
                f"Order {order.id} locked for every guest for {minutes} minutes after {policy.order_max_failures} "
                "wrong second factors across conversations (someone may be guessing; its signed-in owner is not "
                "affected)."
            )
            log.warning("order %s locked for every guest after %d wrong factors", order.id, policy.order_max_failures)
        else:
            note = (
                f"Order {order.id} locked for this conversation for {minutes} minutes after "
                f"{policy.max_failures} wrong second factors (the guest could not prove it is theirs)."
            )
        await self.store.add_note(conv_id, NOTE_AUTHOR, note)
        return locked()

    # --- changes ---

    async def _change(self, turn: Turn, change: PendingChange) -> Interception | None:
        conv_id = turn.conversation.id
        text = turn.message.text.strip()
        if change.kind == "address":
            return await self._new_address(turn, change, text)
        taken = await self.access.take_pending(conv_id)
        if taken is None:  # confirmed twice at once: the other message performs it
            return Interception()
        if not is_confirmation(text):
            await self.store.add_note(
                conv_id,
                NOTE_AUTHOR,
                f"The customer did not confirm the {change.kind} of order {change.order_id}; nothing was changed.",
            )
            kept = self._render(turn, "utter_change_kept", {"order_id": change.order_id})
            if _ORDER_ID.search(text) or len(text) > MAX_SHORT_REPLY_CHARS:
                # A new question rather than a reply: the order is kept, and the question is answered too.
                return Interception(replies=[kept], engine_text=turn.message.text)
            return Interception(replies=[kept])
        order = await self.crm.order(change.order_id)
        if order is None:
            return None
        try:
            if change.kind == "cancel":
                return await self._cancel(turn, order)
            if change.kind == "address_confirm":
                return await self._store_address(turn, order, change.detail)
            if change.kind == "repair":
                return await self._repair(turn, order, change.detail)
        except OrderStatusError:
            # The status changed between the question and the confirmation.
            return Interception(replies=[self._render(turn, "utter_change_kept", {"order_id": order.id})])
        log.warning("conversation %s: unknown pending change %r dropped", conv_id, change.kind)
        return None

    async def _new_address(self, turn: Turn, change: PendingChange, text: str) -> Interception | None:
        conv_id = turn.conversation.id
        if text.lower() == KEEP_PAYLOAD or text.lower().startswith(_CHANGED_MIND):
            await self.access.take_pending(conv_id)
            return Interception(replies=[self._render(turn, "utter_change_kept", {"order_id": change.order_id})])
        if _ORDER_ID.search(text) or len(text) < 4:
            # Not an address: the customer moved on, or asked about another order.
            await self.access.take_pending(conv_id)
            return None
        address = " ".join(text.split())[:MAX_ADDRESS_CHARS]
        await self.access.propose(conv_id, PendingChange("address_confirm", change.order_id, address))
        return Interception(
            replies=[self._render(turn, "utter_confirm_address", {"order_id": change.order_id, "address": address})]
        )

    async def _name(self, turn: Turn, order: OrderInfo) -> str:
        return await self.crm.masked_name(order.customer_id, turn.conversation.locale)

    async def _cancel(self, turn: Turn, order: OrderInfo) -> Interception:
        cancelled = await self.crm.cancel_with_refund(order.id, "customer request (confirmed)", only_in=CANCELLABLE)
        amount = f"{cancelled.amount:.2f}"
        await self.store.add_note(
            turn.conversation.id,
            NOTE_AUTHOR,
            f"Order {order.id} cancelled at the customer's confirmation; refund of {amount} {cancelled.currency} "
            "recorded (processing).",
        )
        variables = {"order_id": order.id, "status": str(order.status), "amount": amount,
                     "currency": cancelled.currency, "name": await self._name(turn, order)}  # fmt: skip
        return Interception(replies=[self._render(turn, "utter_cancel_done", variables)])

    async def _store_address(self, turn: Turn, order: OrderInfo, address: str) -> Interception:
        await self.crm.update_order_address(order.id, address, only_in=ADDRESS_CHANGEABLE)
        await self.store.add_note(
            turn.conversation.id,
            NOTE_AUTHOR,
            f"Shipping address of order {order.id} changed at the customer's confirmation "
            f"(was: {order.shipping_address}; now: {address}).",
        )
        variables = {"order_id": order.id, "address": address, "name": await self._name(turn, order)}
        return Interception(replies=[self._render(turn, "utter_change_address_ok", variables)])

    async def _repair(self, turn: Turn, order: OrderInfo, description: str) -> Interception:
        ticket = await self.crm.create_ticket(order.customer_id, order.id, "repair", description[:2000])
        await self.store.add_note(
            turn.conversation.id,
            NOTE_AUTHOR,
            f"Repair ticket {ticket} opened for order {order.id} at the customer's confirmation.",
        )
        locale = turn.conversation.locale or "zh-CN"
        variables = {
            "ticket": ticket,
            "order_id": order.id,
            "product": order.product_name(locale),
            "in_warranty": order.in_warranty(dt.datetime.now(SHOP_TZ).date()),
            "warranty_until": order.warranty_until.isoformat(),
            "name": await self._name(turn, order),
        }
        return Interception(replies=[self._render(turn, "utter_repair_ticket", variables)])
