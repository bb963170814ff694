"""The engine's input channel for the app: one authenticated webhook, replies returned whole, and a
health route that says ready once the model is loaded and warm (ar_engine.warmup).

Rasa's stock REST channel has no authentication, splits texts on blank lines and drops the
template metadata the app's NLG endpoint attaches; this channel keeps each reply as one message.
"""

from __future__ import annotations

import hmac
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any

from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from ar_engine import turns
from ar_engine.serve import STOCK_ENV
from ar_engine.warmup import TEXTS, WarmUp

logger = logging.getLogger(__name__)

TOKEN_ENV = "AUTORESPONDER_ENGINE_TOKEN"
# Keys a reply may carry besides Rasa's own: what the app's NLG endpoint adds.
_DROP = {"recipient_id", "timestamp", "utter_action"}


async def run_turn(on_new_message: Callable[[UserMessage], Awaitable[Any]], message: UserMessage) -> list[str]:
    """Handle one message as a turn; the endpoint calls that failed in it (empty: it completed and was saved).

    A turn with a failed call is not saved (`turns.check_save`). Rasa does not always get that far: an NLG
    call that fails inside a response raises out of the processor. Once a call has failed, any exception is
    that turn's failure, answered 503 like the others (not a 500: the app sends the message again).
    """
    with turns.turn() as failures:
        try:
            await on_new_message(message)
        except turns.TurnFailed:
            pass  # the failures say why
        except Exception:
            if not failures:
                raise
            logger.warning("turn of %s raised after a failed call", message.sender_id, exc_info=True)
    return failures


class AppOutput(CollectingOutputChannel):
    """Collects each bot message as one dict, metadata included."""

    @classmethod
    def name(cls) -> str:
        """Name Rasa records as the output channel."""
        return "app"

    async def send_response(self, recipient_id: str, message: dict[str, Any]) -> None:
        """Keep the message whole instead of splitting it into text, buttons and custom parts."""
        kept = {k: v for k, v in message.items() if v not in (None, [], {}) and k not in _DROP}
        await self._persist_message(kept)


class AppInput(InputChannel):
    """POST /webhooks/app/webhook with a bearer token; body: sender, message, metadata."""

    def __init__(self, token: str | None = None) -> None:
        self.token = token or os.environ.get(TOKEN_ENV, "")
        if not self.token:
            raise ValueError(f"Set {TOKEN_ENV} (or `token` in credentials.yml) to protect the engine webhook.")
        self.warm_up = WarmUp(() if os.environ.get(STOCK_ENV) == "1" else TEXTS)

    @classmethod
    def name(cls) -> str:
        """URL segment of the channel: /webhooks/app/."""
        return "app"

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> InputChannel:
        """Build from credentials.yml; the token may also come from the environment."""
        return cls((credentials or {}).get("token"))

    def _authorised(self, request: Request) -> bool:
        header = request.headers.get("Authorization", "")
        supplied = header[7:] if header.startswith("Bearer ") else ""
        return bool(supplied) and hmac.compare_digest(supplied, self.token)

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        """Routes of the channel."""
        hook = Blueprint("autoresponder_app_webhook", __name__)

        @hook.listener("after_server_start")
        async def warm(app: Any, _loop: Any) -> None:
            self.warm_up.start(app)

        @hook.route("/", methods=["GET"])
        async def health(request: Request) -> HTTPResponse:
            # Ready once the model is loaded and warm: the app says "ready" only after this says 200.
            self.warm_up.start(request.app)
            if not self.warm_up.done:
                return response.json({"status": "warming up"}, status=503)
            return response.json({"status": "ok"})

        @hook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            if not self._authorised(request):
                return response.json({"error": "missing or wrong engine token"}, status=401)
            body = request.json if isinstance(request.json, dict) else None
            if body is None or not isinstance(body.get("sender"), str) or not isinstance(body.get("message"), str):
                return response.json({"error": "body needs string fields sender and message"}, status=422)
            metadata = body.get("metadata") if isinstance(body.get("metadata"), dict) else {}
            collector = AppOutput()
            message = UserMessage(
                body["message"],
                collector,
                body["sender"],
                input_channel=str(metadata.get("channel", self.name())),
                metadata=metadata,
            )
            failures = await run_turn(on_new_message, message)
            if failures:
                # Not saved (the engine's tracker store refuses a failed turn): the app sends it again later.
                logger.warning("turn of %s not completed: %s", body["sender"], "; ".join(failures[:3]))
                return response.json({"error": "the app's actions or responses could not be reached"}, status=503)
            messages: list[dict[str, Any]] = collector.messages
            return response.json(messages)

        return hook
