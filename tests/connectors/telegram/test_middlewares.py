"""The retry middleware against the fake Bot API, and the update gate against a real Redis."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Iterator

import pytest
from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.methods import GetUpdates
from aiogram.types import Message, Update

from bot.conversations.store import ConversationStore
from connectors.telegram.middlewares import RetryMiddleware, UpdateGate
from tests.conftest import TextRedis
from tests.connectors.telegram.conftest import TOKEN
from tests.fakes.telegram_api import FakeBotAPI, TgUser, running


@pytest.fixture(scope="module")
def api() -> Iterator[FakeBotAPI]:
    with running(TOKEN) as fake:
        yield fake


@pytest.fixture
async def bot(api: FakeBotAPI) -> AsyncIterator[Bot]:
    session = AiohttpSession(api=TelegramAPIServer.from_base(api.base_url))
    session.middleware(RetryMiddleware(attempts=4, base_delay=0.2, max_delay=1.0))
    bot = Bot(TOKEN, session=session)
    yield bot
    await bot.session.close()


def attempts(api: FakeBotAPI, chat_id: int, method: str = "sendMessage") -> list[int]:
    return [c.status for c in api.calls(method) if int(c.params.get("chat_id") or 0) == chat_id]


async def test_flood_control_waits_the_seconds_telegram_asks_for(api: FakeBotAPI, bot: Bot) -> None:
    api.fail_next("sendMessage", 429, retry_after=1)
    started = time.monotonic()
    sent = await bot.send_message(1001, "hi")
    assert sent.text == "hi"
    assert time.monotonic() - started >= 1.0
    assert attempts(api, 1001) == [429, 200]


async def test_server_errors_and_dropped_connections_back_off_and_recover(api: FakeBotAPI, bot: Bot) -> None:
    api.fail_next("sendMessage", 500)
    api.fail_next("sendMessage", 502)
    api.fail_next("sendMessage", 0)
    await bot.send_message(1002, "hi")
    assert attempts(api, 1002) == [500, 502, 0, 200]
    calls = [c for c in api.calls("sendMessage") if int(c.params["chat_id"]) == 1002]
    gaps = [b.at - a.at for a, b in itertools.pairwise(calls)]
    assert 0.15 < gaps[0] < gaps[1] < gaps[2] < 1.3


async def test_it_gives_up_after_the_last_attempt(api: FakeBotAPI, bot: Bot) -> None:
    api.fail_next("sendMessage", 503, times=4)
    with pytest.raises(TelegramServerError):
        await bot.send_message(1003, "hi")
    assert attempts(api, 1003) == [503] * 4
    api.fail_next("sendMessage", 429, retry_after=1, times=4)
    with pytest.raises(TelegramRetryAfter):
        await bot.send_message(1004, "hi")
    assert attempts(api, 1004) == [429] * 4


async def test_final_errors_are_not_retried(api: FakeBotAPI, bot: Bot) -> None:
    api.block(1005)
    with pytest.raises(TelegramForbiddenError):
        await bot.send_message(1005, "hi")
    assert attempts(api, 1005) == [403]
    with pytest.raises(TelegramBadRequest):
        await bot.send_message(1006, "<b>unclosed", parse_mode="HTML")
    assert attempts(api, 1006) == [400]
    # Chat actions are decoration; getUpdates has the dispatcher's own backoff.
    api.fail_next("sendChatAction", 429, retry_after=5)
    with pytest.raises(TelegramRetryAfter):
        await bot.send_chat_action(1007, "typing")
    assert attempts(api, 1007, "sendChatAction") == [429]
    api.fail_next("getUpdates", 0)
    before = len(api.calls("getUpdates"))
    with pytest.raises(TelegramNetworkError):
        await bot(GetUpdates(timeout=0))
    assert len(api.calls("getUpdates")) == before + 1


def _update(update_id: int, chat_id: int, text: str) -> Update:
    user = TgUser(chat_id)
    return Update.model_validate(
        {
            "update_id": update_id,
            "message": {
                "message_id": update_id,
                "date": 0,
                "chat": {"id": chat_id, "type": "private"},
                "from": user.as_dict(),
                "text": text,
            },
        }
    )


@pytest.fixture
async def gated(redis: TextRedis) -> AsyncIterator[tuple[Dispatcher, Bot, list[str]]]:
    seen: list[str] = []
    dp = Dispatcher(disable_fsm=True)
    dp.update.outer_middleware(UpdateGate(ConversationStore(redis)))

    @dp.message()
    async def record(message: Message) -> None:
        assert message.text is not None
        if message.text.startswith("fail"):
            raise RuntimeError("the handler failed")
        # The first message of a chat is the slowest: a later one must still wait for it.
        await asyncio.sleep(0.3 if message.text.endswith("1") else 0.01)
        seen.append(message.text)

    bot = Bot(TOKEN)
    yield dp, bot, seen
    await bot.session.close()


async def test_one_chat_is_processed_in_order_and_chats_in_parallel(gated: tuple[Dispatcher, Bot, list[str]]) -> None:
    dp, bot, seen = gated
    updates = [_update(1, 50, "a1"), _update(2, 50, "a2"), _update(3, 60, "b1"), _update(4, 50, "a3")]
    started = time.monotonic()
    # As polling does: one task per update, created in arrival order.
    await asyncio.gather(*(asyncio.create_task(dp.feed_update(bot, u)) for u in updates))
    assert [t for t in seen if t.startswith("a")] == ["a1", "a2", "a3"]
    assert time.monotonic() - started < 0.55, "the other chat did not wait for this one"


async def test_an_update_is_processed_once_unless_its_processing_failed(
    gated: tuple[Dispatcher, Bot, list[str]],
) -> None:
    dp, bot, seen = gated
    await dp.feed_update(bot, _update(10, 70, "x"))
    await dp.feed_update(bot, _update(10, 70, "x"))
    assert seen == ["x"]
    with pytest.raises(RuntimeError):
        await dp.feed_update(bot, _update(11, 70, "fail"))
    with pytest.raises(RuntimeError):
        await dp.feed_update(bot, _update(11, 70, "fail"))  # released, so tried again
