"""Every channel, each a package behind the one `Channel` port (bot.conversations.channels).

`channel_classes()` is the one place channels are registered: the app builds the enabled ones from
the settings, mounts the routes of those that have any, and starts them with the core.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

from fastapi import APIRouter

from bot.conversations.channels import Channel
from bot.settings import Settings
from connectors.email.connector import EmailConnector
from connectors.rest.channel import RestChannel
from connectors.telegram import CHANNEL as TELEGRAM
from connectors.telegram.settings import TelegramSettings
from connectors.webchat.channel import WebchatChannel

if TYPE_CHECKING:
    from bot.conversations.messages import OutboundMessage
    from bot.conversations.model import Conversation


@runtime_checkable
class HasRoutes(Protocol):
    """A channel that brings HTTP routes of its own (a webhook, the REST API, the web chat socket)."""

    def routes(self) -> APIRouter:
        """The channel's routes, bound to the channel."""
        ...


class Telegram(Channel):
    """The Telegram channel as the registry knows it before aiogram is loaded: aiogram's types cost the
    app about 130 MB of memory and 2 s of start-up, so they are imported only when a token is set."""

    variant = "telegram"

    @classmethod
    def name(cls) -> str:
        """The channel name: telegram."""
        return TELEGRAM

    @classmethod
    def from_settings(cls, settings: Settings) -> Channel | None:
        """The connector (connectors.telegram.connector) when AUTORESPONDER_TELEGRAM_TOKEN is set."""
        own = TelegramSettings()
        if not own.telegram_token:
            return None
        from connectors.telegram.connector import TelegramConnector

        return TelegramConnector.from_settings(settings, own)

    async def deliver(self, conversation: Conversation, message: OutboundMessage) -> None:
        """Never called: `from_settings` builds the connector itself."""
        raise NotImplementedError


def channel_classes() -> list[type[Channel]]:
    """Every channel class, in the order they are started."""
    return [WebchatChannel, RestChannel, Telegram, EmailConnector]


def enabled_channels(settings: Settings) -> dict[str, Channel]:
    """The configured channels by name: `{c.name(): c for c in ...}`."""
    built: dict[str, Channel] = {}
    for cls in channel_classes():
        channel = cls.from_settings(settings)
        if channel is not None:
            built[cls.name()] = channel
    return built


def variants() -> dict[str, str]:
    """The response variant each channel is answered in, for the template registry."""
    return {cls.name(): cls.variant for cls in channel_classes()}
