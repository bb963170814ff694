"""Conversation store against a real Redis."""

from __future__ import annotations

import asyncio

from bot import keys
from bot.conversations.model import Conversation, Handoff, Mode, Skill
from bot.conversations.store import ConversationStore
from tests.conftest import TextRedis


async def test_find_or_open_returns_the_same_conversation_for_a_thread(redis: TextRedis) -> None:
    store = ConversationStore(redis)
    first, new = await store.find_or_open("rest", "alice", None)
    again, new_again = await store.find_or_open("rest", "alice", None)
    other, _ = await store.find_or_open("webchat", "alice", None)
    assert new
    assert not new_again
    assert first.id == again.id
    assert other.id != first.id


async def test_replicas_racing_on_a_thread_first_message_open_one_conversation(redis: TextRedis) -> None:
    # Two replicas opening the thread of the same first message at once (a retry landing on the other
    # one): both must get the same conversation, or the answer goes to a transcript the thread no longer
    # names (seen in the scale-out test when the loser read the winner's id before its hash was written).
    class SlowReplica(ConversationStore):
        async def _write(self, conv: Conversation, mapping: dict[str, str]) -> None:
            await asyncio.sleep(0.05)  # a replica paused between two of its round trips
            await super()._write(conv, mapping)

    async def later(store: ConversationStore, thread: str) -> tuple[Conversation, bool]:
        await asyncio.sleep(0.01)
        return await store.open("rest", thread, None)

    slow, quick = SlowReplica(redis), ConversationStore(redis)
    (a, a_new), (b, b_new) = await asyncio.gather(slow.open("rest", "race", None), later(quick, "race"))
    assert a.id == b.id
    assert a_new != b_new
    stores = [slow, quick]
    for round_ in range(20):
        opened = await asyncio.gather(*(stores[i % 2].open("rest", f"race-{round_}", None) for i in range(8)))
        assert len({conv.id for conv, _ in opened}) == 1
        assert sum(new for _, new in opened) == 1
        assert await redis.get(keys.thread("rest", f"race-{round_}")) == opened[0][0].id


async def test_a_thread_naming_an_expired_conversation_gets_a_new_one(redis: TextRedis) -> None:
    store = ConversationStore(redis)
    old, _ = await store.open("rest", "carol", None)
    await redis.delete(keys.conversation(old.id))
    new, opened = await store.open("rest", "carol", "C202405001")
    assert opened
    assert new.id != old.id
    assert (await store.find("rest", "carol")) == new


async def test_transcript_history_after_a_seq(redis: TextRedis) -> None:
    store = ConversationStore(redis)
    conv, _ = await store.find_or_open("rest", "bob", None)
    a = await store.append(conv.id, "customer", "你好", client_id="c1")
    b = await store.append(
        conv.id,
        "bot",
        "您好",
        buttons=[{"title": "查订单", "payload": "/order_status"}],
        template="utter_greet",
        template_version=1,
    )
    everything = await store.history(conv.id)
    assert [e.seq for e in everything] == [a.seq, b.seq]
    after = await store.history(conv.id, after=a.seq)
    assert [e.text for e in after] == ["您好"]
    assert after[0].buttons[0]["payload"] == "/order_status"
    assert after[0].template == "utter_greet"
    assert after[0].template_version == 1
    assert everything[0].frame()["client_id"] == "c1"


async def test_idempotency_keys_claim_once(redis: TextRedis) -> None:
    store = ConversationStore(redis)
    assert await store.claim_idempotency_key("email", "<m1@example.com>")
    assert not await store.claim_idempotency_key("email", "<m1@example.com>")
    assert 0 < await redis.ttl(keys.seen("email", "<m1@example.com>")) <= keys.CLAIM_TTL_SECONDS
    await store.complete_idempotency_key("email", "<m1@example.com>")
    assert await redis.ttl(keys.seen("email", "<m1@example.com>")) > keys.CLAIM_TTL_SECONDS
    assert not await store.claim_idempotency_key("email", "<m1@example.com>")
    await store.release_idempotency_key("email", "<m1@example.com>")
    assert await store.claim_idempotency_key("email", "<m1@example.com>")


async def test_handoff_queue_orders_by_priority_then_wait(redis: TextRedis) -> None:
    store = ConversationStore(redis)
    convs = [(await store.find_or_open("rest", f"c{i}", None))[0] for i in range(3)]
    await store.start_handoff(convs[0], Handoff("requested", Skill.LOGISTICS, 1, "s0", queued_at=100.0))
    await store.start_handoff(convs[1], Handoff("vip_complaint", Skill.LOGISTICS, 9, "s1", queued_at=200.0))
    await store.start_handoff(convs[2], Handoff("requested", Skill.LOGISTICS, 1, "s2", queued_at=50.0))
    queue = await store.queue("logistics")
    assert [cid for cid, _ in queue] == [convs[1].id, convs[2].id, convs[0].id]
    reloaded = await store.get(convs[1].id)
    assert reloaded is not None
    assert reloaded.mode == "waiting"
    assert reloaded.handoff is not None
    assert reloaded.handoff.reason == "vip_complaint"


async def test_an_agents_conversations_are_those_still_with_them(redis: TextRedis) -> None:
    store = ConversationStore(redis)
    convs = [(await store.find_or_open("rest", f"held{i}", None))[0] for i in range(4)]
    for i, conv in enumerate(convs):
        conv.mode, conv.agent = Mode.AGENT, "小李" if i < 3 else "小王"
        await store.update(conv, "mode", "agent")
        await store.hold(conv.agent, conv.id)
    assert 0 < await redis.ttl(keys.agent_conversations("小李")) <= keys.CONVERSATION_TTL_SECONDS
    # The most recently active comes first.
    await store.update(convs[0], "mode")
    assert [c.id for c in await store.held_by("小李")] == [convs[0].id, convs[2].id, convs[1].id]
    assert [c.id for c in await store.held_by("小王")] == [convs[3].id]

    await store.release("小李", convs[1].id)
    # A conversation that went back to the bot behind the set's back is not listed, nor one that expired.
    convs[2].mode, convs[2].agent = Mode.BOT, None
    await store.update(convs[2], "mode", "agent")
    await redis.delete(keys.conversation(convs[0].id))
    assert await store.held_by("小李") == []
    assert await redis.smembers(keys.agent_conversations("小李")) == {convs[2].id}
    assert await store.held_by("nobody") == []


async def test_two_agents_taking_at_once_leave_exactly_one_holder(redis: TextRedis) -> None:
    store = ConversationStore(redis)
    conv, _ = await store.find_or_open("rest", "race", None)
    results = await asyncio.gather(*(store.claim_for_agent(conv.id, f"agent-{n}") for n in range(8)))
    winners = [c.agent for c, holder in results if c is not None and holder is None]
    assert len(winners) == 1
    losers = {holder for _c, holder in results if holder is not None}
    assert losers == {winners[0]}
    stored = await store.get(conv.id)
    assert stored is not None and (stored.mode, stored.agent) == ("agent", winners[0])
    assert await store.claim_for_agent("no-such-conversation", "agent-0") == (None, None)


async def test_a_customer_message_does_not_undo_a_take(redis: TextRedis) -> None:
    store = ConversationStore(redis)
    conv, _ = await store.find_or_open("rest", "carol", None)
    stale = await store.get(conv.id)  # what the router read before the agent took the conversation
    assert stale is not None and stale.mode == "bot"
    await store.claim_for_agent(conv.id, "Lin")
    stale.locale = "en"
    await store.update(stale, "customer_id", "locale")
    now = await store.get(conv.id)
    assert now is not None
    assert (now.mode, now.agent, now.locale) == ("agent", "Lin", "en")
