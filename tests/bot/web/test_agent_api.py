"""Agents take a handed-off conversation, answer through the customer's channel, and hand it back."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest
import websockets

from tests.conftest import RunningStack
from tests.connectors.webchat.test_webchat import hello, recv, say

pytestmark = pytest.mark.stack


def test_agent_api_needs_its_token(stack: RunningStack) -> None:
    assert httpx.get(f"{stack.base_url}/agent/queue").status_code == 401
    wrong = httpx.get(f"{stack.base_url}/agent/queue", headers={"Authorization": f"Bearer {stack.rest_token}"})
    assert wrong.status_code == 401


def test_handoff_queue_take_answer_and_hand_back_over_rest(stack: RunningStack) -> None:
    who = f"agent-rest-{uuid.uuid4().hex[:8]}"
    stack.rest(who, "DD202405001 到哪了")
    stack.rest(who, "8001")  # a guest proves the order is theirs (tests/bot/access), then gets the answer
    handed = stack.rest(who, "我要人工客服").json()
    conv_id = handed["conversation_id"]
    queue = stack.agent("GET", "/queue").json()
    entry = next(e for e in queue if e["conversation_id"] == conv_id)
    assert entry["reason"] == "requested"
    assert entry["skill"] == "logistics"
    assert "DD202405001" in entry["summary"]
    context = stack.agent("GET", f"/conversations/{conv_id}").json()
    said = [m for m in context["transcript"] if m["role"] != "note"]  # notes: the guest proved the order
    assert [m["role"] for m in said][:4] == ["customer", "bot", "customer", "bot"]
    assert said[1]["template"] == "utter_verify_order"
    assert said[3]["template"] == "utter_order_status"

    taken = stack.agent("POST", f"/conversations/{conv_id}/take", by="小李")
    assert taken.status_code == 200
    assert taken.json()["mode"] == "agent"
    assert conv_id not in {e["conversation_id"] for e in stack.agent("GET", "/queue").json()}
    assert stack.agent("POST", f"/conversations/{conv_id}/take", by="someone else").status_code == 409
    assert stack.rest(who, "好的谢谢").json()["mode"] == "agent"

    back = stack.agent("POST", f"/conversations/{conv_id}/handback")
    assert back.json()["mode"] == "bot"
    again = stack.rest(who, "DD202405001 到哪了").json()
    assert again["mode"] == "bot"
    assert again["handoff"] is None
    assert "DD202405001" in again["replies"][0]["text"]
    assert stack.agent("POST", "/conversations/nope/take", by="x").status_code == 404


async def test_agent_answer_reaches_the_web_chat(stack: RunningStack) -> None:
    async with websockets.connect(stack.ws_url) as ws:
        welcome = await hello(ws)
        await say(ws, "转人工")
        await recv(ws, "mode", mode="waiting")
        conv_id = welcome["conversation_id"]
        answer = stack.agent("POST", f"/conversations/{conv_id}/messages", by="小李", text="您好，我来帮您看看")
        assert answer.status_code == 200
        joined = await recv(ws, "mode", mode="agent")
        assert joined["agent_name"] == "小李"
        notice = await recv(ws, "message", role="system")
        assert "小李" in notice["text"]
        message = await recv(ws, "message", role="agent")
        assert message["text"] == "您好，我来帮您看看"
        assert message["agent_name"] == "小李"
        stack.agent("POST", f"/conversations/{conv_id}/handback")
        await recv(ws, "mode", mode="bot")
        await ws.send(json.dumps({"type": "message", "text": "你好", "client_id": uuid.uuid4().hex}))
        assert (await recv(ws, "message", role="bot"))["text"]
