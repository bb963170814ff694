"""The channel port: what every channel is to the core, and the one path that pushes messages out.

A channel (web chat, REST, Telegram, email, a new one) is a `Channel` subclass in `connectors/`:
it turns its events into `InboundMessage`s for `ChannelContext.router`, and delivers
`OutboundMessage`s that the core pushes outside a request (an agent's answer, a notice). Channels
that receive nothing in the background leave `start` and `stop` alone; channels whose customers
read the transcript themselves (web chat sockets, REST polling) deliver by doing nothing more.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator

from bot.conversations.events import EventHub
from bot.conversations.messages import OutboundMessage
from bot.conversations.model import Conversation, LogEntry, is_seq
from bot.conversations.ports import CustomerDirectory
from bot.conversations.router import Router
from bot.conversations.store import ConversationStore
from bot.settings import Settings
from bot.templates import TemplateRegistry


def _client_seq(value: str) -> str:
    if not is_seq(value):
        raise ValueError("not a seq of the transcript")
    return value


# A seq a client sends back in a query (`after=`): a 422 unless Redis can read the transcript after it
# (ASCII digits in range: a pattern's \d took any script's digits, and an id out of range was a 500).
ClientSeq = Annotated[str, AfterValidator(_client_seq)]


@dataclass(frozen=True)
class ChannelContext:
    """What a started channel works with: the router, the store, templates, the customer directory."""

    router: Router
    store: ConversationStore
    templates: TemplateRegistry
    customers: CustomerDirectory
    # The app's Redis client, for the channel's own keys (its `keys` module names them).
    redis: Any
    # Conversation events (transcript lines, typing, mode) fanned out from the process's one pub/sub connection.
    events: EventHub


class Channel(ABC):
    """One way customers reach the shop."""

    # The response variant it is answered in (`chat`, `email`, `telegram`; see bot.templates).
    variant: ClassVar[str] = "chat"
    # Whether customers wait for answers in real time (chat); mail is read later, so it gets no
    # "an agent will be with you at 9:00" notices.
    live: ClassVar[bool] = True

    @classmethod
    @abstractmethod
    def name(cls) -> str:
        """The channel name used in conversations, keys and templates."""

    @classmethod
    @abstractmethod
    def from_settings(cls, settings: Settings) -> Channel | None:
        """Build the channel from the settings, or None when it is not configured."""

    # Optional hooks (B027): most channels have nothing to start or stop.
    async def start(self, context: ChannelContext) -> None:  # noqa: B027
        """Start receiving; background channels start their pollers and workers here."""

    async def stop(self) -> None:  # noqa: B027
        """Stop receiving; called once at shutdown, in reverse order of starting."""

    @abstractmethod
    async def deliver(self, conversation: Conversation, message: OutboundMessage) -> None:
        """Push a message (already in the transcript) to the conversation's customer."""


class Channels:
    """The enabled channels by name, and the one delivery path of the core and the desk."""

    def __init__(self, channels: Iterable[Channel], store: ConversationStore) -> None:
        self._by_name = {c.name(): c for c in channels}
        self.store = store

    def __iter__(self) -> Iterator[Channel]:
        return iter(self._by_name.values())

    def get(self, name: str) -> Channel | None:
        """The enabled channel of that name."""
        return self._by_name.get(name)

    def is_live(self, name: str) -> bool:
        """Whether the channel's customers wait for answers in real time."""
        channel = self._by_name.get(name)
        return channel.live if channel is not None else True

    async def push(self, conversation: Conversation, entries: list[LogEntry]) -> None:
        """Hand transcript lines already recorded (an answer found by the recovery pass) to the channel."""
        channel = self._by_name.get(conversation.channel)
        if channel is None:
            return
        for entry in entries:
            await channel.deliver(
                conversation,
                OutboundMessage(
                    text=entry.text,
                    role=entry.role,
                    buttons=tuple(entry.buttons),
                    template=entry.template,
                    template_version=entry.template_version,
                    html=entry.html,
                    agent_name=entry.agent_name,
                    text_format=entry.text_format or "text",
                ),
            )

    async def deliver(self, conversation: Conversation, message: OutboundMessage) -> LogEntry:
        """Record a message in the transcript (which web chat sockets and agents watch), then push it."""
        entry = await self.store.append(
            conversation.id,
            message.role,
            message.text,
            buttons=list(message.buttons),
            template=message.template,
            template_version=message.template_version,
            agent_name=message.agent_name,
            html=message.html,
            text_format=message.text_format,
        )
        channel = self._by_name.get(conversation.channel)
        if channel is not None:
            await channel.deliver(conversation, message)
        return entry
