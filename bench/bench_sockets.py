"""Idle web chat sockets: the app's resident memory with N visitors connected and greeted, and whether a
customer among them is still answered at once.

The whole stack is started the way `make run` starts it, on loopback. BENCH_SOCKETS (default 2000)
websockets connect to one app process, each says hello (so each has a conversation and a subscription
to its frames) and then stays idle. The app's RSS is read from /proc before and after; then one of the
idle visitors asks a question and the time to its answer is measured. Bounded: connects in batches, and
everything closes when the run is over.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any

import websockets

from bench.bench_load import _children, _Dirs, _rss_mb, _table, _up_pid

SOCKETS = int(os.environ.get("BENCH_SOCKETS", "2000"))
BATCH = 100


async def _greeted(url: str) -> Any:
    ws = await websockets.connect(url, open_timeout=30, max_size=2**20)
    await ws.send(json.dumps({"type": "hello", "session": None, "locale": "zh-CN"}))
    while json.loads(await asyncio.wait_for(ws.recv(), 30)).get("type") != "welcome":
        pass
    return ws


async def _run(ws_url: str, app_pid: int) -> list[list[str]]:
    before = _rss_mb(app_pid)
    sockets: list[Any] = []
    started = time.monotonic()
    try:
        while len(sockets) < SOCKETS:
            batch = min(BATCH, SOCKETS - len(sockets))
            sockets += await asyncio.gather(*(_greeted(ws_url) for _ in range(batch)))
        connected = time.monotonic() - started
        await asyncio.sleep(5)  # idle: let the app settle
        after = _rss_mb(app_pid)
        asked = time.monotonic()
        ws = sockets[len(sockets) // 2]
        await ws.send(json.dumps({"type": "message", "text": "退货政策是什么", "client_id": secrets.token_hex(8)}))
        while True:
            frame = json.loads(await asyncio.wait_for(ws.recv(), 60))
            if frame.get("type") == "message" and frame.get("role") == "bot":
                break
        answered = time.monotonic() - asked
    finally:
        await asyncio.gather(*(s.close() for s in sockets), return_exceptions=True)
    per_socket_kb = (after - before) * 1024 / max(1, len(sockets))
    return [
        [
            str(len(sockets)),
            f"{connected:.1f}",
            f"{before:.0f}",
            f"{after:.0f}",
            f"{per_socket_kb:.1f}",
            f"{answered * 1000:.0f}",
        ]
    ]


def main() -> None:
    """Start the stack, hold the sockets, print the table."""
    from tests.conftest import start_stack  # the tests' launcher: `autoresponder up` on free ports

    with tempfile.TemporaryDirectory(prefix="ar-bench-sockets-") as folder:
        extra = {"AUTORESPONDER_WEBCHAT_MAX_PER_IP": "100000", "AUTORESPONDER_STRICT_TEMPLATES": "false"}
        with start_stack(_Dirs(Path(folder)), extra) as stack:  # type: ignore[arg-type]
            up_pid = _up_pid(stack.log)
            app_pid = _children(up_pid).get("app") if up_pid else None
            assert app_pid is not None, "the app process was not found"
            rows = asyncio.run(_run(stack.ws_url, app_pid))
    print(f"\nmachine: {os.cpu_count()} cores; one app process")
    header = ["idle sockets (greeted)", "connect s", "app RSS MB before", "app RSS MB after", "KB per socket",
              "answer to one of them ms"]  # fmt: skip
    print(_table(header, rows))
