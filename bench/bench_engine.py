"""Engine benchmark: CPU and latency of a turn, and how a turn's cost grows with the conversation.

Starts two real stacks one after the other (Redis, the engine with the trained model, the app for the
engine's NLG and action callbacks): "stock" runs Rasa's RedisTrackerStore without the engine's patches and warm-up,
"engine" the stack as shipped (append-only tracker store, response validators built once). Each gets
the same load through the engine's input channel (POST /webhooks/app/webhook): the mix of four
messages in short conversations, sequentially, then one long conversation whose turns 4, 40 and 200
are timed (the turns before 40 and 200 are appended through Rasa's tracker API, copied from real turns,
so the stock store does not need minutes to get there). The figures: engine CPU ms per message (utime
+ stime of the engine process, its TensorFlow threads included), p50 of a turn, p50 of 9 turns around
turns 4, 40 and 200; and, in one engine process, the USE work per message (encoded by the featurizer
and again by the sentiment scorer before, shared now; both variants of the stack share it).
"""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import yaml

from bot.ops.stack import Stack, StackError, engine_python, free_port, train
from bot.settings import Settings

MIX = ("我的订单DD202405001到哪了？", "退货政策是什么？", "Where is my order DD202405002?", "谢谢")
MESSAGES = int(os.environ.get("BENCH_ENGINE_MESSAGES", "40"))
AROUND = (4, 40, 200)
WINDOW = 4  # turns timed on each side of the turn of interest
REST_TOKEN = "bench-rest-token-0123456789"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


@contextlib.contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the stack's processes, restored afterwards."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


@contextlib.contextmanager
def running(variant: str, folder: Path) -> Iterator[tuple[Stack, httpx.Client]]:
    """A stack (stock Rasa or the shipped engine) and an HTTP client for its engine."""
    port = free_port()
    env = {
        "AUTORESPONDER_HTTP_PORT": str(port),
        "AUTORESPONDER_ENGINE_PORT": str(free_port()),  # not port + 1, which another stack may hold
        "AUTORESPONDER_VAR_DIR": str(folder / variant),
        "AUTORESPONDER_REST_TOKEN": REST_TOKEN,
        "AUTORESPONDER_DEMO_DATA": "true",
        "AUTORESPONDER_LOG_LEVEL": "warning",
    }
    if variant == "stock":
        env["AUTORESPONDER_ENGINE_STOCK_RASA"] = "1"
    with environment(env):
        settings = Settings(_env_file=None)  # type: ignore[call-arg]
        stack = Stack(settings)
        try:
            model = train(settings)
            stack.prepare_crm()
            stack.engine_token = uuid.uuid4().hex
            stack.redis_url = stack.start_redis()
            endpoints, credentials = stack.write_engine_config(stack.redis_url)
            if variant == "stock":
                config = yaml.safe_load(endpoints.read_text())
                config["tracker_store"]["type"] = "redis"
                endpoints.write_text(yaml.safe_dump(config, sort_keys=False))
            stack.start_engine(model, endpoints, credentials)
            stack.start_app()
            engine = f"http://127.0.0.1:{settings.resolved_engine_port}"
            client = httpx.Client(
                base_url=engine, headers={"Authorization": f"Bearer {stack.engine_token}"}, timeout=120
            )
            deadline = time.monotonic() + 300
            while not _ready(client, port):
                dead = stack.check()
                if dead or time.monotonic() > deadline:
                    log = (stack.run_dir() / "engine.log").read_text(errors="replace")[-3000:]
                    raise StackError(f"the {variant} stack did not start ({dead or 'timeout'}); engine log:\n{log}")
                time.sleep(0.5)
            yield stack, client
            client.close()
        finally:
            stack.stop()


def _ready(client: httpx.Client, app_port: int) -> bool:
    try:
        engine = client.get("/webhooks/app/", timeout=2).status_code == 200
        app = httpx.get(f"http://127.0.0.1:{app_port}/livez", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
    return engine and app


def turn(client: httpx.Client, sender: str, text: str) -> float:
    """One message through the engine's input channel; its wall time in ms."""
    started = time.perf_counter()
    resp = client.post(
        "/webhooks/app/webhook",
        json={"sender": sender, "message": text, "metadata": {"channel": "rest", "locale": "zh-CN"}},
    )
    took = (time.perf_counter() - started) * 1000
    if resp.status_code != 200:
        raise StackError(f"engine answered {resp.status_code}: {resp.text[:200]}")
    return took


def one_turn_of_events(client: httpx.Client, token: str, sender: str) -> list[dict[str, Any]]:
    """The events of the last turn of a conversation (from its user message on)."""
    events: list[dict[str, Any]] = client.get(f"/conversations/{sender}/tracker", params={"token": token}).json()[
        "events"
    ]
    start = max(i for i, e in enumerate(events) if e.get("event") == "user")
    return events[start:]


def grow(client: httpx.Client, token: str, sender: str, turns: int, sample: list[dict[str, Any]]) -> None:
    """Append `turns` copies of a real turn's events to a conversation, in a few API calls."""
    for start in range(0, turns, 40):
        batch: list[dict[str, Any]] = []
        for _ in range(min(40, turns - start)):
            now = time.time()
            batch.extend({**e, "timestamp": now} for e in sample)
        resp = client.post(f"/conversations/{sender}/tracker/events", params={"token": token}, json=batch)
        if resp.status_code != 200:
            raise StackError(f"appending events failed: {resp.status_code} {resp.text[:200]}")


def measure(variant: str, folder: Path) -> dict[str, float]:
    """The figures of one variant."""
    with running(variant, folder) as (stack, client):
        pid = next(proc.pid for name, proc in stack.procs if name == "engine")
        first = turn(client, "first", MIX[1])  # the first customer after "ready"
        for i, text in enumerate(MIX * 2):  # the same load on a warm engine for both variants
            turn(client, f"warm-{i // 4}", text)
        cpu_before, times = cpu_seconds(pid), []
        for i in range(MESSAGES):
            times.append(turn(client, f"seq-{variant}-{i // len(MIX)}", MIX[i % len(MIX)]))
        cpu = (cpu_seconds(pid) - cpu_before) * 1000 / MESSAGES
        figures = {"cpu": cpu, "p50": statistics.median(times), "first": first}
        sample = one_turn_of_events(client, stack.engine_token, f"seq-{variant}-0")
        for target in AROUND:
            sender = f"long-{variant}-{target}"
            first = max(1, target - WINDOW)
            turn(client, sender, MIX[0])  # the conversation exists, with its session start
            if first > 2:
                grow(client, stack.engine_token, sender, first - 2, sample)
            window = [turn(client, sender, MIX[n % len(MIX)]) for n in range(first, target + WINDOW + 1)]
            figures[f"turn {target}"] = statistics.median(window)
        return figures


# The featurizer and the sentiment scorer both need each message's USE vector: before, each encoded it.
_USE_SCRIPT = """
import statistics, sys, time
from ar_engine.use_featurizer import _encoder, encode
texts = sys.argv[1:]
_encoder().encode(texts)
runs = {"twice": lambda t: (_encoder().encode(t), _encoder().encode(t)), "once": lambda t: (encode(t), encode(t))}
took = {name: [] for name in runs}
for i in range(200):  # interleaved, so that other work on the machine weighs on both alike
    for name, run in runs.items():
        text = [f"{texts[i % len(texts)]} {name} {i}"]
        started = time.perf_counter()
        run(text)
        took[name].append((time.perf_counter() - started) * 1000)
print(statistics.median(took["twice"]), statistics.median(took["once"]))
"""


def use_encoder_ms() -> tuple[float, float]:
    """Median ms of the USE work per message: encoded twice (before), shared through the cache (now)."""
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    out = subprocess.run(
        [str(engine_python(settings)), "-c", _USE_SCRIPT, *MIX],
        cwd=settings.engine_dir, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        capture_output=True, text=True, check=True, timeout=300,
    )  # fmt: skip
    twice, once = out.stdout.split()[-2:]
    return float(twice), float(once)


def main() -> None:
    """Run both variants and print the table."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        results = {variant: measure(variant, folder) for variant in ("stock", "engine")}
    twice, once = use_encoder_ms()
    results["stock"]["use"], results["engine"]["use"] = twice, once
    rows = [
        ("engine CPU per message (ms)", "cpu"),
        ("engine turn p50 (ms, sequential)", "p50"),
        ("USE sentence vectors per message (ms, in-process)", "use"),
        ("first message after ready (ms)", "first"),
        *((f"turn {t} of a conversation (ms, p50 of {max(1, t - WINDOW)}-{t + WINDOW})", f"turn {t}") for t in AROUND),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{'what'.ljust(width)}  {'stock Rasa':>10}  {'engine':>8}  ratio")
    for label, key in rows:
        before, after = results["stock"][key], results["engine"][key]
        print(f"{label.ljust(width)}  {before:>10.1f}  {after:>8.1f}  {before / after:>5.1f}x")
    growth = {v: results[v]["turn 200"] / results[v]["turn 4"] for v in results}
    print(f"turn 200 / turn 4: stock {growth['stock']:.2f}, engine {growth['engine']:.2f}")
