"""The conversation router: dedupe, identity, conversation state, engine or agent."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from bot.crm import CRM, CustomerInfo
from bot.engine_client import EngineClient
from bot.errors import EngineUnavailable
from bot.locale import resolve_locale
from bot.store import Conversation, ConversationStore, Handoff, LogEntry
from connectors.base import InboundMessage

log = logging.getLogger(__name__)

ENGINE_DOWN = {
    "zh-CN": "抱歉，系统暂时繁忙，请稍后再试，或回复“人工”联系客服。",
    "zh-TW": "抱歉，系統暫時忙碌，請稍後再試，或回覆「人工」聯繫客服。",
    "en": "Sorry, our assistant is busy right now. Please try again shortly, or reply 'human' to reach an agent.",
}

TypingHook = Callable[[str, bool], Awaitable[None]]


@dataclass
class RouterResult:
    """What a message led to: the conversation after it and the replies to deliver."""

    conversation: Conversation
    replies: list[LogEntry] = field(default_factory=list)
    customer_entry: LogEntry | None = None
    duplicate: bool = False


class Router:
    """Routes every inbound message, whatever its channel, through one path."""

    def __init__(self, store: ConversationStore, crm: CRM, engine: EngineClient) -> None:
        self.store = store
        self.crm = crm
        self.engine = engine
        self._locks: dict[str, asyncio.Lock] = {}

    async def identify(self, msg: InboundMessage) -> CustomerInfo | None:
        """The CRM customer behind a sender (id, email or phone), or None for a guest."""
        explicit = msg.metadata.get("customer_id")
        for candidate in (explicit, msg.sender):
            if candidate:
                customer = await asyncio.to_thread(self.crm.find_customer, str(candidate))
                if customer is not None:
                    return customer
        return None

    async def handle(self, msg: InboundMessage, on_typing: TypingHook | None = None) -> RouterResult:
        """Process one inbound message end to end."""
        customer = await self.identify(msg)
        conv, _ = await self.store.find_or_open(msg.channel, msg.thread_id, customer.id if customer else None)
        if msg.idempotency_key and not await self.store.claim_idempotency_key(msg.channel, msg.idempotency_key):
            return RouterResult(conversation=conv, duplicate=True)
        lock = self._locks.setdefault(conv.id, asyncio.Lock())
        async with lock:
            try:
                result = await self._handle_locked(msg, conv.id, customer, on_typing)
            except BaseException:
                if msg.idempotency_key:
                    await self.store.release_idempotency_key(msg.channel, msg.idempotency_key)
                raise
            if msg.idempotency_key:
                await self.store.complete_idempotency_key(msg.channel, msg.idempotency_key)
            return result

    async def _handle_locked(
        self, msg: InboundMessage, conv_id: str, customer: CustomerInfo | None, on_typing: TypingHook | None
    ) -> RouterResult:
        conv = await self.store.get(conv_id)
        assert conv is not None  # opened just before, under the same thread key
        if customer is not None and conv.customer_id is None:
            conv.customer_id = customer.id
        shown = str(msg.metadata.get("display_text") or msg.text)
        conv.locale = resolve_locale(shown, conv.locale, msg.locale_hint or (customer.locale if customer else None))
        await self.store.update(conv, "customer_id", "locale")
        entry = await self.store.append(conv.id, "customer", shown, client_id=msg.metadata.get("client_id"))
        result = RouterResult(conversation=conv, customer_entry=entry)
        if conv.mode != "bot":
            # Waiting for or talking to an agent: the message goes to the console, not the engine.
            return result
        metadata: dict[str, Any] = {
            "channel": msg.channel,
            "locale": conv.locale,
            "customer_id": conv.customer_id,
            "vip": bool(customer and customer.vip),
        }
        if on_typing:
            await on_typing(conv.id, True)
        try:
            messages = await self.engine.send(conv.id, msg.text, metadata)
        except EngineUnavailable as exc:
            log.error("engine unavailable for conversation %s: %s", conv.id, exc)
            messages = [{"text": ENGINE_DOWN[conv.locale or "zh-CN"], "ar_template": "engine_unavailable"}]
        finally:
            if on_typing:
                await on_typing(conv.id, False)
        handoff: Handoff | None = None
        for m in messages:
            custom = m.get("custom")
            if isinstance(custom, dict) and isinstance(custom.get("handoff"), dict):
                h = custom["handoff"]
                handoff = Handoff(
                    reason=str(h.get("reason", "requested")),
                    skill=str(h.get("skill", "general")),
                    priority=int(h.get("priority", 0)),
                    summary=str(h.get("summary", "")),
                )
            if m.get("text"):
                result.replies.append(
                    await self.store.append(
                        conv.id,
                        "bot",
                        str(m["text"]),
                        buttons=[
                            {"title": str(b.get("title", "")), "payload": str(b.get("payload", ""))}
                            for b in m.get("buttons") or []
                        ],
                        template=m.get("ar_template"),
                        template_version=m.get("ar_template_version"),
                        html=m.get("ar_html"),
                        text_format=m.get("ar_format"),
                    )
                )
        if handoff is not None:
            await self.store.start_handoff(conv, handoff)
        return result
