"""The agent desk against a real Redis: SLA timers and escalation, the satisfaction survey, internal
notes and transfers.

The desk, router, store and watcher are the app's own; only the engine is a stub (these tests are
about what happens around it) and the clock of the SLA watcher is passed in.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from bot import keys
from bot.conversations.messages import InboundMessage
from bot.conversations.model import MAX_PRIORITY, Handoff, Mode, Skill
from bot.crm.repository import CRM
from bot.desk.agents import ConversationNotFound, WrongMode
from bot.desk.assign import Assigner
from bot.desk.sla import SlaPolicy, SlaWatcher
from bot.hours import BusinessHours
from tests.conftest import TextRedis, in_process
from tests.fakes.engine import StubEngine

MINUTE = 60.0
POLICY = SlaPolicy(first_response=30 * MINUTE, escalate_after=60 * MINUTE)


class Desk:
    """The pieces a test drives: store, router, desk, watcher, engine (the app's own, from its composition root)."""

    def __init__(self, redis: TextRedis, crm: CRM, hours: BusinessHours | None = None, **settings: Any) -> None:
        self.engine = StubEngine()
        self.app = in_process(redis, crm, self.engine, hours=hours, **settings)
        self.store = self.app.store
        self.router = self.app.router
        self.desk = self.app.desk
        self.watcher = SlaWatcher(self.store, POLICY)

    async def say(self, sender: str, text: str) -> Any:
        return await self.router.handle(InboundMessage(channel="rest", thread_id=sender, sender=sender, text=text))

    async def handed_off(self, sender: str, *, skill: str = "logistics", priority: int = 0) -> str:
        result = await self.say(sender, "你好")
        conv = result.conversation
        await self.router.start_handoff(conv, Handoff(reason="requested", skill=Skill(skill), priority=priority), None)
        return str(conv.id)


@pytest.fixture
def desk(redis: TextRedis, crm: CRM) -> Desk:
    return Desk(redis, crm)


async def test_a_handoff_is_due_after_the_target_and_its_timer_runs(desk: Desk) -> None:
    before = time.time()
    conv_id = await desk.handed_off("sla-timer")
    conv = await desk.store.get(conv_id)
    assert conv is not None and conv.handoff is not None
    assert conv.handoff.due_at == pytest.approx(conv.handoff.queued_at + 30 * MINUTE)
    assert await desk.store.sla_timers_due(before + 29 * MINUTE) == []
    assert await desk.store.sla_timers_due(before + 31 * MINUTE) == [conv_id]
    assert POLICY.state(conv.handoff, before)["state"] == "ok"
    assert POLICY.state(conv.handoff, before + 25 * MINUTE)["state"] == "due_soon"
    assert POLICY.state(conv.handoff, before + 31 * MINUTE)["state"] == "overdue"


async def test_a_missed_target_is_flagged_then_escalated_to_the_head_of_the_queue(desk: Desk) -> None:
    early = await desk.handed_off("sla-vip", priority=MAX_PRIORITY)  # a VIP complaint queued first
    late = await desk.handed_off("sla-ordinary", priority=0)
    now = time.time()
    assert [cid for cid, _ in await desk.store.queue("logistics")] == [early, late]

    # Both miss the 30-minute target: flagged, not yet escalated.
    happened = dict(await desk.watcher.check(now + 31 * MINUTE))
    assert happened == {early: "breached", late: "breached"}
    conv = await desk.store.get(late)
    assert conv is not None and conv.handoff is not None
    assert conv.handoff.breached_at == pytest.approx(now + 31 * MINUTE)
    assert conv.handoff.priority == 0
    assert await desk.watcher.check(now + 32 * MINUTE) == []  # nothing more until the escalation is due

    # An hour after the breach the ordinary one is raised to the top priority; the queue keeps wait order.
    happened = dict(await desk.watcher.check(now + 92 * MINUTE))
    assert happened == {early: "escalated", late: "escalated"}
    queued = dict(await desk.store.queue("logistics"))
    assert queued[late].priority == MAX_PRIORITY and queued[late].escalated_at
    assert POLICY.state(queued[late], now + 92 * MINUTE)["state"] == "escalated"
    assert await desk.store.sla_timers_due(now + 1000 * MINUTE) == []
    sla_events = await desk.store.events_since(keys.stats_sla(), now - 60)
    assert sorted(e["event"] for e in sla_events) == ["breached", "breached", "escalated", "escalated"]


async def test_escalation_moves_an_old_ordinary_handoff_ahead_of_newer_urgent_ones(desk: Desk) -> None:
    old = await desk.handed_off("sla-old", skill="billing", priority=0)
    now = time.time()
    await desk.watcher.check(now + 31 * MINUTE)
    newer = await desk.handed_off("sla-newer", skill="billing", priority=5)
    assert [cid for cid, _ in await desk.store.queue("billing")] == [newer, old]
    await desk.watcher.check(now + 92 * MINUTE)
    assert [cid for cid, _ in await desk.store.queue("billing")] == [old, newer]


async def test_an_agents_first_answer_stops_the_timer_and_is_measured(desk: Desk) -> None:
    conv_id = await desk.handed_off("sla-answered")
    start = time.time()
    await desk.desk.take(conv_id, "小李")
    assert await desk.store.sla_timers_due(start + 31 * MINUTE) == [conv_id]  # taking is not answering
    await desk.desk.reply(conv_id, "小李", "您好，我来看看")
    await desk.desk.reply(conv_id, "小李", "已经帮您催件了")
    assert await desk.store.sla_timers_due(start + 1000 * MINUTE) == []
    assert await desk.watcher.check(start + 1000 * MINUTE) == []
    conv = await desk.store.get(conv_id)
    assert conv is not None and conv.handoff is not None and conv.handoff.first_response_at
    assert POLICY.state(conv.handoff, start + 1000 * MINUTE)["state"] == "met"
    firsts = await desk.store.events_since(keys.stats_first_responses(), start - 60)
    assert len(firsts) == 1  # the second answer is not a first response
    assert firsts[0]["met"] == "1" and firsts[0]["agent"] == "小李" and float(firsts[0]["waited"]) < 60


async def test_a_hand_back_stops_the_timer(desk: Desk) -> None:
    conv_id = await desk.handed_off("sla-handback")
    await desk.desk.hand_back(conv_id)
    assert await desk.store.sla_timers_due(time.time() + 1000 * MINUTE) == []


async def survey(desk: Desk, sender: str) -> str:
    """A handoff answered by an agent and handed back: the customer is asked for a score."""
    conv_id = await desk.handed_off(sender)
    await desk.desk.reply(conv_id, "小李", "已经为您处理好了")
    await desk.desk.hand_back(conv_id)
    return conv_id


async def test_hand_back_after_an_answer_asks_for_a_score_with_buttons(desk: Desk) -> None:
    conv_id = await survey(desk, "csat-ask")
    last = (await desk.store.history(conv_id))[-1]
    assert last.template == "utter_bot_back_csat"
    assert last.role == "bot"
    assert "小李" in last.text and "1 到 5" in last.text
    assert [b["payload"] for b in last.buttons] == ["5", "4", "3", "2", "1"]
    conv = await desk.store.get(conv_id)
    assert conv is not None and conv.survey is not None and conv.survey["agent"] == "小李"


async def test_hand_back_without_an_agents_answer_asks_nothing(desk: Desk) -> None:
    conv_id = await desk.handed_off("csat-unanswered")
    await desk.desk.hand_back(conv_id)
    assert (await desk.store.history(conv_id))[-1].template == "utter_bot_back"
    conv = await desk.store.get(conv_id)
    assert conv is not None and conv.survey is None


async def test_a_score_is_recorded_and_thanked_without_the_engine(desk: Desk) -> None:
    conv_id = await survey(desk, "csat-five")
    sent_before = len(desk.engine.texts)
    result = await desk.say("csat-five", "5分")
    assert len(desk.engine.texts) == sent_before  # the score never reached the assistant
    assert [r.template for r in result.replies] == ["utter_csat_thanks"]
    assert "5" in result.replies[0].text
    assert result.conversation.mode == "bot"
    scores = [e for e in await desk.store.events_since(keys.stats_csat(), time.time() - 60) if e["event"] == "score"]
    assert [(e["score"], e["agent"], e["conversation_id"]) for e in scores] == [("5", "小李", conv_id)]
    # Asked once: the next "5" is an ordinary message for the assistant.
    await desk.say("csat-five", "5")
    assert desk.engine.texts[-1] == "5"


async def test_a_low_score_goes_to_a_supervisor_in_the_complaints_queue(desk: Desk) -> None:
    conv_id = await survey(desk, "csat-low")
    result = await desk.say("csat-low", "非常不满意")
    assert [r.template for r in result.replies] == ["utter_csat_low"]
    assert result.conversation.mode == "waiting"
    handoff = result.conversation.handoff
    assert handoff is not None
    assert (handoff.reason, handoff.skill, handoff.priority) == ("low_csat", "complaints", MAX_PRIORITY - 1)
    assert "1/5" in handoff.summary and "小李" in handoff.summary
    assert conv_id in [cid for cid, _ in await desk.store.queue("complaints")]


async def test_anything_but_a_score_ends_the_survey_and_goes_to_the_assistant(desk: Desk) -> None:
    await survey(desk, "csat-ignored")
    result = await desk.say("csat-ignored", "DD202405001 到哪了")
    assert desk.engine.texts[-1] == "DD202405001 到哪了"
    assert result.replies[0].text == "answer to: DD202405001 到哪了"
    assert result.conversation.survey is None


async def test_an_answer_after_the_window_is_not_a_score(redis: TextRedis, crm: CRM) -> None:
    desk = Desk(redis, crm, csat_window_hours=0.0)
    await survey(desk, "csat-late")
    await desk.say("csat-late", "4")
    assert desk.engine.texts[-1] == "4"


async def test_no_survey_when_switched_off(redis: TextRedis, crm: CRM) -> None:
    desk = Desk(redis, crm, csat_enabled=False)
    conv_id = await survey(desk, "csat-off")
    assert (await desk.store.history(conv_id))[-1].template == "utter_bot_back"


async def test_a_known_customers_survey_by_email_greets_them_by_masked_name(desk: Desk) -> None:
    result = await desk.router.handle(
        InboundMessage(
            channel="email", thread_id="t-csat", sender="C202405001", text="我要人工", sender_is_contact=True
        )
    )
    conv = result.conversation
    await desk.router.start_handoff(conv, Handoff(reason="requested"), None)
    await desk.desk.reply(conv.id, "小李", "好的")
    await desk.desk.hand_back(conv.id)
    last = (await desk.store.history(conv.id))[-1]
    assert last.template == "utter_bot_back_csat"
    assert "尊敬的" in last.text and "客户" not in last.text.split("，")[0]


async def test_notes_are_for_agents_only(desk: Desk) -> None:
    conv_id = await desk.handed_off("note-private")
    await desk.desk.take(conv_id, "小李")
    note = await desk.desk.note(conv_id, "小李", "客户情绪较大，已申请补偿券")
    assert note.role == "note" and note.agent_name == "小李"
    # Customers' channels replay the transcript: the note is not in it, nor was it published to them.
    assert "补偿券" not in " ".join(e.text for e in await desk.store.history(conv_id))
    assert [(n.text, n.agent_name) for n in await desk.store.notes(conv_id)] == [("客户情绪较大，已申请补偿券", "小李")]


async def test_a_transfer_keeps_the_customers_place_and_tells_them(desk: Desk) -> None:
    first = await desk.handed_off("transfer-first", skill="logistics")
    waiting = await desk.handed_off("transfer-other", skill="billing")
    await desk.desk.take(first, "小李")
    before = await desk.store.get(first)
    assert before is not None and before.handoff is not None

    conv = await desk.desk.transfer(first, "小李", Skill.BILLING, "发票问题，转财务")
    assert (conv.mode, conv.agent) == ("waiting", None)
    queued = dict(await desk.store.queue("billing"))
    assert list(queued) == [first, waiting]  # queued earlier: still ahead of the later handoff
    assert queued[first].queued_at == before.handoff.queued_at
    assert queued[first].reason == "requested"
    assert first not in dict(await desk.store.queue("logistics"))
    assert first not in [c.id for c in await desk.store.held_by("小李")]
    assert (await desk.store.history(first))[-1].template == "utter_transfer"
    assert (await desk.store.notes(first))[-1].text == "Transferred to billing by 小李: 发票问题，转财务"
    # The billing agent takes it from there.
    assert (await desk.desk.take(first, "小王")).agent == "小王"


async def test_only_the_holder_or_anyone_while_waiting_may_transfer(desk: Desk) -> None:
    conv_id = await desk.handed_off("transfer-held")
    await desk.desk.take(conv_id, "小李")
    with pytest.raises(WrongMode, match="小李"):
        await desk.desk.transfer(conv_id, "小王", Skill.BILLING, "")
    await desk.desk.hand_back(conv_id)
    with pytest.raises(WrongMode, match="bot"):
        await desk.desk.transfer(conv_id, "小李", Skill.BILLING, "")
    with pytest.raises(ConversationNotFound):
        await desk.desk.transfer("missing", "小李", Skill.BILLING, "")


def open_never_now() -> BusinessHours:
    """A schedule that is closed at this very moment, whenever the test runs: open only tomorrow."""
    import datetime as dt

    tomorrow = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).strftime("%a").lower()
    return BusinessHours.parse(f"{tomorrow} 09:00-10:00", "UTC")


async def test_outside_business_hours_the_customer_is_told_when_agents_are_back(redis: TextRedis, crm: CRM) -> None:
    hours = open_never_now()
    desk = Desk(redis, crm, hours=hours)
    result = await desk.say("after-hours", "转人工")
    assert result.conversation.mode == "waiting"
    assert [r.template for r in result.replies] == ["utter_handoff", "utter_after_hours"]
    opens = hours.local(hours.next_open(time.time()))
    assert f"{opens.month}月{opens.day}日" in result.replies[1].text and "09:00（GMT+0）" in result.replies[1].text
    # The first answer is due 30 minutes into tomorrow's opening, not 30 minutes from now.
    handoff = result.conversation.handoff
    assert handoff is not None
    assert handoff.due_at == pytest.approx(hours.next_open(time.time()) + 30 * MINUTE)


async def test_within_business_hours_nothing_extra_is_said(redis: TextRedis, crm: CRM) -> None:
    desk = Desk(redis, crm, hours=BusinessHours.parse(""))
    result = await desk.say("open-hours", "转人工")
    assert [r.template for r in result.replies] == ["utter_handoff"]


# --- automatic assignment ---------------------------------------------------------------------


@pytest.fixture
def assigner(desk: Desk) -> Assigner:
    return Assigner(desk.store, desk.desk)


async def test_waiting_conversations_go_to_available_agents_by_skill_priority_and_capacity(
    desk: Desk, assigner: Assigner
) -> None:
    low = await desk.handed_off("assign-low", skill="billing", priority=1)
    urgent = await desk.handed_off("assign-urgent", skill="billing", priority=9)
    other = await desk.handed_off("assign-other", skill="logistics", priority=9)
    assert await assigner.assign(time.time()) == []  # nobody available: nothing moves
    await assigner.presences.set("小王", available=True, skills=("billing",), capacity=1)
    assert await assigner.assign(time.time()) == [(urgent, "小王")]  # the most urgent of their skill, one only
    conv = await desk.store.get(urgent)
    assert conv is not None and (conv.mode, conv.agent) == ("agent", "小王")
    assert (await desk.store.history(urgent))[-1].template == "utter_agent_joined"  # the customer is told
    assert (await desk.store.notes(urgent))[-1].text == "Assigned to 小王 automatically"
    assert await assigner.assign(time.time()) == []  # full
    assert {cid for cid, _ in await desk.store.queue("billing")} == {low}
    assert {cid for cid, _ in await desk.store.queue("logistics")} == {other}


async def test_the_least_loaded_agent_gets_the_next_one_in_turn(desk: Desk, assigner: Assigner) -> None:
    ids = [await desk.handed_off(f"assign-rr-{i}", priority=5) for i in range(4)]
    await desk.desk.take(ids[0], "小李")  # 小李 already holds one
    await assigner.presences.set("小李", available=True, skills=("logistics",), capacity=3)
    await assigner.presences.set("小王", available=True, skills=("logistics",), capacity=3)
    given = await assigner.assign(time.time())
    assert [agent for _, agent in given] == ["小王", "小李", "小王"]
    assert [cid for cid, _ in given] == ids[1:]  # in the order they were queued
    assert len(await desk.store.held_by("小李")) == 2 and len(await desk.store.held_by("小王")) == 2


async def test_agents_who_stop_or_go_silent_get_nothing(desk: Desk, assigner: Assigner) -> None:
    conv_id = await desk.handed_off("assign-silent")
    await assigner.presences.set("小李", available=True, skills=("logistics",), capacity=3)
    await assigner.presences.set("小李", available=False, skills=(), capacity=3)
    assert await assigner.assign(time.time()) == []
    await assigner.presences.set("小王", available=True, skills=("logistics",), capacity=3)
    assert await assigner.assign(time.time() + keys.PRESENCE_TTL_SECONDS + 1) == []  # no heartbeat since
    assert await assigner.presences.available(time.time() + keys.PRESENCE_TTL_SECONDS + 1) == []
    assert [cid for cid, _ in await desk.store.queue("logistics")] == [conv_id]


async def test_two_assigners_at_once_give_each_conversation_to_one_agent(desk: Desk) -> None:
    ids = {await desk.handed_off(f"assign-race-{i}") for i in range(6)}
    a, b = Assigner(desk.store, desk.desk), Assigner(desk.store, desk.desk)
    for agent in ("小李", "小王", "小张"):
        await a.presences.set(agent, available=True, skills=("logistics",), capacity=2)
    first, second = await asyncio.gather(a.assign(time.time()), b.assign(time.time()))
    given = first + second
    assert sorted(cid for cid, _ in given) == sorted(ids)  # each exactly once
    for agent in ("小李", "小王", "小张"):
        assert len(await desk.store.held_by(agent)) == 2


async def test_a_conversation_handed_back_meanwhile_is_not_assigned(desk: Desk) -> None:
    conv_id = await desk.handed_off("assign-gone")
    conv = await desk.store.get(conv_id)
    assert conv is not None
    conv.mode = Mode.BOT  # gone back to the bot between the queue read and the take
    await desk.store.update(conv, "mode")
    with pytest.raises(WrongMode):
        await desk.desk.take(conv_id, "小李", only_waiting=True)
