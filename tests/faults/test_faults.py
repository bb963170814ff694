"""Faults injected into the running product, and what customers saw: messages sent, answered exactly
once, lost, doubled, and the longest wait. Each scenario asserts zero lost and zero doubled, and records
its row in var/faults.json (the README's table)."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid

import httpx
import pytest
import websockets

from tests.conftest import RunningStack
from tests.faults.conftest import (
    Tally,
    app_pids,
    baseline,
    engine_pids,
    redis_pids,
    redis_url,
    rest_customer,
    send_signal,
    settle,
    settle_webchat,
    wait_healthy,
    webchat_customer,
)

pytestmark = [pytest.mark.stack, pytest.mark.faults]


def check(tally: Tally) -> None:
    tally.record()
    assert tally.lost == 0 and tally.doubled == 0, (tally.row(), tally.notes)
    assert tally.answered_once == tally.sent


async def rest_wave(stack: RunningStack, name: str, n: int, fault: object, *, spread: float = 4.0) -> Tally:
    """n REST customers over `spread` seconds; `fault` (a callable) runs a third of the way in."""
    tally = Tally(name)
    senders = [f"{name}-{i}-{uuid.uuid4().hex[:6]}" for i in range(n)]
    deadline = time.monotonic() + 300
    tasks = []
    for i, sender in enumerate(senders):
        tasks.append(asyncio.create_task(rest_customer(stack, sender, tally, deadline)))
        if i == n // 3:
            await asyncio.to_thread(fault)  # type: ignore[arg-type]
        await asyncio.sleep(spread / n)
    await asyncio.gather(*tasks)
    expected = await asyncio.to_thread(baseline, stack)
    await asyncio.to_thread(settle, stack, senders, tally, expected)
    return tally


async def test_engine_killed_mid_traffic(faulty: RunningStack) -> None:
    await asyncio.to_thread(wait_healthy, faulty)
    killed = engine_pids(faulty)
    tally = await rest_wave(faulty, "engine SIGKILL", 30, lambda: send_signal(killed, signal.SIGKILL))
    check(tally)
    assert engine_pids(faulty) and engine_pids(faulty) != killed  # restarted by the supervisor


async def test_engine_frozen_mid_traffic(faulty: RunningStack) -> None:
    await asyncio.to_thread(wait_healthy, faulty)
    frozen = engine_pids(faulty)

    def freeze() -> None:
        send_signal(frozen, signal.SIGSTOP)
        # /healthz stays quick while the engine hangs: 503, naming it.
        started = time.monotonic()
        health = httpx.get(f"{faulty.base_url}/healthz", timeout=10)
        assert health.status_code == 503 and health.json()["down"] == ["engine"]
        assert time.monotonic() - started < 5
        time.sleep(8)
        send_signal(frozen, signal.SIGCONT)

    tally = await rest_wave(faulty, "engine SIGSTOP 8 s", 20, freeze)
    check(tally)


async def test_redis_killed_and_restarted(faulty: RunningStack) -> None:
    await asyncio.to_thread(wait_healthy, faulty)
    killed = redis_pids(faulty)
    tally = await rest_wave(faulty, "Redis SIGKILL", 30, lambda: send_signal(killed, signal.SIGKILL))
    check(tally)


async def test_app_killed_with_web_chat_messages_in_flight(faulty: RunningStack) -> None:
    await asyncio.to_thread(wait_healthy, faulty)
    tally = Tally("app SIGKILL, 30 web chat messages in flight")
    go = asyncio.Event()
    conversations: list[str] = []
    deadline = time.monotonic() + 300
    customers = [asyncio.create_task(webchat_customer(faulty, tally, deadline, go, conversations)) for _ in range(30)]
    await asyncio.sleep(3)  # all connected
    go.set()
    await asyncio.sleep(0.3)  # the messages are in the app now: accepted, some at the engine
    send_signal(app_pids(faulty), signal.SIGKILL)
    await asyncio.gather(*customers)
    expected = await asyncio.to_thread(baseline, faulty)
    await asyncio.to_thread(settle_webchat, faulty, conversations, tally, expected)
    check(tally)


async def test_500_open_sockets_do_not_starve_rest_or_health(faulty: RunningStack) -> None:
    from redis.asyncio import Redis

    await asyncio.to_thread(wait_healthy, faulty)
    sockets = []
    try:
        for _ in range(500):
            ws = await websockets.connect(faulty.ws_url, open_timeout=10)
            sockets.append(ws)
            if len(sockets) % 50 == 0:
                await asyncio.sleep(0.05)
        # Most are idle visitors; a hundred of them said hello (each subscribed to its conversation).
        for ws in sockets[:100]:
            await ws.send('{"type": "hello", "session": null, "locale": "zh-CN"}')
        tally = Tally("500 web chat sockets open, 100 REST requests")
        statuses = []
        async with httpx.AsyncClient(timeout=60) as client:
            for i in range(100):
                started = time.monotonic()
                resp = await client.post(
                    f"{faulty.base_url}/channels/rest/messages",
                    json={"sender": f"busy-{i}-{uuid.uuid4().hex[:6]}", "text": "你好"},
                    headers={"Authorization": f"Bearer {faulty.rest_token}"},
                )
                statuses.append(resp.status_code)
                tally.longest_wait = max(tally.longest_wait, time.monotonic() - started)
                tally.sent += 1
                tally.answered_once += bool(resp.status_code == 200 and resp.json()["replies"])
            health = await client.get(f"{faulty.base_url}/healthz")
        assert statuses == [200] * 100
        assert health.status_code == 200
        redis = Redis.from_url(redis_url(faulty), decode_responses=True)
        clients = await redis.client_list()
        await redis.aclose()
        # The app's pool (50) plus its one pub/sub connection, the engine's few and this probe: not 500.
        assert len(clients) < 80, len(clients)
        tally.notes.append(f"Redis clients: {len(clients)}")
        check(tally)
    finally:
        await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
