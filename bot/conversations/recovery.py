"""The recovery pass: pending messages nobody is answering get answered; answers not yet pushed get pushed.

Runs in every app replica (all safe together: each message is answered under its lease, and its answer
committed once). It picks up what a crashed process left behind and what waited for the engine.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict

from bot.conversations.channels import Channels
from bot.conversations.inbox import ANSWERED, InboxMessage
from bot.conversations.periodic import Periodic
from bot.conversations.router import Router, RouterResult, replies_of

log = logging.getLogger(__name__)

# Answers committed this long ago and still not pushed: their pushing process died in between.
PUSH_GRACE_SECONDS = 30.0
_CONCURRENT_CONVERSATIONS = 8


class Recovery(Periodic):
    """Answers pending messages and pushes undelivered answers, every few seconds."""

    def __init__(self, router: Router, channels: Channels, interval: float = 2.0) -> None:
        super().__init__(interval)
        self.router = router
        self.channels = channels
        self._limit = asyncio.Semaphore(_CONCURRENT_CONVERSATIONS)

    async def round(self, now: float) -> int:
        """One pass; returns how many messages it answered or pushed."""
        return await self.answer_pending(now) + await self.push_undelivered(now - PUSH_GRACE_SECONDS)

    async def answer_pending(self, now: float) -> int:
        """Answer the due pending messages, each conversation's in the order they were accepted."""
        inbox = self.router.inbox
        records = [r for r in [await inbox.get(mid) for mid in await inbox.due(now)] if r is not None]
        by_conversation: dict[str, list[InboxMessage]] = defaultdict(list)
        for record in sorted(records, key=lambda r: r.order):
            by_conversation[record.conversation_id].append(record)
        counts = await asyncio.gather(*(self._conversation(rs) for rs in by_conversation.values()))
        return sum(counts)

    async def _conversation(self, records: list[InboxMessage]) -> int:
        done = 0
        async with self._limit:
            for record in records:
                try:
                    result = await self.router.resume(record.id)
                except Exception:
                    log.exception("recovery of message %s failed; it stays pending", record.id)
                    return done
                if result is None or result.pending:
                    if result is not None and result.engine_down:
                        return done  # the engine is down: the conversation's later messages wait too
                    continue
                await self._push(record, result)
                done += 1
        return done

    async def _push(self, record: InboxMessage, result: RouterResult) -> None:
        # An answer another process committed first is that process's to push (or a later pass's).
        entries = result.to_push()
        if record.message.pushes_replies and entries:
            await self.channels.push(result.conversation, entries)
        await self.router.delivered(result)

    async def push_undelivered(self, before: float) -> int:
        """Push answers whose pushing process died after committing them."""
        inbox = self.router.inbox
        pushed = 0
        for message_id in await inbox.undelivered(before):
            record = await inbox.get(message_id)
            if record is None:
                await inbox.forget_expired(message_id)
                continue
            if record.state != ANSWERED:
                await inbox.delivered(message_id)
                continue
            if not await inbox.claim_push(message_id, before, before + PUSH_GRACE_SECONDS):
                continue  # another replica's pass is pushing it
            conv = await self.router.store.get(record.conversation_id)
            if conv is not None and record.message.pushes_replies:
                await self.channels.push(conv, replies_of(record))
            await inbox.delivered(message_id)
            pushed += 1
        return pushed
