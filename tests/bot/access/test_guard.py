"""The guard interceptor through the real router, Redis and CRM, with a stub engine: second factors,
locks, replayed questions, new addresses and confirmations."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from bot import keys
from bot.access.state import OrderAccess, PendingChange
from bot.conversations.messages import InboundMessage
from bot.conversations.router import RouterResult
from bot.crm.records import OrderStatus, RefundStatus
from bot.crm.repository import CRM
from bot.web.container import Container
from tests.conftest import TextRedis, in_process
from tests.fakes.engine import StubEngine


@pytest.fixture
def access(redis: TextRedis) -> OrderAccess:
    return OrderAccess(redis)


class Chat:
    """One guest's REST conversation with the in-process app."""

    def __init__(self, app: Container) -> None:
        self.app = app
        self.sender = f"guest-{uuid.uuid4().hex[:8]}"
        self.conv_id = ""

    async def say(self, text: str) -> str:
        result: RouterResult = await self.app.router.handle(
            InboundMessage(channel="rest", thread_id=self.sender, sender=self.sender, text=text)
        )
        self.conv_id = result.conversation.id
        return " ".join(r.text for r in result.replies)

    async def open(self) -> str:
        await self.say("你好")
        return self.conv_id

    async def asked(self, access: OrderAccess, order_id: str) -> str:
        """Open the conversation with a challenge for the order's status open in it; its id."""
        conv_id = await self.open()
        await access.ask(conv_id, order_id, "action_order_status", f"{order_id} 到哪了")
        return conv_id

    async def notes(self) -> list[str]:
        return [n.text for n in await self.app.store.notes(self.conv_id)]


async def test_the_right_factor_replays_the_saved_question(
    app: Container, engine: StubEngine, access: OrderAccess
) -> None:
    chat = Chat(app)
    conv_id = await chat.asked(access, "DD202405001")
    answer = await chat.say("8001")
    assert answer == "answer to: DD202405001 到哪了"
    assert engine.texts[-1] == "DD202405001 到哪了"  # the engine never saw the factor
    assert await access.is_verified(conv_id, "DD202405001")
    assert await access.challenge(conv_id) is None
    assert any("proved" in n for n in await chat.notes())


async def test_wrong_factors_count_down_then_lock(app: Container, engine: StubEngine, access: OrderAccess) -> None:
    chat = Chat(app)
    conv_id = await chat.asked(access, "DD202405002")
    seen = engine.calls
    assert "2 次" in await chat.say("8001")  # DD202405002 belongs to C202405002, whose phone ends 8002
    assert "1 次" in await chat.say("wang.wei@example.com")
    assert "30 分钟" in await chat.say("0000")
    assert engine.calls == seen  # no factor reached the engine
    assert await access.is_locked(conv_id, "DD202405002")
    assert not await access.is_verified(conv_id, "DD202405002")
    assert await access.challenge(conv_id) is None
    assert any("locked" in n for n in await chat.notes())


async def test_guesses_read_beside_each_other_never_pass_the_lock(access: OrderAccess) -> None:
    # Two replicas can each read the open challenge before either answers it (a guest sending guesses in
    # parallel): the wrong ones lock the order at the limit, and a right one after that proves nothing,
    # nor does a late wrong one count down from the start again.
    conv = f"conv-{uuid.uuid4().hex[:6]}"
    await access.ask(conv, "DD202405001", "action_order_status", "DD202405001 到哪了")
    failed = await asyncio.gather(*(access.fail(conv, "DD202405001") for _ in range(access.policy.max_failures + 2)))
    assert access.policy.max_failures == 3
    assert sorted(f.left for f in failed) == [0, 0, 0, 1, 2]
    assert not any(f.locked_for_everyone for f in failed)
    assert await access.is_locked(conv, "DD202405001")
    assert not await access.verify(conv, "DD202405001")
    assert not await access.is_verified(conv, "DD202405001")
    assert (await access.fail(conv, "DD202405001")).left == 0


async def test_guesses_spread_over_new_conversations_lock_the_order_for_every_guest(
    app: Container, engine: StubEngine, access: OrderAccess
) -> None:
    # A stranger opening conversation after conversation (new REST senders, web chat sessions, mail
    # addresses) gets 3 guesses in each; across them the order takes 10 in all, then no guest is asked
    # again, and a right factor given after that proves nothing.
    assert access.policy.order_max_failures == 10
    order = "DD202405003"  # C202405003's, whose phone ends 8003
    late = Chat(app)
    await late.asked(access, order)  # asked before the lock: answers with the right factor after it
    told: list[str] = []
    for _ in range(3):
        chat = Chat(app)
        await chat.asked(access, order)
        told += [await chat.say(guess) for guess in ("0000", "1111", "2222")]
    assert all("30 分钟" in t for t in told[2::3])  # each conversation locked for itself after 3
    last = Chat(app)
    await last.asked(access, order)
    assert "30 分钟" in await last.say("3333")  # the 10th wrong one in all: its first, and the order is locked
    assert any("every guest" in n for n in await last.notes())
    assert "30 分钟" in await late.say("8003")
    assert not await access.is_verified(late.conv_id, order)
    fresh = Chat(app)
    conv_id = await fresh.open()
    assert await access.guest_access(conv_id, order, "action_order_status", f"{order} 到哪了") == "locked"
    assert await access.is_locked(conv_id, order)
    assert f"{order} 到哪了" not in engine.texts  # no question was ever answered for a guess
    # Other orders, and the same order once the lock has passed, are asked about as before.
    assert await access.guest_access(conv_id, "DD202405004", "action_order_status", "DD202405004 到哪了") == "asked"
    assert 0 < await app.store.redis.ttl(keys.access_order_lock(order)) <= access.policy.lock_seconds
    await app.store.redis.delete(keys.access_order_lock(order))
    assert await access.guest_access(conv_id, order, "action_order_status", f"{order} 到哪了") == "asked"


async def test_parallel_guesses_in_many_conversations_never_pass_the_order_limit(access: OrderAccess) -> None:
    order = "DD202405005"
    convs = [f"conv-{uuid.uuid4().hex[:6]}" for _ in range(8)]
    failed = await asyncio.gather(*(access.fail(conv, order) for conv in convs for _ in range(3)))
    # 24 wrong answers read at once: 10 are counted, the 10th locks the order for everyone, the rest count nothing.
    assert sum(f.locked_for_everyone for f in failed) == 1
    assert all(await asyncio.gather(*(access.is_locked(conv, order) for conv in convs)))
    assert not any(await asyncio.gather(*(access.verify(conv, order) for conv in convs)))


async def test_a_right_factor_for_an_order_locked_meanwhile_is_told_it_is_locked(
    app: Container, engine: StubEngine, access: OrderAccess
) -> None:
    chat = Chat(app)
    conv_id = await chat.asked(access, "DD202405001")
    for _ in range(access.policy.max_failures):
        await access.fail(conv_id, "DD202405001")  # wrong guesses answered on another replica meanwhile
    await access.ask(conv_id, "DD202405001", "action_order_status", "DD202405001 到哪了")  # read before the lock
    answer = await chat.say("8001")
    assert "30" in answer and "DD202405001" in answer
    assert "DD202405001 到哪了" not in engine.texts
    assert not await access.is_verified(conv_id, "DD202405001")


async def test_a_new_question_goes_to_the_engine_and_drops_the_challenge(
    app: Container, engine: StubEngine, access: OrderAccess
) -> None:
    chat = Chat(app)
    conv_id = await chat.asked(access, "DD202405001")
    assert await chat.say("DD202405002 呢？") == "answer to: DD202405002 呢？"
    assert await access.challenge(conv_id) is None


async def test_the_read_that_drops_a_challenge_keeps_it_while_a_change_waits(access: OrderAccess) -> None:
    conv_id = uuid.uuid4().hex
    await access.ask(conv_id, "DD202405001", "action_order_status", "DD202405001 到哪了")
    change, challenge = await access.waiting(conv_id, drop_challenge=True)
    assert change is None and challenge is not None and challenge.order_id == "DD202405001"  # as it was
    assert await access.challenge(conv_id) is None  # and dropped in the same round trip
    await access.propose(conv_id, PendingChange("cancel", "DD202405001"))
    await access.ask(conv_id, "DD202405002", "action_order_status", "DD202405002 呢")
    change, challenge = await access.waiting(conv_id, drop_challenge=True)
    assert change is not None and challenge is not None
    assert await access.challenge(conv_id) is not None  # the change is answered first; the challenge stays
    assert await access.waiting(uuid.uuid4().hex, drop_challenge=True) == (None, None)


async def test_a_confirmed_cancellation_records_its_refund(app: Container, crm: CRM, access: OrderAccess) -> None:
    chat = Chat(app)
    conv_id = await chat.open()
    await access.propose(conv_id, PendingChange("cancel", "DD202405013"))
    assert "已为您取消" in await chat.say("确认")
    order = crm.get_order("DD202405013")
    assert order is not None and order.status == OrderStatus.CANCELLED
    assert (order.refund_status, order.refund_amount) == (RefundStatus.PROCESSING, order.amount)
    assert await access.pending(conv_id) is None
    assert any("cancelled" in n for n in await chat.notes())


@pytest.mark.parametrize(
    ("order_id", "said", "status"),
    [
        pytest.param("DD202405020", "等一下，我再想想", OrderStatus.PAID, id="anything-but-a-confirmation"),
        pytest.param("DD202405001", "确认", OrderStatus.SHIPPED, id="shipped-meanwhile"),
    ],
)
async def test_a_cancellation_not_confirmed_or_no_longer_possible_changes_nothing(
    app: Container, crm: CRM, access: OrderAccess, order_id: str, said: str, status: OrderStatus
) -> None:
    chat = Chat(app)
    conv_id = await chat.open()
    await access.propose(conv_id, PendingChange("cancel", order_id))
    assert "没有做任何更改" in await chat.say(said)
    order = crm.get_order(order_id)
    assert order is not None and order.status == status and order.refund_status is None


async def test_the_new_address_is_read_back_then_stored(app: Container, crm: CRM, access: OrderAccess) -> None:
    chat = Chat(app)
    conv_id = await chat.open()
    await access.propose(conv_id, PendingChange("address", "DD202405025"))
    address = "武汉市武昌区中北路 1 号 周婷 13800138010"
    assert address in await chat.say(address)
    before = crm.get_order("DD202405025")
    assert before is not None and before.shipping_address != address
    assert "已更新" in await chat.say("确认修改")
    after = crm.get_order("DD202405025")
    assert after is not None and after.shipping_address == address
    assert any(address in n for n in await chat.notes())


async def test_a_confirmed_repair_opens_a_ticket(app: Container, crm: CRM, access: OrderAccess) -> None:
    chat = Chat(app)
    conv_id = await chat.open()
    await access.propose(conv_id, PendingChange("repair", "DD202405004", "充电宝充不进电"))
    answer = await chat.say("yes")
    assert "维修工单" in answer
    [note] = [n for n in await chat.notes() if n.startswith("Repair ticket")]
    number = note.split()[2]
    assert number in answer
    ticket = crm.get_ticket(number)
    assert ticket is not None and ticket.kind == "repair" and ticket.order_id == "DD202405004"
    assert ticket.description == "充电宝充不进电"


async def test_a_new_question_instead_of_a_confirmation_keeps_the_order_and_is_answered(
    app: Container, crm: CRM, engine: StubEngine, access: OrderAccess
) -> None:
    chat = Chat(app)
    conv_id = await chat.open()
    await access.propose(conv_id, PendingChange("cancel", "DD202405020"))
    answer = await chat.say("DD202405001 到哪了，顺便问下")
    assert "没有做任何更改" in answer and "answer to: DD202405001 到哪了，顺便问下" in answer
    order = crm.get_order("DD202405020")
    assert order is not None and order.status == OrderStatus.PAID


async def test_changing_ones_mind_about_the_address_keeps_it(app: Container, crm: CRM, access: OrderAccess) -> None:
    chat = Chat(app)
    conv_id = await chat.open()
    await access.propose(conv_id, PendingChange("address", "DD202405020"))
    assert "没有做任何更改" in await chat.say("算了，不改了")
    assert await access.pending(conv_id) is None
    order = crm.get_order("DD202405020")
    assert order is not None and order.shipping_address == "天津市和平区南京路 189 号"


async def test_the_lock_follows_the_settings(redis: TextRedis, crm: CRM, engine: StubEngine) -> None:
    app = in_process(redis, crm, engine, guest_factor_attempts=1, guest_lock_minutes=5)
    chat = Chat(app)
    conv_id = await chat.open()
    access = OrderAccess(redis)
    await access.ask(conv_id, "DD202405002", "action_order_status", "DD202405002 到哪了")
    assert "5 分钟" in await chat.say("0000")
    assert 0 < await redis.ttl(keys.access_lock(conv_id, "DD202405002")) <= 300


async def test_the_lock_for_every_guest_follows_the_settings(redis: TextRedis, crm: CRM, engine: StubEngine) -> None:
    app = in_process(redis, crm, engine, guest_order_factor_attempts=2)
    access = OrderAccess(redis)
    first, second = Chat(app), Chat(app)
    await first.asked(access, "DD202405002")
    await second.asked(access, "DD202405002")
    assert "2 次" in await first.say("0000")
    assert "30 分钟" in await second.say("0000")  # the second wrong one for the order, in another conversation
    assert await redis.exists(keys.access_order_lock("DD202405002"))
