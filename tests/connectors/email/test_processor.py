"""The exactly-once point in isolation: real Redis, store, router and CRM; the engine replaced by a stub.

The whole path with the real Rasa engine is in test_email_stack.py and test_crash.py; here the engine's
answers are scripted so that its failure modes (down, slow, racing replicas) can be forced.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from bot import keys
from bot.conversations.store import ConversationStore
from bot.crm.repository import CRM
from connectors.email import keys as mail_keys
from connectors.email.errors import RetryLater
from connectors.email.outbox import OutboundMail
from connectors.email.processor import MailProcessor
from tests.conftest import TextRedis, in_process
from tests.connectors.email.mails import SUPPORT, build, guest, new_id
from tests.fakes.engine import StubEngine


def processor(redis: TextRedis, crm: CRM, engine: StubEngine) -> MailProcessor:
    app = in_process(redis, crm, engine)
    return MailProcessor(app.channel_context(), support_address=SUPPORT, max_bytes=100_000, replies_per_hour=5)


async def outbox(redis: TextRedis) -> list[OutboundMail]:
    return [OutboundMail.from_fields(fields) for _, fields in await redis.xrange(mail_keys.outbox())]


async def test_engine_down_leaves_the_mail_unprocessed_for_a_retry(redis: TextRedis, crm: CRM) -> None:
    engine = StubEngine()
    engine.down = True
    mail_id = new_id()
    raw = build(sender=guest(), subject="q", body="where is DD202405001", message_id=mail_id)
    with pytest.raises(RetryLater, match="engine"):
        await processor(redis, crm, engine).process(raw)
    assert not await redis.exists(mail_keys.mail_done(f"mid:{mail_id}"))
    assert await outbox(redis) == []
    assert not await redis.exists(keys.seen("email", f"mid:{mail_id}"))  # the router's claim is released
    engine.down = False
    outcome = await processor(redis, crm, engine).process(raw)
    assert outcome.status == "answered"
    assert len(await outbox(redis)) == 1


async def test_a_claim_left_by_a_killed_process_does_not_lose_the_mail(redis: TextRedis, crm: CRM) -> None:
    mail_id = new_id()
    # A process claimed the mail in the router, then was killed before committing anything.
    assert await ConversationStore(redis).claim_idempotency_key("email", f"mid:{mail_id}")
    outcome = await processor(redis, crm, StubEngine()).process(
        build(sender=guest(), subject="q", body="hello", message_id=mail_id)
    )
    assert outcome.status == "answered"
    assert [m.source for m in await outbox(redis)] == [f"mid:{mail_id}"]


async def test_two_replicas_racing_on_one_mail_queue_one_answer(redis: TextRedis, crm: CRM) -> None:
    engine = StubEngine()
    engine.delay = 0.2
    raw = build(sender=guest(), subject="q", body="hello", message_id=new_id())
    a, b = processor(redis, crm, engine), processor(redis, crm, engine)
    results = await asyncio.gather(a.process(raw), b.process(raw), return_exceptions=True)
    statuses = sorted(r.status if not isinstance(r, BaseException) else type(r).__name__ for r in results)
    assert statuses in (["answered", "duplicate"], ["RetryLater", "answered"])
    assert len(await outbox(redis)) == 1
    # Once committed, the same mail again is a duplicate and queues nothing.
    assert (await a.process(raw)).status == "duplicate"
    assert len(await outbox(redis)) == 1


async def test_a_reply_carrying_only_in_reply_to_our_answer_finds_its_conversation(redis: TextRedis, crm: CRM) -> None:
    engine = StubEngine()
    sender = guest()
    first_id = new_id()
    proc = processor(redis, crm, engine)
    first = await proc.process(build(sender=sender, subject="q", body="hello", message_id=first_id))
    answer = (await outbox(redis))[0]
    assert answer.message_id == first.reply_message_id
    # Some mailers send only In-Reply-To, pointing at our answer, and no References.
    second = await proc.process(
        build(sender=sender, subject="Re: q", body="more", message_id=new_id(), in_reply_to=answer.message_id)
    )
    assert second.conversation_id == first.conversation_id
    state = await redis.hgetall(mail_keys.mail_conversation(first.conversation_id))
    assert state["root"] == first_id


async def test_outcomes_are_logged_with_their_reason(redis: TextRedis, crm: CRM) -> None:
    proc = processor(redis, crm, StubEngine())
    bulk_id = new_id()
    outcome = await proc.process(
        build(sender=guest(), subject="news", body="sale", message_id=bulk_id, headers={"Precedence": "bulk"})
    )
    assert (outcome.status, outcome.reason) == ("suppressed", "precedence")
    record = json.loads(await redis.get(mail_keys.mail_done(f"mid:{bulk_id}")))
    assert record["status"] == "suppressed"
    log = await redis.xrange(mail_keys.mail_log())
    assert log[-1][1]["message_id"] == bulk_id and log[-1][1]["reason"] == "precedence"
    assert await outbox(redis) == []
