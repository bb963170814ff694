"""Atomic turns: endpoint calls that fail are noted in the turn; a 4xx the app meant is not a failure."""

from __future__ import annotations

import asyncio
import socket

import pytest
from aiohttp import web
from rasa.utils.endpoints import ClientResponseError, EndpointConfig

from ar_engine import turns


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_only_unreachable_timeouts_and_5xx_are_transient() -> None:
    assert turns.transient(ConnectionRefusedError())
    assert turns.transient(asyncio.TimeoutError())
    assert turns.transient(ClientResponseError(503, "Service Unavailable", ""))
    assert not turns.transient(ClientResponseError(400, "Bad Request", "rejected"))
    assert not turns.transient(ClientResponseError(404, "Not Found", ""))


def test_failures_outside_a_turn_are_not_kept_and_a_turn_starts_clean() -> None:
    turns.failed("before any turn")
    turns.check_save()  # nothing to refuse outside a turn
    with turns.turn() as failures:
        assert failures == []
        turns.check_save()
        turns.failed("nlg: refused")
        with pytest.raises(turns.TurnFailed, match="nlg: refused"):
            turns.check_save()
    turns.check_save()


def test_requests_to_the_app_that_fail_are_noted_in_the_turn() -> None:
    turns.install()
    turns.install()  # idempotent: one wrapper

    async def main() -> list[str]:
        app = web.Application()

        async def rejected(_: web.Request) -> web.Response:
            return web.json_response({"error": "action rejected"}, status=400)

        async def broken(_: web.Request) -> web.Response:
            return web.json_response({"error": "boom"}, status=500)

        async def fine(_: web.Request) -> web.Response:
            return web.json_response({"text": "ok"})

        app.add_routes([web.post("/rejected", rejected), web.post("/broken", broken), web.post("/fine", fine)])
        runner = web.AppRunner(app)
        await runner.setup()
        port = _free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            with turns.turn() as failures:
                ok = EndpointConfig(f"http://127.0.0.1:{port}/fine")
                assert await ok.request(json={}) == {"text": "ok"}
                with pytest.raises(ClientResponseError):
                    await EndpointConfig(f"http://127.0.0.1:{port}/rejected").request(json={})
                assert failures == []  # the app meant it
                with pytest.raises(ClientResponseError):
                    await EndpointConfig(f"http://127.0.0.1:{port}/broken").request(json={})
                with pytest.raises(Exception):  # noqa: B017, PT011  # aiohttp's connection error
                    await EndpointConfig(f"http://127.0.0.1:{_free_port()}/gone").request(json={})
                return list(failures)
        finally:
            await runner.cleanup()

    failures = asyncio.run(main())
    assert len(failures) == 2
    assert "/broken" in failures[0] and "500" in failures[0]
    assert "/gone" in failures[1]


def test_a_turn_that_raises_after_a_failed_call_is_a_failed_turn_not_a_crash() -> None:
    from rasa.core.channels.channel import UserMessage

    from ar_engine.channel import run_turn

    async def nlg_down(message: UserMessage) -> None:
        turns.failed("http://app/webhooks/nlg: ServerDisconnectedError()")
        raise RuntimeError("Rasa gave up on the response")

    async def check_refused(message: UserMessage) -> None:
        turns.failed("http://app/webhooks/actions: ClientConnectorError()")
        turns.check_save()

    async def completes(message: UserMessage) -> None:
        return None

    async def bug(message: UserMessage) -> None:
        raise ValueError("a bug, not the app being away")

    async def main() -> None:
        message = UserMessage("hi", sender_id="c1")
        assert await run_turn(nlg_down, message) == ["http://app/webhooks/nlg: ServerDisconnectedError()"]
        assert await run_turn(check_refused, message) == ["http://app/webhooks/actions: ClientConnectorError()"]
        assert await run_turn(completes, message) == []
        with pytest.raises(ValueError, match="a bug"):
            await run_turn(bug, message)

    asyncio.run(main())
