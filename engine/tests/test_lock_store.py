"""The asynchronous ticket lock store against a real Redis: order, exclusion, expiry, cleanup, and no
blocking of the event loop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest
from conftest import run_with_store
from rasa.core.lock_store import LockError
from rasa.utils.endpoints import EndpointConfig

from ar_engine import lock_store
from ar_engine.lock_store import AsyncRedisLockStore

Body = Callable[[AsyncRedisLockStore], Awaitable[None]]


def run(port: int, body: Body) -> None:
    """Run a test body with a fresh store (its own event loop, an empty database)."""
    run_with_store(lambda: AsyncRedisLockStore(EndpointConfig(url="127.0.0.1", port=port, db=3, key_prefix="ar")), body)


def test_messages_of_one_conversation_are_served_one_at_a_time_in_arrival_order(redis_port: int) -> None:
    async def body(store: AsyncRedisLockStore) -> None:
        served: list[int] = []
        inside = 0

        async def message(i: int) -> None:
            nonlocal inside
            await asyncio.sleep(i * 0.002)  # arrival order 0, 1, 2, …
            async with store.lock("c1", lock_lifetime=10, wait_time_in_seconds=0.05):
                inside += 1
                assert inside == 1, "two messages of one conversation held the lock together"
                served.append(i)
                await asyncio.sleep(0.01)
                inside -= 1

        await asyncio.gather(*(message(i) for i in range(12)))
        assert served == list(range(12))
        assert await store.red.keys("*") == []  # both keys are gone once nobody waits

    run(redis_port, body)


def test_other_conversations_do_not_wait(redis_port: int) -> None:
    async def body(store: AsyncRedisLockStore) -> None:
        async with store.lock("busy", lock_lifetime=10):
            started = time.monotonic()
            async with store.lock("other", lock_lifetime=10) as held:
                assert held.conversation_id == "other"
            assert time.monotonic() - started < 0.5

    run(redis_port, body)


def test_a_holder_that_died_delays_the_next_message_by_the_lifetime_at_most(redis_port: int) -> None:
    async def body(store: AsyncRedisLockStore) -> None:
        keys = store._keys("c1")
        # A ticket issued by a process that was killed while holding the lock: it is never released.
        ticket, state = await store._try(keys=keys, args=[300, 0])
        assert (ticket, state) == (1, 1)
        started = time.monotonic()
        async with store.lock("c1", lock_lifetime=10, wait_time_in_seconds=0.05):
            waited = time.monotonic() - started
        assert 0.2 < waited < 2.0
        assert await store.red.exists(*keys) == 0

    run(redis_port, body)


def test_a_ticket_that_expires_while_waiting_raises_rasas_lock_error(redis_port: int) -> None:
    async def body(store: AsyncRedisLockStore) -> None:
        async with store.lock("c1", lock_lifetime=10):
            with pytest.raises(LockError):
                async with store.lock("c1", lock_lifetime=0.2, wait_time_in_seconds=0.05):
                    pytest.fail("a second message held the lock while the first did")
        assert await store.red.exists(*store._keys("c1")) == 0

    run(redis_port, body)


def test_the_lock_is_released_when_the_turn_fails(redis_port: int) -> None:
    async def body(store: AsyncRedisLockStore) -> None:
        with pytest.raises(RuntimeError):
            async with store.lock("c1", lock_lifetime=10):
                raise RuntimeError("the turn failed")
        started = time.monotonic()
        async with store.lock("c1", lock_lifetime=10):
            pass
        assert time.monotonic() - started < 0.5

    run(redis_port, body)


def test_a_waiter_does_not_block_the_event_loop(redis_port: int) -> None:
    async def body(store: AsyncRedisLockStore) -> None:
        ticks = 0
        stop = False

        async def ticker() -> None:
            nonlocal ticks
            while not stop:
                ticks += 1
                await asyncio.sleep(0.001)

        tick = asyncio.create_task(ticker())
        async with store.lock("c1", lock_lifetime=10):

            async def second() -> None:
                async with store.lock("c1", lock_lifetime=10, wait_time_in_seconds=0.05):
                    pass

            waiter = asyncio.create_task(second())
            await asyncio.sleep(0.3)
        await waiter
        stop = True
        await tick
        assert ticks > 50  # the loop kept running other work while the second message waited

    run(redis_port, body)


def test_rasas_synchronous_lock_api_is_refused_not_half_supported() -> None:
    store = AsyncRedisLockStore(EndpointConfig(url="127.0.0.1", port=1, key_prefix="ar"))
    with pytest.raises(NotImplementedError):
        store.get_lock("c1")
    assert lock_store.FIRST_POLL_SECONDS < 0.05
