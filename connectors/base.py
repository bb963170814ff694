"""The connector interface: channel events in as InboundMessage, replies out as OutboundMessage."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.settings import Settings


@dataclass(frozen=True)
class Button:
    """A quick reply: the title shown and the payload sent back when pressed."""

    title: str
    payload: str


@dataclass(frozen=True)
class Attachment:
    """A file or media item a customer sent; recorded, never processed."""

    name: str
    content_type: str
    size: int


@dataclass(frozen=True)
class InboundMessage:
    """One customer message from any channel, in the router's terms."""

    channel: str
    thread_id: str
    sender: str
    text: str
    idempotency_key: str | None = None
    attachments: tuple[Attachment, ...] = ()
    locale_hint: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    received_at: float = field(default_factory=time.time)


@dataclass(frozen=True)
class OutboundMessage:
    """One reply to deliver: text, quick replies, and the template that produced it."""

    text: str
    role: str = "bot"
    buttons: tuple[Button, ...] = ()
    template: str | None = None
    template_version: int | None = None
    html: str | None = None
    agent_name: str | None = None


class Connector:
    """Base class of a channel connector; rich content falls back to text."""

    @classmethod
    def name(cls) -> str:
        """The channel name used in conversations and templates."""
        raise NotImplementedError

    @classmethod
    def from_settings(cls, settings: Settings) -> Connector | None:
        """Build the connector, or None when the channel is not configured."""
        return cls()

    async def deliver(self, conversation_id: str, thread_id: str, message: OutboundMessage) -> None:
        """Deliver a reply produced outside a customer request (an agent's answer, say)."""
        await self.send_text(conversation_id, thread_id, message.text)

    async def send_text(self, conversation_id: str, thread_id: str, text: str) -> None:
        """Deliver plain text; channels that answer inline (REST) need not do anything."""
