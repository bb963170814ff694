"""Fault injection against the whole product on loopback: real processes, SIGKILL and SIGSTOP.

A stack of its own (the tests break it on purpose), started the way `make run` starts it, so that its
supervisor restarts what dies. Customers are simulated the way real clients behave: a company app
retries a failed REST request with the same Idempotency-Key and polls for the answer; the web chat
widget reconnects and resends what the server had not confirmed, under the same client_id.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from tests.conftest import RunningStack, start_stack

# The answer a REST customer must get, besides the "one moment" notice an outage may bring.
NOTICE = "utter_engine_delayed"
QUESTION = "你好"
RESULTS = Path(__file__).resolve().parent.parent.parent / "var" / "faults.json"


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """A stack of this module's own, with a quick recovery pass."""
    extra = {"AUTORESPONDER_RECOVERY_INTERVAL_SECONDS": "1", "AUTORESPONDER_WEBCHAT_MAX_PER_IP": "1000"}
    with start_stack(tmp_path_factory, extra) as running:
        yield running


def pids(pattern: str) -> list[int]:
    """Processes whose command line matches `pattern` (a regex), from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if re.search(pattern, cmdline) and int(entry.name) != os.getpid():
            found.append(int(entry.name))
    return found


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/")[0])


def engine_pids(stack: RunningStack) -> list[int]:
    return pids(rf"ar_engine\.serve .*--port {port_of(stack.engine_url)}\b")


def app_pids(stack: RunningStack) -> list[int]:
    return pids(rf"uvicorn .*bot\.web\.asgi:build .*--port {port_of(stack.base_url)}\b")


def redis_url(stack: RunningStack) -> str:
    found: list[str] = re.findall(r"Redis\s+: (redis://\S+)", stack.log.read_text(errors="replace"))
    assert found, "the banner names the stack's Redis"
    return found[-1]


def redis_pids(stack: RunningStack) -> list[int]:
    return pids(rf"redis-server .*:{port_of(redis_url(stack))}\b|redis-server .*--port {port_of(redis_url(stack))}\b")


def send_signal(pid_list: list[int], sig: signal.Signals) -> None:
    assert pid_list, "the process to signal was not found"
    for pid in pid_list:
        os.kill(pid, sig)


def wait_healthy(stack: RunningStack, timeout: float = 240) -> float:
    """Seconds until /healthz says 200 again."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            if httpx.get(f"{stack.base_url}/healthz", timeout=3).status_code == 200:
                return time.monotonic() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    pytest.fail(f"the stack was not healthy again within {timeout} s:\n{stack.log.read_text()[-3000:]}")


@dataclass
class Tally:
    """What a scenario's customers saw."""

    scenario: str
    sent: int = 0
    answered_once: int = 0
    lost: int = 0
    doubled: int = 0
    longest_wait: float = 0.0
    notes: list[str] = field(default_factory=list)

    def row(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "messages": self.sent,
            "answered once": self.answered_once,
            "lost": self.lost,
            "doubled": self.doubled,
            "longest wait s": round(self.longest_wait, 1),
        }

    def count(self, who: str, got: int, baseline: int) -> None:
        """One customer's outcome: `got` answers where `baseline` is right."""
        if got == baseline:
            self.answered_once += 1
        elif got == 0:
            self.lost += 1
        else:
            self.doubled += 1
            self.notes.append(f"{who}: {got} answers")

    def record(self) -> None:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        rows = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
        rows[self.scenario] = self.row()
        RESULTS.write_text(json.dumps(rows, ensure_ascii=False, indent=2))
        print(f"\n{self.row()}")


def answers(stack: RunningStack, sender: str) -> list[dict[str, Any]]:
    """The bot's answers in a REST customer's conversation (the "one moment" notice left out)."""
    resp = httpx.get(
        f"{stack.base_url}/channels/rest/messages",
        params={"sender": sender},
        headers={"Authorization": f"Bearer {stack.rest_token}"},
        timeout=10,
    )
    if resp.status_code != 200:
        return []
    return [m for m in resp.json()["messages"] if m["role"] == "bot" and "请稍候" not in m["text"]]


async def rest_customer(stack: RunningStack, sender: str, tally: Tally, deadline: float) -> None:
    """Ask once, retrying with the same Idempotency-Key on failure, then wait for the answer."""
    key = uuid.uuid4().hex
    started = time.monotonic()
    async with httpx.AsyncClient(timeout=90) as client:
        while time.monotonic() < deadline:
            try:
                resp = await client.post(
                    f"{stack.base_url}/channels/rest/messages",
                    json={"sender": sender, "text": QUESTION},
                    headers={"Authorization": f"Bearer {stack.rest_token}", "Idempotency-Key": key},
                )
                if resp.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.5)
    tally.sent += 1
    while time.monotonic() < deadline and not await asyncio.to_thread(answers, stack, sender):  # noqa: ASYNC110  # polling another process's answer
        await asyncio.sleep(0.5)
    tally.longest_wait = max(tally.longest_wait, time.monotonic() - started)


def settle(stack: RunningStack, senders: list[str], tally: Tally, baseline: int) -> None:
    """Count each customer's answers: `baseline` answers each is right."""
    time.sleep(3)  # an answer committed twice would have appeared by now
    for sender in senders:
        got = len(answers(stack, sender))
        tally.count(sender, got, baseline)


def baseline(stack: RunningStack) -> int:
    """How many bot messages answer QUESTION on a healthy stack."""
    who = f"baseline-{uuid.uuid4().hex[:8]}"
    resp = httpx.post(
        f"{stack.base_url}/channels/rest/messages",
        json={"sender": who, "text": QUESTION},
        headers={"Authorization": f"Bearer {stack.rest_token}"},
        timeout=90,
    )
    assert resp.status_code == 200, resp.text
    n = len(resp.json()["replies"])
    assert n >= 1
    return n


async def webchat_customer(
    stack: RunningStack, tally: Tally, deadline: float, go: asyncio.Event, conversations: list[str]
) -> None:
    """A widget: hello, one message; on a dropped connection, reconnect and resend it (same client_id)."""
    session: str | None = None
    client_id = uuid.uuid4().hex
    sent = False
    started = time.monotonic()
    while time.monotonic() < deadline:
        try:
            async with websockets.connect(stack.ws_url, open_timeout=10) as ws:
                await ws.send(json.dumps({"type": "hello", "session": session, "locale": "zh-CN"}))
                while True:
                    frame = json.loads(await asyncio.wait_for(ws.recv(), 120))
                    if frame["type"] == "welcome":
                        session = frame["session"]
                        if frame["conversation_id"] not in conversations:
                            conversations.append(frame["conversation_id"])
                        if sent and any(_is_answer(m) for m in frame["history"]):
                            tally.longest_wait = max(tally.longest_wait, time.monotonic() - started)
                            return
                        await go.wait()
                        # Sent again after every reconnect until answered: the server deduplicates it.
                        await ws.send(json.dumps({"type": "message", "text": QUESTION, "client_id": client_id}))
                        if not sent:
                            sent = True
                            tally.sent += 1
                    elif frame["type"] == "message" and _is_answer(frame):
                        tally.longest_wait = max(tally.longest_wait, time.monotonic() - started)
                        return
        except (OSError, websockets.ConnectionClosed, TimeoutError):
            await asyncio.sleep(0.5)
    tally.notes.append(f"a web chat customer gave up waiting (session {session}, sent {sent})")


def _is_answer(frame: dict[str, Any]) -> bool:
    return frame.get("role") == "bot" and "请稍候" not in str(frame.get("text"))


def settle_webchat(stack: RunningStack, conversations: list[str], tally: Tally, baseline: int) -> None:
    """Count each web chat conversation's answers from its transcript in Redis."""
    from redis import Redis as SyncRedis

    from bot import keys

    time.sleep(3)
    with SyncRedis.from_url(redis_url(stack), decode_responses=True) as redis:
        for conv_id in conversations:
            rows = redis.xrange(keys.transcript(conv_id))
            asked = sum(1 for _, f in rows if f.get("role") == "customer")
            got = sum(1 for _, f in rows if f.get("role") == "bot" and f.get("template") != NOTICE)
            if asked != 1:
                tally.notes.append(f"{conv_id}: {asked} customer lines")
            tally.count(conv_id, got, baseline)
            if got == 0:  # what the inbox says of it, for the failure's message
                waiting = redis.zrange(keys.inbox_conversation(conv_id), 0, -1)
                states = {m: redis.hmget(keys.inbox_message(m), "state", "attempts") for m in waiting}
                leases = {m: redis.pttl(keys.inbox_lease(m)) for m in waiting}
                tally.notes.append(f"{conv_id}: no answer; unanswered {states}, lease ms {leases}, rows {rows}")
