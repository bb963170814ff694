"""A mail lab for the crash test and the benchmark: Redis and the engine that stay up, an app process to kill.

`autoresponder up` supervises its children and stops everything when one dies, so the lab starts the
pieces itself with `bot.ops.stack.Stack` (Redis with AOF, the Rasa engine with the trained model) and runs
the app (`uvicorn --factory bot.web.asgi:build`, the way `Stack.start_app` does) as a process of its own.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bot.ops.stack import Stack, StackError, free_port, train
from bot.settings import PROJECT_ROOT, Settings
from tests.connectors.email.mails import SUPPORT
from tests.connectors.email.servers import PASSWORD, Dovecot, Smtp

REST_TOKEN = "lab-rest-token-0123456789"


@dataclass
class AppProcess:
    """One run of the app, killable at any moment."""

    proc: subprocess.Popen[bytes]
    port: int
    log: Path
    started: float = field(default_factory=time.monotonic)

    def ready(self) -> bool:
        """The app answers /healthz with Redis and the engine up."""
        try:
            return httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def wait_ready(self, timeout: float = 60) -> float:
        """Seconds until ready."""
        deadline = time.monotonic() + timeout
        while not self.ready():
            if self.proc.poll() is not None:
                raise StackError(f"the app exited with {self.proc.returncode}: {self.log.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise StackError(f"the app was not ready after {timeout:.0f} s: {self.log.read_text()[-3000:]}")
            time.sleep(0.1)
        return time.monotonic() - self.started

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, like a power cut or the OOM killer."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        """A clean stop (SIGTERM), SIGKILL after 15 s."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


class Lab:
    """Redis and the engine on free ports; apps started on demand against a dovecot user and an SMTP server."""

    def __init__(self, var_dir: Path) -> None:
        self.var_dir = var_dir
        self.http_port = free_port()
        self.engine_port = free_port()
        self.settings = Settings(
            http_port=self.http_port,
            engine_port=self.engine_port,
            var_dir=var_dir,
            _env_file=None,  # type: ignore[call-arg]
        )
        self.stack = Stack(self.settings)
        self.redis_url = ""
        self.apps: list[AppProcess] = []

    def start(self) -> None:
        """Redis and the engine; returns once the engine has loaded the model."""
        model = train(self.settings)
        self.stack.prepare_crm()
        self.stack.engine_token = secrets.token_urlsafe(16)
        self.redis_url = self.stack.start_redis()
        self.stack.redis_url = self.redis_url
        endpoints, credentials = self.stack.write_engine_config(self.redis_url)
        with warnings.catch_warnings():
            # Stack._spawn hands the engine its log file and drops the object (the child keeps the
            # descriptor); CPython then warns about the unclosed file, which the tests turn into errors.
            warnings.simplefilter("ignore", ResourceWarning)
            self.stack.start_engine(model, endpoints, credentials)
        deadline = time.monotonic() + 300
        url = f"http://127.0.0.1:{self.engine_port}/webhooks/app/"
        while True:
            try:
                if (
                    httpx.get(
                        url, headers={"Authorization": f"Bearer {self.stack.engine_token}"}, timeout=2
                    ).status_code
                    == 200
                ):
                    return
            except httpx.HTTPError:
                pass
            dead = self.stack.check()
            if dead or time.monotonic() > deadline:
                log = self.stack.run_dir() / "engine.log"
                raise StackError(f"engine not ready ({dead or 'timeout'}): {log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.5)

    def app_env(self, dovecot: Dovecot, user: str, smtp: Smtp, **extra: str) -> dict[str, str]:
        """The environment `Stack.start_app` gives the app, plus the email channel's settings."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("AUTORESPONDER_")}
        env.update(
            AUTORESPONDER_HTTP_PORT=str(self.http_port),
            AUTORESPONDER_ENGINE_PORT=str(self.engine_port),
            AUTORESPONDER_VAR_DIR=str(self.var_dir),
            AUTORESPONDER_REDIS_URL=self.redis_url,
            AUTORESPONDER_ENGINE_TOKEN=self.stack.engine_token,
            AUTORESPONDER_REST_TOKEN=REST_TOKEN,
            AUTORESPONDER_STRICT_TEMPLATES="true",
            AUTORESPONDER_LOG_LEVEL="warning",
            AUTORESPONDER_IMAP_HOST="127.0.0.1",
            AUTORESPONDER_IMAP_PORT=str(dovecot.port),
            AUTORESPONDER_IMAP_SECURITY="none",
            AUTORESPONDER_IMAP_USER=user,
            AUTORESPONDER_IMAP_PASSWORD=PASSWORD,
            AUTORESPONDER_SMTP_HOST="127.0.0.1",
            AUTORESPONDER_SMTP_PORT=str(smtp.port),
            AUTORESPONDER_SMTP_SECURITY="none",
            AUTORESPONDER_SUPPORT_ADDRESS=SUPPORT,
        )
        env.update(extra)
        return env

    def start_app(self, env: dict[str, str]) -> AppProcess:
        """Start the app process (not waiting for it)."""
        log = self.var_dir / f"app-{len(self.apps)}.log"
        cmd = [
            sys.executable, "-m", "uvicorn", "--factory", "bot.web.asgi:build", "--host", "127.0.0.1",
            "--port", str(self.http_port), "--log-level", "warning", "--no-access-log",
        ]  # fmt: skip
        with open(log, "wb") as out:
            proc = subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        app = AppProcess(proc, self.http_port, log)
        self.apps.append(app)
        return app

    def stop(self) -> None:
        """Stop every app, then the engine and Redis."""
        for app in self.apps:
            app.stop()
        self.stack.stop()


@contextlib.contextmanager
def lab(var_dir: Path) -> Iterator[Lab]:
    """A started lab, stopped afterwards whatever happens."""
    running = Lab(var_dir)
    try:
        running.start()
        yield running
    finally:
        running.stop()
