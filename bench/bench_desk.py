"""Agent desk benchmark: queueing handoffs, the SLA watcher over due timers, and the figures agents see.

Against a real redis-server of its own (no engine needed): N handoffs are queued, all of their
first-response timers are made due and the watcher flags them (then escalates them), agents answer
and customers score, and GET /agent/stats is computed over what that left in the statistics streams.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import tempfile
import time
from pathlib import Path

from redis.asyncio import Redis

from bot import keys
from bot.conversations.model import SKILLS, Handoff
from bot.crm.repository import CRM
from bot.engine.client import EngineClient
from bot.ops.stack import free_port, redis_ping, redis_server_binary
from bot.settings import Settings
from bot.web.container import build

HANDOFFS = int(os.environ.get("BENCH_DESK_HANDOFFS", "5000"))


async def _run(url: str, folder: Path) -> list[tuple[str, str]]:
    redis = Redis.from_url(url, decode_responses=True)
    crm = CRM.from_url(f"sqlite:///{folder / 'crm.sqlite3'}")
    # The app's own object graph; the engine is never asked anything here.
    engine = EngineClient("http://127.0.0.1:9", "unused")
    app = build(Settings(_env_file=None, var_dir=folder), redis=redis, crm=crm, engine=engine)  # type: ignore[call-arg]
    store, policy, watcher = app.store, app.sla, app.watcher
    rows: list[tuple[str, str]] = []

    started = time.perf_counter()
    ids = []
    for i in range(HANDOFFS):
        conv, _ = await store.find_or_open("rest", f"bench-{i}", None)
        await app.router.start_handoff(conv, Handoff(reason="requested", skill=SKILLS[i % 5], priority=i % 10), None)
        ids.append(conv.id)
    took = time.perf_counter() - started
    rows.append((f"queue {HANDOFFS} handoffs (open conversation + queue + SLA timer)", f"{HANDOFFS / took:,.0f}/s"))

    now = time.time()
    assert await watcher.check(now) == []  # nothing due yet
    started = time.perf_counter()
    nothing = await watcher.check(now + 60)
    rows.append(("watcher round with nothing due", f"{(time.perf_counter() - started) * 1000:.2f} ms ({len(nothing)})"))
    breached = escalated = 0
    started = time.perf_counter()
    while True:
        done = await watcher.check(now + policy.first_response + 60)
        if not done:
            break
        breached += len(done)
    took = time.perf_counter() - started
    rows.append((f"watcher: {breached} missed targets flagged", f"{breached / took:,.0f}/s"))
    started = time.perf_counter()
    while True:
        done = await watcher.check(now + policy.first_response + policy.escalate_after + 120)
        if not done:
            break
        escalated += len(done)
    took = time.perf_counter() - started
    rows.append((f"watcher: {escalated} handoffs escalated (re-queued at top priority)", f"{escalated / took:,.0f}/s"))

    for i, conv_id in enumerate(ids):
        await store.record_event(
            keys.stats_first_responses(), {"conversation_id": conv_id, "waited": 60 + i % 900, "met": int(i % 3 > 0)}
        )
        await store.record_event(keys.stats_csat(), {"event": "asked", "conversation_id": conv_id})
        await store.record_event(keys.stats_csat(), {"event": "score", "score": 1 + i % 5, "low": int(i % 5 < 2)})
    timings = []
    for _ in range(5):
        started = time.perf_counter()
        figures = await app.stats.compute(24)
        timings.append(time.perf_counter() - started)
    assert figures["queue"]["waiting"] == HANDOFFS and figures["csat"]["responses"] == HANDOFFS
    what = f"GET /agent/stats over {HANDOFFS} waiting, {HANDOFFS} answers, {2 * HANDOFFS} CSAT facts"
    rows.append((what, f"{min(timings) * 1000:.0f} ms"))
    await engine.close()
    await redis.aclose()
    crm.close()
    return rows


def main() -> None:
    """Start a Redis, run, print the table."""
    logging.getLogger("bot.desk.sla").setLevel(logging.ERROR)  # one warning per flagged handoff otherwise
    port = free_port()
    with tempfile.TemporaryDirectory() as folder:
        server = subprocess.Popen(
            [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--dir", folder, "--save", ""],
            stdout=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 15
            while not redis_ping(port):
                if time.monotonic() > deadline:
                    raise SystemExit("redis-server did not start")
                time.sleep(0.1)
            rows = asyncio.run(_run(f"redis://127.0.0.1:{port}/0", Path(folder)))
        finally:
            server.terminate()
            server.wait(10)
    width = max(len(r[0]) for r in rows)
    print(f"{'what'.ljust(width)}  figure")
    for what, figure in rows:
        print(f"{what.ljust(width)}  {figure}")
