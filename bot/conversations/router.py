"""The conversation router: dedupe, identity, conversation state, then the engine or the agent.

Every channel hands its messages to `Router.handle`. Features that are not the core's business plug
in at two extension points: interceptors see a bot-mode message before the engine does (the desk's
satisfaction survey reads scores there), and handoff listeners react when a conversation is handed
to agents (the desk's SLA clock and after-hours notice).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from bot.conversations.locks import KeyedLocks
from bot.conversations.messages import InboundMessage
from bot.conversations.model import Conversation, Handoff, LogEntry, Mode, Skill
from bot.conversations.ports import CustomerDirectory, Engine, HandoffListener, MessageInterceptor, Turn
from bot.conversations.store import ConversationStore
from bot.crm.records import CustomerInfo
from bot.engine.contract import EngineReply, MessageMetadata
from bot.errors import EngineUnavailable
from bot.locale import resolve_locale
from bot.templates import TemplateRegistry

log = logging.getLogger(__name__)

# The reply a customer gets when the engine cannot answer (responses/utter_engine_unavailable.yml).
ENGINE_DOWN_TEMPLATE = "utter_engine_unavailable"

TypingHook = Callable[[str, bool], Awaitable[None]]


@dataclass
class RouterResult:
    """What a message led to: the conversation after it and the replies to deliver."""

    conversation: Conversation
    replies: list[LogEntry] = field(default_factory=list)
    customer_entry: LogEntry | None = None
    duplicate: bool = False
    # The engine could not answer: the replies hold the "busy" notice, not an answer.
    engine_down: bool = False


class Router:
    """Routes every inbound message, whatever its channel, through one path."""

    def __init__(
        self,
        store: ConversationStore,
        customers: CustomerDirectory,
        engine: Engine,
        templates: TemplateRegistry,
        *,
        interceptors: Sequence[MessageInterceptor] = (),
        listeners: Sequence[HandoffListener] = (),
    ) -> None:
        self.store = store
        self.customers = customers
        self.engine = engine
        self.templates = templates
        self.interceptors: list[MessageInterceptor] = list(interceptors)
        self.listeners: list[HandoffListener] = list(listeners)
        self._locks = KeyedLocks()

    async def identify(self, msg: InboundMessage) -> CustomerInfo | None:
        """The CRM customer behind a message, or None for a guest.

        Either the channel verified who it is (`metadata["customer_id"]`: a web chat identity signed by the
        shop, a Telegram account linked by its own phone number, the id a REST app asserts), or the sender
        is a contact the channel vouches for (`sender_is_contact`: an id, email address or phone number).
        """
        explicit = msg.metadata.get("customer_id")
        for candidate in (explicit, msg.sender if msg.sender_is_contact else None):
            if candidate:
                customer = await self.customers.find(str(candidate))
                if customer is not None:
                    return customer
        return None

    async def handle(self, msg: InboundMessage, on_typing: TypingHook | None = None) -> RouterResult:
        """Process one inbound message end to end."""
        customer = await self.identify(msg)
        conv, _ = await self.store.find_or_open(msg.channel, msg.thread_id, customer.id if customer else None)
        if msg.idempotency_key and not await self.store.claim_idempotency_key(msg.channel, msg.idempotency_key):
            return RouterResult(conversation=conv, duplicate=True)
        async with self._locks.hold(conv.id):
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
        if conv.mode != Mode.BOT:
            # Waiting for or talking to an agent: the message goes to the console, not the engine.
            return result
        turn = Turn(conversation=conv, message=msg, customer=customer)
        for interceptor in self.interceptors:
            interception = await interceptor.intercept(turn)
            if interception is not None:
                for rendered in interception.replies:
                    result.replies.append(await self.store.append_rendered(conv.id, "bot", rendered))
                if interception.handoff is not None:
                    result.replies += await self.start_handoff(conv, interception.handoff, customer)
                return result
        replies = await self._ask_engine(conv, msg, customer, on_typing, result)
        handoff: Handoff | None = None
        for reply in replies:
            if reply.handoff is not None:
                request = reply.handoff
                handoff = Handoff(
                    reason=request.reason,
                    skill=Skill.parse(request.skill),
                    priority=request.priority,
                    summary=request.summary,
                )
            if reply.text:
                result.replies.append(
                    await self.store.append(
                        conv.id,
                        "bot",
                        reply.text,
                        buttons=reply.button_dicts(),
                        template=reply.template,
                        template_version=reply.template_version,
                        html=reply.html,
                        text_format=reply.text_format,
                    )
                )
        if handoff is not None:
            result.replies += await self.start_handoff(conv, handoff, customer)
        return result

    async def _ask_engine(
        self,
        conv: Conversation,
        msg: InboundMessage,
        customer: CustomerInfo | None,
        on_typing: TypingHook | None,
        result: RouterResult,
    ) -> list[EngineReply]:
        metadata = MessageMetadata(
            channel=msg.channel,
            locale=conv.locale or "zh-CN",
            customer_id=conv.customer_id,
            vip=bool(customer and customer.vip),
        )
        if on_typing:
            await on_typing(conv.id, True)
        try:
            if conv.reset_engine:  # handed back while the engine was down: start its dialogue afresh first
                await self.engine.reset(conv.id)
                await self.store.engine_reset_done(conv.id)
                conv.reset_engine = False
            return await self.engine.send(conv.id, msg.text, metadata)
        except EngineUnavailable as exc:
            log.error("engine unavailable for conversation %s: %s", conv.id, exc)
            result.engine_down = True
            rendered = self.templates.render(ENGINE_DOWN_TEMPLATE, conv.channel, conv.locale or "zh-CN", {})
            result.replies.append(await self.store.append_rendered(conv.id, "bot", rendered))
            return []
        finally:
            if on_typing:
                await on_typing(conv.id, False)

    async def start_handoff(
        self, conv: Conversation, handoff: Handoff, customer: CustomerInfo | None
    ) -> list[LogEntry]:
        """Hand the conversation to agents: listeners prepare the handoff, it is queued, they react.

        Returns the notices listeners sent the customer (already in the transcript).
        """
        for listener in self.listeners:
            listener.preparing(conv, handoff)
        await self.store.start_handoff(conv, handoff)
        notices: list[LogEntry] = []
        for listener in self.listeners:
            for rendered in await listener.started(conv, handoff, customer):
                notices.append(await self.store.append_rendered(conv.id, "bot", rendered))
        return notices
