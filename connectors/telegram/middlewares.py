"""aiogram middlewares of the Telegram channel: retries for Bot API calls, and the update gate."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiogram import BaseMiddleware
from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.exceptions import (
    TelegramEntityTooLarge,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.methods import GetUpdates, SendChatAction, TelegramMethod
from aiogram.methods.base import Response, TelegramType
from aiogram.types import TelegramObject, Update

from bot.conversations.locks import KeyedLocks
from connectors.telegram import CHANNEL

if TYPE_CHECKING:
    from aiogram import Bot

    from bot.conversations.store import ConversationStore

log = logging.getLogger(__name__)


class RetryMiddleware(BaseRequestMiddleware):
    """Retry Bot API calls that failed for a passing reason.

    429 waits the `retry_after` Telegram asks for; 5xx and network errors back off exponentially
    (with jitter) between `base_delay` and `max_delay`. Other errors (400, 403, 404…) are final.
    getUpdates network errors are left to the dispatcher's own polling backoff, and chat actions
    ("typing…") are not worth a second try.
    """

    def __init__(self, attempts: int = 5, base_delay: float = 0.5, max_delay: float = 10.0) -> None:
        self.attempts = attempts
        self.base_delay = base_delay
        self.max_delay = max_delay

    def delay(self, attempt: int) -> float:
        """Backoff before retry number `attempt` (1-based) after a 5xx or network error."""
        return min(self.max_delay, self.base_delay * 2.0 ** (attempt - 1)) * random.uniform(0.8, 1.2)

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        """Make the request, retrying as described above."""
        attempt = 1
        while True:
            try:
                return await make_request(bot, method)
            except TelegramRetryAfter as exc:
                if attempt >= self.attempts or isinstance(method, SendChatAction):
                    raise
                wait = float(exc.retry_after)
                log.warning("telegram %s: flood control, retrying in %.0f s", method.__api_method__, wait)
            except (TelegramServerError, TelegramNetworkError) as exc:
                final = isinstance(exc, TelegramEntityTooLarge) or isinstance(method, GetUpdates | SendChatAction)
                if final or attempt >= self.attempts:
                    raise
                wait = self.delay(attempt)
                log.warning("telegram %s failed (%s), retry %d in %.1f s", method.__api_method__, exc, attempt, wait)
            await asyncio.sleep(wait)
            attempt += 1


Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


class UpdateGate(BaseMiddleware):
    """Outer update middleware: each update once, and one update at a time per chat, in order.

    Polling hands every update to its own task, so two quick messages of one customer could
    overtake each other; a per-chat lock taken before the first await keeps their order. The
    update id is claimed in Redis through the conversation store (the same claim/complete/release
    cycle the router uses), so a redelivered update (a webhook retry, a restart before the polling
    offset was confirmed) is skipped, while one whose processing crashed is processed again.
    """

    def __init__(self, store: ConversationStore) -> None:
        self.store = store
        self._locks = KeyedLocks()
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        """Serialise per chat, claim the update id, run the handlers, complete or release the claim."""
        assert isinstance(event, Update)  # registered on the dispatcher's update observer
        chat = data.get("event_chat")
        chat_key = int(chat.id) if chat is not None else 0
        self._in_flight += 1
        self._idle.clear()
        try:
            async with self._locks.hold(chat_key):
                bot: Bot = data["bot"]
                key = f"{bot.id}:{event.update_id}"
                if not await self.store.claim_idempotency_key(CHANNEL, key):
                    log.info("telegram update %s already processed; skipped", key)
                    return None
                try:
                    result = await handler(event, data)
                except BaseException:
                    await self.store.release_idempotency_key(CHANNEL, key)
                    raise
                await self.store.complete_idempotency_key(CHANNEL, key)
                return result
        finally:
            self._in_flight -= 1
            if not self._in_flight:
                self._idle.set()

    async def wait_idle(self) -> None:
        """Return once no update is being processed."""
        await self._idle.wait()
