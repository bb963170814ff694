"""The event hub on a real Redis: one pub/sub connection for many subscribers, order kept, a Redis restart
survived with a resync, slow subscribers bounded."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from bot.conversations.events import QUEUE_LIMIT, RESYNC, EventHub
from bot.conversations.store import ConversationStore
from bot.ops.stack import free_port, redis_ping, redis_server_binary


class RedisProcess:
    """A redis-server of the test's own that it can stop and start again on the same port."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.folder = folder
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        cmd = [redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder)]
        self.proc = subprocess.Popen([*cmd, "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while not redis_ping(self.port):
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisProcess]:
    process = RedisProcess(tmp_path)
    process.start()
    yield process
    if process.proc is not None and process.proc.poll() is None:
        process.kill()


@pytest.fixture
async def hub(server: RedisProcess) -> AsyncIterator[tuple[EventHub, ConversationStore]]:
    redis = Redis.from_url(server.url, decode_responses=True, socket_timeout=2)
    events = EventHub(redis.pubsub)
    await events.start()
    yield events, ConversationStore(redis)
    await events.stop()
    await redis.aclose()


async def clients(redis_url: str) -> int:
    probe = Redis.from_url(redis_url, decode_responses=True)
    try:
        listed = await probe.client_list()
        return len(listed) - 1  # without the probe itself
    finally:
        await probe.aclose()


async def test_many_subscribers_share_one_connection_and_get_every_frame_in_order(
    hub: tuple[EventHub, ConversationStore], server: RedisProcess
) -> None:
    events, store = hub
    async with contextlib.AsyncExitStack() as stack:
        subs = [await stack.enter_async_context(events.subscribe(f"c{i % 10}")) for i in range(200)]
        assert events.subscribers == 200 and events.channels == 10
        # The store's own client plus the hub's pub/sub: not one connection per subscriber.
        assert await clients(server.url) <= 3
        for n in range(5):
            for c in range(10):
                await store.publish(f"c{c}", {"type": "typing", "n": n})
        for i, sub in enumerate(subs):
            got = [await asyncio.wait_for(sub.get(), 5) for _ in range(5)]
            assert [f["n"] for f in got] == [0, 1, 2, 3, 4], i
    assert events.subscribers == 0 and events.channels == 0


async def test_a_redis_restart_resubscribes_and_asks_for_a_resync(
    hub: tuple[EventHub, ConversationStore], server: RedisProcess
) -> None:
    events, store = hub
    async with events.subscribe("conv") as sub:
        await store.publish("conv", {"type": "typing", "n": 1})
        assert (await asyncio.wait_for(sub.get(), 5))["n"] == 1
        server.kill()
        await asyncio.sleep(0.5)
        server.start()
        assert await asyncio.wait_for(sub.get(), 15) is RESYNC  # frames may have been lost: read them back
        await asyncio.wait_for(events.connected.wait(), 10)
        for _ in range(50):  # the store's own pool reconnects on its next command
            try:
                await store.publish("conv", {"type": "typing", "n": 2})
                break
            except Exception:  # the old pooled connection is dead; the next one is new
                await asyncio.sleep(0.1)
        assert (await asyncio.wait_for(sub.get(), 5))["n"] == 2


async def test_a_subscriber_that_falls_behind_gets_a_resync_not_unbounded_memory(
    hub: tuple[EventHub, ConversationStore],
) -> None:
    events, store = hub
    async with events.subscribe("slow") as sub:
        for n in range(QUEUE_LIMIT + 50):
            await store.publish("slow", {"type": "typing", "n": n})
        await asyncio.sleep(0.5)
        assert await asyncio.wait_for(sub.get(), 5) is RESYNC
        await store.publish("slow", {"type": "typing", "n": -1})
        assert (await asyncio.wait_for(sub.get(), 5))["n"] == -1
