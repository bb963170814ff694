"""Order actions from tracker snapshots, with a collecting dispatcher and the real demo CRM."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.deps import ActionServices, configure
from actions.handoff import ActionHandoff
from actions.orders import ActionOrderStatus
from actions.resume import ActionInform
from bot.access.state import OrderAccess
from bot.crm.repository import CRM
from tests.conftest import TextRedis

# The demo customer who owns DD202405001 and DD202405002's owner, as the app's metadata names them.
OWNER_1 = {"customer_id": "C202405001"}
OWNER_2 = {"customer_id": "C202405002"}


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
    dispatcher = CollectingDispatcher()
    events = await ActionOrderStatus().run(dispatcher, tracker("order_status", "我的快递呢", metadata=OWNER_2), {})
    assert dispatcher.messages[0]["response"] == "utter_ask_order_id"
    assert any(e["name"] == "pending_action" and e["value"] == "action_order_status" for e in events)
    dispatcher = CollectingDispatcher()
    await ActionInform().run(
        dispatcher,
        tracker(
            "inform",
            "DD202405002",
            entities=order_entity("DD202405002"),
            slots={"pending_action": "action_order_status"},
            metadata=OWNER_2,
        ),
        {},
    )
    assert dispatcher.messages[0]["response"] == "utter_order_status"
    assert dispatcher.messages[0]["order_id"] == "DD202405002"


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
