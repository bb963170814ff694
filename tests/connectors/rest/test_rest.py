"""The REST channel through the real stack: Redis, the Rasa engine, the app."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.conftest import RunningStack

pytestmark = pytest.mark.stack


def sender() -> str:
    return f"rest-test-{uuid.uuid4().hex[:10]}"


def test_chinese_order_question_gets_tracking_number(stack: RunningStack) -> None:
    # The sender is the customer who owns the order (a guest proves it first: tests/bot/access).
    resp = stack.rest("C202405001", "DD202405001 到哪了")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["mode"] == "bot"
    assert body["handoff"] is None
    text = " ".join(r["text"] for r in body["replies"])
    assert "DD202405001" in text
    assert "SF1234567890123" in text or "运单号" in text
    # The tracking number stored in the CRM is what the reply quotes.
    from bot.crm.repository import CRM

    crm = CRM.from_url(f"sqlite:///{stack.var_dir / 'crm.sqlite3'}")
    order = crm.get_order("DD202405001")
    crm.close()
    assert order is not None
    assert order.tracking_number
    assert order.tracking_number in text
    assert "运单号" in text  # answered in simplified Chinese


def test_english_order_question_is_answered_in_english(stack: RunningStack) -> None:
    resp = stack.rest("li.na@example.com", "where is my order DD202405002")
    assert resp.status_code == 200, resp.text
    text = " ".join(r["text"] for r in resp.json()["replies"])
    assert "DD202405002" in text
    assert "tracking number" in text.lower()
    assert not any("\u4e00" <= ch <= "\u9fff" for ch in text.replace("(", "").split("(")[0][:10])


def test_order_id_asked_for_then_answered(stack: RunningStack) -> None:
    who = sender()
    first = stack.rest(who, "我的快递到哪了").json()
    asked = " ".join(r["text"] for r in first["replies"])
    assert "订单号" in asked
    second = stack.rest(who, "DD202405001").json()
    assert "后 4 位" in " ".join(r["text"] for r in second["replies"])  # a guest proves the order is theirs
    third = stack.rest(who, "8001").json()
    answer = " ".join(r["text"] for r in third["replies"])
    assert "DD202405001" in answer
    assert "运单号" in answer
    assert first["conversation_id"] == second["conversation_id"] == third["conversation_id"]


def test_request_human_hands_off_and_bot_goes_silent(stack: RunningStack) -> None:
    who = sender()
    assert stack.rest(who, "DD202405001 到哪了").status_code == 200
    resp = stack.rest(who, "转人工")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["mode"] == "waiting"
    assert body["handoff"]["reason"] == "requested"
    assert body["handoff"]["skill"] == "logistics"
    assert isinstance(body["handoff"]["priority"], int)
    assert len(body["replies"]) <= 1
    after = stack.rest(who, "你好，在吗？").json()
    assert after["mode"] == "waiting"
    assert after["replies"] == []
    assert after["handoff"]["reason"] == "requested"


def test_customer_sender_links_identity_and_guards_other_orders(stack: RunningStack) -> None:
    # C202405001 owns DD202405001 but not DD202405002: the latter is not disclosed.
    own = stack.rest("C202405001", "DD202405001 到哪了").json()
    assert "运单号" in " ".join(r["text"] for r in own["replies"])
    other = stack.rest("C202405001", "DD202405002 到哪了").json()
    text = " ".join(r["text"] for r in other["replies"])
    assert "DD202405002" in text
    assert "运单号" not in text


def test_missing_token_is_401(stack: RunningStack) -> None:
    url = f"{stack.base_url}/channels/rest/messages"
    assert httpx.post(url, json={"sender": "x", "text": "hi"}).status_code == 401
    wrong = httpx.post(url, json={"sender": "x", "text": "hi"}, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"text": "hi"}, "sender"),
        ({"sender": "x"}, "text"),
        ({"sender": "x", "text": 5}, "text"),
        ({"sender": "x", "text": "   "}, "text"),
        ({"sender": "x", "text": "hi", "metadata": "zh"}, "metadata"),
    ],
)
def test_malformed_body_is_422_naming_the_field(stack: RunningStack, body: dict[str, object], field: str) -> None:
    resp = httpx.post(
        f"{stack.base_url}/channels/rest/messages",
        json=body,
        headers={"Authorization": f"Bearer {stack.rest_token}"},
    )
    assert resp.status_code == 422
    assert any(err["loc"][-1] == field for err in resp.json()["detail"])


def test_not_json_is_422(stack: RunningStack) -> None:
    resp = httpx.post(
        f"{stack.base_url}/channels/rest/messages",
        content=b"{not json",
        headers={"Authorization": f"Bearer {stack.rest_token}", "Content-Type": "application/json"},
    )
    assert resp.status_code == 422


def test_oversized_text_is_413_and_nothing_is_lost(stack: RunningStack) -> None:
    who = sender()
    assert stack.rest(who, "x" * 5001).status_code == 413
    assert stack.rest(who, "x" * (1024 * 1024)).status_code == 413
    ok = stack.rest(who, "DD202405001 到哪了")
    assert ok.status_code == 200
    assert "DD202405001" in ok.json()["replies"][0]["text"]


def test_idempotency_key_processes_a_retry_once(stack: RunningStack) -> None:
    who = sender()
    headers = {"Authorization": f"Bearer {stack.rest_token}", "Idempotency-Key": uuid.uuid4().hex}
    url = f"{stack.base_url}/channels/rest/messages"
    first = httpx.post(url, json={"sender": who, "text": "你好"}, headers=headers, timeout=60).json()
    retry = httpx.post(url, json={"sender": who, "text": "你好"}, headers=headers, timeout=60).json()
    assert first["replies"]
    # The retry is not processed again, and it gets the answer the first request got (issue 12: it used to
    # get nothing, so a company app whose first response was lost never saw the answer).
    assert [r["text"] for r in retry["replies"]] == [r["text"] for r in first["replies"]]
    assert retry["conversation_id"] == first["conversation_id"]
    bot = [m for m in stack.pulled(who)["messages"] if m["role"] == "bot"]
    assert len(bot) == len(first["replies"])


def test_openapi_documents_the_rest_channel(stack: RunningStack) -> None:
    spec = httpx.get(f"{stack.base_url}/openapi.json").json()
    op = spec["paths"]["/channels/rest/messages"]["post"]
    assert {"200", "401", "413", "422"} <= set(op["responses"])


def test_engine_api_is_protected_by_its_token(stack: RunningStack) -> None:
    # Rasa's HTTP API and the app webhook refuse callers without the engine token.
    assert httpx.get(f"{stack.engine_url}/status").status_code == 401
    hook = httpx.post(f"{stack.engine_url}/webhooks/app/webhook", json={"sender": "x", "message": "hi"})
    assert hook.status_code == 401
    # Callbacks into the app need the engine token too.
    assert httpx.post(f"{stack.base_url}/webhooks/nlg", json={}).status_code == 401
    assert httpx.post(f"{stack.base_url}/webhooks/actions", json={}).status_code == 401


def test_three_followups_hand_off_on_the_third_not_before(stack: RunningStack) -> None:
    who = sender()
    assert "DD202405001" in stack.rest(who, "DD202405001 到哪了").json()["replies"][0]["text"]
    for n in (1, 2):
        body = stack.rest(who, "还是没解决").json()
        assert body["mode"] == "bot", f"handed off after {n} follow-ups"
        assert body["replies"]
    third = stack.rest(who, "还是没解决").json()
    assert third["mode"] == "waiting"
    assert third["handoff"]["reason"] == "followups"
    assert third["handoff"]["skill"] == "logistics"


def test_angry_message_hands_off_for_sentiment(stack: RunningStack) -> None:
    body = stack.rest(sender(), "你们这什么破服务！等了两个星期还没到，骗子！我要去12315投诉你们！！").json()
    assert body["mode"] == "waiting"
    assert body["handoff"]["reason"] == "sentiment"


@pytest.mark.parametrize(
    "text",
    ["DD" + "9" * 500, "9" * 300, "订单 DD202405017 DD202405018 DD202405019 SF1234567890123 13800138000"],
)
def test_long_numbers_are_not_taken_for_anger(stack: RunningStack, text: str) -> None:
    """A pasted number, however long, says nothing of the customer's mood: no apologetic hand-off."""
    body = stack.rest(sender(), text).json()
    assert body["mode"] == "bot", body
    assert not body.get("handoff"), body


def test_traditional_question_gets_a_traditional_answer(stack: RunningStack) -> None:
    text = " ".join(r["text"] for r in stack.rest("C202405006", "請問訂單DD202405006到哪裡了？").json()["replies"])
    assert "DD202405006" in text
    assert "訂單" in text
    assert "订单" not in text


def test_vip_complaint_hands_off_at_once_with_the_highest_priority(stack: RunningStack) -> None:
    # C202405003 is a VIP in the demo CRM.
    body = stack.rest("C202405003", "你们卖的耳机质量太差了，用了两天就坏了，我很不满意").json()
    assert body["mode"] == "waiting"
    assert body["handoff"]["reason"] == "vip_complaint"
    assert body["handoff"]["priority"] == 9
    assert body["handoff"]["skill"] == "complaints"


def messages(stack: RunningStack, who: str, token: str | None = None, **params: str | float) -> httpx.Response:
    """GET the customer's messages from the REST channel."""
    return httpx.get(
        f"{stack.base_url}/channels/rest/messages",
        params={"sender": who, **params},
        headers={"Authorization": f"Bearer {token or stack.rest_token}"},
        timeout=60,
    )


def test_an_agents_answer_reaches_the_rest_customer(stack: RunningStack) -> None:
    who = sender()
    first = stack.rest(who, "DD202405001 到哪了").json()
    last_seen = first["replies"][-1]["seq"]
    handed = stack.rest(who, "转人工").json()
    assert handed["mode"] == "waiting"
    if handed["replies"]:
        last_seen = handed["replies"][-1]["seq"]
    assert messages(stack, who, after=last_seen).json()["messages"] == []  # nothing new yet
    conv_id = handed["conversation_id"]
    answered = stack.agent("POST", f"/conversations/{conv_id}/messages", by="Lin", text="您好，我是客服小林。")
    assert answered.status_code == 200
    body = messages(stack, who, after=last_seen).json()
    assert body["conversation_id"] == conv_id and body["mode"] == "agent"
    roles = [(m["role"], m["agent_name"]) for m in body["messages"]]
    assert ("agent", "Lin") in roles  # the answer itself
    assert roles[0][0] == "system"  # the "an agent has joined" notice came first
    answer = next(m for m in body["messages"] if m["role"] == "agent")
    assert answer["text"] == "您好，我是客服小林。"
    # Nothing is returned twice: after the newest message there is nothing.
    assert messages(stack, who, after=body["messages"][-1]["seq"]).json()["messages"] == []
    # Without `after`, the whole conversation as the customer saw it, without the customer's own words.
    everything = messages(stack, who).json()["messages"]
    assert [m["role"] for m in everything].count("bot") >= 1
    assert all(m["role"] != "customer" for m in everything)


def test_long_poll_returns_as_soon_as_the_agent_answers(stack: RunningStack) -> None:
    import threading

    who = sender()
    handed = stack.rest(who, "我要人工客服").json()
    conv_id = handed["conversation_id"]
    stack.agent("POST", f"/conversations/{conv_id}/take", by="Chen")
    newest = messages(stack, who).json()["messages"][-1]["seq"]
    timer = threading.Timer(
        1.0,
        lambda: stack.agent("POST", f"/conversations/{conv_id}/messages", by="Chen", text="Hello, Chen here."),
    )
    timer.start()
    try:
        body = messages(stack, who, after=newest, wait=20).json()
    finally:
        timer.join()
    assert [m["text"] for m in body["messages"]] == ["Hello, Chen here."]


def test_reading_messages_checks_token_sender_and_position(stack: RunningStack) -> None:
    assert messages(stack, "nobody-" + uuid.uuid4().hex).status_code == 404
    who = sender()
    stack.rest(who, "你好")
    assert messages(stack, who, token="wrong").status_code == 401
    bad = messages(stack, who, after="not-a-seq")
    assert bad.status_code == 422 and "after" in bad.text
    # Shaped like a seq but none Redis can read after (out of range, the largest, other scripts' digits):
    # a 422, where Redis's refusal was a 500.
    for odd in ("99999999999999999999-0", "18446744073709551615-18446744073709551615", "١٢-٣"):
        assert messages(stack, who, after=odd).status_code == 422, odd
    assert messages(stack, who, after="18446744073709551615-0").json()["messages"] == []
    assert messages(stack, who, wait=31).status_code == 422
