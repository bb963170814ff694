"""Conversations that end right (issue #10, item 5; item 4's hand-off wording), through the real stack.

Each test is one short conversation on the REST channel against Redis, the Rasa engine with the trained
model and the app, asserting the answer the customer ends up with, not the intent the engine picked.
Demo data (bot/crm/seed.py): C202405001 owns DD202405001 (shipped, SF1234567890123) and DD202405021
(delivered 2024-04-23); C202405002 owns DD202405002 (shipped) and DD202405026
(delivered); C202405012 owns two delayed orders; C202405014 owns DD202405014 (earbuds, delivered).
A REST conversation is the sender's, and it remembers the order it is about (and the questions asked,
which count towards a hand-off): each test uses an identifier of a customer (id, email address, phone
number) no other test in this file or in test_rest.py uses.
"""

from __future__ import annotations

import uuid

import pytest

from tests.conftest import RunningStack

pytestmark = pytest.mark.stack

# What a reply may not open with: an out-of-scope decline or an apology is not an agreement.
AGREEING_OPENERS = ("好的", "好", "Sure", "OK", "Okay", "Of course", "當然", "当然")


def guest() -> str:
    return f"rest-end-{uuid.uuid4().hex[:10]}"


def say(stack: RunningStack, sender: str, text: str) -> str:
    """Send one message; the bot's replies joined."""
    resp = stack.rest(sender, text)
    assert resp.status_code == 200, resp.text
    return " ".join(r["text"] for r in resp.json()["replies"])


# --- 1. a bare order id answers the question that asked for it ---


@pytest.mark.parametrize(("who", "given"), [("C202405002", "DD202405026"), ("13800138002", "202405026")])
def test_a_bare_order_id_answers_the_invoice_question(stack: RunningStack, who: str, given: str) -> None:
    # Both of her orders can have an invoice: which one is for her to say.
    assert "订单号" in say(stack, who, "我要开发票")
    answer = say(stack, who, given)
    assert "DD202405026" in answer
    assert "发票" in answer, answer  # the invoice answer, not the order status
    assert "运单号" not in answer


def test_a_guest_gives_the_bare_id_then_proves_it_and_gets_the_refund_answer(stack: RunningStack) -> None:
    who = guest()
    assert "订单号" in say(stack, who, "我的退款到哪一步了")
    assert "后 4 位" in say(stack, who, "202405001")  # digits only, as printed on some receipts
    answer = say(stack, who, "8001")
    assert "DD202405001" in answer
    assert "退款" in answer, answer
    assert "运单号" not in answer


# --- 2. a complaint that names an order gets that order's status, with the apology ---


def test_a_delivery_complaint_naming_a_delayed_order_says_it_is_late_with_tracking(stack: RunningStack) -> None:
    answer = say(stack, "C202405012", "DD202405012 怎么还没到？都超时好几天了，太慢了")
    assert "抱歉" in answer, answer
    assert "DD202405012" in answer
    assert "延误" in answer
    assert stack.tracking_number("DD202405012") in answer


def test_a_guests_complaint_naming_an_order_is_answered_once_the_order_is_proven(stack: RunningStack) -> None:
    who = guest()
    first = say(stack, who, "DD202405012 怎么还没到？都超时好几天了，太慢了")
    assert first.startswith(("非常抱歉", "抱歉")) or "抱歉" in first.split("。")[0], first
    assert "后 4 位" in first  # the guest proves the order first; nothing about it is said yet
    assert stack.tracking_number("DD202405012") not in first
    answer = say(stack, who, "8012")
    assert "延误" in answer, answer
    assert stack.tracking_number("DD202405012") in answer


def test_a_followup_naming_an_order_gets_its_status(stack: RunningStack) -> None:
    who = "xu.yan@example.net"  # C202405012
    say(stack, who, "你好")
    answer = say(stack, who, "还是没解决，DD202405027 到底什么时候能到")
    assert "DD202405027" in answer, answer
    assert stack.tracking_number("DD202405027") in answer


# --- 3. warranty questions get the warranty end date even when they mention the delivery ---


def test_warranty_question_mentioning_delivery_gets_the_end_date(stack: RunningStack) -> None:
    # C202405014's only earbuds (DD202405014, bought 2024-05-05, 12 months): no order number needed.
    answer = say(stack, "C202405014", "我上个月收到的耳机保修到什么时候")
    assert "DD202405014" in answer, answer
    assert "2025年5月5日" in answer
    assert "保" in answer


def test_a_guests_warranty_question_resumes_after_the_order_id_and_the_proof(stack: RunningStack) -> None:
    who = guest()
    assert "订单号" in say(stack, who, "我上个月收到的耳机保修到什么时候")
    assert "后 4 位" in say(stack, who, "DD202405014")
    answer = say(stack, who, "8014")
    assert "DD202405014" in answer, answer
    assert "2025年5月5日" in answer  # the warranty's end, not the delivery or the order status


def test_warranty_question_with_the_order_id_gets_the_end_date(stack: RunningStack) -> None:
    # DD202405017: a keyboard bought 2024-04-25 with 12 months of warranty.
    answer = say(stack, "C202405017", "我上个月收到的 DD202405017 键盘保修到什么时候？")
    assert "DD202405017" in answer, answer
    assert "2025年4月25日" in answer
    assert "保修" in answer


# --- 4. an identified customer with one matching order is not asked for the number ---


def test_the_only_order_in_transit_is_picked(stack: RunningStack) -> None:
    answer = say(stack, "wang.wei@example.com", "我的快递到哪了")  # C202405001
    assert "DD202405001" in answer, answer
    assert stack.tracking_number("DD202405001") in answer


def test_the_only_returnable_order_is_picked(stack: RunningStack) -> None:
    answer = say(stack, "13800138001", "我想退货")  # C202405001
    assert "DD202405021" in answer, answer
    assert "DD202405001" not in answer


# --- 5. dates: a delivered order shows its delivery date, a paid one never an empty date ---


def test_a_delivered_order_shows_its_delivery_date(stack: RunningStack) -> None:
    answer = say(stack, "C202405018", "DD202405018 到哪了")
    delivered = stack.order("DD202405018").delivered_at
    assert delivered is not None
    assert f"{delivered.year}年{delivered.month}月{delivered.day}日" in answer, answer


def test_a_paid_order_not_yet_shipped_has_no_empty_date(stack: RunningStack) -> None:
    answer = say(stack, "C202405005", "DD202405005 什么时候发货")
    assert "DD202405005" in answer, answer
    assert "  " not in answer
    assert "预计 前" not in answer and "预计  前" not in answer
    assert "发货" in answer


# --- 6. out of scope: declined with what the bot can do and an offer of a human ---


@pytest.mark.parametrize(
    ("text", "can_do", "human"),
    [
        ("帮我写一首关于春天的诗", "订单", "人工"),
        ("今天股市怎么样", "订单", "人工"),
        ("can you book me a flight to Tokyo", "order", "human"),
    ],
)
def test_out_of_scope_is_declined_with_what_the_bot_can_do(
    stack: RunningStack, text: str, can_do: str, human: str
) -> None:
    answer = say(stack, guest(), text)
    assert not answer.startswith(AGREEING_OPENERS), answer
    assert can_do in answer.lower(), answer
    assert human in answer.lower(), answer


# --- issue #10 item 4: the hand-off after anger apologises first; asking for a human is `requested` ---


def test_the_handoff_after_anger_apologises_first(stack: RunningStack) -> None:
    body = stack.rest(guest(), "你们这什么破服务！等了两个星期还没到，骗子！我要去12315投诉你们！！").json()
    assert body["handoff"]["reason"] == "sentiment"
    text = " ".join(r["text"] for r in body["replies"])
    assert text.startswith(("非常抱歉", "抱歉", "很抱歉")), text


def test_the_handoff_after_anger_apologises_in_english(stack: RunningStack) -> None:
    body = stack.rest(guest(), "This is a total scam, you liars! Two weeks and still nothing, worst shop ever!!").json()
    assert body["handoff"] is not None
    text = " ".join(r["text"] for r in body["replies"])
    assert text.lower().startswith(("sorry", "i'm sorry", "i am sorry", "we're sorry", "we are sorry")), text
    assert not any("\u4e00" <= ch <= "\u9fff" for ch in text)


def test_an_angry_request_for_a_human_is_requested(stack: RunningStack) -> None:
    body = stack.rest(guest(), "垃圾机器人，气死我了，马上给我转人工！！").json()
    assert body["mode"] == "waiting"
    assert body["handoff"]["reason"] == "requested"
    text = " ".join(r["text"] for r in body["replies"])
    assert text.startswith(("非常抱歉", "抱歉", "很抱歉")), text
