"""After-sales and order-change actions against the real demo CRM: each answer depends on the order's status."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rasa_sdk import Action
from rasa_sdk.executor import CollectingDispatcher

from actions.after_sales import ActionRefundStatus, ActionRepair, ActionWarranty
from actions.deps import ActionServices, configure
from actions.order_changes import ActionCancelOrder, ActionChangeAddress
from bot.crm.records import OrderStatus
from bot.crm.repository import CRM
from tests.actions.test_orders import order_entity, tracker

TODAY = dt.date(2024, 7, 1)


@pytest.fixture(autouse=True)
def crm(tmp_path: Path) -> Iterator[CRM]:
    crm = CRM.from_url(f"sqlite:///{tmp_path / 'crm.sqlite3'}")
    crm.create_schema()
    crm.seed_demo()
    configure(ActionServices(crm=crm, today=lambda: TODAY))
    yield crm
    crm.close()


async def answer(action: Action, intent: str, order_id: str, text: str | None = None) -> dict[str, Any]:
    dispatcher = CollectingDispatcher()
    await action.run(dispatcher, tracker(intent, text or f"{order_id}", entities=order_entity(order_id)), {})
    [message] = dispatcher.messages
    found: dict[str, Any] = message
    return found


async def test_address_change_before_shipping_opens_a_ticket(crm: CRM) -> None:
    message = await answer(ActionChangeAddress(), "change_address", "DD202405005", "DD202405005 地址改成成都市高新区")
    assert message["response"] == "utter_change_address_ok"
    ticket = crm.get_ticket(message["ticket"])
    assert ticket is not None and ticket.kind == "address_change" and ticket.order_id == "DD202405005"
    assert "高新区" in ticket.description


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


async def test_cancelling_a_paid_order_cancels_it_in_the_crm(crm: CRM) -> None:
    message = await answer(ActionCancelOrder(), "cancel_order", "DD202405013")
    assert message["response"] == "utter_cancel_done"
    order = crm.get_order("DD202405013")
    assert order is not None and order.status == OrderStatus.CANCELLED
    assert message["amount"] == f"{order.amount:.2f}"


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


async def test_repair_request_gets_a_ticket_number(crm: CRM) -> None:
    first = await answer(ActionRepair(), "repair", "DD202405004", "DD202405004 充电宝充不进电")
    second = await answer(ActionRepair(), "repair", "DD202405010", "DD202405010 purifier makes a loud noise")
    assert first["response"] == second["response"] == "utter_repair_ticket"
    assert first["ticket"] != second["ticket"]
    ticket = crm.get_ticket(first["ticket"])
    assert ticket is not None and ticket.kind == "repair" and ticket.order_id == "DD202405004"


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
