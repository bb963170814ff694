"""The webhook Telegram posts updates to (webhook mode), guarded by the secret given to setWebhook."""

from __future__ import annotations

from typing import Any, Protocol

from fastapi import APIRouter, Header, HTTPException, Request, Response

from bot.errors import BadInput
from connectors.telegram import SECRET_HEADER, WEBHOOK_PATH

# Telegram's updates are a few kilobytes; anything this big is not one.
MAX_BODY_BYTES = 1024 * 1024


class WebhookReceiver(Protocol):
    """What the route needs of the channel."""

    mode: str

    def check_secret(self, supplied: str | None) -> bool:
        """Whether the request carries the webhook's secret."""
        ...

    async def feed_webhook(self, payload: dict[str, Any]) -> None:
        """Process one update."""
        ...


def webhook_routes(connector: WebhookReceiver) -> APIRouter:
    """The route Telegram posts to, bound to the channel."""
    router = APIRouter(tags=["Telegram channel"])

    @router.post(
        WEBHOOK_PATH,
        status_code=200,
        responses={
            401: {"description": f"Missing or wrong {SECRET_HEADER}; nothing is processed."},
            404: {"description": "The Telegram channel is in polling mode."},
        },
    )
    async def telegram_webhook(
        request: Request,
        secret: str | None = Header(default=None, alias=SECRET_HEADER, include_in_schema=False),
    ) -> Response:
        """Receive one update from Telegram (only in webhook mode)."""
        if connector.mode != "webhook":
            raise HTTPException(404, "the Telegram channel is not in webhook mode (AUTORESPONDER_TELEGRAM_MODE)")
        if not connector.check_secret(secret):
            raise HTTPException(401, f"missing or wrong {SECRET_HEADER}")
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > MAX_BODY_BYTES:
            raise HTTPException(413, "request body too large for a Telegram update")
        try:
            payload: Any = await request.json()
        except ValueError as exc:
            raise HTTPException(400, "body is not JSON") from exc
        if not isinstance(payload, dict):
            raise HTTPException(400, "body is not a Telegram update object")
        try:
            await connector.feed_webhook(payload)
        except BadInput as exc:
            raise HTTPException(400, exc.message) from exc
        return Response(status_code=200)

    return router
