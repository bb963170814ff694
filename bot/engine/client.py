"""Thin client for the Rasa engine's app webhook and tracker API."""

from __future__ import annotations

import httpx

from bot import metrics
from bot.engine.contract import EngineReply, MessageMetadata
from bot.errors import EngineUnavailable


class EngineClient:
    """Sends one customer message to the engine and returns its replies, parsed by the wire contract."""

    def __init__(self, base_url: str, token: str, timeout: float = 60.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=httpx.Timeout(timeout, connect=5.0),
        )

    async def send(self, conversation_id: str, text: str, metadata: MessageMetadata) -> list[EngineReply]:
        """POST the message; raise EngineUnavailable when the engine cannot answer."""
        try:
            with metrics.timed("engine"):
                return await self._send(conversation_id, text, metadata)
        except EngineUnavailable:
            metrics.DEPENDENCY_ERRORS.labels("engine").inc()
            raise

    async def _send(self, conversation_id: str, text: str, metadata: MessageMetadata) -> list[EngineReply]:
        try:
            resp = await self._client.post(
                "/webhooks/app/webhook",
                json={"sender": conversation_id, "message": text, "metadata": metadata.to_wire()},
            )
        except httpx.HTTPError as exc:
            raise EngineUnavailable(f"engine at {self.base_url} unreachable: {exc!r}") from exc
        if resp.status_code != 200:
            raise EngineUnavailable(f"engine answered {resp.status_code}: {resp.text[:200]}")
        try:
            body = resp.json()
        except ValueError as exc:
            raise EngineUnavailable("engine answered with something other than JSON") from exc
        if not isinstance(body, list):
            raise EngineUnavailable("engine answered with something other than a list of messages")
        return [EngineReply.from_wire(m) for m in body if isinstance(m, dict)]

    async def ready(self) -> bool:
        """True once the engine has loaded a model and answers on its app webhook."""
        try:
            resp = await self._client.get("/webhooks/app/")
        except httpx.HTTPError:
            return False
        return resp.status_code == 200

    async def reset(self, conversation_id: str) -> None:
        """Restart the engine's tracker of a conversation, so a handed-back conversation starts afresh."""
        try:
            resp = await self._client.post(
                f"/conversations/{conversation_id}/tracker/events",
                params={"token": self._token},
                json=[{"event": "restart"}, {"event": "action", "name": "action_listen"}],
            )
        except httpx.HTTPError as exc:
            raise EngineUnavailable(f"engine at {self.base_url} unreachable: {exc!r}") from exc
        if resp.status_code != 200:
            raise EngineUnavailable(f"engine refused the tracker reset: {resp.status_code} {resp.text[:200]}")

    async def close(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()
