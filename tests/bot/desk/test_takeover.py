"""Supervisors' take-over and reassignment, and hand back limited to the holder, against a real Redis."""

from __future__ import annotations

import pytest

from bot.conversations.model import Mode
from bot.crm.repository import CRM
from bot.desk.agents import ConversationNotFound, WrongMode
from tests.bot.desk.test_desk import Desk
from tests.conftest import TextRedis


@pytest.fixture
def desk(redis: TextRedis, crm: CRM) -> Desk:
    return Desk(redis, crm)


async def notes(desk: Desk, conv_id: str) -> list[str]:
    return [e.text for e in await desk.store.notes(conv_id)]


async def test_a_supervisor_takes_over_a_colleagues_conversation(desk: Desk) -> None:
    conv_id = await desk.handed_off("takeover-1")
    await desk.desk.take(conv_id, "小李")
    with pytest.raises(WrongMode, match="小李"):
        await desk.desk.take(conv_id, "主管")
    conv, previous = await desk.desk.give(conv_id, "主管", "主管")
    assert (conv.mode, conv.agent, previous) == (Mode.AGENT, "主管", "小李")
    assert [c.id for c in await desk.store.held_by("主管")] == [conv_id]
    assert await desk.store.held_by("小李") == []
    assert await notes(desk, conv_id) == ["Taken over by 主管 from 小李"]
    # The customer is told who joined; the former holder can no longer answer.
    told = [e.text for e in await desk.store.history(conv_id) if e.role == "system"]
    assert any("主管" in t for t in told)
    with pytest.raises(WrongMode, match="主管"):
        await desk.desk.reply(conv_id, "小李", "还在吗")


async def test_a_supervisor_reassigns_waiting_and_held_conversations(desk: Desk) -> None:
    waiting = await desk.handed_off("reassign-1")
    conv, previous = await desk.desk.give(waiting, "小王", "主管")
    assert (conv.agent, previous) == ("小王", None)
    assert waiting not in [cid for cid, _ in await desk.store.queue("logistics")]
    conv, previous = await desk.desk.give(waiting, "小李", "主管")
    assert (conv.agent, previous) == ("小李", "小王")
    assert [c.id for c in await desk.store.held_by("小李")] == [waiting]
    assert await notes(desk, waiting) == ["Reassigned to 小王 by 主管", "Reassigned to 小李 by 主管 from 小王"]
    # Nothing to take over from the bot, nor in a conversation that does not exist.
    bot = (await desk.say("reassign-2", "你好")).conversation.id
    with pytest.raises(WrongMode, match="bot"):
        await desk.desk.give(bot, "小李", "主管")
    with pytest.raises(ConversationNotFound):
        await desk.desk.give("nope", "小李", "主管")


async def test_only_the_holder_hands_back_unless_a_supervisor_does(desk: Desk) -> None:
    conv_id = await desk.handed_off("handback-holder")
    await desk.desk.take(conv_id, "小李")
    with pytest.raises(WrongMode, match="小李"):
        await desk.desk.hand_back(conv_id, "小王")
    assert (await desk.desk.hand_back(conv_id, "小李")).mode == Mode.BOT
    other = await desk.handed_off("handback-supervisor")
    await desk.desk.take(other, "小李")
    assert (await desk.desk.hand_back(other, None)).mode == Mode.BOT  # a supervisor: any
    waiting = await desk.handed_off("handback-waiting")
    assert (await desk.desk.hand_back(waiting, "小王")).mode == Mode.BOT  # nobody holds it
