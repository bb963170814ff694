"""Fixtures that start real peers: a Redis server on a free port, and the whole stack."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from bot.conversations.channels import Channel
from bot.conversations.ports import Engine
from bot.crm.repository import CRM
from bot.hours import BusinessHours
from bot.ops.stack import free_port, redis_ping, redis_server_binary
from bot.settings import PROJECT_ROOT, Settings
from bot.web.container import Container, build

# redis-py types every reply as `bytes | str` even on a client with decode_responses=True, which is how
# the app and the tests connect; like the app's store, the tests hold that client loosely typed.
TextRedis = Any

REST_TOKEN = "test-rest-token-0123456789"
AGENT_TOKEN = "test-agent-token-0123456789"
# The shop's identity secret in the tests' stacks (web chat customers signed by "the shop's backend").
IDENTITY_SECRET = "test-identity-secret-0123456789"


@dataclass(frozen=True)
class RunningStack:
    """A stack started by `autoresponder up` for the tests."""

    base_url: str
    ws_url: str
    rest_token: str
    var_dir: Path
    log: Path
    engine_url: str

    def tracking_number(self, order_id: str) -> str:
        """The tracking number this stack's CRM holds for an order."""
        from bot.crm.repository import CRM

        crm = CRM.from_url(f"sqlite:///{self.var_dir / 'crm.sqlite3'}")
        try:
            order = crm.get_order(order_id)
        finally:
            crm.close()
        assert order is not None
        assert order.tracking_number
        return order.tracking_number

    def pulled(self, sender: str) -> dict[str, Any]:
        """What the REST channel's GET /channels/rest/messages shows a company app for a sender."""
        resp = httpx.get(
            f"{self.base_url}/channels/rest/messages",
            params={"sender": sender},
            headers={"Authorization": f"Bearer {self.rest_token}"},
            timeout=30,
        )
        assert resp.status_code == 200, resp.text
        body: dict[str, Any] = resp.json()
        return body

    def agent(self, method: str, path: str, **body: object) -> httpx.Response:
        """Call the agent API."""
        return httpx.request(
            method,
            f"{self.base_url}/agent{path}",
            json=body or None,
            headers={"Authorization": f"Bearer {AGENT_TOKEN}"},
            timeout=60,
        )

    def rest(self, sender: str, text: str, **extra: object) -> httpx.Response:
        """POST one message to the REST channel."""
        body = {"sender": sender, "text": text, **extra}
        return httpx.post(
            f"{self.base_url}/channels/rest/messages",
            json=body,
            headers={"Authorization": f"Bearer {self.rest_token}"},
            timeout=90,
        )


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server of the tests' own on a free loopback port."""
    port = free_port()
    data = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [
            redis_server_binary(),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(data),
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 15
    while not redis_ping(port):
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            pytest.fail("redis-server did not start")
        time.sleep(0.1)
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(10)


@pytest.fixture(scope="module")
def crm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CRM]:
    """The demo CRM in a SQLite file of the module's own (modules that test the CRM itself have their own)."""
    db = CRM.from_url(f"sqlite:///{tmp_path_factory.mktemp('crm') / 'crm.sqlite3'}")
    db.create_schema()
    db.seed_demo()
    yield db
    db.close()


@pytest.fixture
async def redis(redis_server: str) -> AsyncIterator[TextRedis]:
    """A client on the tests' Redis, emptied after each test."""
    client = Redis.from_url(redis_server, decode_responses=True)
    yield client
    await client.flushdb()
    await client.aclose()


@contextlib.contextmanager
def start_stack(
    tmp_path_factory: pytest.TempPathFactory, extra_env: dict[str, str] | None = None
) -> Iterator[RunningStack]:
    """Start the whole product the way `make run` does, on free ports with its own Redis; stop it after.

    `extra_env` adds settings (AUTORESPONDER_*) for a stack with a channel turned on.
    """
    var_dir = tmp_path_factory.mktemp("var")
    http_port, engine_port = free_port(), free_port()
    log = var_dir / "stack.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTORESPONDER_")}
    env.update(
        AUTORESPONDER_HTTP_PORT=str(http_port),
        AUTORESPONDER_ENGINE_PORT=str(engine_port),
        AUTORESPONDER_VAR_DIR=str(var_dir),
        AUTORESPONDER_REST_TOKEN=REST_TOKEN,
        AUTORESPONDER_AGENT_TOKEN=AGENT_TOKEN,
        AUTORESPONDER_IDENTITY_SECRET=IDENTITY_SECRET,
        AUTORESPONDER_STRICT_TEMPLATES="true",
        AUTORESPONDER_LOG_LEVEL="warning",
    )
    env.update(extra_env or {})
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bot.ops.cli", "up"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group, so a kill also reaches a `rasa train` it started
        )
    base = f"http://127.0.0.1:{http_port}"
    deadline = time.monotonic() + 300
    while True:
        if proc.poll() is not None:
            pytest.fail(f"`autoresponder up` exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        if "autoresponder is ready" in log.read_text(errors="replace"):
            break
        if time.monotonic() > deadline:
            _stop(proc)
            pytest.fail(f"stack not ready in time:\n{log.read_text()[-4000:]}")
        time.sleep(0.5)
    yield RunningStack(
        base,
        base.replace("http", "ws", 1) + "/channels/webchat/ws",
        REST_TOKEN,
        var_dir,
        log,
        f"http://127.0.0.1:{engine_port}",
    )
    if not _stop(proc):
        pytest.fail("`autoresponder up` did not stop within 30 s of Ctrl-C")


def _stop(proc: subprocess.Popen[bytes]) -> bool:
    """Ctrl-C `autoresponder up` so that it stops what it started; kill it after 30 s. True if it stopped."""
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return False
    return True


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """The whole product, started the way `make run` starts it, on free ports with its own Redis."""
    with start_stack(tmp_path_factory) as running:
        yield running


def chromium_path() -> str | None:
    """Debian's Chromium, if installed."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def app_settings(**values: Any) -> Settings:
    """Settings for an in-process app: no .env file, strict templates, the given values."""
    return Settings(_env_file=None, strict_templates=True, **values)  # type: ignore[call-arg]


def in_process(
    redis: TextRedis,
    crm: CRM,
    engine: Engine,
    *,
    channels: Iterable[Channel] = (),
    hours: BusinessHours | None = None,
    **settings: Any,
) -> Container:
    """The app's object graph from the composition root, on the tests' Redis and CRM with a given engine."""
    return build(app_settings(**settings), redis=redis, crm=crm, engine=engine, channels=channels, hours=hours)
