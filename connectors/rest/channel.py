"""The REST channel for company apps (contract in ARCHITECTURE.md)."""

from __future__ import annotations

import asyncio
import hmac
import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field, field_validator

from bot.conversations.channels import Channel, ChannelContext, ClientSeq
from bot.conversations.messages import InboundMessage, OutboundMessage
from bot.conversations.model import Conversation, Mode
from bot.settings import Settings
from connectors.rest import CHANNEL


class RestIn(BaseModel):
    """A customer message posted by a company app."""

    sender: str = Field(
        min_length=1,
        max_length=256,
        description="The customer's id within this channel; a CRM customer id, email or phone links the customer.",
    )
    text: str = Field(description="What the customer wrote; longer than AUTORESPONDER_MAX_TEXT_CHARS gets 413.")
    metadata: dict[str, Any] | None = Field(default=None, description='Optional, e.g. {"locale": "zh-CN"}.')

    @field_validator("text")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("text must not be blank")
        return value


class ButtonOut(BaseModel):
    """A quick reply the app may show."""

    title: str
    payload: str


class ReplyOut(BaseModel):
    """One bot reply."""

    text: str
    buttons: list[ButtonOut] = []
    seq: str | None = Field(default=None, description="Transcript position, for GET /channels/rest/messages.")


class HandoffOut(BaseModel):
    """Why and where the conversation waits for a human."""

    reason: str
    skill: str
    priority: int = Field(description="Higher is more urgent.")


class RestOut(BaseModel):
    """The conversation after this message, and the bot's replies to it."""

    conversation_id: str
    mode: Mode
    replies: list[ReplyOut]
    handoff: HandoffOut | None


class MessageOut(BaseModel):
    """A message the customer should see: from the bot, an agent, or the system."""

    seq: str = Field(description="Transcript position; pass the last one seen as `after`.")
    role: Literal["bot", "agent", "system"]
    text: str
    buttons: list[ButtonOut] = []
    agent_name: str | None = None
    ts: float


class MessagesOut(BaseModel):
    """Messages for the customer after a position, and the conversation's state."""

    conversation_id: str
    mode: Mode
    messages: list[MessageOut]


POLL_INTERVAL_SECONDS = 0.5
# Declared in the OpenAPI document, so that /docs offers "Authorize" with the REST token.
REST_AUTH = HTTPBearer(
    scheme_name="rest_token", description="AUTORESPONDER_REST_TOKEN (var/secrets/rest_token)", auto_error=False
)


class RestChannel(Channel):
    """Company apps post customer messages and get the bot's replies; later messages are polled."""

    def __init__(self, token: str, max_text_chars: int) -> None:
        self.token = token
        self.max_text_chars = max_text_chars
        self._context: ChannelContext | None = None

    @classmethod
    def name(cls) -> str:
        """The channel name: rest."""
        return CHANNEL

    @classmethod
    def from_settings(cls, settings: Settings) -> RestChannel:
        """Always on, behind AUTORESPONDER_REST_TOKEN (generated when unset)."""
        return cls(settings.secret("rest_token"), settings.max_text_chars)

    async def start(self, context: ChannelContext) -> None:
        """Serve requests from now on."""
        self._context = context

    async def stop(self) -> None:
        """Refuse requests."""
        self._context = None

    async def deliver(self, conversation: Conversation, message: OutboundMessage) -> None:
        """Nothing more to do: company apps fetch agents' answers with GET /channels/rest/messages."""

    @property
    def context(self) -> ChannelContext:
        """What the channel works with; 503 before the app has started."""
        if self._context is None:
            raise HTTPException(status_code=503, detail="the app is starting; try again shortly")
        return self._context

    async def _bearer(self, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(REST_AUTH)]) -> None:
        supplied = credentials.credentials if credentials is not None else ""
        if not supplied or not hmac.compare_digest(supplied.encode(), self.token.encode()):
            raise HTTPException(
                status_code=401,
                detail="missing or wrong token: send Authorization: Bearer $AUTORESPONDER_REST_TOKEN",
                headers={"WWW-Authenticate": "Bearer"},
            )

    async def _size_limit(self, request: Request) -> None:
        # A body far beyond the text limit is refused before it is parsed.
        limit = self.max_text_chars * 4 + 16_384
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > limit:
            raise HTTPException(status_code=413, detail=f"request body over {limit} bytes")

    def routes(self) -> APIRouter:
        """POST and GET /channels/rest/messages."""
        router = APIRouter(prefix="/channels/rest", tags=["REST channel"])
        channel = self

        @router.post(
            "/messages",
            response_model=RestOut,
            dependencies=[Depends(self._bearer), Depends(self._size_limit)],
            responses={
                401: {"description": "Missing or wrong bearer token."},
                413: {"description": "Text longer than AUTORESPONDER_MAX_TEXT_CHARS characters."},
                422: {"description": "Malformed body; `detail` names the offending field."},
            },
        )
        async def post_message(
            body: RestIn,
            idempotency_key: str | None = Header(
                default=None, description="Optional: a retried request with the same key is not processed twice."
            ),
        ) -> RestOut:
            """Send a customer message through the router and return the bot's replies."""
            if len(body.text) > channel.max_text_chars:
                raise HTTPException(status_code=413, detail=f"text longer than {channel.max_text_chars} characters")
            meta = body.metadata or {}
            result = await channel.context.router.handle(
                InboundMessage(
                    channel=CHANNEL,
                    thread_id=body.sender,
                    sender=body.sender,
                    text=body.text,
                    idempotency_key=idempotency_key,
                    locale_hint=str(meta["locale"]) if meta.get("locale") else None,
                    metadata={k: v for k, v in meta.items() if k in ("customer_id",)},
                    sender_is_contact=True,
                )
            )
            conv = result.conversation
            return RestOut(
                conversation_id=conv.id,
                mode=conv.mode,
                replies=[
                    ReplyOut(text=r.text, buttons=[ButtonOut(**b) for b in r.buttons], seq=r.seq or None)
                    for r in result.replies
                ],
                handoff=HandoffOut(**conv.handoff.public()) if conv.handoff and conv.mode != "bot" else None,
            )

        @router.get(
            "/messages",
            response_model=MessagesOut,
            dependencies=[Depends(self._bearer)],
            responses={
                401: {"description": "Missing or wrong bearer token."},
                404: {"description": "This sender has no conversation."},
                422: {"description": "Malformed query; `detail` names the offending parameter."},
            },
        )
        async def get_messages(
            request: Request,
            sender: str = Query(min_length=1, max_length=256, description="The customer's id within this channel."),
            after: Annotated[ClientSeq | None, Query(description="Only messages after this `seq` (exclusive).")] = None,
            wait: float = Query(default=0, ge=0, le=30, description="Long-poll: wait up to this many seconds for one."),
        ) -> MessagesOut:
            """What the customer should see after `after`: above all agents' answers and notices after a handoff,
            which no POST response can carry. Poll it, or long-poll with `wait`.
            """
            store = channel.context.store
            deadline = time.monotonic() + wait
            while True:
                conv = await store.find(CHANNEL, sender)
                if conv is None:
                    raise HTTPException(status_code=404, detail=f"no conversation for sender {sender!r}")
                entries = [e for e in await store.history(conv.id, after=after, count=500) if e.role != "customer"]
                if entries or time.monotonic() >= deadline or await request.is_disconnected():
                    return MessagesOut(
                        conversation_id=conv.id,
                        mode=conv.mode,
                        messages=[
                            MessageOut(
                                seq=e.seq,
                                role="agent" if e.role == "agent" else "bot" if e.role == "bot" else "system",
                                text=e.text,
                                buttons=[ButtonOut(**b) for b in e.buttons],
                                agent_name=e.agent_name,
                                ts=e.ts,
                            )
                            for e in entries
                        ],
                    )
                await asyncio.sleep(min(POLL_INTERVAL_SECONDS, max(0.0, deadline - time.monotonic())))

        return router
