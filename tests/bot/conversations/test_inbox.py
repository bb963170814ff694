"""Every accepted message answered exactly once: engine outages, crashed processes, retries, replicas.

Real Redis and the app's own object graph; the engine is a stub that can be down, and "a process that
died" is a message accepted (or leased) by a router that never finishes it.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from bot import keys
from bot.conversations.inbox import ANSWERED, DELIVERED, PENDING
from bot.conversations.messages import InboundMessage, OutboundMessage
from bot.conversations.model import Conversation
from bot.conversations.router import RECOVERY_GRACE_SECONDS, Router
from bot.conversations.store import entry_fields
from bot.crm.repository import CRM
from bot.settings import Settings
from bot.web.container import Container
from tests.conftest import TextRedis, in_process
from tests.fakes.engine import StubEngine


def said(
    sender: str, text: str, key: str | None = None, *, pushes_replies: bool = False, redeliverable: bool = False
) -> InboundMessage:
    return InboundMessage(
        channel="rest",
        thread_id=sender,
        sender=sender,
        text=text,
        idempotency_key=key,
        pushes_replies=pushes_replies,
        redeliverable=redeliverable,
    )


async def bot_texts(app: Container, conv_id: str) -> list[str]:
    return [e.text for e in await app.store.history(conv_id) if e.role == "bot"]


async def test_an_engine_outage_tells_the_customer_once_then_answers_everything_in_order(
    app: Container, engine: StubEngine
) -> None:
    engine.down = True
    first = await app.router.handle(said("outage", "第一个问题"))
    assert first.engine_down and first.pending
    assert [r.template for r in first.replies] == ["utter_engine_delayed"]
    second = await app.router.handle(said("outage", "第二个问题"))
    assert second.pending and second.replies == []  # behind the first: no second notice
    conv_id = first.conversation.id
    assert await bot_texts(app, conv_id) == [first.replies[0].text]
    engine.down = False
    # The recovery pass (every replica runs it) answers both, in the order they were asked, once.
    answered = await app.recovery.round(time.time() + 60)
    assert answered == 2
    texts = await bot_texts(app, conv_id)
    assert texts[1:] == ["answer to: 第一个问题", "answer to: 第二个问题"]
    assert await app.recovery.round(time.time() + 120) == 0
    assert await bot_texts(app, conv_id) == texts
    assert await app.router.inbox.due(time.time() + 3600) == []


async def test_a_message_left_by_a_dead_process_is_answered_by_the_recovery_pass(app: Container) -> None:
    conv, _ = await app.store.find_or_open("rest", "crashed", None)
    # A process accepted it (the customer saw it recorded) and died before asking the engine.
    accepted = await app.router.inbox.accept(
        conv.id, said("crashed", "DD202405001 到哪了", "k1"), entry_fields("customer", "DD202405001 到哪了"), due_in=0
    )
    assert accepted.new
    assert await app.recovery.round(time.time()) == 1
    assert await bot_texts(app, conv.id) == ["answer to: DD202405001 到哪了"]
    record = await app.router.inbox.get(accepted.message_id)
    assert record is not None and record.state == DELIVERED


async def test_a_retry_while_a_dead_process_holds_the_lease_takes_over_and_answers_once(
    redis: TextRedis, crm: CRM, engine: StubEngine
) -> None:
    app = in_process(redis, crm, engine)
    dead = Router(app.store, app.customers, engine, app.templates, lease_seconds=1.0)
    conv, _ = await app.store.find_or_open("rest", "retry", None)
    accepted = await dead.inbox.accept(
        conv.id, said("retry", "在吗", "k2"), entry_fields("customer", "在吗"), due_in=60
    )
    assert await dead.inbox.lease(accepted.message_id, dead.owner)  # ...and then it died
    again = await app.router.handle(said("retry", "在吗", "k2"))  # the channel's retry
    assert again.duplicate and [r.text for r in again.replies] == ["answer to: 在吗"]
    assert engine.texts == ["在吗"]
    third = await app.router.handle(said("retry", "在吗", "k2"))
    assert [r.text for r in third.replies] == ["answer to: 在吗"]  # the same answer, not a new one
    assert engine.texts == ["在吗"]
    assert await bot_texts(app, conv.id) == ["answer to: 在吗"]


async def test_the_same_key_from_two_senders_is_two_messages(app: Container, engine: StubEngine) -> None:
    a = await app.router.handle(said("sender-a", "你好", "same-key"))
    b = await app.router.handle(said("sender-b", "你好", "same-key"))
    assert not a.duplicate and not b.duplicate
    assert engine.texts == ["你好", "你好"]


async def test_two_replicas_answering_one_message_commit_one_answer(
    redis: TextRedis, crm: CRM, engine: StubEngine
) -> None:
    one = in_process(redis, crm, engine)
    two = in_process(redis, crm, engine)
    engine.delay = 0.2
    conv, _ = await one.store.find_or_open("rest", "replicas", None)
    accepted = await one.router.inbox.accept(
        conv.id, said("replicas", "你好", "k3"), entry_fields("customer", "你好"), due_in=0
    )
    await asyncio.gather(one.recovery.round(time.time()), two.recovery.round(time.time()))
    assert await bot_texts(one, conv.id) == ["answer to: 你好"]
    record = await one.router.inbox.get(accepted.message_id)
    assert record is not None and record.state in (ANSWERED, DELIVERED)


async def test_a_message_answered_but_not_pushed_is_pushed_by_the_recovery_pass(
    app: Container, engine: StubEngine, redis: TextRedis
) -> None:
    pushed: list[str] = []

    class Pushing:
        async def deliver(self, conversation: Conversation, message: OutboundMessage) -> None:
            pushed.append(message.text)

        @classmethod
        def name(cls) -> str:
            return "rest"

    app.channels._by_name["rest"] = Pushing()  # type: ignore[assignment]
    result = await app.router.handle(said("push", "你好", "k4", pushes_replies=True))
    assert not result.pending and pushed == []  # the channel (which died now) was to push it itself
    assert await app.recovery.round(time.time()) == 0  # not yet: it may still be pushing
    assert await app.recovery.push_undelivered(time.time() + 60) == 1
    assert pushed == ["answer to: 你好"]
    record = await app.router.inbox.get(result.message_id)
    assert record is not None and record.state == DELIVERED


async def test_a_redeliverable_message_is_forgotten_while_the_engine_is_down(
    app: Container, engine: StubEngine
) -> None:
    engine.down = True
    result = await app.router.handle(said("mail", "where is my order", "<m1@x>", redeliverable=True))
    assert result.engine_down and result.replies == []  # no notice: the mail channel reads it again later
    assert await app.router.inbox.get(result.message_id) is None
    engine.down = False
    again = await app.router.handle(said("mail", "where is my order", "<m1@x>", redeliverable=True))
    assert not again.duplicate and [r.text for r in again.replies] == ["answer to: where is my order"]


async def test_a_new_message_is_not_answered_before_an_earlier_one(app: Container, engine: StubEngine) -> None:
    engine.down = True
    await app.router.handle(said("order", "一"))
    engine.down = False
    result = await app.router.handle(said("order", "二"))
    assert [r.text for r in result.earlier_replies] == ["answer to: 一"]
    assert [r.text for r in result.replies] == ["answer to: 二"]
    assert engine.texts[-2:] == ["一", "二"]


def test_the_grace_period_leaves_a_live_processor_time() -> None:
    assert RECOVERY_GRACE_SECONDS >= 10
    assert Settings(_env_file=None).recovery_interval_seconds <= 5  # type: ignore[call-arg]
    assert PENDING and keys.inbox_pending()


async def test_a_retry_reaching_another_process_waits_for_the_first_callers_answer(
    redis: TextRedis, crm: CRM, engine: StubEngine
) -> None:
    # Two replicas: the first accepts the message and holds its lease from that moment (one script);
    # the client's retry reaches the second, which finds it leased, waits, and returns the same answer.
    first, second = in_process(redis, crm, engine), in_process(redis, crm, engine)
    engine.delay = 0.5
    original = asyncio.create_task(first.router.handle(said("race", "问题", "k-race")))
    await asyncio.sleep(0.2)  # accepted and leased by the first, which is asking the engine
    retry = asyncio.create_task(second.router.handle(said("race", "问题", "k-race")))
    answered, again = await original, await retry
    assert [r.text for r in answered.replies] == ["answer to: 问题"]
    assert [r.text for r in again.replies] == ["answer to: 问题"]
    assert not answered.pending and not answered.duplicate and again.duplicate
    assert engine.calls == 1
    assert await bot_texts(first, answered.conversation.id) == ["answer to: 问题"]


async def test_a_retry_answered_by_another_process_first_gives_the_first_caller_that_answer(
    redis: TextRedis, crm: CRM, engine: StubEngine
) -> None:
    # The gap that remains: a message accepted behind an earlier unanswered one is leased only once that
    # one is answered. Before the first replica takes that lease, the client's retry reaches the second,
    # which finds the message unleased and answers it. The first must return that answer.
    first, second = in_process(redis, crm, engine), in_process(redis, crm, engine)
    engine.down = True
    await first.router.handle(said("race", "先前的问题"))  # waits for the engine
    engine.down = False
    lease = first.router.inbox.lease
    gate = asyncio.Event()

    async def late_lease(message_id: str, owner: str) -> bool:
        if message_id != held.get("id"):
            return await lease(message_id, owner)
        await gate.wait()
        return await lease(message_id, owner)

    held: dict[str, str] = {}
    accept = first.router.inbox.accept

    async def noting_accept(*args: object, **kwargs: object) -> object:
        accepted = await accept(*args, **kwargs)  # type: ignore[arg-type]
        held["id"] = accepted.message_id
        return accepted

    first.router.inbox.lease = late_lease  # type: ignore[method-assign]
    first.router.inbox.accept = noting_accept  # type: ignore[method-assign,assignment]
    engine.delay = 0.5
    original = asyncio.create_task(first.router.handle(said("race", "问题", "k-race")))
    await asyncio.sleep(0.8)  # the earlier message answered; the new one accepted, waiting before its lease
    retry = asyncio.create_task(second.router.handle(said("race", "问题", "k-race")))
    await asyncio.sleep(0.2)  # the second holds the lease and is asking the engine
    gate.set()
    answered, again = await original, await retry
    assert [r.text for r in answered.replies] == ["answer to: 问题"]
    assert [r.text for r in again.replies] == ["answer to: 问题"]
    assert not answered.pending and not answered.duplicate
    assert engine.texts.count("问题") == 1
    texts = await bot_texts(first, answered.conversation.id)
    assert texts[1:] == ["answer to: 先前的问题", "answer to: 问题"]  # after the one "on its way" notice


async def test_a_slow_answer_keeps_its_lease_and_a_fast_one_leaves_no_renewal_behind(
    app: Container, redis: TextRedis, crm: CRM, engine: StubEngine
) -> None:
    slow = Router(app.store, app.customers, engine, app.templates, lease_seconds=0.6)
    engine.delay = 1.5  # over two lease lengths: only renewals keep it
    answering = asyncio.create_task(slow.handle(said("slow", "慢慢来", "k-slow")))
    await asyncio.sleep(1.0)
    leases = [key async for key in redis.scan_iter(match=keys.inbox_lease("*"))]
    assert len(leases) == 1 and await redis.get(leases[0]) == slow.owner
    result = await answering
    assert [r.text for r in result.replies] == ["answer to: 慢慢来"] and engine.calls == 1
    assert [key async for key in redis.scan_iter(match=keys.inbox_lease("*"))] == []
    engine.delay = 0
    tasks = len(asyncio.all_tasks())
    await slow.handle(said("slow", "快", "k-fast"))
    assert len(asyncio.all_tasks()) == tasks  # no renewal task was left running


class _Pushing:
    """A channel that pushes its replies (as Telegram does), noting what it sent, slowly."""

    def __init__(self, sent: list[str], delay: float = 0.0) -> None:
        self.sent = sent
        self.delay = delay

    async def deliver(self, conversation: Conversation, message: OutboundMessage) -> None:
        await asyncio.sleep(self.delay)
        self.sent.append(message.text)

    @classmethod
    def name(cls) -> str:
        return "rest"


async def test_two_replicas_recovery_passes_push_an_orphaned_answer_once(
    redis: TextRedis, crm: CRM, engine: StubEngine
) -> None:
    # The process that committed the answers died before pushing them; every replica's pass finds them
    # at once, and each answer must reach the customer once (a slow send included), not once per replica.
    sent: list[str] = []
    one, two = in_process(redis, crm, engine), in_process(redis, crm, engine)
    for app in (one, two):
        app.channels._by_name["rest"] = _Pushing(sent, delay=0.05)  # type: ignore[assignment]
    dead = in_process(redis, crm, engine)
    for i in range(5):
        await dead.router.handle(said(f"orphan-{i}", f"问题{i}", f"ko-{i}", pushes_replies=True))
    later = time.time() + 60
    counts = await asyncio.gather(one.recovery.push_undelivered(later), two.recovery.push_undelivered(later))
    assert sum(counts) == 5
    assert sorted(sent) == sorted(f"answer to: 问题{i}" for i in range(5))
    assert await one.router.inbox.undelivered(time.time() + 3600) == []


async def test_a_claimed_push_whose_claimer_died_is_pushed_again_after_the_grace(
    app: Container, engine: StubEngine
) -> None:
    sent: list[str] = []
    app.channels._by_name["rest"] = _Pushing(sent)  # type: ignore[assignment]
    result = await app.router.handle(said("claimer", "你好", "kc", pushes_replies=True))
    # A pass 30 s after the commit claims it (it looks for answers committed a grace period before its
    # time), and its process dies before pushing.
    then = time.time() + 1
    assert await app.router.inbox.claim_push(result.message_id, then, then + 30)
    assert not await app.router.inbox.claim_push(result.message_id, then, then + 30)  # another replica's pass
    assert await app.recovery.push_undelivered(then + 29) == 0  # passes within the next grace period
    assert await app.recovery.push_undelivered(then + 31) == 1  # the first after it
    assert sent == ["answer to: 你好"]


async def test_an_answer_another_replica_committed_first_is_pushed_by_it_alone(
    redis: TextRedis, crm: CRM, engine: StubEngine
) -> None:
    # Both replicas' recovery passes take up the same pending message; the second reads it as pending,
    # the first commits (and releases the lease) before the second takes the lease. The second must
    # return that answer as answered elsewhere, and push nothing of it.
    sent_one: list[str] = []
    sent_two: list[str] = []
    one, two = in_process(redis, crm, engine), in_process(redis, crm, engine)
    one.channels._by_name["rest"] = _Pushing(sent_one)  # type: ignore[assignment]
    two.channels._by_name["rest"] = _Pushing(sent_two)  # type: ignore[assignment]
    conv, _ = await one.store.find_or_open("rest", "elsewhere", None)
    accepted = await one.router.inbox.accept(
        conv.id, said("elsewhere", "你好", "ke", pushes_replies=True), entry_fields("customer", "你好"), due_in=0
    )
    committed = asyncio.Event()
    lease = two.router.inbox.lease

    async def late_lease(message_id: str, owner: str) -> bool:
        await committed.wait()
        return await lease(message_id, owner)

    two.router.inbox.lease = late_lease  # type: ignore[method-assign]
    second = asyncio.create_task(two.router.resume(accepted.message_id))
    await asyncio.sleep(0.05)  # the second has read the record as pending and waits before the lease
    first = await one.router.resume(accepted.message_id)
    committed.set()
    late = await second
    assert first is not None and not first.answered_elsewhere and first.to_push()
    assert late is not None and late.answered_elsewhere and not late.pending
    assert [r.text for r in late.replies] == ["answer to: 你好"]  # for a caller that waits for it
    assert late.to_push() == []
    await two.router.delivered(late)  # leaves the push to the first
    assert accepted.message_id in await two.router.inbox.undelivered(time.time() + 60)
    await one.recovery._push(accepted.record, first)  # type: ignore[arg-type]
    assert sent_one == ["answer to: 你好"] and sent_two == []
    assert engine.texts == ["你好"]


async def test_a_replica_whose_clock_runs_ahead_does_not_reorder_a_conversation(
    app: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Replica A's clock is 10 s ahead: its message is accepted first (Redis ran its script first) but
    # stamped later than the one replica B accepts right after. The conversation's order is Redis's, so
    # B's message still waits for A's, and A's does not wait for B's.
    conv, _ = await app.store.find_or_open("rest", "skew", None)
    inbox = app.router.inbox
    real = time.time

    class Ahead:
        @staticmethod
        def time() -> float:
            return real() + 10

    monkeypatch.setattr("bot.conversations.inbox.time", Ahead)
    first = await inbox.accept(conv.id, said("skew", "一", "s1"), entry_fields("customer", "一"), due_in=60)
    monkeypatch.undo()
    second = await inbox.accept(conv.id, said("skew", "二", "s2"), entry_fields("customer", "二"), due_in=60)
    assert first.record is not None and second.record is not None
    assert second.record.accepted_at < first.record.accepted_at
    assert await inbox.earlier(conv.id, second.record) == [first.message_id]
    assert await inbox.earlier(conv.id, first.record) == []
    stored = await inbox.get(second.message_id)
    assert stored is not None and stored.order == second.record.order > first.record.order


async def test_a_take_over_breaks_only_a_lease_nobody_renews(redis: TextRedis, crm: CRM, engine: StubEngine) -> None:
    # The mail reader found a mail it never committed and takes it over; meanwhile another replica's
    # recovery pass is answering it under a lease it renews. That lease is kept and its answer used: the
    # engine is asked once. A lease its dead holder stopped renewing is broken at once.
    recovering, reader = in_process(redis, crm, engine), in_process(redis, crm, engine)
    engine.delay = 0.5
    conv, _ = await recovering.store.find_or_open("rest", "mail-take-over", None)
    msg = said("mail-take-over", "发票", "<m2@x>", redeliverable=True)
    accepted = await recovering.router.inbox.accept(conv.id, msg, entry_fields("customer", "发票"), due_in=0)
    answering = asyncio.create_task(recovering.recovery.round(time.time()))
    await asyncio.sleep(0.2)  # the pass holds the lease and asks the engine
    taken = await reader.router.handle(msg, take_over=True)
    await answering
    assert [r.text for r in taken.replies] == ["answer to: 发票"]
    assert engine.texts == ["发票"]

    inbox = Router(recovering.store, recovering.customers, engine, recovering.templates, lease_seconds=1.0).inbox
    assert await inbox.lease(accepted.message_id, "dead")
    assert not await inbox.break_lease(accepted.message_id)  # just taken: its holder may be alive
    await asyncio.sleep(0.6)  # not renewed for over a third of its time
    assert await inbox.break_lease(accepted.message_id)
    assert not await inbox.leased(accepted.message_id)
