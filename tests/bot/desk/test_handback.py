"""Hand back as one transaction: racing a take, and with the engine down (real Redis, stub engine)."""

from __future__ import annotations

import asyncio

from bot import keys
from bot.conversations.messages import InboundMessage
from bot.conversations.model import SKILLS, Handoff, Mode, Skill
from bot.desk.agents import WrongMode
from bot.web.container import Container
from tests.conftest import TextRedis
from tests.fakes.engine import StubEngine


async def handed_off(app: Container, sender: str) -> str:
    result = await app.router.handle(InboundMessage(channel="rest", thread_id=sender, sender=sender, text="你好"))
    await app.router.start_handoff(result.conversation, Handoff(reason="requested", skill=Skill.LOGISTICS), None)
    return result.conversation.id


async def consistent(app: Container, redis: TextRedis, conv_id: str) -> Mode:
    """The conversation's hash, queues, timers and agents' lists agree; returns its mode."""
    conv = await app.store.get(conv_id)
    assert conv is not None
    queued = [s for s in SKILLS if await redis.zscore(keys.handoff_queue(s), conv_id) is not None]
    holders = [a for a in ("小李", "小王") if await redis.sismember(keys.agent_conversations(a), conv_id)]
    if conv.mode == Mode.BOT:
        assert (conv.agent, conv.handoff, queued, holders) == (None, None, [], [])
        assert await redis.zscore(keys.sla_timers(), conv_id) is None
        assert not await redis.exists(keys.handoff_entry(conv_id))
    elif conv.mode == Mode.AGENT:
        assert conv.agent is not None and holders == [conv.agent] and queued == []
    else:
        assert conv.agent is None and holders == [] and len(queued) == 1
    return conv.mode


async def test_a_hand_back_racing_a_take_leaves_one_consistent_state(app: Container, redis: TextRedis) -> None:
    outcomes: set[Mode] = set()
    for i in range(20):
        conv_id = await handed_off(app, f"race-{i}")
        await app.desk.take(conv_id, "小李")
        results = await asyncio.gather(
            app.desk.hand_back(conv_id), app.desk.take(conv_id, "小王"), return_exceptions=True
        )
        assert not isinstance(results[0], BaseException), results[0]
        assert not isinstance(results[1], BaseException) or isinstance(results[1], WrongMode), results[1]
        outcomes.add(await consistent(app, redis, conv_id))
    assert outcomes <= {Mode.BOT, Mode.AGENT}


async def test_a_waiting_conversation_handed_back_while_being_taken(app: Container, redis: TextRedis) -> None:
    for i in range(20):
        conv_id = await handed_off(app, f"race-waiting-{i}")
        await asyncio.gather(app.desk.hand_back(conv_id), app.desk.take(conv_id, "小王"), return_exceptions=True)
        await consistent(app, redis, conv_id)


async def test_an_agents_hand_back_refuses_a_conversation_another_agent_took_meanwhile(app: Container) -> None:
    # 小李 hands back a waiting conversation while 小王 takes it: 小王's conversation must not go back to the
    # bot behind his back (the permission is checked in the hand back's transaction, not before it).
    conv_id = await handed_off(app, "handback-taken-meanwhile")
    get = app.desk.get

    async def read_then_taken(conv: str) -> object:
        seen = await get(conv)  # 小李's check reads it as waiting...
        await app.desk.take(conv, "小王")  # ...and 小王 takes it right after
        return seen

    app.desk.get = read_then_taken  # type: ignore[method-assign,assignment]
    try:
        refused = await asyncio.gather(app.desk.hand_back(conv_id, by="小李"), return_exceptions=True)
    finally:
        del app.desk.get
    assert isinstance(refused[0], WrongMode)
    conv = await app.store.get(conv_id)
    assert conv is not None and conv.mode == Mode.AGENT and conv.agent == "小王"


async def test_two_hand_backs_at_once_tell_the_customer_once(app: Container) -> None:
    conv_id = await handed_off(app, "double-handback")
    await app.desk.take(conv_id, "小李")
    await asyncio.gather(app.desk.hand_back(conv_id), app.desk.hand_back(conv_id))
    notices = [e for e in await app.store.history(conv_id) if e.template == "utter_bot_back"]
    assert len(notices) == 1


async def test_with_the_engine_down_a_hand_back_completes_and_the_reset_waits_for_the_engine(
    app: Container, engine: StubEngine
) -> None:
    conv_id = await handed_off(app, "handback-engine-down")
    await app.desk.take(conv_id, "小李")
    engine.down = True
    conv = await app.desk.hand_back(conv_id)  # no error: the switch does not depend on the engine
    assert conv.mode == Mode.BOT and conv.agent is None and conv.handoff is None
    stored = await app.store.get(conv_id)
    assert stored is not None and stored.reset_engine
    assert (await app.store.history(conv_id))[-1].template == "utter_bot_back"  # the customer is told

    # Still down: the customer's next message gets the busy notice, and the reset is still owed.
    say = InboundMessage(channel="rest", thread_id="handback-engine-down", sender="handback-engine-down", text="在吗")
    result = await app.router.handle(say)
    assert result.engine_down and [r.template for r in result.replies] == ["utter_engine_delayed"]
    assert engine.resets == []
    # Back up: the dialogue state is reset before the message is answered, once.
    engine.down = False
    again = InboundMessage(channel="rest", thread_id="handback-engine-down", sender="handback-engine-down", text="你好")
    result = await app.router.handle(again)
    assert engine.resets == [conv_id]
    assert result.replies[0].text == "answer to: 你好"
    stored = await app.store.get(conv_id)
    assert stored is not None and not stored.reset_engine
    await app.router.handle(
        InboundMessage(channel="rest", thread_id="handback-engine-down", sender="handback-engine-down", text="谢谢")
    )
    assert engine.resets == [conv_id]


async def test_with_the_engine_up_the_reset_happens_at_once(app: Container, engine: StubEngine) -> None:
    conv_id = await handed_off(app, "handback-engine-up")
    await app.desk.hand_back(conv_id)
    assert engine.resets == [conv_id]
    stored = await app.store.get(conv_id)
    assert stored is not None and not stored.reset_engine
