"""The web chat websocket through the real stack."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from tests.conftest import RunningStack

pytestmark = pytest.mark.stack


async def recv(ws: ClientConnection, kind: str, wait: float = 60, **match: Any) -> dict[str, Any]:
    """The next frame of a type (and matching fields), skipping others."""
    async with asyncio.timeout(wait):
        while True:
            frame: dict[str, Any] = json.loads(await ws.recv())
            if frame.get("type") == kind and all(frame.get(k) == v for k, v in match.items()):
                return frame


async def hello(ws: ClientConnection, session: str | None = None, last_seq: str | None = None) -> dict[str, Any]:
    await ws.send(json.dumps({"type": "hello", "session": session, "locale": "zh-CN", "last_seq": last_seq}))
    return await recv(ws, "welcome")


async def say(ws: ClientConnection, text: str, client_id: str | None = None) -> str:
    cid = client_id or uuid.uuid4().hex
    await ws.send(json.dumps({"type": "message", "text": text, "client_id": cid}))
    return cid


async def bot_reply(ws: ClientConnection) -> dict[str, Any]:
    return await recv(ws, "message", role="bot")


async def test_order_question_answered_and_history_replayed_after_reload(stack: RunningStack) -> None:
    async with websockets.connect(stack.ws_url) as ws:
        welcome = await hello(ws)
        assert welcome["history"] == []
        session = welcome["session"]
        cid = await say(ws, "DD202405001 到哪了")
        echo = await recv(ws, "message", role="customer")
        assert echo["client_id"] == cid
        typing = await recv(ws, "typing")
        assert typing["on"] is True
        reply = await bot_reply(ws)
        # A guest proves the order is theirs before any detail (tests/bot/access).
        assert "DD202405001" in reply["text"]
        assert "后 4 位" in reply["text"] and "运单号" not in reply["text"]
    # A page reload: same session, nothing rendered yet, so the whole history comes back.
    async with websockets.connect(stack.ws_url) as ws:
        again = await hello(ws, session)
        assert again["conversation_id"] == welcome["conversation_id"]
        roles = [m["role"] for m in again["history"]]
        assert roles[:2] == ["customer", "bot"]
        assert again["history"][1]["seq"] == reply["seq"]


async def test_reconnect_replays_only_what_was_missed_and_dedupes_resends(stack: RunningStack) -> None:
    async with websockets.connect(stack.ws_url) as ws:
        welcome = await hello(ws)
        cid = await say(ws, "你好")
        first = await bot_reply(ws)
    # The connection dropped; the client resends the same frame (same client_id) and asks from its last seq.
    async with websockets.connect(stack.ws_url) as ws:
        back = await hello(ws, welcome["session"], last_seq=first["seq"])
        assert back["history"] == []
        await say(ws, "你好", client_id=cid)
        await ws.send(json.dumps({"type": "ping"}))
        await recv(ws, "pong")
        await say(ws, "谢谢")
        reply = await bot_reply(ws)
        assert reply["seq"] > first["seq"]
    async with websockets.connect(stack.ws_url) as ws:
        full = await hello(ws, welcome["session"])
        customer = [m["text"] for m in full["history"] if m["role"] == "customer"]
        assert customer == ["你好", "谢谢"]


async def test_bad_frames_get_error_frames_and_the_connection_stays_usable(stack: RunningStack) -> None:
    async with websockets.connect(stack.ws_url, max_size=None) as ws:
        await ws.send("this is not json")
        assert (await recv(ws, "error"))["code"] == "bad_json"
        await ws.send(b"\x00\x01binary")
        assert (await recv(ws, "error"))["code"] == "bad_json"
        await ws.send(json.dumps({"type": "teleport"}))
        assert (await recv(ws, "error"))["code"] == "unknown_type"
        await ws.send(json.dumps([1, 2]))
        assert (await recv(ws, "error"))["code"] == "bad_json"
        await say(ws, "hi before hello")
        assert (await recv(ws, "error"))["code"] == "no_session"
        await hello(ws)
        cid = await say(ws, "好" * (1024 * 1024))
        too_large = await recv(ws, "error")
        assert too_large["code"] == "too_large"
        assert too_large["client_id"] == cid
        await say(ws, "DD202405001 到哪了")
        reply = await bot_reply(ws)
        assert "DD202405001" in reply["text"]


async def test_forged_and_expired_sessions_start_a_fresh_conversation(stack: RunningStack) -> None:
    from itsdangerous import URLSafeTimedSerializer

    async with websockets.connect(stack.ws_url) as ws:
        await ws.send(json.dumps({"type": "hello", "session": "forged.token.value", "locale": "en"}))
        err = await recv(ws, "error")
        assert err["code"] == "bad_session"
        welcome = await recv(ws, "welcome")
        assert welcome["history"] == []
        # Signed with another key: also refused.
        other = URLSafeTimedSerializer("not-the-key", salt="autoresponder.webchat.session").dumps({"v": "x"})
        await ws.send(json.dumps({"type": "hello", "session": other}))
        assert (await recv(ws, "error"))["code"] == "bad_session"
        await recv(ws, "welcome")
        await say(ws, "hello")
        assert (await bot_reply(ws))["text"]


async def test_handoff_switches_mode_and_silences_the_bot(stack: RunningStack) -> None:
    async with websockets.connect(stack.ws_url) as ws:
        welcome = await hello(ws)
        await say(ws, "转人工")
        mode = await recv(ws, "mode")
        assert mode["mode"] == "waiting"
        await say(ws, "有人吗")
        echo = await recv(ws, "message", role="customer", text="有人吗")
        assert echo["seq"]
        with pytest.raises(TimeoutError):
            await recv(ws, "message", wait=3, role="bot")
    async with websockets.connect(stack.ws_url) as ws:
        again = await hello(ws, welcome["session"])
        assert again["mode"] == "waiting"
