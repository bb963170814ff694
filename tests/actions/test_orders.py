"""Order actions from tracker snapshots, with a collecting dispatcher and the real demo CRM."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.after_sales import ActionReturnExchange, ActionWarranty
from actions.billing import ActionPaymentIssue
from actions.complaints import ActionComplaint, ActionFollowup
from actions.deps import ActionServices, configure
from actions.handoff import ActionHandoff
from actions.orders import ActionOrderStatus, shop_day
from actions.resume import ActionInform
from bot.access.state import OrderAccess
from bot.crm.repository import CRM
from tests.conftest import TextRedis

# The demo customer who owns DD202405001 and DD202405002's owner, as the app's metadata names them.
OWNER_1 = {"customer_id": "C202405001"}
OWNER_2 = {"customer_id": "C202405002"}
OWNER_12 = {"customer_id": "C202405012"}


@pytest.fixture
async def access(redis: TextRedis) -> OrderAccess:
    return OrderAccess(redis)


@pytest.fixture(autouse=True)
async def crm(tmp_path: Path, access: OrderAccess) -> AsyncIterator[CRM]:
    crm = CRM.from_url(f"sqlite:///{tmp_path / 'crm.sqlite3'}")
    crm.create_schema()
    crm.seed_demo()
    configure(ActionServices(crm=crm, access=access))
    yield crm
    crm.close()


def tracker(
    intent: str,
    text: str,
    *,
    entities: list[dict[str, Any]] | None = None,
    slots: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
    history: list[dict[str, Any]] | None = None,
) -> Tracker:
    latest = {"intent": {"name": intent, "confidence": 0.99}, "entities": entities or [], "text": text}
    events = [*(history or []), {"event": "user", "text": text, "parse_data": latest, "metadata": metadata or {}}]
    return Tracker("conv-1", slots or {}, latest, events, False, None, {}, "action_listen")


def order_entity(value: str) -> list[dict[str, Any]]:
    return [{"entity": "order_id", "value": value, "start": 0, "end": len(value)}]


async def test_order_status_answers_from_the_crm(crm: CRM) -> None:
    dispatcher = CollectingDispatcher()
    events = await ActionOrderStatus().run(
        dispatcher,
        tracker("order_status", "dd202405001 到哪了", entities=order_entity("dd202405001"), metadata=OWNER_1),
        {},
    )
    [message] = dispatcher.messages
    order = crm.get_order("DD202405001")
    assert order is not None
    assert message["response"] == "utter_order_status"
    assert message["order_id"] == "DD202405001"
    assert message["tracking_number"] == order.tracking_number
    assert message["status"] == "shipped"
    assert {"event": "slot", "name": "order_id", "value": "DD202405001", "timestamp": None} in events


async def test_missing_order_id_is_asked_for_and_the_answer_resumes() -> None:
    # C202405012 has two orders in transit (with one, it would be answered at once: below).
    dispatcher = CollectingDispatcher()
    events = await ActionOrderStatus().run(dispatcher, tracker("order_status", "我的快递呢", metadata=OWNER_12), {})
    assert dispatcher.messages[0]["response"] == "utter_ask_order_id"
    assert any(e["name"] == "pending_action" and e["value"] == "action_order_status" for e in events)
    dispatcher = CollectingDispatcher()
    await ActionInform().run(
        dispatcher,
        tracker(
            "inform",
            "DD202405027",
            entities=order_entity("DD202405027"),
            slots={"pending_action": "action_order_status"},
            metadata=OWNER_12,
        ),
        {},
    )
    assert dispatcher.messages[0]["response"] == "utter_order_status"
    assert dispatcher.messages[0]["order_id"] == "DD202405027"


@pytest.mark.parametrize("given", ["DD202405026", "dd202405026", "202405026"])
async def test_a_bare_id_resumes_the_question_that_asked_for_it(given: str) -> None:
    dispatcher = CollectingDispatcher()
    snapshot = tracker(
        "inform", given, entities=order_entity(given), slots={"pending_action": "action_invoice"}, metadata=OWNER_2
    )
    events = await ActionInform().run(dispatcher, snapshot, {})
    [message] = dispatcher.messages
    assert (message["response"], message["order_id"]) == ("utter_invoice", "DD202405026")
    assert {"event": "slot", "name": "pending_action", "value": None, "timestamp": None} in events


@pytest.mark.parametrize(
    ("action", "intent", "text", "expected"),
    [
        (ActionOrderStatus, "order_status", "我的快递到哪了", "DD202405001"),  # the only one in transit
        (ActionReturnExchange, "return_exchange", "我想退货", "DD202405021"),  # the only one delivered
        (ActionWarranty, "warranty", "我上个月收到的手表保修到什么时候", "DD202405021"),
    ],
)
async def test_an_identified_customer_with_one_fitting_order_is_not_asked(
    action: type[Action], intent: str, text: str, expected: str
) -> None:
    dispatcher = CollectingDispatcher()
    await action().run(dispatcher, tracker(intent, text, metadata=OWNER_1), {})
    assert dispatcher.messages[0]["order_id"] == expected


async def test_the_product_named_picks_among_several_orders() -> None:
    # C202405012: two delayed orders, earbuds and a power bank.
    dispatcher = CollectingDispatcher()
    product = [{"entity": "product", "value": "耳机", "start": 2, "end": 4}]
    await ActionOrderStatus().run(
        dispatcher, tracker("order_status", "我的耳机到哪了", entities=product, metadata=OWNER_12), {}
    )
    assert dispatcher.messages[0]["order_id"] == "DD202405027"


async def test_a_guest_is_asked_for_the_number_even_with_one_order() -> None:
    dispatcher = CollectingDispatcher()
    await ActionOrderStatus().run(dispatcher, tracker("order_status", "我的快递到哪了"), {})
    assert dispatcher.messages[0]["response"] == "utter_ask_order_id"


async def test_a_delivered_order_carries_its_delivery_date() -> None:
    dispatcher = CollectingDispatcher()
    snapshot = tracker("order_status", "DD202405021", entities=order_entity("DD202405021"), metadata=OWNER_1)
    await ActionOrderStatus().run(dispatcher, snapshot, {})
    [message] = dispatcher.messages
    assert (message["status"], message["delivered_at"], message["eta"]) == ("delivered", "2024-04-23", "2024-04-23")


async def test_a_complaint_naming_an_order_apologises_then_gives_its_status() -> None:
    dispatcher = CollectingDispatcher()
    snapshot = tracker(
        "complaint_delivery", "DD202405012 怎么还没到", entities=order_entity("DD202405012"), metadata=OWNER_12
    )
    await ActionComplaint().run(dispatcher, snapshot, {})
    assert [m["response"] for m in dispatcher.messages] == ["utter_complaint", "utter_order_status"]
    assert dispatcher.messages[0]["order_id"] == dispatcher.messages[1]["order_id"] == "DD202405012"
    assert dispatcher.messages[1]["status"] == "delayed"


async def test_a_complaint_naming_no_order_only_apologises() -> None:
    dispatcher = CollectingDispatcher()
    await ActionComplaint().run(dispatcher, tracker("complaint_service", "客服态度太差", metadata=OWNER_12), {})
    [message] = dispatcher.messages
    assert (message["response"], message["order_id"]) == ("utter_complaint", "")


async def test_a_plain_followup_apologises_without_repeating_the_status() -> None:
    dispatcher = CollectingDispatcher()
    snapshot = tracker("followup_unresolved", "还是没解决", slots={"order_id": "DD202405001"}, metadata=OWNER_1)
    await ActionFollowup().run(dispatcher, snapshot, {})
    [message] = dispatcher.messages
    assert (message["response"], message["order_id"]) == ("utter_followup", "")


async def test_unknown_order_is_reported() -> None:
    dispatcher = CollectingDispatcher()
    await ActionOrderStatus().run(
        dispatcher, tracker("order_status", "DD209999999", entities=order_entity("DD209999999")), {}
    )
    assert dispatcher.messages[0]["response"] == "utter_order_not_found"


async def test_someone_elses_order_is_not_disclosed() -> None:
    dispatcher = CollectingDispatcher()
    snapshot = tracker(
        "order_status", "DD202405002", entities=order_entity("DD202405002"), metadata={"customer_id": "C202405001"}
    )
    await ActionOrderStatus().run(dispatcher, snapshot, {})
    [message] = dispatcher.messages
    assert message["response"] == "utter_order_not_yours"
    assert "tracking_number" not in message


async def test_a_guest_is_asked_for_a_second_factor_and_told_nothing(access: OrderAccess) -> None:
    dispatcher = CollectingDispatcher()
    snapshot = tracker("order_status", "DD202405001 到哪了", entities=order_entity("DD202405001"))
    events = await ActionOrderStatus().run(dispatcher, snapshot, {})
    [message] = dispatcher.messages
    assert message["response"] == "utter_verify_order"
    assert set(message) - {"response", "template", "text", "buttons", "image", "elements", "attachment", "custom"} == {
        "order_id"
    }
    challenge = await access.challenge("conv-1")
    assert challenge is not None
    assert (challenge.order_id, challenge.action, challenge.question) == (
        "DD202405001", "action_order_status", "DD202405001 到哪了",
    )  # fmt: skip
    assert {"event": "slot", "name": "pending_action", "value": "action_order_status", "timestamp": None} in events


async def test_a_verified_guest_gets_the_answer(access: OrderAccess) -> None:
    await access.verify("conv-1", "DD202405001")
    dispatcher = CollectingDispatcher()
    await ActionOrderStatus().run(
        dispatcher, tracker("order_status", "DD202405001", entities=order_entity("DD202405001")), {}
    )
    assert dispatcher.messages[0]["response"] == "utter_order_status"
    # Verified for that order only.
    dispatcher = CollectingDispatcher()
    await ActionOrderStatus().run(
        dispatcher, tracker("order_status", "DD202405002", entities=order_entity("DD202405002")), {}
    )
    assert dispatcher.messages[0]["response"] == "utter_verify_order"


async def test_an_order_locked_for_every_guest_still_answers_its_signed_in_owner(access: OrderAccess) -> None:
    for i in range(access.policy.order_max_failures):
        await access.fail(f"conv-guess-{i}", "DD202405002")  # a stranger guessing from new conversations
    dispatcher = CollectingDispatcher()
    await ActionOrderStatus().run(
        dispatcher, tracker("order_status", "DD202405002", entities=order_entity("DD202405002")), {}
    )
    assert [m["response"] for m in dispatcher.messages] == ["utter_verify_locked"]  # a guest is not even asked
    owner = CollectingDispatcher()
    snapshot = tracker("order_status", "DD202405002", entities=order_entity("DD202405002"), metadata=OWNER_2)
    await ActionOrderStatus().run(owner, snapshot, {})
    assert owner.messages[0]["response"] == "utter_order_status"


async def test_a_locked_order_is_not_asked_about_again(access: OrderAccess) -> None:
    for _ in range(access.policy.max_failures):
        await access.fail("conv-1", "DD202405002")
    dispatcher = CollectingDispatcher()
    await ActionOrderStatus().run(
        dispatcher, tracker("order_status", "DD202405002", entities=order_entity("DD202405002")), {}
    )
    [message] = dispatcher.messages
    assert message["response"] == "utter_verify_locked"
    assert message["minutes"] == 30
    assert await access.challenge("conv-1") is None


async def test_handoff_carries_reason_skill_priority_and_summary() -> None:
    history: list[dict[str, Any]] = [
        {"event": "user", "text": "DD202405001 到哪了", "parse_data": {"intent": {"name": "order_status"}}},
        {"event": "bot", "text": "订单 DD202405001 已发货"},
    ]
    dispatcher = CollectingDispatcher()
    slots = {
        "order_id": "DD202405001",
        "handoff_reason": "requested",
        "handoff_skill": "logistics",
        "handoff_priority": 3.0,
    }
    await ActionHandoff().run(
        dispatcher,
        tracker("request_human", "转人工", slots=slots, metadata={"vip": True}, history=history),
        {},
    )
    [message] = dispatcher.messages
    handoff = message["custom"]["handoff"]
    assert handoff["reason"] == "requested"
    assert handoff["skill"] == "logistics"
    assert handoff["priority"] == 3
    assert "VIP" in handoff["summary"]
    assert "DD202405001" in handoff["summary"]
    assert "order_status" in handoff["summary"]
    assert "已发货" in handoff["summary"]


@pytest.mark.parametrize(
    ("reason", "score", "apologise"),
    [("requested", 0.1, False), ("requested", 0.9, True), ("sentiment", 0.9, True), ("followups", None, True)],
)
async def test_the_handoff_apologises_to_the_angry_and_the_let_down(
    reason: str, score: float | None, apologise: bool
) -> None:
    snapshot = tracker("request_human", "转人工", slots={"handoff_reason": reason})
    if score is not None:
        snapshot.latest_message["sentiment"] = {"score": score}
    dispatcher = CollectingDispatcher()
    await ActionHandoff().run(dispatcher, snapshot, {})
    [message] = dispatcher.messages
    assert message["apologise"] is apologise
    assert message["custom"]["handoff"]["reason"] == reason


def test_dates_shown_are_the_shops_calendar_days() -> None:
    # 23:30 UTC is 07:30 the next morning in Shanghai: a delivery then was on the 5th for the customer.
    assert shop_day(dt.datetime(2024, 5, 4, 23, 30, tzinfo=dt.UTC)) == dt.date(2024, 5, 5)
    assert shop_day(None) is None


async def test_a_guest_asking_the_return_policy_after_an_unproved_order_gets_the_policy(access: OrderAccess) -> None:
    """The order the guest named before stays out of the answer, and no second factor is asked for."""
    dispatcher = CollectingDispatcher()
    snapshot = tracker("return_exchange", "退货政策是什么", slots={"order_id": "DD202405021"})
    events = await ActionReturnExchange().run(dispatcher, snapshot, {})
    [message] = dispatcher.messages
    assert (message["response"], message["order_id"]) == ("utter_return_exchange", "")
    assert "status" not in message and "return_until" not in message
    assert await access.challenge("conv-1") is None
    assert events == []


async def test_a_guest_naming_the_order_in_a_return_question_is_asked_to_prove_it(access: OrderAccess) -> None:
    dispatcher = CollectingDispatcher()
    snapshot = tracker("return_exchange", "DD202405021 能退吗", entities=order_entity("DD202405021"))
    await ActionReturnExchange().run(dispatcher, snapshot, {})
    assert dispatcher.messages[0]["response"] == "utter_verify_order"
    challenge = await access.challenge("conv-1")
    assert challenge is not None and challenge.order_id == "DD202405021"


async def test_a_verified_guest_gets_the_remembered_orders_deadlines(access: OrderAccess) -> None:
    await access.verify("conv-1", "DD202405021")
    dispatcher = CollectingDispatcher()
    snapshot = tracker("return_exchange", "退货政策是什么", slots={"order_id": "DD202405021"})
    await ActionReturnExchange().run(dispatcher, snapshot, {})
    [message] = dispatcher.messages
    assert (message["response"], message["order_id"]) == ("utter_return_exchange", "DD202405021")
    assert message["return_until"]


async def test_payment_guidance_after_an_unproved_order_is_the_guidance(access: OrderAccess) -> None:
    dispatcher = CollectingDispatcher()
    snapshot = tracker("payment_issue", "付款一直失败怎么办", slots={"order_id": "DD202405001"})
    await ActionPaymentIssue().run(dispatcher, snapshot, {})
    [message] = dispatcher.messages
    assert (message["response"], message["order_id"]) == ("utter_payment_issue", "")
    assert await access.challenge("conv-1") is None
