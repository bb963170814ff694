"""Channel connectors; `CONNECTORS` lists the background ones, built from settings at start-up."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.settings import Settings
    from connectors.base import Connector


def connector_classes() -> list[type[Connector]]:
    """Every background connector class (imported here, not at package import, to keep start-up light)."""
    from connectors.email.connector import EmailConnector
    from connectors.telegram.connector import TelegramConnector

    return [TelegramConnector, EmailConnector]


def enabled_connectors(settings: Settings) -> dict[str, Connector]:
    """The configured connectors by channel name: `{c.name(): c for c in ...}`."""
    built = {}
    for cls in connector_classes():
        connector = cls.from_settings(settings)
        if connector is not None:
            built[cls.name()] = connector
    return built
