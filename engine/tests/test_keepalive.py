"""Kept-alive endpoint sessions: Rasa's own request code, against a real HTTP server on loopback, reuses
one connection for many requests; headers, errors and the turn bookkeeping are unchanged."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager

import aiohttp
import pytest
from aiohttp import web
from rasa.utils.endpoints import ClientResponseError, EndpointConfig

from ar_engine import keepalive, turns


@asynccontextmanager
async def server(handler: Callable[[web.Request], web.StreamResponse]) -> AsyncIterator[tuple[str, list[str]]]:
    """An aiohttp server on a free loopback port; yields its URL and the peer (host:port) of each request."""
    peers: list[str] = []

    async def wrapped(request: web.Request) -> web.StreamResponse:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        peers.append(f"{peer[0]}:{peer[1]}" if peer else "?")
        return await handler(request)  # type: ignore[misc]

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", wrapped)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}", peers
    finally:
        await runner.cleanup()


@pytest.fixture(autouse=True)
def installed() -> Iterator[None]:
    keepalive.install()
    turns.install()
    yield
    keepalive.uninstall()


def test_many_requests_share_one_connection_with_the_same_headers() -> None:
    seen: list[str | None] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization"))
        return web.json_response({"ok": await request.json()})

    async def main() -> None:
        async with server(handler) as (url, peers):
            endpoint = EndpointConfig(url=f"{url}/webhooks/nlg", headers={"Authorization": "Bearer t"})
            for n in range(20):
                assert await endpoint.request(method="post", json={"n": n}) == {"ok": {"n": n}}
            assert len(set(peers)) == 1  # one TCP connection for all twenty
            await keepalive.close_all([endpoint])

    asyncio.run(main())
    assert seen == ["Bearer t"] * 20


def test_an_error_status_is_still_rasas_error_and_a_failed_turn_is_noted() -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.json_response({"error": "down"}, status=503)

    async def main() -> None:
        async with server(handler) as (url, _):
            endpoint = EndpointConfig(url=url)
            with turns.turn() as failures, pytest.raises(ClientResponseError):
                await endpoint.request(method="post", json={})
            assert failures and "503" in failures[0]
            await keepalive.close_all([endpoint])

    asyncio.run(main())


def test_a_new_event_loop_gets_a_new_session_and_a_closed_one_is_replaced() -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.json_response({})

    endpoint = EndpointConfig(url="http://127.0.0.1:1")
    kept: list[aiohttp.ClientSession] = []

    async def once() -> None:
        async with server(handler) as (url, _):
            endpoint.url = url
            async with endpoint.session() as session:
                kept.append(session)
            async with endpoint.session() as again:
                assert again is session and not session.closed  # leaving the block does not close it
            await session.close()
            async with endpoint.session() as replaced:
                assert replaced is not session and not replaced.closed
            await keepalive.close_all([endpoint])

    asyncio.run(once())
    asyncio.run(once())
    assert kept[0] is not kept[1]
