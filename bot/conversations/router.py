"""The conversation router: accept, identify, then the engine or the agent; every message answered once.

Every channel hands its messages to `Router.handle`. A message is first *accepted* (its dedupe key, its
line in the transcript and its pending record in the inbox, in one Redis script that also takes its
lease), then *answered* under the lease: the replies and the record marked answered in one script. A
process that dies in between leaves a pending message whose lease runs out, and `Router.resume` (the
recovery pass of any replica) answers it; a channel's retry of the same message finds it and waits for its answer.
While the engine is down a message stays pending, its customer is told once that the answer is on its
way, and it is answered when the engine is back.

Features that are not the core's business plug in at three extension points: interceptors see a
bot-mode message before the engine does (the desk's satisfaction survey reads scores there), handoff
listeners react when a conversation is handed to agents (the desk's SLA clock and after-hours
notice), and answer listeners see what the engine understood as its answer is committed (the
desk's review list of misunderstood messages).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace

from bot import metrics
from bot.conversations.inbox import PENDING, Inbox, InboxMessage
from bot.conversations.locks import KeyedLocks
from bot.conversations.messages import InboundMessage
from bot.conversations.model import Conversation, Handoff, LogEntry, Mode, Skill
from bot.conversations.ports import (
    Answered,
    AnswerListener,
    CustomerDirectory,
    Engine,
    HandoffListener,
    MessageInterceptor,
    Turn,
)
from bot.conversations.store import ConversationStore, entry_fields, entry_from_fields, rendered_fields
from bot.crm.records import CustomerInfo
from bot.engine.contract import EngineReply, MessageMetadata
from bot.errors import EngineUnavailable
from bot.locale import locale_choice
from bot.templates import TemplateRegistry

log = logging.getLogger(__name__)

# Told once to a customer whose message waits for the engine (responses/utter_engine_delayed.yml).
ENGINE_DELAYED_TEMPLATE = "utter_engine_delayed"
# A new message is the recovery pass's only after this long (its first processor should be done by then).
RECOVERY_GRACE_SECONDS = 30.0
# How long a retry of a message being answered elsewhere waits for that answer.
DUPLICATE_WAIT_SECONDS = 90.0
# Retries while the engine is down: then every RETRY_MAX_SECONDS.
RETRY_FIRST_SECONDS = 2.0
RETRY_MAX_SECONDS = 30.0

TypingHook = Callable[[str, bool], Awaitable[None]]


@dataclass
class RouterResult:
    """What a message led to: the conversation after it and the replies to deliver."""

    conversation: Conversation
    replies: list[LogEntry] = field(default_factory=list)
    customer_entry: LogEntry | None = None
    # The message had been accepted before (a channel's retry); `replies` are its answer, if it has one.
    duplicate: bool = False
    # The engine could not answer yet: the replies hold the "one moment" notice (if it was not sent
    # before), and the answer follows when the engine is back.
    engine_down: bool = False
    # Not answered yet (the engine is down, or another process is answering it).
    pending: bool = False
    message_id: str = ""
    # Earlier messages of the conversation answered first (they waited for the engine): their replies,
    # for channels that push answers themselves, and their ids.
    earlier_replies: list[LogEntry] = field(default_factory=list)
    earlier_ids: list[str] = field(default_factory=list)
    # Another process committed the answer (`replies` hold it for channels whose caller waits for it):
    # that process pushes it, or the recovery pass does if it died.
    answered_elsewhere: bool = False

    def to_push(self) -> list[LogEntry]:
        """What a channel that pushes its replies sends for this result: the answers this process
        committed, the earlier messages' first. An answer another process committed is that process's to
        push (`delivered` leaves it to it), whether this message was new here or a duplicate."""
        return [*self.earlier_replies, *([] if self.answered_elsewhere else self.replies)]


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
        answer_listeners: Sequence[AnswerListener] = (),
        lease_seconds: float = 30.0,
    ) -> None:
        self.store = store
        self.customers = customers
        self.engine = engine
        self.templates = templates
        self.interceptors: list[MessageInterceptor] = list(interceptors)
        self.listeners: list[HandoffListener] = list(listeners)
        self.answer_listeners: list[AnswerListener] = list(answer_listeners)
        self.inbox = Inbox(store.redis, lease_seconds=lease_seconds)
        self.lease_seconds = lease_seconds
        # Names this process in leases: a lease is only ever released or renewed by its holder.
        self.owner = uuid.uuid4().hex
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

    async def handle(
        self, msg: InboundMessage, on_typing: TypingHook | None = None, *, take_over: bool = False
    ) -> RouterResult:
        """Accept one inbound message and answer it (or say why it is not answered yet).

        `take_over`: the channel believes no live process works on this message (the email reader, which
        alone reads its mailbox, found a mail it never committed): a lease its dead holder no longer renews
        is broken at once, not left to expire (one the recovery pass of another replica holds and renews is
        kept, and its answer waited for).
        """
        started = time.time()
        with metrics.timed("app"):
            result = await self._handle(msg, on_typing, take_over=take_over)
        metrics.MESSAGES.labels(msg.channel, outcome_of(result, started)).inc()
        return result

    async def _handle(self, msg: InboundMessage, on_typing: TypingHook | None, *, take_over: bool) -> RouterResult:
        customer = await self.identify(msg)
        async with self._locks.hold(_thread_lock(msg.channel, msg.thread_id)):
            shown = str(msg.metadata.get("display_text") or msg.text)
            locale = locale_choice(shown, msg.locale_hint or (customer.locale if customer else None))
            line = entry_fields("customer", shown, client_id=msg.metadata.get("client_id"))
            # One script: the thread's conversation read, its customer and locale written, the message
            # accepted, its line published (with replicas required, only once they have it) and its lease
            # taken.
            replicas = self.store.min_replicas > 0
            accepted = await self.inbox.accept_in_thread(
                msg,
                line,
                due_in=RECOVERY_GRACE_SECONDS,
                locale=locale,
                customer_id=customer.id if customer else None,
                owner=self.owner,
                publish=not replicas,
            )
            if accepted is not None and accepted.conversation is not None:
                conv = accepted.conversation
            else:  # the thread's first message (or its conversation expired): open one, then accept
                conv, _ = await self.store.open(msg.channel, msg.thread_id, customer.id if customer else None)
                if customer is not None and conv.customer_id is None:
                    conv.customer_id = customer.id
                conv.locale = locale.choose(conv.locale)
                conv.updated_at = time.time()
                accepted = await self.inbox.accept(
                    conv.id,
                    msg,
                    line,
                    due_in=RECOVERY_GRACE_SECONDS,
                    conversation=conv,
                    owner=self.owner,
                    publish=not replicas,
                )
            answered_elsewhere = False
            if accepted.new:
                assert accepted.entry is not None and accepted.record is not None
                if replicas:
                    await self.store.replicated()  # accepted only once the replicas have it
                    await self.store.publish(conv.id, accepted.entry.frame())
                if accepted.leased:
                    result = await self._answer_leased(
                        accepted.record, conv, customer, on_typing, access_waits=accepted.access_waits
                    )
                else:
                    result = await self._answer(accepted.record, conv, customer, on_typing)
                result.customer_entry = accepted.entry
                if not result.pending or result.engine_down:
                    return result
                # A retry of it reached another process first and is answering it.
                answered_elsewhere = True
        if answered_elsewhere:
            # Wait for that answer, outside the conversation's lock (a take-over would need it).
            waited = await self._wait_for(accepted.message_id, conv, customer, on_typing)
            waited.customer_entry = accepted.entry
            return waited
        if take_over:
            await self.inbox.break_lease(accepted.message_id)
        return await self._duplicate(accepted.message_id, conv, customer, on_typing)

    async def resume(self, message_id: str) -> RouterResult | None:
        """Answer a pending message whose first processor is gone or whose retry is due (recovery pass).

        None when there is nothing to do (answered meanwhile, held by a live process, or expired).
        """
        record = await self.inbox.get(message_id)
        if record is None:
            await self.inbox.forget_expired(message_id)
            return None
        if record.state != PENDING:
            return None
        conv = await self.store.get(record.conversation_id)
        if conv is None:
            await self.inbox.forget_expired(message_id)
            return None
        customer = await self.identify(record.message)
        async with self._locks.hold(_thread_lock(conv.channel, conv.thread_id)):
            current = await self.store.get(conv.id)
            if current is None:
                return None
            return await self._answer(record, current, customer, None)

    async def delivered(self, result: RouterResult) -> None:
        """The channel handed the answer of `result` to the customer (channels that push their replies)."""
        for message_id in result.earlier_ids:
            await self.inbox.delivered(message_id)
        if result.message_id and not result.pending and not result.answered_elsewhere:
            await self.inbox.delivered(result.message_id)

    async def _wait_for(
        self, message_id: str, conv: Conversation, customer: CustomerInfo | None, on_typing: TypingHook | None
    ) -> RouterResult:
        """The answer another process is giving to this process's new message (not a duplicate to the caller)."""
        waited = await self._duplicate(message_id, conv, customer, on_typing)
        waited.duplicate = False
        return waited

    async def _duplicate(
        self, message_id: str, conv: Conversation, customer: CustomerInfo | None, on_typing: TypingHook | None
    ) -> RouterResult:
        """A message accepted before: its answer, once there is one (taking over from a dead processor)."""
        deadline = time.monotonic() + DUPLICATE_WAIT_SECONDS
        while True:
            record = await self.inbox.get(message_id)
            if record is None:  # expired long ago: nothing to answer any more
                return RouterResult(conversation=conv, duplicate=True, message_id=message_id, answered_elsewhere=True)
            if record.state != PENDING:
                current = await self.store.get(conv.id) or conv
                return RouterResult(
                    conversation=current,
                    replies=replies_of(record),
                    duplicate=True,
                    message_id=message_id,
                    answered_elsewhere=True,
                )
            if not await self.inbox.leased(message_id):
                # Nobody is answering it (its first processor died): this retry does.
                async with self._locks.hold(_thread_lock(conv.channel, conv.thread_id)):
                    current = await self.store.get(conv.id) or conv
                    result = await self._answer(record, current, customer, on_typing)
                if not result.pending:
                    result.duplicate = True
                    return result
            if time.monotonic() >= deadline:
                return RouterResult(conversation=conv, duplicate=True, pending=True, message_id=message_id)
            await asyncio.sleep(0.25)

    async def _answer(
        self, record: InboxMessage, conv: Conversation, customer: CustomerInfo | None, on_typing: TypingHook | None
    ) -> RouterResult:
        """Answer a pending message under its lease: compute the replies, then commit them at once.

        Earlier unanswered messages of the conversation (they waited for the engine) are answered first,
        in order; while one of them cannot be, this one waits too.
        """
        result = RouterResult(conversation=conv, message_id=record.id)
        for earlier_id in await self.inbox.earlier(conv.id, record):
            earlier = await self.inbox.get(earlier_id)
            if earlier is None or earlier.state != PENDING:
                continue
            before = await self._answer(earlier, conv, customer, on_typing)
            if before.pending:
                result.pending = result.engine_down = before.engine_down
                result.pending = True
                if not record.message.redeliverable:
                    await self.inbox.later(record.id, _retry_delay(record.attempts), notified=True)
                else:
                    await self.inbox.drop(conv.id, record.id, record.message)
                return result
            result.earlier_replies += before.earlier_replies
            result.earlier_ids += before.earlier_ids
            if not before.answered_elsewhere:
                result.earlier_replies += before.replies
                result.earlier_ids.append(earlier.id)
        if not await self.inbox.lease(record.id, self.owner):
            result.pending = True  # another process is answering it right now
            return result
        fresh = await self.inbox.get(record.id)
        if fresh is None or fresh.state != PENDING:  # answered by someone else just before
            await self.inbox.release(record.id, self.owner)
            result.answered_elsewhere = True
            if fresh is not None:
                result.replies = replies_of(fresh)
            return result
        return await self._answer_leased(fresh, conv, customer, on_typing, result)

    async def _answer_leased(
        self,
        record: InboxMessage,
        conv: Conversation,
        customer: CustomerInfo | None,
        on_typing: TypingHook | None,
        result: RouterResult | None = None,
        *,
        access_waits: bool | None = None,
    ) -> RouterResult:
        """Answer a pending message whose lease this process holds, and release it: compute the replies,
        then commit them at once (nothing earlier of the conversation waits). `access_waits`: see `Turn`."""
        result = result or RouterResult(conversation=conv, message_id=record.id)
        renewal = _Renewal(self, record.id)
        released = False
        try:
            lines, handoff, answered = await self._compute(record, conv, customer, on_typing, result, access_waits)
            if result.engine_down:
                await self._not_now(record, conv, result)
                return result
            if handoff is not None:
                # Queued before the answer is committed: a crash in between answers again, never leaving a
                # "connecting you to an agent" with nobody queued.
                lines += await self._start_handoff(conv, handoff, customer)
            pushes = record.message.pushes_replies  # the others' customers read the transcript
            commit = self.inbox.commit(conv.id, record.id, lines, delivered=not pushes, owner=self.owner)
            if answered is not None and self.answer_listeners:
                # Beside the commit, not after it: their writes are their own, and Redis makes both
                # durable in one append-only-file sync instead of two in a row.
                committed, _ = await asyncio.gather(commit, self._tell(answered))
            else:
                committed = await commit
            released = True  # by the commit, whether it wrote or not
            if committed is None:
                # Answered by another process meanwhile (it took over a lease that had run out): its
                # answer stands, ours is dropped, and the customer sees one.
                fresh = await self.inbox.get(record.id)
                result.replies = replies_of(fresh) if fresh is not None else []
                return result
            await self.store.replicated()
            result.replies = committed
            return result
        finally:
            await renewal.stop()
            if not released:
                await self.inbox.release(record.id, self.owner)

    async def _tell(self, answered: Answered) -> None:
        """Answer listeners learn of the answer being committed; one failing costs the customer nothing."""
        for listener in self.answer_listeners:
            try:
                await listener.answered(answered)
            except Exception:  # a listener failing must not fail the message
                log.exception("answer listener %s failed", type(listener).__name__)

    async def _compute(
        self,
        record: InboxMessage,
        conv: Conversation,
        customer: CustomerInfo | None,
        on_typing: TypingHook | None,
        result: RouterResult,
        access_waits: bool | None = None,
    ) -> tuple[list[dict[str, str]], Handoff | None, Answered | None]:
        """The transcript lines that answer the message, the handoff it leads to, and what the engine was
        asked and answered, for the answer listeners (nothing is written)."""
        msg = record.message
        if conv.mode != Mode.BOT:
            # Waiting for or talking to an agent: the message goes to the console, not the engine.
            return [], None, None
        turn = Turn(conversation=conv, message=msg, customer=customer, access_waits=access_waits)
        lines: list[dict[str, str]] = []
        for interceptor in self.interceptors:
            interception = await interceptor.intercept(turn)
            if interception is None:
                continue
            lines = [rendered_fields("bot", r) for r in interception.replies]
            if interception.engine_text is None:
                return lines, interception.handoff, None
            msg = replace(msg, text=interception.engine_text)
            break
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
                lines.append(
                    entry_fields(
                        "bot",
                        reply.text,
                        buttons=reply.button_dicts(),
                        template=reply.template,
                        template_version=reply.template_version,
                        html=reply.html,
                        text_format=reply.text_format,
                    )
                )
        answered = Answered(turn=turn, text=msg.text, replies=replies, handoff=handoff) if replies else None
        return lines, handoff, answered

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
            return []
        finally:
            if on_typing:
                await on_typing(conv.id, False)

    async def _not_now(self, record: InboxMessage, conv: Conversation, result: RouterResult) -> None:
        """The engine is down: try again later, and tell the customer once that the answer is coming."""
        result.pending = True
        if record.message.redeliverable:
            # The channel brings the message again itself (a mail stays unread): forget it for now.
            await self.inbox.drop(conv.id, record.id, record.message)
            return
        attempts = await self.inbox.later(record.id, _retry_delay(record.attempts), notified=True)
        if record.notified or attempts > 1:
            return
        rendered = self.templates.render(ENGINE_DELAYED_TEMPLATE, conv.channel, conv.locale or "zh-CN", {})
        result.replies.append(await self.store.append_rendered(conv.id, "bot", rendered))

    async def start_handoff(
        self, conv: Conversation, handoff: Handoff, customer: CustomerInfo | None
    ) -> list[LogEntry]:
        """Hand the conversation to agents now (outside a message's answer); returns the notices sent."""
        lines = await self._start_handoff(conv, handoff, customer)
        return await self.store.commit(conv.id, lines, lambda pipe: None) if lines else []

    async def _start_handoff(
        self, conv: Conversation, handoff: Handoff, customer: CustomerInfo | None
    ) -> list[dict[str, str]]:
        """Listeners prepare the handoff, it is queued, they react; returns their notices (not yet written)."""
        for listener in self.listeners:
            listener.preparing(conv, handoff)
        await self.store.start_handoff(conv, handoff)
        metrics.HANDOFFS.labels(handoff.reason, str(handoff.skill)).inc()
        lines: list[dict[str, str]] = []
        for listener in self.listeners:
            lines += [rendered_fields("bot", r) for r in await listener.started(conv, handoff, customer)]
        return lines


class _Renewal:
    """Keeps a message's lease while it is answered: a timer that starts renewing it only if the answer
    takes a third of the lease (most take milliseconds, and then no task is made and none cancelled)."""

    def __init__(self, router: Router, message_id: str) -> None:
        self._inbox, self._owner, self._message_id = router.inbox, router.owner, message_id
        self._every = router.lease_seconds / 3
        self._task: asyncio.Task[None] | None = None
        self._timer = asyncio.get_running_loop().call_later(self._every, self._start)

    def _start(self) -> None:
        self._task = asyncio.create_task(self._keep())

    async def _keep(self) -> None:
        while True:
            if not await self._inbox.renew(self._message_id, self._owner):
                log.warning("message %s: lease lost while answering it", self._message_id)
                return
            await asyncio.sleep(self._every)

    async def stop(self) -> None:
        """Stop renewing (the answer is committed, or given up)."""
        self._timer.cancel()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def outcome_of(result: RouterResult, started: float) -> str:
    """What became of a message that arrived at `started`, as the messages metric counts it."""
    if result.duplicate:
        return "duplicate"
    if result.engine_down:
        return "engine_delayed"
    if result.pending:
        return "pending"
    if result.conversation.mode == Mode.AGENT:
        return "to_agent"
    if result.conversation.mode == Mode.WAITING:
        handoff = result.conversation.handoff
        return "handed_off" if handoff is not None and handoff.queued_at >= started else "waiting"
    return "answered"


def _thread_lock(channel: str, thread_id: str) -> tuple[str, str]:
    """The in-process lock of a channel thread: taken before its conversation is looked up, so that what
    is read under it is current (a conversation belongs to one thread)."""
    return (channel, thread_id)


def _retry_delay(attempts: int) -> float:
    return float(min(RETRY_MAX_SECONDS, RETRY_FIRST_SECONDS * 2**attempts))


def replies_of(record: InboxMessage) -> list[LogEntry]:
    """The answer a record keeps (for a channel's retry), as transcript lines."""
    lines = record.replies
    return [entry_from_fields("", line) for line in lines if isinstance(line, dict)]
