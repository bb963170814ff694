"""Guests and changes end to end, through the REST channel and the web chat, the real engine and the CRM."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
import websockets

from bot.crm.records import OrderInfo, OrderStatus, RefundStatus
from tests.conftest import RunningStack
from tests.connectors.webchat.test_identity import hello, signed
from tests.connectors.webchat.test_webchat import recv

pytestmark = pytest.mark.stack


def guest() -> str:
    return f"guest-{uuid.uuid4().hex[:10]}"


def say(stack: RunningStack, sender: str, text: str) -> dict[str, Any]:
    resp = stack.rest(sender, text)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def text_of(body: dict[str, Any]) -> str:
    return " ".join(r["text"] for r in body["replies"])


def order(stack: RunningStack, order_id: str) -> OrderInfo:
    return stack.order(order_id)


def notes(stack: RunningStack, conversation_id: str) -> list[str]:
    """The lines agents see as internal notes in the conversation's transcript."""
    resp = stack.agent("GET", f"/conversations/{conversation_id}")
    assert resp.status_code == 200, resp.text
    return [m["text"] for m in resp.json()["transcript"] if m["role"] == "note"]


def discloses_nothing(text: str, info: OrderInfo) -> None:
    """No customer, product, carrier, tracking number or amount of the order in `text`."""
    assert info.tracking_number is None or info.tracking_number not in text
    for secret in (
        info.product_name("zh-CN"), info.product_name("en"), f"{info.amount:.2f}", info.shipping_address,
        info.carrier_name("zh-CN") or "\0", info.carrier_name("en") or "\0",
    ):  # fmt: skip
        assert secret not in text
    assert "先生" not in text and "女士" not in text and "Mr." not in text and "Ms." not in text


def test_a_guest_gets_no_detail_until_the_second_factor_is_right(stack: RunningStack) -> None:
    who = guest()
    info = order(stack, "DD202405001")
    asked = say(stack, who, "DD202405001 到哪了")
    assert "DD202405001" in text_of(asked) and "后 4 位" in text_of(asked)
    discloses_nothing(text_of(asked), info)
    wrong = say(stack, who, "1234")
    assert "2 次" in text_of(wrong)
    discloses_nothing(text_of(wrong), info)
    right = say(stack, who, "尾号 8001")
    assert info.tracking_number is not None and info.tracking_number in text_of(right)  # the original question
    assert "运单号" in text_of(right)
    again = say(stack, who, "DD202405001 现在到哪了")  # verified for the rest of the conversation
    assert info.tracking_number in text_of(again)
    assert any("DD202405001" in n and "proved" in n for n in notes(stack, right["conversation_id"]))


def test_a_guest_answers_in_their_own_language_and_script(stack: RunningStack) -> None:
    who = guest()
    asked = say(stack, who, "請問訂單DD202405006到哪裡了？")
    assert "末 4 碼" in text_of(asked) and "订单" not in text_of(asked)
    right = say(stack, who, "8006")
    assert stack.tracking_number("DD202405006") in text_of(right)
    en = guest()
    assert "last 4 digits" in text_of(say(stack, en, "where is my order DD202405002"))
    assert "tracking number" in text_of(say(stack, en, "li.na@example.com")).lower()


def test_wrong_factors_lock_the_order_and_agents_see_it(stack: RunningStack) -> None:
    who = guest()
    info = order(stack, "DD202405002")
    say(stack, who, "DD202405002 到哪了")
    replies = [say(stack, who, factor) for factor in ("0000", "someone@example.com", "1111")]
    for body in replies:
        discloses_nothing(text_of(body), info)
    assert "30 分钟" in text_of(replies[-1])
    # The right factor now is too late, and asking again is refused while the lock lasts.
    late = say(stack, who, "DD202405002 到哪了")
    assert "30 分钟" in text_of(late)
    assert info.tracking_number is not None and info.tracking_number not in text_of(say(stack, who, "8002"))
    assert any("locked" in n and "DD202405002" in n for n in notes(stack, late["conversation_id"]))


def test_a_new_question_drops_the_challenge(stack: RunningStack) -> None:
    who = guest()
    say(stack, who, "DD202405001 到哪了")
    moved_on = say(stack, who, "你好")
    assert "后 4 位" not in text_of(moved_on) and "再试" not in text_of(moved_on)


def test_the_return_policy_asked_after_an_unproved_order_is_the_policy(stack: RunningStack) -> None:
    """A guest who asked about an order and moved on to the general policy gets the policy, nothing of
    the order and no second request for a factor; once proved, the same question adds the order's dates."""
    who = guest()
    info = order(stack, "DD202405021")  # delivered
    say(stack, who, "DD202405021 什么时候到")
    policy = text_of(say(stack, who, "退货政策是什么"))
    assert "7 天" in policy and "15 天" in policy
    assert "DD202405021" not in policy and "后 4 位" not in policy
    discloses_nothing(policy, info)
    say(stack, who, "DD202405021 到哪了")
    say(stack, who, "8001")  # the owner's (C202405001) phone ends in 8001
    again = text_of(say(stack, who, "退货政策是什么"))
    assert "DD202405021" in again and "签收" in again


def test_a_guest_cannot_cancel_without_the_factor(stack: RunningStack) -> None:
    who = guest()
    asked = say(stack, who, "I'd like to cancel DD202405020")
    assert "last 4 digits" in text_of(asked)
    for attempt in ("yes", "/affirm", "确认"):
        say(stack, who, attempt)
    assert order(stack, "DD202405020").status == OrderStatus.PAID


def test_a_verified_guest_cancels_after_confirming_and_the_refund_is_recorded(stack: RunningStack) -> None:
    who = guest()
    say(stack, who, "I'd like to cancel DD202405020")
    proposal = say(stack, who, "he.jie@example.com")
    assert "998.00" in text_of(proposal)
    assert [b["payload"] for b in proposal["replies"][-1]["buttons"]] == ["/affirm", "/deny"]
    assert order(stack, "DD202405020").status == OrderStatus.PAID  # nothing before the confirmation
    done = say(stack, who, "/affirm")
    assert "cancelled" in text_of(done)
    after = order(stack, "DD202405020")
    assert after.status == OrderStatus.CANCELLED
    assert (after.refund_status, after.refund_amount) == (RefundStatus.PROCESSING, after.amount)
    assert any("cancelled" in n and "refund" in n for n in notes(stack, done["conversation_id"]))


def test_an_owner_must_confirm_and_anything_else_keeps_the_order(stack: RunningStack) -> None:
    asked = say(stack, "C202405010", "我要取消DD202405025")
    assert "确认" in text_of(asked) and "后 4 位" not in text_of(asked)  # identified: no second factor
    kept = say(stack, "C202405010", "算了，再想想")
    assert "没有做任何更改" in text_of(kept)
    assert order(stack, "DD202405025").status == OrderStatus.PAID
    assert order(stack, "DD202405025").refund_status is None


def test_an_owner_cancels_with_the_confirm_word(stack: RunningStack) -> None:
    say(stack, "C202405013", "我要取消DD202405013")
    done = say(stack, "C202405013", "确认取消")
    assert "已为您取消" in text_of(done)
    after = order(stack, "DD202405013")
    assert after.status == OrderStatus.CANCELLED and after.refund_status == RefundStatus.PROCESSING


def test_someone_elses_order_cannot_be_cancelled(stack: RunningStack) -> None:
    refused = say(stack, "C202405001", "我要取消DD202405005")
    assert "不在您的账户下" in text_of(refused)
    say(stack, "C202405001", "确认")
    assert order(stack, "DD202405005").status == OrderStatus.PAID


def test_an_address_change_collects_the_new_address_and_stores_it(stack: RunningStack) -> None:
    new_address = "成都市高新区天府大道北段 1700 号 陈静 13800138005"
    asked = say(stack, "C202405005", "订单DD202405005地址能改吗")
    assert "新的收货地址" in text_of(asked)
    proposal = say(stack, "C202405005", new_address)
    assert new_address in text_of(proposal) and proposal["replies"][-1]["buttons"]
    assert order(stack, "DD202405005").shipping_address != new_address  # not before the confirmation
    done = say(stack, "C202405005", "确认")
    assert "已更新" in text_of(done)
    assert order(stack, "DD202405005").shipping_address == new_address
    assert any("address" in n and new_address in n for n in notes(stack, done["conversation_id"]))


async def test_a_verified_web_chat_customer_is_not_asked_for_a_factor(stack: RunningStack) -> None:
    async with websockets.connect(stack.ws_url) as ws:
        await hello(ws, signed("C202405001"))
        await ws.send(json.dumps({"type": "message", "text": "DD202405001 到哪了", "client_id": "g-1"}))
        reply = await recv(ws, "message", role="bot")
        assert stack.tracking_number("DD202405001") in reply["text"]
        assert "后 4 位" not in reply["text"]
