"""Fixtures for the web layer in-process: apps built from the composition root, signed-in clients."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import httpx
import pytest

from bot.accounts.records import CLI, Role
from bot.crm.repository import CRM
from bot.web.app import create_app
from bot.web.container import Container
from tests.conftest import TextRedis, app_settings, in_process
from tests.fakes.engine import StubEngine

PASSWORD = "correct horse battery staple"
BASE = "http://console.test"

Client = Callable[..., Coroutine[Any, Any, httpx.AsyncClient]]


@pytest.fixture
async def app_client(redis: TextRedis, crm: CRM) -> AsyncIterator[Client]:
    """Make clients of an app whose container is built from the composition root (no lifespan needed)."""
    clients: list[httpx.AsyncClient] = []

    async def make(**settings: Any) -> httpx.AsyncClient:
        container = in_process(redis, crm, StubEngine(), signin_ip_limit=1000, **settings)
        app = create_app(app_settings(**settings), engine_token="engine-token")
        app.state.container = container
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=settings.get("public_url", BASE))
        client.container = container  # type: ignore[attr-defined]
        clients.append(client)
        return client

    yield make
    for c in clients:
        await c.aclose()


def container_of(client: httpx.AsyncClient) -> Container:
    found: Container = client.container  # type: ignore[attr-defined]
    return found


async def account(client: httpx.AsyncClient, role: Role = Role.AGENT) -> str:
    name = f"agent-{uuid.uuid4().hex[:8]}"
    await container_of(client).account_service.add(CLI, name, role, PASSWORD)
    return name


async def signed_in(client: httpx.AsyncClient, role: Role = Role.AGENT) -> tuple[str, str]:
    """(name, CSRF token) of a new account signed in with this client (the cookie stays in its jar)."""
    name = await account(client, role)
    resp = await client.post("/auth/sign-in", json={"name": name, "password": PASSWORD})
    assert resp.status_code == 200, resp.text
    return name, resp.json()["csrf_token"]
