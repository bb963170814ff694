"""The action endpoint and the engine's domain digest: the domain is asked for (449) until it was sent once,
then the digest names it; a malformed call gets a 4xx, never a 500."""

from __future__ import annotations

from typing import Any

from tests.bot.web.conftest import Client

URL = "/webhooks/actions?token=engine-token"
DOMAIN = {"intents": ["order_status"], "actions": ["action_session_start"], "slots": {}}


def call(digest: str, domain: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "next_action": "action_session_start",
        "sender_id": "c-449",
        "tracker": {"sender_id": "c-449", "slots": {"order_id": "DD202405001"}, "latest_message": {}, "events": []},
        "version": "3.6.21",
        "domain_digest": digest,
    }
    if domain is not None:
        body["domain"] = domain
    return body


async def test_the_domain_is_asked_for_once_then_named_by_its_digest(app_client: Client) -> None:
    client = await app_client()
    missing = await client.post(URL, json=call("d1"))
    assert missing.status_code == 449
    assert missing.json()["action_name"] == "action_session_start"
    sent = await client.post(URL, json=call("d1", DOMAIN))
    assert sent.status_code == 200
    events = sent.json()["events"]
    assert events[0]["event"] == "session_started"
    assert {"event": "slot", "name": "order_id", "value": "DD202405001"}.items() <= events[1].items()
    again = await client.post(URL, json=call("d1"))
    assert again.status_code == 200 and again.json() == sent.json()
    other = await client.post(URL, json=call("d2"))  # another model's domain: asked for again
    assert other.status_code == 449


async def test_unknown_actions_and_bad_bodies_are_refused_with_a_4xx(app_client: Client) -> None:
    client = await app_client()
    unknown = {**call("d1", DOMAIN), "next_action": "action_nobody_wrote"}
    assert (await client.post(URL, json=unknown)).status_code == 404
    deep = "[" * 100 + "]" * 100
    resp = await client.post(URL, content=deep, headers={"content-type": "application/json"})
    assert resp.status_code == 422
