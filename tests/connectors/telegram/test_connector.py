"""The connector's settings, keyboards, callback data and helpers, without a running stack."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiogram.types import InlineKeyboardMarkup, Message, ReplyKeyboardMarkup, User

from bot.conversations.store import ConversationStore
from bot.settings import PROJECT_ROOT, Settings
from bot.templates import TemplateRegistry
from connectors import enabled_channels
from connectors.telegram.connector import CONTACT_PAYLOAD, TelegramConfigError, TelegramConnector
from connectors.telegram.handlers import as_words, describe
from connectors.telegram.port import mask_phone, user_locale
from connectors.telegram.settings import TelegramSettings
from tests.conftest import TextRedis
from tests.connectors.telegram.conftest import TOKEN


def settings(tmp_path: Path, **values: Any) -> tuple[Settings, TelegramSettings]:
    """The core settings and the channel's own, from the same keyword values."""
    own = {k: v for k, v in values.items() if k.startswith("telegram_")}
    core = {k: v for k, v in values.items() if k not in own}
    return (
        Settings(_env_file=None, var_dir=tmp_path, **core),  # type: ignore[call-arg]
        TelegramSettings(_env_file=None, **own),  # type: ignore[call-arg]
    )


def test_the_channel_is_on_only_with_a_token(tmp_path: Path) -> None:
    assert TelegramConnector.from_settings(*settings(tmp_path)) is None
    assert "telegram" not in enabled_channels(settings(tmp_path)[0])
    connector = TelegramConnector.from_settings(*settings(tmp_path, telegram_token=TOKEN))
    assert isinstance(connector, TelegramConnector)
    assert connector.mode == "polling"
    assert connector.webhook_url is None
    assert not connector.check_secret("anything")


def test_a_wrong_mode_is_refused_with_the_setting_to_fix(tmp_path: Path) -> None:
    with pytest.raises(TelegramConfigError, match="AUTORESPONDER_TELEGRAM_MODE"):
        TelegramConnector.from_settings(*settings(tmp_path, telegram_token=TOKEN, telegram_mode="push"))


def test_a_malformed_token_or_secret_is_refused_with_the_setting_to_fix(tmp_path: Path) -> None:
    with pytest.raises(TelegramConfigError, match="AUTORESPONDER_TELEGRAM_TOKEN"):
        TelegramConnector.from_settings(*settings(tmp_path, telegram_token="not a token"))
    with pytest.raises(TelegramConfigError, match="AUTORESPONDER_TELEGRAM_WEBHOOK_SECRET"):
        TelegramConnector.from_settings(
            *settings(tmp_path, telegram_token=TOKEN, telegram_mode="webhook", telegram_webhook_secret="a b!")
        )


def test_webhook_mode_uses_the_public_url_and_a_persistent_secret(tmp_path: Path) -> None:
    s = settings(tmp_path, telegram_token=TOKEN, telegram_mode="Webhook", public_url="https://support.example.com/")
    first = TelegramConnector.from_settings(*s)
    again = TelegramConnector.from_settings(*s)
    assert first is not None
    assert again is not None
    assert first.webhook_url == "https://support.example.com/channels/telegram/webhook"
    assert first.webhook_secret
    assert (
        first.webhook_secret == again.webhook_secret == (tmp_path / "secrets" / "telegram_webhook_secret").read_text()
    )
    assert first.check_secret(first.webhook_secret)
    assert not first.check_secret(first.webhook_secret + "x")
    assert not first.check_secret("")
    assert not first.check_secret(None)
    explicit = TelegramConnector.from_settings(
        *settings(tmp_path, telegram_token=TOKEN, telegram_mode="webhook", telegram_webhook_secret="s3cret")
    )
    assert explicit is not None
    assert explicit.webhook_secret == "s3cret"


@pytest.fixture
def connector(redis: TextRedis) -> TelegramConnector:
    tg = TelegramConnector(TOKEN)
    tg._context = SimpleNamespace(store=ConversationStore(redis), redis=redis)  # type: ignore[assignment]
    return tg


async def test_quick_replies_become_an_inline_keyboard_one_button_a_row(connector: TelegramConnector) -> None:
    markup = await connector.keyboard(
        [{"title": "查询订单", "payload": "/order_status"}, {"title": "转人工客服", "payload": "/request_human"}]
    )
    assert isinstance(markup, InlineKeyboardMarkup)
    assert [[(b.text, b.callback_data) for b in row] for row in markup.inline_keyboard] == [
        [("查询订单", "/order_status")],
        [("转人工客服", "/request_human")],
    ]
    assert await connector.keyboard([]) is None


async def test_the_contact_button_becomes_a_reply_keyboard(connector: TelegramConnector) -> None:
    markup = await connector.keyboard([{"title": "📱 Share", "payload": CONTACT_PAYLOAD}])
    assert isinstance(markup, ReplyKeyboardMarkup)
    assert markup.keyboard[0][0].request_contact is True
    assert markup.one_time_keyboard is True


async def test_payloads_over_64_bytes_travel_as_a_digest(connector: TelegramConnector) -> None:
    long = '/inform{"order_id": "DD202405001", "product": "无线蓝牙耳机 X1 黑色"}'
    assert len(long.encode()) > 64
    data = await connector.callback_data(long)
    assert len(data.encode()) <= 64
    assert data != long
    assert await connector.payload_of(data) == long
    assert await connector.callback_data("/greet") == "/greet"
    assert await connector.payload_of("/greet") == "/greet"
    # A payload that looks like a digest is hashed too, so it cannot be mistaken for one.
    tricky = await connector.callback_data("cb:abc")
    assert tricky != "cb:abc"
    assert await connector.payload_of(tricky) == "cb:abc"
    assert await connector.payload_of("cb:" + "0" * 32) is None


def test_a_chat_only_template_is_escaped_whole_for_telegram(tmp_path: Path) -> None:
    (tmp_path / "t.yml").write_text(
        "name: utter_t\ntext:\n  chat:\n    zh-CN: 'Q&A <3 {{ x }}'\n    en: 'Q&A <3 {{ x }}'\n", encoding="utf-8"
    )
    registry = TemplateRegistry.from_dir(tmp_path, strict=True)
    tg = registry.render("utter_t", "telegram", "en", {"x": "<b>"})
    assert tg.text == "Q&amp;A &lt;3 &lt;b&gt;"
    assert tg.text_format == "html"
    chat = registry.render("utter_t", "webchat", "en", {"x": "<b>"})
    assert chat.text == "Q&A <3 <b>"
    assert chat.text_format == "text"


@pytest.mark.parametrize(
    ("code", "locale"),
    [("zh-hans", "zh-CN"), ("zh-hant", "zh-TW"), ("zh-TW", "zh-TW"), ("zh", "zh-CN"), ("en", "en"), ("ru", "en"),
     (None, None)],
)  # fmt: skip
def test_the_telegram_app_language_decides_the_locale(code: str | None, locale: str | None) -> None:
    assert user_locale(User(id=1, is_bot=False, first_name="T", language_code=code)) == locale


def test_typed_slash_words_are_words_not_intents() -> None:
    assert as_words("/help") == "help"
    assert as_words("/order_status@demo_shop_bot DD202405001") == "order status DD202405001"
    assert as_words('/inform{"order_id":"DD1"}') == 'inform{"order_id":"DD1"}'
    assert as_words("/") == ""


def test_media_is_described_for_the_transcript() -> None:
    base = {"message_id": 1, "date": 0, "chat": {"id": 5, "type": "private"}}
    doc = Message.model_validate(
        {**base, "document": {"file_id": "d", "file_unique_id": "u", "file_name": "a.pdf", "file_size": 2_500_000}}
    )
    assert describe(doc)[:2] == ("document", "📄 document a.pdf (2.4 MB)")
    assert describe(doc)[2][0].content_type == "application/octet-stream"
    venue = Message.model_validate(
        {
            **base,
            "location": {"latitude": 1.5, "longitude": 2.25},
            "venue": {"location": {"latitude": 1.5, "longitude": 2.25}, "title": "Shop", "address": "1 Road"},
        }
    )
    assert describe(venue)[1] == "📍 location 1.50000, 2.25000 Shop, 1 Road"
    dice = Message.model_validate({**base, "dice": {"emoji": "🎲", "value": 3}})
    assert describe(dice)[:2] == ("other", "❔ dice message")
    assert mask_phone("+86 138-0013-8001") == "138****8001"


def test_the_app_does_not_load_aiogram_without_a_telegram_token() -> None:
    # aiogram's types cost about 130 MB and 2 s of start-up: a shop without Telegram pays neither.
    code = "import sys, bot.web.app, connectors; assert 'aiogram' not in sys.modules, 'aiogram loaded'"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTORESPONDER_TELEGRAM")}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=PROJECT_ROOT)
