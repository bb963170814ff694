"""The Telegram channel in webhook mode: setWebhook with a secret, and only Telegram gets in."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.connectors.telegram.conftest import WEBHOOK_SECRET, TelegramStack, new_user
from tests.fakes.telegram_api import wait_for

pytestmark = pytest.mark.stack

PATH = "/channels/telegram/webhook"


def test_the_webhook_is_registered_with_its_secret_and_nothing_polls(tg_webhook: TelegramStack) -> None:
    url, secret = wait_for(lambda: tg_webhook.api.webhook if tg_webhook.api.webhook[0] else None, 30, "setWebhook")
    assert url == tg_webhook.stack.base_url + PATH
    assert secret == WEBHOOK_SECRET
    allowed = tg_webhook.api.calls("setWebhook")[-1].params["allowed_updates"]
    assert {"message", "edited_message", "callback_query", "my_chat_member"} <= set(allowed)
    assert tg_webhook.api.calls("getUpdates") == []


@pytest.mark.parametrize("secret", [None, "", "wrong-secret", WEBHOOK_SECRET + "x", WEBHOOK_SECRET.upper()])
def test_a_missing_or_wrong_secret_gets_401_and_nothing_is_processed(
    tg_webhook: TelegramStack, secret: str | None
) -> None:
    wait_for(lambda: tg_webhook.api.webhook[0], 30, "setWebhook")
    user = new_user()
    status = tg_webhook.api.post_to_webhook(tg_webhook.api.text(user, "DD202405001 到哪了"), secret)
    assert status == 401
    time.sleep(0.3)
    assert tg_webhook.api.sent(user.id) == []
    assert not tg_webhook.has_conversation(user.id)


def test_an_update_with_the_secret_is_answered_once_even_when_telegram_retries(tg_webhook: TelegramStack) -> None:
    wait_for(lambda: tg_webhook.api.webhook[0], 30, "setWebhook")
    user = new_user()
    update = tg_webhook.api.text(user, "DD202405001 到哪了")
    tg_webhook.api.push(update, copies=2)  # the webhook answered 200 both times
    [reply] = tg_webhook.api.wait_sent(user.id, 1)
    # An unlinked Telegram user is a guest: asked to prove the order is theirs (tests/bot/access).
    assert "<code>DD202405001</code>" in reply["raw"]
    assert "后 4 位" in reply["text"]
    tg_webhook.say(user, "谢谢")
    assert len(tg_webhook.api.sent(user.id)) == 2
    assert [e["role"] for e in tg_webhook.transcript(user.id)].count("customer") == 2


def test_a_body_that_is_not_an_update_gets_400(tg_webhook: TelegramStack) -> None:
    headers = {"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET}
    url = tg_webhook.stack.base_url + PATH
    assert httpx.post(url, content=b"not json", headers=headers).status_code == 400
    assert httpx.post(url, json=[1, 2], headers=headers).status_code == 400
    assert httpx.post(url, json={"update_id": "one"}, headers=headers).status_code == 400


def test_the_webhook_route_is_off_in_polling_mode(tg: TelegramStack) -> None:
    user = new_user()
    update = {"update_id": 1, **tg.api.text(user, "你好")}
    resp = httpx.post(tg.stack.base_url + PATH, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": "x"})
    assert resp.status_code == 404
