"""Fixtures of the Telegram tests: a fake Bot API server, and stacks pointed at it."""

from __future__ import annotations

import itertools
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from redis import Redis

from bot import keys
from connectors.telegram import keys as tg_keys
from tests.conftest import RunningStack, start_stack
from tests.fakes.telegram_api import FakeBotAPI, TgUser, running

TOKEN = "7000000001:AAF-test_token-0123456789abcdefghij"
WEBHOOK_SECRET = "test-webhook-secret_0123456789"
_ids = itertools.count(random.randint(10_000, 99_999) * 10_000)


def new_user(language_code: str | None = "zh-hans") -> TgUser:
    """A customer nobody has seen yet (ids are unique within the session)."""
    return TgUser(id=next(_ids), first_name="Test", language_code=language_code)


@dataclass(frozen=True)
class TelegramStack:
    """A running stack with the Telegram channel on, and the fake Bot API it talks to."""

    stack: RunningStack
    api: FakeBotAPI
    redis_url: str

    def conversation_id(self, chat_id: int) -> str:
        """The conversation of a Telegram chat, read from the stack's Redis."""
        with Redis.from_url(self.redis_url, decode_responses=True) as redis:
            conv_id = redis.get(keys.thread("telegram", str(chat_id)))
        assert conv_id, f"no conversation for chat {chat_id}"
        return str(conv_id)

    def has_conversation(self, chat_id: int) -> bool:
        """Whether a conversation was opened for the chat."""
        with Redis.from_url(self.redis_url, decode_responses=True) as redis:
            return bool(redis.exists(keys.thread("telegram", str(chat_id))))

    def transcript(self, chat_id: int) -> list[dict[str, Any]]:
        """The conversation's transcript as the agent API shows it."""
        resp = self.stack.agent("GET", f"/conversations/{self.conversation_id(chat_id)}")
        assert resp.status_code == 200, resp.text
        transcript: list[dict[str, Any]] = resp.json()["transcript"]
        return transcript

    def say(self, user: TgUser, text: str, replies: int = 1, timeout: float = 60) -> list[dict[str, Any]]:
        """Send a text message and wait for `replies` new messages from the bot; return those."""
        return self.say_update(user, self.api.text(user, text), replies, timeout)

    def say_update(
        self, user: TgUser, update: dict[str, Any], replies: int = 1, timeout: float = 60
    ) -> list[dict[str, Any]]:
        """Push any update from the user and wait for `replies` new messages from the bot; return those."""
        before = len(self.api.sent(user.id))
        self.api.push(update)
        return self.api.wait_sent(user.id, before + replies, timeout)[before:]

    def blocked_flag(self, chat_id: int) -> bool:
        """Whether the app has the chat marked as having blocked the bot."""
        with Redis.from_url(self.redis_url, decode_responses=True) as redis:
            return bool(redis.exists(tg_keys.telegram_blocked(str(chat_id))))


def _redis_url(stack: RunningStack) -> str:
    found = re.search(r"Redis\s*:\s*(redis://\S+)", stack.log.read_text(errors="replace"))
    assert found, "the stack did not print its Redis URL"
    return found.group(1)


@pytest.fixture(scope="session")
def tg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TelegramStack]:
    """The whole product with the Telegram channel in polling mode against the fake Bot API."""
    with running(TOKEN) as api:
        env = {
            "AUTORESPONDER_TELEGRAM_TOKEN": TOKEN,
            "AUTORESPONDER_TELEGRAM_API_BASE": api.base_url,
            "AUTORESPONDER_TELEGRAM_MODE": "polling",
        }
        with start_stack(tmp_path_factory, env) as stack:
            yield TelegramStack(stack, api, _redis_url(stack))


@pytest.fixture(scope="session")
def tg_webhook(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TelegramStack]:
    """The whole product with the Telegram channel in webhook mode against the fake Bot API."""
    with running(TOKEN) as api:
        env = {
            "AUTORESPONDER_TELEGRAM_TOKEN": TOKEN,
            "AUTORESPONDER_TELEGRAM_API_BASE": api.base_url,
            "AUTORESPONDER_TELEGRAM_MODE": "webhook",
            "AUTORESPONDER_TELEGRAM_WEBHOOK_SECRET": WEBHOOK_SECRET,
        }
        with start_stack(tmp_path_factory, env) as stack:
            yield TelegramStack(stack, api, _redis_url(stack))
