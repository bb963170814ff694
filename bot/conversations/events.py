"""Conversation events fanned out inside one app process from one Redis pub/sub connection.

Every transcript line, typing indicator and mode change is published on the conversation's Redis
channel (by any replica). Each app process keeps ONE pub/sub connection, owned by one task, and hands
the frames to its in-process subscribers (open web chat sockets), so a thousand open sockets cost one
Redis connection, not a thousand. When the connection breaks (a Redis restart), the task reconnects
with backoff, subscribes again to every channel in use, and tells each subscriber to resynchronise
(`{"type": "resync"}`): frames published meanwhile were lost, and the subscriber reads them back from
the transcript. A subscriber too slow to keep up gets the same resync instead of unbounded memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bot import keys

log = logging.getLogger(__name__)

RESYNC: dict[str, Any] = {"type": "resync"}
# Frames queued for one subscriber before it is told to resynchronise from the transcript instead.
QUEUE_LIMIT = 256
_POLL_SECONDS = 0.05
_COMMAND_WAIT_SECONDS = 5.0
_BACKOFF = (0.2, 0.5, 1.0, 2.0, 5.0)


class Subscription:
    """One subscriber's frames of one conversation, in order."""

    def __init__(self, conv_id: str) -> None:
        self.conv_id = conv_id
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=QUEUE_LIMIT + 1)
        self._overflowed = False

    def _put(self, frame: dict[str, Any]) -> None:
        if self._overflowed:
            return
        if self._queue.qsize() >= QUEUE_LIMIT:
            # Too slow to keep up: drop what is queued and ask for a resync from the transcript.
            self._overflowed = True
            while not self._queue.empty():
                self._queue.get_nowait()
            self._queue.put_nowait(RESYNC)
            return
        self._queue.put_nowait(frame)

    async def get(self) -> dict[str, Any]:
        """The next frame (possibly RESYNC)."""
        frame = await self._queue.get()
        if frame is RESYNC:
            self._overflowed = False
        return frame


class EventHub:
    """The process's one pub/sub connection and its subscribers."""

    def __init__(self, pubsub_factory: Callable[[], Any]) -> None:
        # A factory, so that a broken connection can be replaced by a new one (redis.pubsub()).
        self._factory = pubsub_factory
        self._subscribers: dict[str, set[Subscription]] = {}
        self._commands: asyncio.Queue[tuple[str, str, asyncio.Future[None]]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()

    @property
    def channels(self) -> int:
        """Conversations with at least one subscriber in this process."""
        return len(self._subscribers)

    @property
    def subscribers(self) -> int:
        """Open subscriptions in this process."""
        return sum(len(s) for s in self._subscribers.values())

    async def start(self) -> None:
        """Start the reader task."""
        self._task = asyncio.create_task(self._run(), name="event-hub")

    async def stop(self) -> None:
        """Stop the reader task and close the connection."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    @asynccontextmanager
    async def subscribe(self, conv_id: str) -> AsyncIterator[Subscription]:
        """Receive a conversation's frames for the block; subscribed in Redis before the block starts."""
        sub = Subscription(conv_id)
        subs = self._subscribers.setdefault(conv_id, set())
        subs.add(sub)
        try:
            if len(subs) == 1:
                await self._command("subscribe", conv_id)
            yield sub
        finally:
            subs.discard(sub)
            if not subs and self._subscribers.get(conv_id) is subs:
                del self._subscribers[conv_id]
                with contextlib.suppress(Exception):
                    await self._command("unsubscribe", conv_id, wait=False)

    async def _command(self, verb: str, conv_id: str, *, wait: bool = True) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._commands.put_nowait((verb, conv_id, done))
        if wait and self.connected.is_set():
            # While Redis is down the subscription is made on reconnection (and the subscriber told to
            # resynchronise), so nobody waits for it; a connection that breaks meanwhile does the same.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(done), _COMMAND_WAIT_SECONDS)

    def _dispatch(self, channel: str, data: str) -> None:
        conv_id = channel.removeprefix(keys.EVENTS_PREFIX).removesuffix(keys.EVENTS_SUFFIX)
        subs = self._subscribers.get(conv_id)
        if not subs:
            return
        try:
            frame = json.loads(data)
        except ValueError:
            return
        if isinstance(frame, dict):
            for sub in list(subs):
                sub._put(frame)

    async def _run(self) -> None:
        failures = 0
        while True:
            pubsub = self._factory()
            try:
                channels = [keys.events(c) for c in self._subscribers]
                if channels:
                    await pubsub.subscribe(*channels)
                if failures:
                    log.warning("event hub reconnected to Redis; %d conversations resubscribed", len(channels))
                    for subs in self._subscribers.values():
                        for sub in list(subs):
                            sub._put(RESYNC)
                failures = 0
                self.connected.set()
                await self._serve(pubsub)
            except asyncio.CancelledError:
                raise
            except (RedisConnectionError, RedisTimeoutError, OSError, RedisError) as exc:
                self.connected.clear()
                delay = _BACKOFF[min(failures, len(_BACKOFF) - 1)]
                failures += 1
                log.warning("event hub lost Redis (%s); reconnecting in %.1f s", exc.__class__.__name__, delay)
                await asyncio.sleep(delay)
            finally:
                self.connected.clear()
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    async def _serve(self, pubsub: Any) -> None:
        while True:
            while not self._commands.empty():
                verb, conv_id, done = self._commands.get_nowait()
                try:
                    if verb == "subscribe" and conv_id in self._subscribers:
                        await pubsub.subscribe(keys.events(conv_id))
                    elif verb == "unsubscribe" and conv_id not in self._subscribers:
                        await pubsub.unsubscribe(keys.events(conv_id))
                except BaseException:
                    self._commands.put_nowait((verb, conv_id, done))  # again after reconnecting
                    raise
                if not done.done():
                    done.set_result(None)
            if not pubsub.subscribed:
                await asyncio.sleep(_POLL_SECONDS)
                continue
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=_POLL_SECONDS)
            if message is not None and message.get("type") == "message":
                self._dispatch(str(message["channel"]), str(message["data"]))
