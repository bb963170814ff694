"""Redis Sentinel: a primary, a replica and three sentinels on loopback (real redis-server processes).

The app finds the primary through the sentinels, follows a fail-over, and with `redis_min_replicas=1`
acknowledges a message only once the replica has it: customers writing through a fail-over (the primary
SIGKILLed mid-traffic, the replica promoted) each get exactly one answer per message, none lost, none
doubled. A customer whose send failed (a 503 while the sentinels elect) sends again with the same key,
as the REST channel's clients do.
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import subprocess
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from redis import Redis as SyncRedis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bot.conversations.messages import InboundMessage
from bot.crm.repository import CRM
from bot.errors import AutoresponderError
from bot.ops.stack import free_port, redis_ping, redis_server_binary
from bot.web.container import build, close_redis, connect_redis, sentinel_addresses
from tests.conftest import app_settings
from tests.fakes.engine import StubEngine

SERVICE = "autoresponder"
CUSTOMERS = 20
MESSAGES_EACH = 10


@dataclass
class Cluster:
    primary: subprocess.Popen[bytes]
    primary_port: int
    replica: subprocess.Popen[bytes]
    replica_port: int
    sentinels: list[tuple[subprocess.Popen[bytes], int]]

    @property
    def spec(self) -> str:
        return ",".join(f"127.0.0.1:{port}" for _, port in self.sentinels)

    def master_port(self) -> int:
        with SyncRedis(port=self.sentinels[0][1], decode_responses=True) as s:
            _, port = s.sentinel_get_master_addr_by_name(SERVICE)
            return int(port)


def _start(args: list[str], folder: Path, name: str) -> subprocess.Popen[bytes]:
    with open(folder / f"{name}.log", "wb") as log:  # the child keeps its own descriptor
        return subprocess.Popen([redis_server_binary(), *args], cwd=folder, stdout=log, stderr=subprocess.STDOUT)


def _wait(check: object, what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if check():  # type: ignore[operator]
                return
        except RedisError:
            pass
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    primary_port, replica_port = free_port(), free_port()
    common = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--protected-mode", "no"]
    primary = _start(["--port", str(primary_port), *common], tmp_path, "primary")
    _wait(lambda: redis_ping(primary_port), "the primary")
    replica = _start(
        ["--port", str(replica_port), *common, "--replicaof", "127.0.0.1", str(primary_port)], tmp_path, "replica"
    )
    with SyncRedis(port=replica_port, decode_responses=True) as r:
        _wait(lambda: r.info("replication").get("master_link_status") == "up", "the replica to sync")
    sentinels = []
    for i in range(3):
        port = free_port()
        conf = tmp_path / f"sentinel-{i}.conf"
        conf.write_text(
            f"port {port}\nbind 127.0.0.1\nprotected-mode no\ndir {tmp_path}\n"
            f"sentinel monitor {SERVICE} 127.0.0.1 {primary_port} 2\n"
            f"sentinel down-after-milliseconds {SERVICE} 1000\n"
            f"sentinel failover-timeout {SERVICE} 10000\n"
            f"sentinel parallel-syncs {SERVICE} 1\n"
        )
        sentinels.append((_start([str(conf), "--sentinel"], tmp_path, f"sentinel-{i}"), port))
    running = Cluster(primary, primary_port, replica, replica_port, sentinels)
    for _, port in sentinels:
        with SyncRedis(port=port, decode_responses=True) as s:
            _wait(lambda s=s: int(s.sentinel_master(SERVICE)["num-other-sentinels"]) == 2, "the sentinels to meet")
            _wait(lambda s=s: len(s.sentinel_slaves(SERVICE)) == 1, "the sentinels to see the replica")
    yield running
    for proc in [primary, replica, *(p for p, _ in sentinels)]:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_sentinel_addresses_are_checked() -> None:
    assert sentinel_addresses("127.0.0.1:26379, [::1]:26380") == [("127.0.0.1", 26379), ("::1", 26380)]
    for bad in ("", "localhost", "a:b", ":1"):
        with pytest.raises(AutoresponderError):
            sentinel_addresses(bad)


async def test_customers_write_through_a_fail_over_and_lose_nothing(cluster: Cluster, tmp_path: Path) -> None:
    settings = app_settings(redis_sentinels=cluster.spec, redis_sentinel_service=SERVICE, redis_min_replicas=1)
    redis = connect_redis(settings)
    crm = CRM.from_url(f"sqlite:///{tmp_path / 'crm.sqlite3'}")
    crm.create_schema()
    engine = StubEngine()
    app = build(settings, redis=redis, crm=crm, engine=engine)
    try:
        assert await redis.ping()
        retries = 0

        async def customer(i: int) -> None:
            nonlocal retries
            for n in range(MESSAGES_EACH):
                msg = InboundMessage(
                    channel="rest", thread_id=f"c{i}", sender=f"c{i}", text=f"问题 {i}-{n}", idempotency_key=f"k{i}-{n}"
                )
                deadline = time.monotonic() + 60
                while True:
                    try:
                        result = await app.router.handle(msg)
                        if result.replies and not result.pending:
                            break
                    except (RedisConnectionError, RedisTimeoutError, OSError):
                        pass  # a 503 for a REST client: it sends again with the same key
                    retries += 1
                    assert time.monotonic() < deadline, f"message {i}-{n} never answered"
                    await asyncio.sleep(0.2)
                await asyncio.sleep(0.1)

        async def fail_over() -> None:
            await asyncio.sleep(1.0)
            os.kill(cluster.primary.pid, signal.SIGKILL)  # the primary dies mid-traffic

        await asyncio.gather(*(customer(i) for i in range(CUSTOMERS)), fail_over())
        assert cluster.master_port() == cluster.replica_port  # the replica was promoted
        # Every customer's conversation on the new primary: each question once, each answer once, in order.
        lost = doubled = 0
        for i in range(CUSTOMERS):
            conv, _ = await app.store.find_or_open("rest", f"c{i}", None)
            history = await app.store.history(conv.id)
            asked = [e.text for e in history if e.role == "customer"]
            answered = [e.text for e in history if e.role == "bot"]
            expected = [f"问题 {i}-{n}" for n in range(MESSAGES_EACH)]
            lost += sum(1 for q in expected if q not in asked or f"answer to: {q}" not in answered)
            doubled += sum(asked.count(q) - 1 for q in expected if asked.count(q) > 1)
            doubled += sum(max(0, answered.count(f"answer to: {q}") - 1) for q in expected)
            assert [a.removeprefix("answer to: ") for a in answered] == expected
        print(
            f"\nsentinel fail-over: {CUSTOMERS * MESSAGES_EACH} messages, {retries} resends, "
            f"lost {lost}, doubled {doubled}"
        )
        assert lost == 0 and doubled == 0
    finally:  # closed whatever happened: no socket left to a dead primary for a later test to trip on
        await close_redis(redis)
        crm.close()
        # redis-py drops the connections that broke on the dead primary without closing them; the
        # garbage collector closes them. Collect them here, where they belong, not during a later test.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            gc.collect()
