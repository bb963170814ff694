"""One inbound mail, start to finish: decide, route, compose the answer, commit it atomically.

The commit is the exactly-once point. In one MULTI/EXEC, guarded by WATCH on the mail's "done"
marker, it queues the answer in the outbox, marks the mail processed (by Message-ID, or a hash of
its bytes when it has none), counts it for the sender's rate limit and records the thread. A process
killed before the commit leaves no trace that matters: the mail is still unflagged and is processed
again. Killed after it, the mail is found done and only flagged. Two readers racing on one mail (a
lease lost during a long pause) cannot both commit.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from markupsafe import escape
from redis.exceptions import WatchError

from bot import keys
from bot.conversations.channels import ChannelContext
from bot.conversations.locks import KeyedLocks
from bot.conversations.messages import InboundMessage
from bot.conversations.model import Conversation, LogEntry
from bot.locale import resolve_locale
from connectors.email import keys as mail_keys
from connectors.email.compose import (
    bare_subject,
    build_message,
    domain_of,
    new_message_id,
    reply_subject,
    thread_references,
    wrap_html,
)
from connectors.email.errors import RetryLater
from connectors.email.loops import ReplyRateLimit, Suppressed, suppression
from connectors.email.outbox import OutboundMail, Outbox
from connectors.email.parse import ParsedMail, parse_mail

log = logging.getLogger(__name__)

CHANNEL = "email"


@dataclass(frozen=True)
class Outcome:
    """What became of one inbound mail."""

    status: str  # answered, handed_off, to_agent, too_large, suppressed, duplicate
    reason: str = ""
    conversation_id: str = ""
    reply_message_id: str = ""
    mail_key: str = ""

    @property
    def answered(self) -> bool:
        """An answer went to the outbox for this mail."""
        return bool(self.reply_message_id)


@dataclass(frozen=True)
class ThreadState:
    """How to reply in an email conversation's thread (kept per conversation in Redis)."""

    root: str
    last_message_id: str
    references: tuple[str, ...]
    subject: str
    address: str

    def to_hash(self) -> dict[str, str]:
        """Flatten for HSET."""
        data = asdict(self)
        data["references"] = json.dumps(list(self.references))
        return {k: str(v) for k, v in data.items()}

    @classmethod
    def from_hash(cls, raw: dict[str, str]) -> ThreadState | None:
        """Rebuild from HGETALL output, or None when the conversation did not come by email."""
        if not raw.get("address"):
            return None
        return cls(
            root=raw.get("root", ""),
            last_message_id=raw.get("last_message_id", ""),
            references=tuple(json.loads(raw.get("references") or "[]")),
            subject=raw.get("subject", ""),
            address=raw["address"],
        )


def _size_mb(size: int) -> str:
    return f"{size / (1024 * 1024):.1f}".rstrip("0").rstrip(".")


class MailProcessor:
    """Turns inbound mail into at most one committed answer each."""

    def __init__(
        self,
        context: ChannelContext,
        *,
        support_address: str,
        max_bytes: int,
        replies_per_hour: int,
        max_text_chars: int = 5000,
    ) -> None:
        self.context = context
        self.redis: Any = context.redis
        self.max_text_chars = max_text_chars
        self.support_address = support_address
        self.max_bytes = max_bytes
        self.rate = ReplyRateLimit(self.redis, replies_per_hour)
        self._sender_locks = KeyedLocks()

    async def process(self, raw: bytes, *, size: int | None = None, uid: int | None = None) -> Outcome:
        """Process one mail; RetryLater when it must stay unprocessed for now."""
        full_size = size if size is not None else len(raw)
        # In a worker thread: a mail's parsing is bounded (linear in its size), but a large one still takes
        # a while that the event loop (every channel, the health probes) must not wait through.
        mail = await asyncio.to_thread(parse_mail, raw, size=full_size)
        done = await self.redis.get(mail_keys.mail_done(mail.key))
        if done:
            return Outcome("duplicate", mail_key=mail.key)
        reason = suppression(mail, self.support_address)
        if reason is not None:
            outcome = Outcome("suppressed", reason=reason.value, mail_key=mail.key)
            await self._commit(mail, outcome, None, None, uid)
            return outcome
        address = mail.reply_address
        assert address is not None  # suppression() returned NO_SENDER otherwise
        # One mail per sender at a time: the rate limit counts committed answers, so it must not race.
        async with self._sender_locks.hold(address):
            if await self.redis.exists(mail_keys.mail_done(mail.key)):
                return Outcome("duplicate", mail_key=mail.key)  # the same mail twice in the folder, one done
            root = await self._thread_root(mail)
            if not await self.rate.allowed(address, mail.key):
                # No answer, but a person may still need to read it: it goes to the transcript.
                conv_id = await self._record_unanswered(mail, root, address)
                outcome = Outcome(
                    "suppressed", reason=Suppressed.RATE_LIMITED.value, conversation_id=conv_id, mail_key=mail.key
                )
                await self._commit(mail, outcome, None, self._state(mail, root, address), uid)
                return outcome
            outbound: OutboundMail | None
            if full_size > self.max_bytes:
                outcome, outbound, state = await self._too_large(mail, root, address)
            else:
                outcome, outbound, state = await self._route(mail, root, address)
            committed = await self._commit(mail, outcome, outbound, state, uid)
            return outcome if committed else Outcome("duplicate", mail_key=mail.key)

    async def _thread_root(self, mail: ParsedMail) -> str:
        """The conversation's thread: a known id this mail answers, else the headers' own root."""
        candidates = list(reversed(mail.thread_candidates))
        if candidates:
            roots = await self.redis.mget([mail_keys.mail_thread(m) for m in candidates])
            for root in roots:
                if root:
                    return str(root)
        return mail.natural_root

    def _inbound(self, mail: ParsedMail, root: str, address: str) -> InboundMessage:
        limit = self.max_text_chars
        text = mail.text or bare_subject(mail.subject) or mail.body.strip()
        text = (text or "?")[:limit]
        shown = text
        if mail.attachments:
            shown += "\n" + "\n".join(
                f"📎 {a.name} · {a.content_type} · {max(1, a.size // 1024)} KB" for a in mail.attachments
            )
        return InboundMessage(
            channel=CHANNEL,
            thread_id=root,
            sender=address,
            text=text,
            idempotency_key=mail.key,
            attachments=mail.attachments,
            locale_hint=mail.locale_hint,
            metadata={"display_text": shown, "message_id": mail.message_id or "", "subject": mail.subject},
            # Answers go to this address, so whoever wrote, only the customer on file reads them.
            sender_is_contact=True,
            # Left unread while the engine is down, the mail is read again later.
            redeliverable=True,
        )

    async def _route(
        self, mail: ParsedMail, root: str, address: str
    ) -> tuple[Outcome, OutboundMail | None, ThreadState]:
        router = self.context.router
        msg = self._inbound(mail, root, address)
        # This replica alone reads the mailbox (its lease): a mail it finds uncommitted has no live
        # processor, so the router may take over the message from a process killed mid-way.
        result = await router.handle(msg, take_over=True)
        if result.duplicate and await self.redis.exists(mail_keys.mail_done(mail.key)):
            raise RetryLater(f"mail {mail.key} was committed meanwhile")  # next round: flagged as done
        if result.engine_down:
            raise RetryLater("the engine is unavailable; the mail stays unprocessed until it is back")
        if result.pending:
            raise RetryLater(f"mail {mail.key} is being answered elsewhere")
        # A duplicate that was answered (the process died before the mail's commit) carries that answer.
        conv = result.conversation
        state = self._state(mail, root, address)
        replies = list(result.replies)
        if not replies and conv.mode == "bot":
            # The engine said nothing: the customer still gets an answer, never silence.
            replies = [await self._fallback_reply(conv)]
        if not replies:
            return Outcome("to_agent", conversation_id=conv.id, mail_key=mail.key), None, state
        outbound = await self._answer(mail, conv, state, replies)
        status = "answered" if conv.mode == "bot" else "handed_off"
        return (
            Outcome(status, conversation_id=conv.id, reply_message_id=outbound.message_id, mail_key=mail.key),
            outbound,
            state,
        )

    async def _record_unanswered(self, mail: ParsedMail, root: str, address: str) -> str:
        store = self.context.store
        msg = self._inbound(mail, root, address)
        customer = await self.context.router.identify(msg)
        conv, _ = await store.find_or_open(CHANNEL, root, customer.id if customer else None)
        await store.append(conv.id, "customer", str(msg.metadata["display_text"]))
        await store.append(
            conv.id,
            "system",
            f"No automatic answer: {address} already had {self.rate.limit} in the last hour "
            "(AUTORESPONDER_EMAIL_REPLIES_PER_SENDER_PER_HOUR).",
        )
        return conv.id

    async def _fallback_reply(self, conv: Conversation) -> LogEntry:
        rendered = self.context.templates.render("utter_default", CHANNEL, conv.locale or "zh-CN", {})
        return await self.context.store.append_rendered(conv.id, "bot", rendered)

    async def _too_large(self, mail: ParsedMail, root: str, address: str) -> tuple[Outcome, OutboundMail, ThreadState]:
        store = self.context.store
        msg = self._inbound(mail, root, address)
        customer = await self.context.router.identify(msg)
        conv, _ = await store.find_or_open(CHANNEL, root, customer.id if customer else None)
        hint = mail.locale_hint or (customer.locale if customer else None)
        conv.locale = resolve_locale(mail.subject, conv.locale, hint)
        await store.update(conv, "locale")
        await store.append(conv.id, "customer", f"{mail.subject}\n[{_size_mb(mail.size)} MB, not read: over the limit]")
        name = await self.customer_name(conv)
        rendered = self.context.templates.render(
            "email_too_large",
            CHANNEL,
            conv.locale or "zh-CN",
            {"name": name, "size_mb": _size_mb(mail.size), "limit_mb": _size_mb(self.max_bytes)},
        )
        await store.append_rendered(conv.id, "bot", rendered)
        state = self._state(mail, root, address)
        outbound = self.outbound_mail(mail, conv, state, rendered.text, rendered.html or "", kind="auto")
        return (
            Outcome("too_large", conversation_id=conv.id, reply_message_id=outbound.message_id, mail_key=mail.key),
            outbound,
            state,
        )

    def _state(self, mail: ParsedMail, root: str, address: str) -> ThreadState:
        return ThreadState(
            root=root,
            last_message_id=mail.message_id or "",
            references=tuple(thread_references(mail.references, mail.message_id)),
            subject=mail.subject,
            address=address,
        )

    async def customer_name(self, conv: Conversation) -> str:
        """The customer's masked name in the conversation's locale, or "" for a guest."""
        return await self.context.customers.masked_name(conv.customer_id, conv.locale)

    def is_letter(self, template: str | None) -> bool:
        """The template has an email variant of its own: a whole letter, greeting and closing included."""
        tpl = self.context.templates.templates.get(template or "")
        return tpl is not None and "email" in tpl.text

    async def _answer(
        self, mail: ParsedMail, conv: Conversation, state: ThreadState, replies: Sequence[LogEntry]
    ) -> OutboundMail:
        """One mail for all of the engine's replies to this message."""
        if all(self.is_letter(r.template) for r in replies):
            text = "\n\n".join(r.text for r in replies)
            html = "\n".join(r.html or str(escape(r.text)) for r in replies)
        else:
            rendered = self.context.templates.render(
                "email_reply",
                CHANNEL,
                conv.locale or "zh-CN",
                {"name": await self.customer_name(conv), "body": "\n\n".join(r.text for r in replies)},
            )
            text, html = rendered.text, rendered.html or ""
        return self.outbound_mail(mail, conv, state, text, html, kind="auto")

    def outbound_mail(
        self, mail: ParsedMail | None, conv: Conversation, state: ThreadState, text: str, html: str, *, kind: str
    ) -> OutboundMail:
        """A composed mail in the conversation's thread; kind auto/notice are marked Auto-Submitted, agent not."""
        message_id = new_message_id(domain_of(self.support_address))
        data = build_message(
            sender=self.support_address,
            sender_name="",
            to=state.address,
            subject=reply_subject(state.subject, conv.locale),
            text=text,
            html=wrap_html(html, conv.locale) if html else None,
            message_id=message_id,
            in_reply_to=state.last_message_id or None,
            references=state.references,
            auto_submitted="auto-replied" if kind == "auto" else ("auto-generated" if kind == "notice" else None),
            locale=conv.locale,
        )
        return OutboundMail(
            message_id=message_id,
            envelope_from=self.support_address,
            recipients=(state.address,),
            data=data,
            conversation_id=conv.id,
            kind=kind,
            source=mail.key if mail else "",
        )

    async def _commit(
        self,
        mail: ParsedMail,
        outcome: Outcome,
        outbound: OutboundMail | None,
        state: ThreadState | None,
        uid: int | None,
    ) -> bool:
        """Queue the answer and mark the mail processed, atomically; False when it was done already."""
        done_key = mail_keys.mail_done(mail.key)
        now = time.time()
        record = {
            "status": outcome.status,
            "reason": outcome.reason,
            "conversation_id": outcome.conversation_id,
            "reply_message_id": outcome.reply_message_id,
            "at": now,
        }
        async with self.redis.pipeline(transaction=True) as pipe:
            try:
                await pipe.watch(done_key)
                if await pipe.exists(done_key):
                    return False
                pipe.multi()
                if outbound is not None and state is not None:
                    Outbox.add(pipe, outbound)
                    self.rate.record(pipe, state.address, mail.key, now)
                    pipe.set(mail_keys.mail_thread(outbound.message_id), state.root, ex=mail_keys.MAIL_DONE_TTL_SECONDS)
                if state is not None:
                    if mail.message_id:
                        pipe.set(mail_keys.mail_thread(mail.message_id), state.root, ex=mail_keys.MAIL_DONE_TTL_SECONDS)
                    if outcome.conversation_id:
                        conv_key = mail_keys.mail_conversation(outcome.conversation_id)
                        pipe.hset(conv_key, mapping=state.to_hash())
                        pipe.expire(conv_key, keys.CONVERSATION_TTL_SECONDS)
                pipe.set(done_key, json.dumps(record), ex=mail_keys.MAIL_DONE_TTL_SECONDS)
                pipe.xadd(
                    mail_keys.mail_log(),
                    {
                        "key": mail.key,
                        "message_id": mail.message_id or "",
                        "uid": str(uid or ""),
                        "from": mail.sender or "",
                        "subject": mail.subject[:200],
                        **{k: str(v) for k, v in record.items()},
                    },
                    maxlen=mail_keys.MAIL_LOG_MAXLEN,
                    approximate=True,
                )
                await pipe.execute()
            except WatchError:
                return False
        log.info("mail %s (uid %s): %s %s", mail.key, uid, outcome.status, outcome.reason)
        return True


async def thread_state(redis: Any, conversation_id: str) -> ThreadState | None:
    """The reply state of an email conversation, or None when it did not come by email."""
    return ThreadState.from_hash(await redis.hgetall(mail_keys.mail_conversation(conversation_id)))
