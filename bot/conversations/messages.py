"""Messages across the channel boundary: channel events in as InboundMessage, pushes out as OutboundMessage."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any


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
    # The sender is a contact the channel vouches for (a REST app's customer id, email address or phone;
    # the address an email answer goes to): the CRM customer it names is this conversation's customer.
    # Web chat visitors and Telegram users are identified otherwise (a verified identity in `metadata`).
    sender_is_contact: bool = False
    # The channel delivers the message again if it is not answered now (a mail stays unread in the
    # mailbox): while the engine is down it is dropped, not kept pending.
    redeliverable: bool = False
    # The channel pushes the answer itself (Telegram sends it); an answer found later by the recovery
    # pass goes out through the channel's `deliver`. Web chat and REST customers read the transcript.
    pushes_replies: bool = False


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
