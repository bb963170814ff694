"""What several engine test modules share: a real redis-server on a free loopback port, and a runner for
test bodies that each get a fresh Redis-backed store."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest


@pytest.fixture(scope="session")
def redis_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    data: Path = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data), "--save", ""],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            time.sleep(0.05)
    yield port
    proc.terminate()
    proc.wait(timeout=10)


Store = TypeVar("Store", bound=Any)


def run_with_store(make: Callable[[], Store], body: Callable[[Store], Awaitable[None]]) -> None:
    """Run a test body with a fresh store from `make` (its own event loop, its database emptied first)."""

    async def main() -> None:
        store = make()
        try:
            await store.red.flushdb()
            await body(store)
        finally:
            await store.close()

    asyncio.run(main())
