"""Load benchmark: the product under concurrent customers, against the engine alone in the same run.

The whole stack is started the way `make run` starts it (its own Redis, the Rasa engine with the trained
model, the app), on loopback. Virtual customers, each with a conversation of its own, send a fixed mix
(a zh-CN order question with an id, a return-policy question, an English order question, "谢谢") in a
closed loop, with 0 s or 10 s of think time between messages, through three layers interleaved level
by level: REST, web chat (a websocket per customer), and the engine alone (its input channel, as the
app calls it). Per run: answers per second, p50/p95/p99 latency, errors, CPU milliseconds per message
of the app, the engine and Redis (from /proc), and their resident memory. Then one REST conversation
of 200 turns gives the cost of turns 4, 40 and 200.

Bounded: every run stops after BENCH_LOAD_SECONDS (think time 0) or BENCH_LOAD_THINK_SECONDS (think
time 10 s); levels are BENCH_LOAD_LEVELS (default 1,10,50,200). BENCH_LOAD_ENGINE_WORKERS sets the
engine's Sanic workers (default 1).
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import websockets

from bot.engine.contract import MessageMetadata

SECONDS = float(os.environ.get("BENCH_LOAD_SECONDS", "15"))
THINK_SECONDS = float(os.environ.get("BENCH_LOAD_THINK_SECONDS", "30"))
LEVELS = [int(x) for x in os.environ.get("BENCH_LOAD_LEVELS", "1,10,50,200").split(",") if x.strip()]
THINKS = [float(x) for x in os.environ.get("BENCH_LOAD_THINKS", "0,10").split(",") if x.strip()]
TURNS = int(os.environ.get("BENCH_LOAD_TURNS", "200"))
MIX = [
    ("zh-CN", "DD202405001 到哪了"),
    ("zh-CN", "退货政策是什么"),
    ("en", "where is my order DD202405002"),
    ("zh-CN", "谢谢"),
]
CLK = os.sysconf("SC_CLK_TCK")


class _Dirs:
    """What start_stack asks of pytest's tmp_path_factory: a new folder."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def mktemp(self, name: str) -> Path:
        path = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=self.root))
        return path


def _processes() -> list[tuple[int, int, str]]:
    """(pid, parent pid, command line) of every process."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        found.append((int(entry.name), int(stat.rsplit(")", 1)[1].split()[1]), cmdline))
    return found


def _children(pid: int) -> dict[str, int]:
    """The stack's processes (children of `autoresponder up`) by role: app, engine, redis."""
    found: dict[str, int] = {}
    for child, ppid, cmdline in _processes():
        if ppid != pid:
            continue
        if "redis-server" in cmdline:
            found["redis"] = child
        elif "ar_engine.serve" in cmdline:
            found["engine"] = child
        elif "uvicorn" in cmdline:
            found["app"] = child
    return found


def _tree(pid: int) -> list[int]:
    """A process and its descendants (the engine's Sanic workers, for one)."""
    table = _processes()
    tree, frontier = [pid], [pid]
    while frontier:
        frontier = [child for child, ppid, _ in table if ppid in frontier]
        tree += frontier
    return tree


def _stat(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:  # gone meanwhile
        return []


def _cpu_seconds(pid: int) -> float:
    """CPU time of a process and its descendants (utime and stime, fields 14 and 15 of /proc/PID/stat)."""
    total = 0
    for member in _tree(pid):
        fields = _stat(member)
        if fields:
            total += int(fields[11]) + int(fields[12])
    return total / CLK


def _rss_mb(pid: int) -> float:
    """Resident memory of a process and its descendants."""
    total = 0.0
    for member in _tree(pid):
        try:
            lines = Path(f"/proc/{member}/status").read_text().splitlines()
        except OSError:
            continue
        total += sum(int(line.split()[1]) / 1024 for line in lines if line.startswith("VmRSS:"))
    return total


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


@dataclass
class Run:
    layer: str
    level: int
    think: float
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    seconds: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)
    rss: dict[str, float] = field(default_factory=dict)

    def row(self) -> list[str]:
        n = len(self.latencies)
        per = {k: (v * 1000 / n if n else float("nan")) for k, v in self.cpu.items()}
        ms = [x * 1000 for x in self.latencies]
        return [
            self.layer,
            str(self.level),
            f"{self.think:.0f}",
            str(n),
            f"{n / self.seconds:.1f}" if self.seconds else "-",
            f"{_pct(ms, 0.5):.0f}",
            f"{_pct(ms, 0.95):.0f}",
            f"{_pct(ms, 0.99):.0f}",
            str(self.errors),
            f"{per.get('app', 0):.1f}",
            f"{per.get('engine', 0):.1f}",
            f"{per.get('redis', 0):.1f}",
            f"{self.rss.get('app', 0):.0f}/{self.rss.get('engine', 0):.0f}",
        ]


Send = Callable[[int, int], Awaitable[None]]


class Bench:
    def __init__(self, base_url: str, ws_url: str, rest_token: str, engine_url: str, engine_token: str) -> None:
        self.base_url = base_url
        self.ws_url = ws_url
        self.rest_token = rest_token
        self.engine_url = engine_url
        self.engine_token = engine_token
        self.tag = uuid.uuid4().hex[:6]

    async def customer(
        self, layer: str, who: int, think: float, stop_at: float, run: Run, client: httpx.AsyncClient
    ) -> None:
        sender = f"load-{self.tag}-{layer}-{run.level}-{run.think:.0f}-{who}"
        turn = who  # customers start at different places in the mix
        ws = None
        try:
            if layer == "webchat":
                ws = await websockets.connect(self.ws_url, max_size=2**22, open_timeout=30)
                await ws.send(json.dumps({"type": "hello", "session": None, "locale": "zh-CN"}))
                while json.loads(await ws.recv()).get("type") != "welcome":
                    pass
            while time.monotonic() < stop_at:
                locale, text = MIX[turn % len(MIX)]
                turn += 1
                started = time.perf_counter()
                try:
                    if layer == "rest":
                        resp = await client.post(
                            f"{self.base_url}/channels/rest/messages",
                            json={"sender": sender, "text": text, "locale": locale},
                            headers={"Authorization": f"Bearer {self.rest_token}"},
                        )
                        ok = resp.status_code == 200 and bool(resp.json().get("replies"))
                    elif layer == "engine":
                        resp = await client.post(
                            f"{self.engine_url}/webhooks/app/webhook",
                            json={
                                "sender": sender,
                                "message": text,
                                "metadata": MessageMetadata(channel="rest", locale=locale).to_wire(),
                            },
                            headers={"Authorization": f"Bearer {self.engine_token}"},
                        )
                        ok = resp.status_code == 200 and bool(resp.json())
                    else:
                        assert ws is not None
                        cid = uuid.uuid4().hex
                        await ws.send(json.dumps({"type": "message", "text": text, "client_id": cid}))
                        async with asyncio.timeout(120):
                            while True:
                                frame = json.loads(await ws.recv())
                                if frame.get("type") == "message" and frame.get("role") == "bot":
                                    break
                        ok = True
                except (httpx.HTTPError, OSError, TimeoutError, websockets.WebSocketException, ValueError):
                    ok = False
                if ok:
                    run.latencies.append(time.perf_counter() - started)
                else:
                    run.errors += 1
                if think:
                    await asyncio.sleep(min(think, max(0.0, stop_at - time.monotonic())))
        except (OSError, TimeoutError, websockets.WebSocketException):
            run.errors += 1
        finally:
            if ws is not None:
                await ws.close()

    async def run(self, layer: str, level: int, think: float, pids: dict[str, int]) -> Run:
        run = Run(layer, level, think)
        limits = httpx.Limits(max_connections=level + 10, max_keepalive_connections=level + 10)
        async with httpx.AsyncClient(timeout=120, limits=limits) as client:
            duration = THINK_SECONDS if think else SECONDS
            before = {k: _cpu_seconds(p) for k, p in pids.items()}
            started = time.monotonic()
            stop_at = started + duration
            # Customers arrive over the first second (without think time) or over the think time, as
            # independent customers would, not all in one burst that then repeats every think time.
            spread = think if think else 1.0

            async def arrive(i: int) -> None:
                await asyncio.sleep(spread * i / max(level, 1))
                await self.customer(layer, i, think, stop_at, run, client)

            await asyncio.gather(*(arrive(i) for i in range(level)))
            run.seconds = time.monotonic() - started
            run.cpu = {k: _cpu_seconds(p) - before[k] for k, p in pids.items()}
            run.rss = {k: _rss_mb(p) for k, p in pids.items()}
        return run

    async def turns(self) -> dict[int, float]:
        """p50 latency (ms) around turns 4, 40 and 200 of one REST conversation."""
        sender = f"long-{self.tag}"
        took: list[float] = []
        async with httpx.AsyncClient(timeout=120) as client:
            for i in range(TURNS):
                locale, text = MIX[i % len(MIX)]
                started = time.perf_counter()
                resp = await client.post(
                    f"{self.base_url}/channels/rest/messages",
                    json={"sender": sender, "text": text, "locale": locale},
                    headers={"Authorization": f"Bearer {self.rest_token}"},
                )
                resp.raise_for_status()
                took.append((time.perf_counter() - started) * 1000)
        windows = {4: took[0:8], 40: took[36:44], TURNS: took[-8:]}
        return {turn: statistics.median(w) for turn, w in windows.items() if w}


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def main() -> None:
    """Start the stack, run every level through every layer, print the tables."""
    from tests.conftest import start_stack  # the tests' launcher: `autoresponder up` on free ports

    engine_token = secrets.token_urlsafe(24)
    with tempfile.TemporaryDirectory(prefix="ar-bench-load-") as folder:
        extra = {
            "AUTORESPONDER_ENGINE_TOKEN": engine_token,
            "AUTORESPONDER_WEBCHAT_MAX_PER_IP": "100000",
            "AUTORESPONDER_STRICT_TEMPLATES": "false",
            # The tests' launcher drops the caller's AUTORESPONDER_* settings: the engine's workers come from here.
            "AUTORESPONDER_ENGINE_WORKERS": os.environ.get("BENCH_LOAD_ENGINE_WORKERS", "1"),
        }
        with start_stack(_Dirs(Path(folder)), extra) as stack:  # type: ignore[arg-type]
            up_pid = _up_pid(stack.log)
            pids = _children(up_pid) if up_pid else {}
            bench = Bench(stack.base_url, stack.ws_url, stack.rest_token, stack.engine_url, engine_token)
            # Warm every layer up before measuring (model load, jieba, TensorFlow graphs).
            for layer in ("engine", "rest", "webchat"):
                asyncio.run(_warm(bench, layer))
            runs: list[Run] = []
            for think in THINKS:
                for level in LEVELS:
                    for layer in ("engine", "rest", "webchat"):  # interleaved: the same machine state for all
                        runs.append(asyncio.run(bench.run(layer, level, think, pids)))
                        print(f"  {layer} x{level} think {think:.0f}s: {len(runs[-1].latencies)} answers", flush=True)
            turns = asyncio.run(bench.turns())
    cores = os.cpu_count()
    workers = os.environ.get("BENCH_LOAD_ENGINE_WORKERS", "1")
    print(f"\nmachine: {cores} cores; engine workers: {workers}; mix: {', '.join(t for _, t in MIX)}")
    header = [
        "layer", "customers", "think s", "answers", "msg/s", "p50 ms", "p95 ms", "p99 ms", "errors",
        "app CPU ms/msg", "engine CPU ms/msg", "Redis CPU ms/msg", "RSS MB app/engine",
    ]  # fmt: skip
    print(_table(header, [r.row() for r in runs]))
    ratios = []
    for think in THINKS:
        for level in LEVELS:
            by = {r.layer: r for r in runs if r.level == level and r.think == think}
            engine = by.get("engine")
            if not engine or not engine.latencies:
                continue
            e50 = _pct(engine.latencies, 0.5)
            e_rate = len(engine.latencies) / engine.seconds
            cells = [str(level), f"{think:.0f}"]
            for layer in ("rest", "webchat"):
                r = by.get(layer)
                if r and r.latencies:
                    rate = len(r.latencies) / r.seconds
                    cells += [f"{_pct(r.latencies, 0.5) / e50:.2f}", f"{rate / e_rate:.2f}"]
                else:
                    cells += ["-", "-"]
            ratios.append(cells)
    print()
    print(_table(["customers", "think s", "REST p50 / engine", "REST msg/s / engine", "web chat p50 / engine",
                  "web chat msg/s / engine"], ratios))  # fmt: skip
    print()
    first = turns.get(4, float("nan"))
    print(_table(["turn of one conversation (REST)", "p50 ms", "ratio to turn 4"],
                 [[str(t), f"{ms:.0f}", f"{ms / first:.2f}"] for t, ms in sorted(turns.items())]))  # fmt: skip


async def _warm(bench: Bench, layer: str) -> Run:
    run = Run(layer, 1, 0.0)
    async with httpx.AsyncClient(timeout=120) as client:
        await bench.customer(layer, 0, 0.0, time.monotonic() + 3, run, client)
    return run


def _up_pid(log: Path) -> int | None:
    """The pid of `autoresponder up`: the process whose children are the stack (read from /proc)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if b"bot.ops.cli" in cmdline and b"up" in cmdline and str(log.parent).encode() in environ:
            return int(entry.name)
    return None
