"""The connector interface: channel events in as InboundMessage, replies out as OutboundMessage."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.services import Services
    from bot.settings import Settings
    from bot.store import Conversation


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
    """One message to deliver to a customer outside a request/response cycle (agent answers, notices)."""

    text: str
    role: str = "bot"
    buttons: tuple[dict[str, str], ...] = ()
    template: str | None = None
    template_version: int | None = None
    html: str | None = None
    agent_name: str | None = None
    text_format: str = "text"  # "html" when `text` is HTML (a notice rendered for Telegram)


class Connector:
    """A channel with a life of its own (a mailbox reader, a Telegram poller).

    Request/response channels (REST, web chat) are plain routes; a Connector is for channels that
    must run in the background and push messages to the customer (an agent's answer, say).
    """

    @classmethod
    def name(cls) -> str:
        """The channel name used in conversations, keys and templates."""
        raise NotImplementedError

    @classmethod
    def from_settings(cls, settings: Settings) -> Connector | None:
        """Build the connector, or None when the channel is not configured."""
        raise NotImplementedError

    async def start(self, services: Services) -> None:
        """Start background work (polling, IDLE, outbox workers)."""

    async def stop(self) -> None:
        """Stop background work; called once at shutdown."""

    async def deliver(self, conversation: Conversation, message: OutboundMessage) -> None:
        """Push a message to the customer of a conversation on this channel."""
        raise NotImplementedError
