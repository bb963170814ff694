"""Scale-out on real infrastructure: two app replicas and two engine replicas behind HAProxy, one Redis.

Everything is a real process on loopback, started the way a service manager starts it
(`autoresponder serve-app` / `serve-engine`): Debian's haproxy balances customers and agents over the
apps round-robin (websocket upgrade included) and the apps' engine calls over the engines; the engines
call the apps back through it too. The test sends a mixed load through the balancer and checks
per-conversation order, exactly-once answers (retries with one Idempotency-Key landing on different
replicas included), and that a handoff and an agent's answer made on one replica reach a web chat
customer connected to the other.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import websockets

from bot.ops.stack import free_port, model_path
from bot.settings import PROJECT_ROOT, Settings
from tests.conftest import IDENTITY_SECRET, REST_TOKEN, TEST_PASSWORD, cli, pulled, wait_or_kill
from tests.connectors.webchat.test_webchat import recv

pytestmark = [pytest.mark.stack, pytest.mark.scale]

SUPERVISOR = "scale-supervisor"
MIX = ["DD202405001 到哪了", "退货政策是什么", "where is my order DD202405002", "谢谢"]
CUSTOMERS = 16
MESSAGES_EACH = 4


def haproxy_binary() -> str | None:
    return shutil.which("haproxy") or ("/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None)


@dataclass
class Farm:
    lb_url: str
    app_urls: list[str]
    engine_urls: list[str]
    env: dict[str, str]
    token: str = ""
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def rest(self, base: str, sender: str, text: str, key: str | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {REST_TOKEN}", "Connection": "close"}
        if key:
            headers["Idempotency-Key"] = key
        return httpx.post(
            f"{base}/channels/rest/messages", json={"sender": sender, "text": text}, headers=headers, timeout=120
        )

    def agent(self, base: str, method: str, path: str, **body: object) -> httpx.Response:
        return httpx.request(
            method,
            f"{base}/agent{path}",
            json=body or None,
            headers={"Authorization": f"Bearer {self.token}", "Connection": "close"},
            timeout=60,
        )


def _spawn(name: str, args: list[str], env: dict[str, str], logs: Path) -> subprocess.Popen[bytes]:
    with open(logs / f"{name}.log", "wb") as out:
        return subprocess.Popen(
            args, cwd=PROJECT_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def _wait_http(url: str, what: str, procs: dict[str, subprocess.Popen[bytes]], logs: Path, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for name, proc in procs.items():
            if proc.poll() is not None:
                pytest.fail(f"{name} exited with {proc.returncode}:\n{(logs / f'{name}.log').read_text()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.5)
    pytest.fail(f"{what} not ready in {seconds:.0f} s")


HAPROXY = """
global
    maxconn 4096
defaults
    mode http
    timeout connect 5s
    timeout client 180s
    timeout server 180s
    timeout tunnel 1h
    option http-server-close
frontend apps
    bind 127.0.0.1:{lb_app}
    default_backend apps
backend apps
    balance roundrobin
    option httpchk GET /livez
{app_servers}
frontend engines
    bind 127.0.0.1:{lb_engine}
    default_backend engines
backend engines
    balance roundrobin
    option httpchk GET /webhooks/app/
{engine_servers}
"""


@pytest.fixture(scope="module")
def farm(redis_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Farm]:
    haproxy = haproxy_binary()
    if haproxy is None:
        if os.environ.get("CI"):
            pytest.fail("haproxy is missing (scripts/loadbalancer.sh installs it)")
        pytest.skip("haproxy is not installed (scripts/loadbalancer.sh installs it)")
    if not model_path(Settings(_env_file=None)).exists():  # type: ignore[call-arg]
        pytest.fail("no trained model: run `autoresponder train` first (make test does)")
    root = tmp_path_factory.mktemp("farm")
    logs = root / "logs"
    logs.mkdir()
    app_ports, engine_ports = [free_port(), free_port()], [free_port(), free_port()]
    lb_app, lb_engine = free_port(), free_port()
    # Redis of its own: a database the other tests do not use.
    redis_url = redis_server.rsplit("/", 1)[0] + "/7"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTORESPONDER_")}
    env.update(
        AUTORESPONDER_REDIS_URL=redis_url,
        AUTORESPONDER_ENGINE_TOKEN=secrets.token_urlsafe(24),
        AUTORESPONDER_REST_TOKEN=REST_TOKEN,
        AUTORESPONDER_IDENTITY_SECRET=IDENTITY_SECRET,
        AUTORESPONDER_SECRET_KEY=secrets.token_urlsafe(32),  # web chat sessions valid on every replica
        AUTORESPONDER_CRM_URL=f"sqlite:///{root / 'crm.sqlite3'}",
        AUTORESPONDER_ENGINE_URL=f"http://127.0.0.1:{lb_engine}",
        AUTORESPONDER_CALLBACK_URL=f"http://127.0.0.1:{lb_app}",
        AUTORESPONDER_STRICT_TEMPLATES="true",
        AUTORESPONDER_WEBCHAT_MAX_PER_IP="100000",
        AUTORESPONDER_SIGNIN_IP_LIMIT="100000",
        AUTORESPONDER_GUEST_ORDER_FACTOR_ATTEMPTS="100000",
        AUTORESPONDER_LOG_LEVEL="warning",
        AUTORESPONDER_RECOVERY_INTERVAL_SECONDS="1",
    )
    config = root / "haproxy.cfg"
    config.write_text(
        HAPROXY.format(
            lb_app=lb_app,
            lb_engine=lb_engine,
            app_servers="\n".join(f"    server app{i} 127.0.0.1:{p} check inter 1s" for i, p in enumerate(app_ports)),
            engine_servers="\n".join(
                f"    server engine{i} 127.0.0.1:{p} check inter 1s" for i, p in enumerate(engine_ports)
            ),
        )
    )
    procs: dict[str, subprocess.Popen[bytes]] = {}
    farm = Farm(
        f"http://127.0.0.1:{lb_app}",
        [f"http://127.0.0.1:{p}" for p in app_ports],
        [f"http://127.0.0.1:{p}" for p in engine_ports],
        env,
        procs=procs,
    )
    try:
        procs["haproxy"] = _spawn("haproxy", [haproxy, "-db", "-f", str(config)], env, logs)
        for i, port in enumerate(engine_ports):
            engine_env = {**env, "AUTORESPONDER_ENGINE_PORT": str(port), "AUTORESPONDER_VAR_DIR": str(root / f"e{i}")}
            procs[f"engine{i}"] = _spawn(
                f"engine{i}", [sys.executable, "-m", "bot.ops.cli", "serve-engine"], engine_env, logs
            )
        for i, port in enumerate(app_ports):
            app_env = {**env, "AUTORESPONDER_HTTP_PORT": str(port), "AUTORESPONDER_VAR_DIR": str(root / f"a{i}")}
            procs[f"app{i}"] = _spawn(f"app{i}", [sys.executable, "-m", "bot.ops.cli", "serve-app"], app_env, logs)
            # One after the other: the first migrates the CRM's schema and loads the demo shop.
            _wait_http(f"{farm.app_urls[i]}/livez", f"app {i}", procs, logs, 120)
        for i, url in enumerate(farm.engine_urls):
            _wait_http(f"{url}/webhooks/app/", f"engine {i}", procs, logs, 400)
        _wait_http(f"{farm.lb_url}/healthz", "the balanced stack", procs, logs, 60)
        cli(env, "agent", "add", SUPERVISOR, "--role", "supervisor", "--password-stdin", stdin=TEST_PASSWORD + "\n")
        farm.token = cli(env, "agent", "token", "create", SUPERVISOR, "--name", "scale", "--quiet")
        yield farm
    finally:
        for proc in procs.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs.values():
            wait_or_kill(proc)


def test_mixed_load_through_both_replicas_is_answered_once_and_in_order(farm: Farm) -> None:
    tag = uuid.uuid4().hex[:6]
    sent: dict[str, list[str]] = {}
    answered: dict[str, list[str]] = {}

    async def customer(i: int) -> None:
        sender = f"scale-{tag}-{i}"
        sent[sender], answered[sender] = [], []
        for n in range(MESSAGES_EACH):
            text = MIX[(i + n) % len(MIX)]
            key = f"{sender}-{n}"
            # Half the customers' clients time out and retry: the retry goes to the other replica.
            if i % 2:
                first, retry = await asyncio.gather(
                    asyncio.to_thread(farm.rest, farm.app_urls[0], sender, text, key),
                    asyncio.to_thread(farm.rest, farm.app_urls[1], sender, text, key),
                )
                assert first.status_code == retry.status_code == 200, (first.text, retry.text)
                assert [r["text"] for r in first.json()["replies"]] == [r["text"] for r in retry.json()["replies"]]
                resp = first
            else:
                resp = await asyncio.to_thread(farm.rest, farm.lb_url, sender, text, key)
                assert resp.status_code == 200, resp.text
            assert resp.json()["replies"], resp.text
            sent[sender].append(text)
            answered[sender] += [r["text"] for r in resp.json()["replies"]]

    async def run() -> None:
        await asyncio.gather(*(customer(i) for i in range(CUSTOMERS)))

    asyncio.run(run())
    total = doubled = lost = 0
    for sender, texts in sent.items():
        # The transcript read through the balancer (either replica): the answers the customer got, each
        # once, in the order of the questions (the bot's lines of the conversation, nothing more).
        bot_lines = [m["text"] for m in pulled(farm.lb_url, REST_TOKEN, sender)["messages"] if m["role"] == "bot"]
        total += len(texts)
        doubled += max(0, len(bot_lines) - len(answered[sender]))
        lost += max(0, len(answered[sender]) - len(bot_lines))
        assert bot_lines == answered[sender], sender
    print(f"\nscale-out: {total} messages from {CUSTOMERS} customers, lost {lost}, doubled {doubled}")
    assert lost == 0 and doubled == 0


def test_a_handoff_and_an_agent_answer_reach_a_customer_on_the_other_replica(farm: Farm) -> None:
    async def run() -> None:
        ws_url = farm.app_urls[0].replace("http", "ws", 1) + "/channels/webchat/ws"
        async with websockets.connect(ws_url) as ws:
            await ws.send(json.dumps({"type": "hello", "session": None, "locale": "zh-CN"}))
            welcome = await recv(ws, "welcome")
            conv_id = welcome["conversation_id"]
            await ws.send(json.dumps({"type": "message", "text": "我要转人工", "client_id": uuid.uuid4().hex}))
            await recv(ws, "message", role="bot")
            # The other replica sees the handoff in its queue and its agent answers.
            queue = farm.agent(farm.app_urls[1], "GET", "/queue")
            assert queue.status_code == 200
            assert conv_id in json.dumps(queue.json())
            assert farm.agent(farm.app_urls[1], "POST", f"/conversations/{conv_id}/take").status_code == 200
            text = f"您好，我是客服，马上为您处理 {uuid.uuid4().hex[:4]}"
            assert (
                farm.agent(farm.app_urls[1], "POST", f"/conversations/{conv_id}/messages", text=text).status_code == 200
            )
            got = await recv(ws, "message", role="agent")
            assert got["text"] == text
            # Handed back on the second replica through the balancer; the customer's socket on the first
            # replica is told the bot answers again, and the bot does.
            assert farm.agent(farm.lb_url, "POST", f"/conversations/{conv_id}/handback").status_code == 200
            await recv(ws, "mode", mode="bot")

    asyncio.run(run())
