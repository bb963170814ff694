"""The app's shared services, built once in the lifespan and handed to connectors and routes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.agents import AgentDesk
    from bot.crm import CRM
    from bot.engine_client import EngineClient
    from bot.router import Router
    from bot.settings import Settings
    from bot.store import ConversationStore
    from bot.templates import TemplateRegistry
    from connectors.base import Connector


@dataclass
class Services:
    """Everything a connector or route may need."""

    settings: Settings
    redis: Any
    store: ConversationStore
    router: Router
    crm: CRM
    templates: TemplateRegistry
    engine: EngineClient
    desk: AgentDesk
    connectors: dict[str, Connector] = field(default_factory=dict)
