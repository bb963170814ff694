"""Thin client for the Rasa engine's app webhook and tracker API.

aiohttp, not httpx: on every message the app waits for the engine, and under load httpx's pool cost
more of the app's event loop than the app's own work (without `sniffio` installed, httpcore also
retries a failing import on each request). Connections are kept alive, as many as are in use.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import aiohttp

from bot import metrics
from bot.engine.contract import EngineReply, MessageMetadata
from bot.errors import EngineUnavailable

# Connections to the engine at most (messages beyond it wait for a free one, inside the timeout).
MAX_CONNECTIONS = 256
# An idle connection is dropped before the engine's Sanic server drops it (its keep-alive timeout is
# 5 s): a request written on a connection the server is closing fails for nothing.
KEEPALIVE_SECONDS = 2.0


class EngineClient:
    """Sends one customer message to the engine and returns its replies, parsed by the wire contract."""

    def __init__(self, base_url: str, token: str, timeout: float = 60.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._timeout = aiohttp.ClientTimeout(total=timeout, connect=5.0)
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        """The session, made on first use inside the running event loop (aiohttp binds it to the loop)."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                headers={"Authorization": f"Bearer {self._token}"},
                timeout=self._timeout,
                connector=aiohttp.TCPConnector(limit=MAX_CONNECTIONS, keepalive_timeout=KEEPALIVE_SECONDS),
                json_serialize=lambda value: json.dumps(value, ensure_ascii=False),
            )
        return self._session

    async def send(self, conversation_id: str, text: str, metadata: MessageMetadata) -> list[EngineReply]:
        """POST the message; raise EngineUnavailable when the engine cannot answer."""
        try:
            with metrics.timed("engine"):
                return await self._send(conversation_id, text, metadata)
        except EngineUnavailable:
            metrics.DEPENDENCY_ERRORS.labels("engine").inc()
            raise

    async def _request(self, method: str, path: str, **kwargs: Any) -> tuple[int, bytes]:
        try:
            async with self._client().request(method, self.base_url + path, **kwargs) as resp:
                return resp.status, await resp.read()
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise EngineUnavailable(f"engine at {self.base_url} unreachable: {exc!r}") from exc

    async def _send(self, conversation_id: str, text: str, metadata: MessageMetadata) -> list[EngineReply]:
        status, raw = await self._request(
            "POST",
            "/webhooks/app/webhook",
            json={"sender": conversation_id, "message": text, "metadata": metadata.to_wire()},
        )
        if status != 200:
            shown = raw[:200].decode("utf-8", errors="replace")
            raise EngineUnavailable(f"engine answered {status}: {shown}")
        try:
            body = json.loads(raw)
        except ValueError as exc:
            raise EngineUnavailable("engine answered with something other than JSON") from exc
        if not isinstance(body, list):
            raise EngineUnavailable("engine answered with something other than a list of messages")
        return [EngineReply.from_wire(m) for m in body if isinstance(m, dict)]

    async def ready(self) -> bool:
        """True once the engine has loaded a model and answers on its app webhook."""
        try:
            status, _ = await self._request("GET", "/webhooks/app/")
        except EngineUnavailable:
            return False
        return status == 200

    async def reset(self, conversation_id: str) -> None:
        """Restart the engine's tracker of a conversation, so a handed-back conversation starts afresh."""
        status, raw = await self._request(
            "POST",
            f"/conversations/{quote(conversation_id, safe='')}/tracker/events",
            params={"token": self._token},
            json=[{"event": "restart"}, {"event": "action", "name": "action_listen"}],
        )
        if status != 200:
            shown = raw[:200].decode("utf-8", errors="replace")
            raise EngineUnavailable(f"engine refused the tracker reset: {status} {shown}")

    async def close(self) -> None:
        """Close the connection pool."""
        if self._session is not None:
            await self._session.close()
            self._session = None
