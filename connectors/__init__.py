"""Every channel, each a package behind the one `Channel` port (bot.conversations.channels).

`channel_classes()` is the one place channels are registered: the app builds the enabled ones from
the settings, mounts the routes of those that have any, and starts them with the core.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from fastapi import APIRouter

from bot.conversations.channels import Channel
from bot.settings import Settings
from connectors.email.connector import EmailConnector
from connectors.rest.channel import RestChannel
from connectors.telegram.connector import TelegramConnector
from connectors.webchat.channel import WebchatChannel


@runtime_checkable
class HasRoutes(Protocol):
    """A channel that brings HTTP routes of its own (a webhook, the REST API, the web chat socket)."""

    def routes(self) -> APIRouter:
        """The channel's routes, bound to the channel."""
        ...


def channel_classes() -> list[type[Channel]]:
    """Every channel class, in the order they are started."""
    return [WebchatChannel, RestChannel, TelegramConnector, EmailConnector]


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
