"""After-sales and order-change actions against the real demo CRM: each answer depends on the order's status."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from rasa_sdk import Action
from rasa_sdk.executor import CollectingDispatcher

from actions.after_sales import ActionRefundStatus, ActionRepair, ActionWarranty
from actions.deps import ActionServices, configure
from actions.order_changes import ActionCancelOrder, ActionChangeAddress
from bot.access.state import OrderAccess, PendingChange
from bot.crm.records import OrderStatus
from bot.crm.repository import CRM
from tests.actions.test_orders import order_entity, tracker
from tests.conftest import TextRedis

TODAY = dt.date(2024, 7, 1)


@pytest.fixture
async def access(redis: TextRedis) -> OrderAccess:
    return OrderAccess(redis)


@pytest.fixture(autouse=True)
async def crm(tmp_path: Path, access: OrderAccess) -> AsyncIterator[CRM]:
    crm = CRM.from_url(f"sqlite:///{tmp_path / 'crm.sqlite3'}")
    crm.create_schema()
    crm.seed_demo()
    configure(ActionServices(crm=crm, access=access, today=lambda: TODAY))
    yield crm
    crm.close()


async def answer(
    action: Action, intent: str, order_id: str, text: str | None = None, *, guest: bool = False
) -> dict[str, Any]:
    """The action's one message, asked by the order's owner (identified by the app) unless `guest`."""
    owner = int(order_id[-3:])
    metadata = {} if guest or owner > 20 else {"customer_id": f"C2024050{owner:02d}"}
    dispatcher = CollectingDispatcher()
    snapshot = tracker(intent, text or f"{order_id}", entities=order_entity(order_id), metadata=metadata)
    await action.run(dispatcher, snapshot, {})
    [message] = dispatcher.messages
    found: dict[str, Any] = message
    return found


async def test_address_change_before_shipping_asks_for_the_new_address(crm: CRM, access: OrderAccess) -> None:
    message = await answer(ActionChangeAddress(), "change_address", "DD202405005", "DD202405005 要改地址")
    assert message["response"] == "utter_change_address_ask"
    assert await access.pending("conv-1") == PendingChange("address", "DD202405005")
    order = crm.get_order("DD202405005")
    assert order is not None and order.shipping_address == "成都市武侯区人民南路四段 27 号"


@pytest.mark.parametrize(
    ("order_id", "expected"),
    [
        ("DD202405001", "utter_change_address_in_transit"),  # shipped
        ("DD202405003", "utter_change_address_in_transit"),  # delayed
        ("DD202405004", "utter_change_address_not_possible"),  # delivered
        ("DD202405009", "utter_change_address_not_possible"),  # cancelled
    ],
)
async def test_address_change_after_shipping_is_not_taken(crm: CRM, order_id: str, expected: str) -> None:
    message = await answer(ActionChangeAddress(), "change_address", order_id)
    assert message["response"] == expected
    if expected.endswith("in_transit"):
        order = crm.get_order(order_id)
        assert order is not None and message["tracking_number"] == order.tracking_number


async def test_cancelling_a_paid_order_waits_for_the_confirmation(crm: CRM, access: OrderAccess) -> None:
    message = await answer(ActionCancelOrder(), "cancel_order", "DD202405013")
    assert message["response"] == "utter_confirm_cancel"
    order = crm.get_order("DD202405013")
    assert order is not None and order.status == OrderStatus.PAID
    assert message["amount"] == f"{order.amount:.2f}"
    assert await access.pending("conv-1") == PendingChange("cancel", "DD202405013")


async def test_a_guest_cannot_start_a_cancellation(crm: CRM, access: OrderAccess) -> None:
    message = await answer(ActionCancelOrder(), "cancel_order", "DD202405013", guest=True)
    assert message["response"] == "utter_verify_order"
    assert await access.pending("conv-1") is None
    order = crm.get_order("DD202405013")
    assert order is not None and order.status == OrderStatus.PAID


@pytest.mark.parametrize(
    ("order_id", "expected"),
    [
        ("DD202405001", "utter_cancel_in_transit"),
        ("DD202405009", "utter_cancel_already"),
        ("DD202405004", "utter_cancel_not_possible"),
    ],
)
async def test_orders_past_payment_are_not_cancelled(crm: CRM, order_id: str, expected: str) -> None:
    before = crm.get_order(order_id)
    message = await answer(ActionCancelOrder(), "cancel_order", order_id)
    assert message["response"] == expected
    after = crm.get_order(order_id)
    assert before is not None and after is not None and after.status == before.status


async def test_warranty_end_date_comes_from_the_purchase_date() -> None:
    message = await answer(ActionWarranty(), "warranty", "DD202405004")
    assert message["response"] == "utter_warranty"
    # The demo power bank was bought on 2024-05-02 (shop time) with a 12-month warranty.
    assert (message["purchase_date"], message["warranty_months"]) == ("2024-05-02", 12)
    assert message["warranty_until"] == "2025-05-02"
    assert message["in_warranty"] is True  # on TODAY, 2024-07-01


async def test_repair_request_waits_for_the_confirmation(crm: CRM, access: OrderAccess) -> None:
    message = await answer(ActionRepair(), "repair", "DD202405004", "DD202405004 充电宝充不进电")
    assert message["response"] == "utter_confirm_repair"
    assert await access.pending("conv-1") == PendingChange("repair", "DD202405004", "DD202405004 充电宝充不进电")


@pytest.mark.parametrize("order_id", ["DD202405005", "DD202405001", "DD202405009"])  # paid, shipped, cancelled
async def test_repair_is_only_for_delivered_orders(access: OrderAccess, order_id: str) -> None:
    message = await answer(ActionRepair(), "repair", order_id)
    assert message["response"] == "utter_repair_not_possible"
    assert await access.pending("conv-1") is None


async def test_refund_progress_and_orders_without_a_refund() -> None:
    refunding = await answer(ActionRefundStatus(), "refund_status", "DD202405011")
    assert refunding["response"] == "utter_refund_status"
    assert refunding["refund_status"] == "processing" and refunding["refunded_at"] == ""
    refunded = await answer(ActionRefundStatus(), "refund_status", "DD202405008")
    assert refunded["refund_status"] == "completed" and refunded["refunded_at"]
    none = await answer(ActionRefundStatus(), "refund_status", "DD202405001")
    assert none["response"] == "utter_refund_none"


def test_the_action_server_registers_exactly_the_domains_actions() -> None:
    import yaml
    from rasa_sdk.executor import ActionExecutor

    executor = ActionExecutor()
    executor.register_package("actions")  # fails on a helper class rasa-sdk cannot name
    domain = yaml.safe_load((Path(__file__).resolve().parents[2] / "domain.yml").read_text(encoding="utf-8"))
    assert set(executor.actions) == set(domain["actions"])
