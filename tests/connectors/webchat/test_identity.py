"""Verified customer identity in the web chat: the shop signs the customer's id, the app links the visitor.

Unit tests of the signature check, then the whole stack: a valid hash links the conversation to the CRM
customer (agents see them as that customer), a forged one leaves a guest, logging in mid-conversation
keeps the conversation, logging out or switching customers starts a new one.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from connectors.webchat.identity import IdentityVerifier, identity_hash
from tests.conftest import IDENTITY_SECRET, RunningStack
from tests.connectors.webchat.test_webchat import recv

SECRET = "shop-secret"


def signed(customer_id: str, secret: str = IDENTITY_SECRET) -> dict[str, str]:
    return {"customer_id": customer_id, "hash": identity_hash(secret, customer_id)}


def test_the_hash_is_hmac_sha256_of_the_id_in_hex() -> None:
    # The value a shop's backend computes with its own HMAC library (the README's examples).
    assert identity_hash("secret", "C202405001") == hmac.new(b"secret", b"C202405001", hashlib.sha256).hexdigest()


@pytest.mark.parametrize(
    ("raw", "customer", "valid"),
    [
        (None, None, True),
        ({}, None, True),
        ({"customer_id": "C202405001", "hash": identity_hash(SECRET, "C202405001")}, "C202405001", True),
        ({"customer_id": " C202405001 ", "hash": identity_hash(SECRET, "C202405001").upper()}, "C202405001", True),
        ({"customer_id": "C202405001", "hash": identity_hash("other", "C202405001")}, None, False),
        ({"customer_id": "C202405002", "hash": identity_hash(SECRET, "C202405001")}, None, False),
        ({"customer_id": "C202405001"}, None, False),
        ({"customer_id": "C202405001", "hash": 5}, None, False),
        ({"customer_id": "\ud800", "hash": "00"}, None, False),
        ({"customer_id": "C202405001", "hash": "é" * 64}, None, False),
        ({"customer_id": "C" * 500, "hash": identity_hash(SECRET, "C" * 500)}, None, False),
        ("C202405001", None, False),
        ([], None, False),
    ],
)
def test_only_a_correct_signature_names_a_customer(raw: Any, customer: str | None, valid: bool) -> None:
    claim = IdentityVerifier(SECRET).check(raw)
    assert (claim.customer_id, claim.valid) == (customer, valid)


async def hello(ws: ClientConnection, identity: Any, session: str | None = None) -> dict[str, Any]:
    frame = {"type": "hello", "session": session, "locale": "zh-CN", "last_seq": None, "identity": identity}
    await ws.send(json.dumps(frame))
    return await recv(ws, "welcome")


def customer_of(stack: RunningStack, conversation_id: str) -> str | None:
    """Who agents see behind a conversation."""
    resp = stack.agent("GET", f"/conversations/{conversation_id}")
    assert resp.status_code == 200, resp.text
    card = resp.json()["customer"]
    return str(card["id"]) if card else None


@pytest.mark.stack
async def test_a_signed_customer_is_linked_and_agents_see_them(stack: RunningStack) -> None:
    async with websockets.connect(stack.ws_url) as ws:
        welcome = await hello(ws, signed("C202405001"))
        assert customer_of(stack, welcome["conversation_id"]) == "C202405001"
        await ws.send(json.dumps({"type": "message", "text": "你好", "client_id": "id-1"}))
        await recv(ws, "message", role="bot")
        assert customer_of(stack, welcome["conversation_id"]) == "C202405001"


@pytest.mark.stack
async def test_a_forged_hash_is_a_guest(stack: RunningStack) -> None:
    async with websockets.connect(stack.ws_url) as ws:
        await ws.send(
            json.dumps({"type": "hello", "session": None, "locale": "zh-CN", "identity": signed("C202405003", "guess")})
        )
        error = await recv(ws, "error")
        assert error["code"] == "bad_identity"
        welcome = await recv(ws, "welcome")
        await ws.send(json.dumps({"type": "message", "text": "你好", "client_id": "id-2"}))
        await recv(ws, "message", role="bot")
        assert customer_of(stack, welcome["conversation_id"]) is None


@pytest.mark.stack
async def test_logging_in_keeps_the_conversation_and_logging_out_starts_another(stack: RunningStack) -> None:
    async with websockets.connect(stack.ws_url) as ws:
        guest = await hello(ws, None)
        await ws.send(json.dumps({"type": "message", "text": "你好", "client_id": "id-3"}))
        await recv(ws, "message", role="bot")
        # The visitor logs in on the shop's page: the same conversation, now theirs.
        await ws.send(json.dumps({"type": "identify", "identity": signed("C202405002")}))
        linked = await recv(ws, "welcome")
        assert linked["conversation_id"] == guest["conversation_id"]
        assert customer_of(stack, linked["conversation_id"]) == "C202405002"
        # Logged out: a new conversation, of a guest; the old one is not replayed.
        await ws.send(json.dumps({"type": "identify", "identity": None}))
        out = await recv(ws, "welcome")
        assert out["conversation_id"] != linked["conversation_id"]
        assert out["history"] == []
        assert customer_of(stack, out["conversation_id"]) is None
    # A reload after logging out, with the session of the customer's conversation: not theirs any more.
    async with websockets.connect(stack.ws_url) as ws:
        again = await hello(ws, None, linked["session"])
        assert again["conversation_id"] != linked["conversation_id"]


@pytest.mark.stack
async def test_another_customer_on_the_same_browser_gets_a_conversation_of_their_own(stack: RunningStack) -> None:
    async with websockets.connect(stack.ws_url) as ws:
        first = await hello(ws, signed("C202405004"))
    async with websockets.connect(stack.ws_url) as ws:
        same = await hello(ws, signed("C202405004"), first["session"])
        assert same["conversation_id"] == first["conversation_id"]
    async with websockets.connect(stack.ws_url) as ws:
        other = await hello(ws, signed("C202405005"), first["session"])
        assert other["conversation_id"] != first["conversation_id"]
        assert other["history"] == []
        assert customer_of(stack, other["conversation_id"]) == "C202405005"
