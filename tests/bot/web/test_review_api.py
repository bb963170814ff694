"""The review list's API in-process: roles and CSRF, and a misunderstood message from the customer's
channel to the reviewed training file (a tmp path, never the repository's)."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import yaml

from bot.accounts.records import CLI, Role
from bot.conversations.messages import InboundMessage
from bot.engine.contract import Prediction
from bot.masking import ORDER_ID, PHONE
from tests.bot.web.conftest import Client, container_of, signed_in
from tests.fakes.engine import StubEngine

CSRF = "X-CSRF-Token"


async def customer_says(client: httpx.AsyncClient, text: str, understood: Prediction) -> None:
    """A REST customer's message, answered by the stub engine with the given prediction."""
    container = container_of(client)
    engine = container.engine
    assert isinstance(engine, StubEngine)
    engine.understood[text] = understood
    sender = uuid.uuid4().hex
    await container.router.handle(
        InboundMessage(channel="rest", thread_id=sender, sender=sender, text=text, idempotency_key=uuid.uuid4().hex)
    )


async def test_agents_may_not_review_supervisors_and_admins_may(app_client: Client, tmp_path: Path) -> None:
    client = await app_client(review_file=tmp_path / "reviewed.yml")
    await customer_says(client, "嗯嗯那个", Prediction("greet", 0.2))
    _, csrf = await signed_in(client, Role.AGENT)
    assert (await client.get("/agent/review")).status_code == 403
    assert (await client.get("/agent/review/intents")).status_code == 403
    assert (await client.post("/agent/review/x/dismiss", headers={CSRF: csrf})).status_code == 403
    for role in (Role.SUPERVISOR, Role.ADMIN):
        client.cookies.clear()
        await signed_in(client, role)
        listed = await client.get("/agent/review")
        assert listed.status_code == 200 and listed.json()["total"] == 1, listed.text
    client.cookies.clear()
    assert (await client.get("/agent/review")).status_code == 401


async def test_deciding_with_the_cookie_needs_the_csrf_token(app_client: Client, tmp_path: Path) -> None:
    client = await app_client(review_file=tmp_path / "reviewed.yml")
    await customer_says(client, "嗯嗯那个", Prediction("greet", 0.2))
    _, csrf = await signed_in(client, Role.SUPERVISOR)
    [item] = (await client.get("/agent/review")).json()["items"]
    refused = await client.post(f"/agent/review/{item['id']}/dismiss")
    assert refused.status_code == 403 and CSRF in refused.json()["detail"]
    foreign = await client.post(
        f"/agent/review/{item['id']}/dismiss", headers={CSRF: csrf, "Origin": "https://evil.example"}
    )
    assert foreign.status_code == 403
    done = await client.post(f"/agent/review/{item['id']}/dismiss", headers={CSRF: csrf})
    assert done.status_code == 200 and done.json()["dismissed"] is True
    assert (await client.post(f"/agent/review/{item['id']}/dismiss", headers={CSRF: csrf})).status_code == 404
    assert (await client.get("/agent/review")).json()["total"] == 0
    assert not (tmp_path / "reviewed.yml").exists()  # dismissed: no example


async def test_a_low_confidence_message_is_listed_masked_and_its_label_lands_in_the_yaml(
    app_client: Client, tmp_path: Path
) -> None:
    reviewed = tmp_path / "reviewed" / "reviewed.yml"
    client = await app_client(review_file=reviewed)
    text = "DD202405007 那个 13812345678 啥时候"
    await customer_says(client, text, Prediction("greet", 0.31))
    await customer_says(client, "你好", Prediction("greet", 0.98))  # confident: not listed
    admin, csrf = await signed_in(client, Role.ADMIN)
    page = (await client.get("/agent/review", params={"reason": "low_confidence"})).json()
    [item] = page["items"]
    masked = f"{ORDER_ID} 那个 {PHONE} 啥时候"
    assert (item["text"], item["intent"], item["confidence"]) == (masked, "greet", 0.31)
    assert (item["reasons"], item["count"], item["channel"], item["locale"]) == (["low_confidence"], 1, "rest", "zh-CN")
    assert (await client.get("/agent/review", params={"reason": "fallback"})).json()["total"] == 0
    assert (await client.get("/agent/review", params={"reason": "nonsense"})).status_code == 422

    intents = {i["name"]: i["reviewed"] for i in (await client.get("/agent/review/intents")).json()}
    assert intents["order_status"] == 0 and "out_of_scope" in intents and "nlu_fallback" not in intents
    wrong = await client.post(f"/agent/review/{item['id']}/assign", json={"intent": "shopping"}, headers={CSRF: csrf})
    assert wrong.status_code == 400 and "order_status" in wrong.json()["detail"]
    assigned = await client.post(
        f"/agent/review/{item['id']}/assign", json={"intent": "order_status"}, headers={CSRF: csrf}
    )
    assert assigned.status_code == 200 and assigned.json()["assigned"] == "order_status"
    data = yaml.safe_load(reviewed.read_text())
    assert data["nlu"] == [{"intent": "order_status", "examples": f"- {masked}\n"}]
    assert "13812345678" not in reviewed.read_text() and "DD202405007" not in reviewed.read_text()
    assert {i["name"]: i["reviewed"] for i in (await client.get("/agent/review/intents")).json()}["order_status"] == 1
    assert (await client.get("/agent/review")).json()["total"] == 0
    audit = await container_of(client).accounts.audit_page(limit=5, action="review_assign")
    assert [(e.action, e.detail) for e in audit] == [("review_assign", "greet -> order_status")]
    # Out of scope is one click too, through the same route; a bearer token works without CSRF.
    await customer_says(client, "你们卖房子吗", Prediction("product_inquiry", 0.2))
    token = await container_of(client).account_service.create_token(CLI, admin, "tests")
    client.cookies.clear()
    bearer = {"Authorization": f"Bearer {token.secret}"}
    [other] = (await client.get("/agent/review", headers=bearer)).json()["items"]
    out = await client.post(f"/agent/review/{other['id']}/assign", json={"intent": "out_of_scope"}, headers=bearer)
    assert out.status_code == 200
    assert [b["intent"] for b in yaml.safe_load(reviewed.read_text())["nlu"]] == ["order_status", "out_of_scope"]


async def test_malformed_ids_and_an_unwritable_file_are_told_apart(app_client: Client, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    client = await app_client(review_file=blocker / "reviewed.yml")
    await customer_says(client, "嗯嗯那个", Prediction("greet", 0.2))
    _, csrf = await signed_in(client, Role.ADMIN)
    assert (await client.post("/agent/review/../../x/dismiss", headers={CSRF: csrf})).status_code == 404
    assert (await client.post("/agent/review/NOT-AN-ID/dismiss", headers={CSRF: csrf})).status_code == 422
    [item] = (await client.get("/agent/review")).json()["items"]
    failed = await client.post(f"/agent/review/{item['id']}/assign", json={"intent": "greet"}, headers={CSRF: csrf})
    assert failed.status_code == 500 and "AUTORESPONDER_REVIEW_FILE" in failed.json()["detail"]
    assert (await client.get("/agent/review")).json()["total"] == 1  # not written: still on the list
