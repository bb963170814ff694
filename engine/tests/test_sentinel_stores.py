"""The engine's tracker and lock stores through Redis Sentinel (real redis-server processes on loopback):
they find the primary, and after it is SIGKILLed and the replica promoted they write to the new one."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rasa.shared.core.events import ActionExecuted, UserUttered
from rasa.utils.endpoints import EndpointConfig
from redis import Redis
from redis.exceptions import RedisError

from ar_engine.lock_store import AsyncRedisLockStore, sentinel_pairs
from ar_engine.tracker_store import AppendOnlyRedisTrackerStore

SERVICE = "shop"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _until(check: Any, what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except RedisError:
            pass
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[dict[str, Any]]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    procs: list[subprocess.Popen[bytes]] = []
    common = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(tmp_path)]
    primary, replica, sentinel = _port(), _port(), _port()

    def start(*args: str) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen([binary, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(proc)
        return proc

    try:
        first = start("--port", str(primary), *common)
        _until(lambda: Redis(port=primary).ping(), "the primary")
        start("--port", str(replica), *common, "--replicaof", "127.0.0.1", str(primary))
        _until(lambda: Redis(port=replica).info("replication")["master_link_status"] == "up", "the replica")
        conf = tmp_path / "sentinel.conf"
        conf.write_text(
            f"port {sentinel}\nbind 127.0.0.1\ndir {tmp_path}\nsentinel monitor {SERVICE} 127.0.0.1 {primary} 1\n"
            f"sentinel down-after-milliseconds {SERVICE} 1000\nsentinel failover-timeout {SERVICE} 10000\n"
        )
        start(str(conf), "--sentinel")
        _until(lambda: len(Redis(port=sentinel).sentinel_slaves(SERVICE)) == 1, "the sentinel to see the replica")
        yield {"primary": first, "replica_port": replica, "sentinels": [["127.0.0.1", sentinel]]}
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def test_sentinel_entries_are_checked() -> None:
    assert sentinel_pairs([["10.0.0.1", 26379], ("::1", "26380")]) == [("10.0.0.1", 26379), ("::1", 26380)]
    for bad in ([], "127.0.0.1:26379", [["host"]], [["host", "port"]]):
        with pytest.raises(ValueError, match="sentinel"):
            sentinel_pairs(bad)


def test_both_stores_follow_a_fail_over(cluster: dict[str, Any]) -> None:
    sentinels = cluster["sentinels"]

    async def main() -> None:
        store = AppendOnlyRedisTrackerStore(key_prefix="ar", sentinels=sentinels, sentinel_service=SERVICE)
        locks = AsyncRedisLockStore(
            EndpointConfig(url="127.0.0.1", key_prefix="ar", sentinels=sentinels, sentinel_service=SERVICE)
        )
        try:
            async with locks.lock("c1"):
                tracker = await store.get_or_create_tracker("c1")
                tracker.update(UserUttered("你好", intent={"name": "greet", "confidence": 1.0}))
                await store.save(tracker)
            cluster["primary"].kill()  # the primary dies; the sentinel promotes the replica
            deadline = time.monotonic() + 60
            while True:
                try:
                    tracker = await store.retrieve("c1")
                    assert tracker is not None
                    tracker.update(ActionExecuted("utter_greet"))
                    await store.save(tracker)
                    break
                except (RedisError, OSError):
                    assert time.monotonic() < deadline, "the tracker store never reached the new primary"
                    await asyncio.sleep(0.5)
            again = await store.retrieve_full_tracker("c1")
            assert again is not None and [e.as_dict()["event"] for e in again.events][-2:] == ["user", "action"]
            assert await store.red.execute_command("ROLE") is not None
            # The lock store reconnects to the new primary too (its first call may meet the dead
            # connection and fail, as the turn's would: the app sends that message again).
            while True:
                try:
                    async with locks.lock("c2"):
                        assert promoted.exists("ar:lock:c2")
                    break
                except (RedisError, OSError):
                    assert time.monotonic() < deadline, "the lock store never reached the new primary"
                    await asyncio.sleep(0.5)
        finally:
            await store.close()
            await locks.close()

    promoted = Redis(port=cluster["replica_port"])
    asyncio.run(main())
    assert promoted.info("replication")["role"] == "master"
    assert promoted.llen("ar:tracker:c1") >= 2  # written on the new primary
