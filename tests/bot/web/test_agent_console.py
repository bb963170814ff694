"""What the agent console reads from the agent API: an agent's own conversations, the queue's context, orders."""

from __future__ import annotations

import json
import time
import uuid
from urllib.parse import quote

import httpx
import pytest

from tests.conftest import RunningStack

pytestmark = pytest.mark.stack


def sender() -> str:
    return f"console-api-{uuid.uuid4().hex[:10]}"


def held(stack: RunningStack, agent: str) -> list[str]:
    """Ids of the conversations GET /agent/conversations lists for an agent."""
    resp = stack.agent("GET", "/conversations", by=agent)
    assert resp.status_code == 200, resp.text
    return [c["conversation_id"] for c in resp.json()]


def handed_off(stack: RunningStack, who: str, **extra: object) -> str:
    """A REST conversation waiting for an agent; its id."""
    body = stack.rest(who, "转人工", **extra).json()
    assert body["mode"] == "waiting", body
    conv_id: str = body["conversation_id"]
    return conv_id


def test_an_agents_conversations_follow_take_and_hand_back(stack: RunningStack) -> None:
    agent, other = f"小李-{uuid.uuid4().hex[:6]}", f"Alex {uuid.uuid4().hex[:6]}"
    conv_id = handed_off(stack, sender())
    assert conv_id not in held(stack, agent)

    assert stack.agent("POST", f"/conversations/{conv_id}/take", by=agent).status_code == 200
    mine = stack.agent("GET", "/conversations", by=agent).json()
    assert [c["conversation_id"] for c in mine] == [conv_id]
    assert mine[0]["mode"] == "agent"
    assert mine[0]["agent"] == agent
    assert mine[0]["channel"] == "rest"
    assert mine[0]["handoff"]["reason"] == "requested"
    assert mine[0]["customer"] is None  # a guest
    # Another agent neither holds it nor can take it or answer in it.
    assert conv_id not in held(stack, other)
    assert stack.agent("POST", f"/conversations/{conv_id}/take", by=other).status_code == 409
    refused = stack.agent("POST", f"/conversations/{conv_id}/messages", by=other, text="我来")
    assert refused.status_code == 409
    assert agent in refused.json()["detail"]
    assert held(stack, agent) == [conv_id]
    assert conv_id not in held(stack, other)

    # Answering a waiting conversation takes it, so it is listed too (most recently active first).
    second = handed_off(stack, sender())
    assert stack.agent("POST", f"/conversations/{second}/messages", by=agent, text="您好").status_code == 200
    assert held(stack, agent) == [second, conv_id]

    assert stack.agent("POST", f"/conversations/{conv_id}/handback").json()["mode"] == "bot"
    assert held(stack, agent) == [second]
    assert stack.agent("POST", f"/conversations/{second}/handback").status_code == 200
    assert held(stack, agent) == []


def test_an_agents_conversations_are_the_callers_own(stack: RunningStack) -> None:
    url = f"{stack.base_url}/agent/conversations"
    assert httpx.get(url).status_code == 401
    wrong = httpx.get(url, headers={"Authorization": f"Bearer {stack.rest_token}"})
    assert wrong.status_code == 401
    # The list is the caller's: a name in the query is not a way to read another agent's list.
    agent = f"小李-{uuid.uuid4().hex[:6]}"
    conv_id = handed_off(stack, sender())
    assert stack.agent("POST", f"/conversations/{conv_id}/take", by=agent).status_code == 200
    assert held(stack, agent) == [conv_id]
    other = f"小张-{uuid.uuid4().hex[:6]}"
    assert stack.agent("GET", f"/conversations?agent={quote(agent)}", by=other).json() == []
    assert stack.agent("POST", f"/conversations/{conv_id}/handback").status_code == 200


def test_queue_entries_carry_channel_customer_and_wait(stack: RunningStack) -> None:
    conv_id = handed_off(stack, sender(), metadata={"customer_id": "C202405010"})  # a VIP
    entry = next(e for e in stack.agent("GET", "/queue").json() if e["conversation_id"] == conv_id)
    assert entry["channel"] == "rest"
    assert entry["customer"]["vip"] is True
    assert entry["customer"]["name"] == "周女士"
    assert entry["top_priority"] is (entry["priority"] >= 9)
    assert 0 <= entry["waited_seconds"] < 120
    assert stack.agent("POST", f"/conversations/{conv_id}/handback").status_code == 200


def test_conversation_lists_the_customers_own_orders_in_its_language(stack: RunningStack) -> None:
    from bot.crm.repository import CRM

    crm = CRM.from_url(f"sqlite:///{stack.var_dir / 'crm.sqlite3'}")
    try:
        expected = [o.id for o in crm.orders_for("C202405001")]
    finally:
        crm.close()
    zh = stack.rest(sender(), "DD202405001 到哪了", metadata={"customer_id": "C202405001"}).json()
    context = stack.agent("GET", f"/conversations/{zh['conversation_id']}").json()
    orders = {o["id"]: o for o in context["orders"]}
    assert list(orders) == expected
    assert "DD202405002" not in orders  # another customer's
    assert orders["DD202405001"] == {
        "id": "DD202405001",
        "status": "shipped",
        "product": "无线蓝牙耳机 X1",
        "quantity": 1,
        "carrier": "顺丰速运",
        "tracking_number": "SF1234567890123",
        "amount": "399.00",
        "currency": "CNY",
        "purchase_date": "2024-05-16",
    }
    assert context["customer"] == {
        "id": "C202405001",
        "name": "王先生",
        "vip": False,
        "vip_level": 0,
        "locale": "zh-CN",
    }
    # Never the full name, the phone number, the email or the address.
    raw = json.dumps(context, ensure_ascii=False)
    for secret in ("王伟", "13800138001", "wang.wei@example.com", "张杨路"):
        assert secret not in raw

    en = stack.rest(sender(), "where is my order DD202405001", metadata={"customer_id": "C202405001"}).json()
    english = stack.agent("GET", f"/conversations/{en['conversation_id']}").json()
    first = next(o for o in english["orders"] if o["id"] == "DD202405001")
    assert first["product"] == "Wireless Earbuds X1"
    assert first["carrier"] == "SF Express"
    assert english["customer"]["name"] == "Mr. Wang"


def test_a_guests_conversation_has_no_orders(stack: RunningStack) -> None:
    body = stack.rest(sender(), "DD202405001 到哪了").json()
    context = stack.agent("GET", f"/conversations/{body['conversation_id']}").json()
    assert context["customer"] is None
    assert context["orders"] == []
    assert [m["role"] for m in context["transcript"]][:2] == ["customer", "bot"]
    assert context["transcript"][0]["display_text"] == "DD202405001 到哪了"


def test_sla_timer_survey_and_figures_on_a_running_stack(stack: RunningStack) -> None:
    who = sender()
    conv_id = handed_off(stack, who)
    entry = next(e for e in stack.agent("GET", "/queue").json() if e["conversation_id"] == conv_id)
    assert entry["sla"]["state"] == "ok"
    assert 29 * 60 < entry["sla"]["seconds_left"] <= 30 * 60  # the default 30-minute first-response target
    before = stack.agent("GET", "/stats").json()

    answered = stack.agent("POST", f"/conversations/{conv_id}/messages", by="小王", text="您好，已处理")
    assert answered.status_code == 200
    detail = stack.agent("GET", f"/conversations/{conv_id}").json()
    assert detail["sla"]["state"] == "met"
    assert stack.agent("POST", f"/conversations/{conv_id}/handback").status_code == 200

    # The REST app receives the survey with its five score buttons ...
    pulled = stack.pulled(who)
    ask = pulled["messages"][-1]
    assert "小王" in ask["text"]
    assert [b["payload"] for b in ask["buttons"]] == ["5", "4", "3", "2", "1"]
    # ... and a score of 1 sends the conversation to a supervisor at once.
    low = stack.rest(who, "1").json()
    assert low["mode"] == "waiting"
    assert low["handoff"] == {"reason": "low_csat", "skill": "complaints", "priority": 8}
    assert "主管" in low["replies"][0]["text"]

    after = stack.agent("GET", "/stats").json()
    assert after["first_response"]["count"] == before["first_response"]["count"] + 1
    assert after["csat"]["surveys"] == before["csat"]["surveys"] + 1
    assert after["csat"]["distribution"]["1"] == before["csat"]["distribution"]["1"] + 1
    assert after["csat"]["low"] == before["csat"]["low"] + 1
    assert after["queue"]["by_skill"]["complaints"] >= 1
    assert stack.agent("GET", "/stats?hours=0").status_code == 422
    assert stack.agent("POST", f"/conversations/{conv_id}/handback").status_code == 200


def test_notes_and_transfer_over_the_api(stack: RunningStack) -> None:
    who = sender()
    conv_id = handed_off(stack, who)
    assert stack.agent("POST", f"/conversations/{conv_id}/take", by="小李").status_code == 200
    noted = stack.agent("POST", f"/conversations/{conv_id}/notes", by="小李", text="内部：客户要开专票")
    assert noted.status_code == 200 and noted.json()["seq"].startswith("note-")
    assert stack.agent("POST", f"/conversations/{conv_id}/notes", by="小李", text="").status_code == 422
    assert stack.agent("POST", "/conversations/nope/notes", by="小李", text="x").status_code == 404

    # Only the holder may transfer; an unknown skill is refused with the field named.
    assert stack.agent("POST", f"/conversations/{conv_id}/transfer", by="小王", skill="billing").status_code == 409
    bad = stack.agent("POST", f"/conversations/{conv_id}/transfer", by="小李", skill="sales")
    assert bad.status_code == 422 and "skill" in bad.text
    moved = stack.agent("POST", f"/conversations/{conv_id}/transfer", by="小李", skill="billing", reason="专票")
    assert moved.json() == {"conversation_id": conv_id, "mode": "waiting", "skill": "billing"}
    billing = stack.agent("GET", "/queue?skill=billing").json()
    assert conv_id in [e["conversation_id"] for e in billing]
    assert conv_id not in held(stack, "小李")

    # Agents see the notes in the transcript; the customer's app never does.
    transcript = stack.agent("GET", f"/conversations/{conv_id}").json()["transcript"]
    notes = [m["text"] for m in transcript if m["role"] == "note"]
    assert notes == ["内部：客户要开专票", "Transferred to billing by 小李: 专票"]
    pulled = stack.pulled(who)
    shown = " ".join(m["text"] for m in pulled["messages"])
    assert "专票" not in shown
    assert "转接更合适的客服同事" in shown  # the customer is told someone else takes over
    assert stack.agent("POST", f"/conversations/{conv_id}/handback").status_code == 200


def test_an_available_agent_is_given_waiting_conversations(stack: RunningStack) -> None:
    agent = f"auto-{uuid.uuid4().hex[:6]}"
    complaint = "你们卖的耳机质量太差了，用了两天就坏了，我很不满意"
    vip = {"metadata": {"customer_id": "C202405003"}}
    on = stack.agent("POST", "/presence", by=agent, available=True, skills=["complaints"], capacity=5)
    assert on.status_code == 200, on.text
    try:
        assert on.json() == {"agent": agent, "available": True, "skills": ["complaints"], "capacity": 5, "holding": 0}
        assert agent in [p["agent"] for p in stack.agent("GET", "/presence").json()]
        bad = stack.agent("POST", "/presence", by=agent, available=True, capacity=0)
        assert bad.status_code == 422 and "capacity" in bad.text

        # A VIP's complaint is queued for the complaints skill and reaches the agent within seconds.
        body = stack.rest(sender(), complaint, **vip).json()
        assert body["mode"] == "waiting" and body["handoff"]["skill"] == "complaints", body
        conv_id = body["conversation_id"]
        deadline = time.monotonic() + 20
        while conv_id not in held(stack, agent) and time.monotonic() < deadline:
            time.sleep(0.3)
        assert conv_id in held(stack, agent)
        transcript = stack.agent("GET", f"/conversations/{conv_id}").json()["transcript"]
        assert f"Assigned to {agent} automatically" in [m["text"] for m in transcript if m["role"] == "note"]
        assert any(m["role"] == "system" and agent in m["text"] for m in transcript)  # the customer was told
    finally:
        off = stack.agent("POST", "/presence", by=agent, available=False).json()
    assert off["available"] is False
    assert agent not in [p["agent"] for p in stack.agent("GET", "/presence").json()]

    # Unavailable: the next complaint waits in the queue.
    later = stack.rest(sender(), complaint, **vip).json()["conversation_id"]
    time.sleep(4)
    assert later not in held(stack, agent)
    assert later in [e["conversation_id"] for e in stack.agent("GET", "/queue?skill=complaints").json()]
    for conv in [*held(stack, agent), later]:
        assert stack.agent("POST", f"/conversations/{conv}/handback").status_code == 200
