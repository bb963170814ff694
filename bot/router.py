"""The conversation router: dedupe, identity, conversation state, engine or agent."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from bot import keys
from bot.crm import CRM, CustomerInfo
from bot.csat import CsatPolicy, parse_rating
from bot.engine_client import EngineClient
from bot.errors import EngineUnavailable
from bot.hours import BusinessHours, opening_time
from bot.locale import resolve_locale
from bot.store import MAX_PRIORITY, Conversation, ConversationStore, Handoff, LogEntry
from bot.templates import TemplateRegistry
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

    def __init__(
        self,
        store: ConversationStore,
        crm: CRM,
        engine: EngineClient,
        *,
        templates: TemplateRegistry | None = None,
        csat: CsatPolicy | None = None,
        hours: BusinessHours | None = None,
    ) -> None:
        self.store = store
        self.crm = crm
        self.engine = engine
        self.templates = templates
        self.csat = csat or CsatPolicy()
        self.hours = hours or BusinessHours()
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
        if conv.survey is not None and await self._survey_answer(conv, msg.text, customer, result):
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
            await self._after_hours(conv, customer, result)
        return result

    async def _after_hours(self, conv: Conversation, customer: CustomerInfo | None, result: RouterResult) -> None:
        """Outside business hours, tell a chat customer when agents are back (mail is not read live anyway)."""
        now = time.time()
        if self.templates is None or conv.channel == "email" or self.hours.is_open(now):
            return
        locale = conv.locale or "zh-CN"
        opens = opening_time(self.hours.local(self.hours.next_open(now)), locale)
        name = customer.masked_name(locale) if customer is not None else ""
        rendered = self.templates.render("utter_after_hours", conv.channel, locale, {"name": name, "opens": opens})
        result.replies.append(await self.store.append_rendered(conv.id, "bot", rendered))

    async def _survey_answer(
        self, conv: Conversation, text: str, customer: CustomerInfo | None, result: RouterResult
    ) -> bool:
        """Read a satisfaction score if this message gives one; True when it did (the engine is skipped).

        The survey is asked once: whatever the customer writes next ends it, a score or not.
        """
        survey = conv.survey or {}
        conv.survey = None
        await self.store.update(conv, "survey")
        score = parse_rating(text)
        asked_at = float(survey.get("asked_at") or 0)
        if score is None or self.templates is None or time.time() - asked_at > self.csat.window_seconds:
            return False
        low = self.csat.is_low(score)
        await self.store.record_event(
            keys.stats_csat(),
            {
                "event": "score",
                "score": score,
                "conversation_id": conv.id,
                "agent": survey.get("agent", ""),
                "channel": conv.channel,
                "skill": survey.get("skill", ""),
                "low": int(low),
            },
        )
        locale = conv.locale or "zh-CN"
        name = customer.masked_name(locale) if customer is not None else ""
        rendered = self.templates.render(
            "utter_csat_low" if low else "utter_csat_thanks", conv.channel, locale, {"name": name, "score": score}
        )
        result.replies.append(await self.store.append_rendered(conv.id, "bot", rendered))
        if low:
            summary = (
                f"Satisfaction follow-up: the customer rated {score}/5 the help {survey.get('agent') or 'an agent'} "
                f"gave after a '{survey.get('reason', '')}' handoff ({survey.get('skill', '')}). "
                "A supervisor should review the transcript and contact the customer."
            )
            if customer is not None and customer.vip:
                summary += " VIP customer."
            handoff = Handoff(reason="low_csat", skill="complaints", priority=MAX_PRIORITY - 1, summary=summary)
            await self.store.start_handoff(conv, handoff)
        return True
