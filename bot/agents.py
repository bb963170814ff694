"""The agent desk: take a waiting conversation, answer through the customer's channel, hand back."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from bot.errors import AutoresponderError
from bot.store import Conversation, ConversationStore, LogEntry
from bot.templates import TemplateRegistry
from connectors.base import Connector, OutboundMessage

if TYPE_CHECKING:
    from bot.engine_client import EngineClient

log = logging.getLogger(__name__)


class ConversationNotFound(AutoresponderError):
    """No conversation with that id."""


class WrongMode(AutoresponderError):
    """The conversation is not in a mode that allows the operation."""


class AgentDesk:
    """Operations agents perform on conversations, whatever the channel."""

    def __init__(
        self,
        store: ConversationStore,
        templates: TemplateRegistry,
        engine: EngineClient,
        connectors: dict[str, Connector],
    ) -> None:
        self.store = store
        self.templates = templates
        self.engine = engine
        self.connectors = connectors

    async def _get(self, conv_id: str) -> Conversation:
        conv = await self.store.get(conv_id)
        if conv is None:
            raise ConversationNotFound(f"no conversation {conv_id}")
        return conv

    async def _notify(self, conv: Conversation, template: str, role: str = "system", **variables: str) -> LogEntry:
        """Tell the customer something in their language, on their channel."""
        rendered = self.templates.render(template, conv.channel, conv.locale or "zh-CN", dict(variables))
        entry = await self.store.append(
            conv.id, role, rendered.text, template=rendered.name, template_version=rendered.version
        )
        await self._deliver(
            conv,
            OutboundMessage(
                text=rendered.text,
                role=role,
                html=rendered.html,
                template=rendered.name,
                template_version=rendered.version,
                text_format=rendered.text_format,
            ),
        )
        return entry

    async def _deliver(self, conv: Conversation, message: OutboundMessage) -> None:
        connector = self.connectors.get(conv.channel)
        if connector is not None:
            await connector.deliver(conv, message)

    async def take(self, conv_id: str, agent: str) -> Conversation:
        """An agent takes a conversation: it leaves the queue and the customer is told."""
        conv, holder = await self.store.claim_for_agent(conv_id, agent)
        if conv is None:
            raise ConversationNotFound(f"no conversation {conv_id}")
        if holder is not None:
            raise WrongMode(f"conversation {conv_id} is already with {holder}")
        await self.store.dequeue(conv)
        await self.store.hold(agent, conv.id)
        await self.store.publish(conv.id, {"type": "mode", "mode": "agent", "agent_name": agent})
        await self._notify(conv, "utter_agent_joined", agent_name=agent)
        return conv

    async def reply(self, conv_id: str, agent: str, text: str) -> LogEntry:
        """An agent's answer, recorded and delivered through the customer's channel."""
        conv = await self._get(conv_id)
        if conv.mode == "bot":
            raise WrongMode(f"conversation {conv_id} is with the bot; take it first")
        if conv.mode == "agent" and conv.agent and conv.agent != agent:
            raise WrongMode(f"conversation {conv_id} is with {conv.agent}")
        if conv.mode == "waiting":
            conv = await self.take(conv_id, agent)
        entry = await self.store.append(conv.id, "agent", text, agent_name=agent)
        await self._deliver(conv, OutboundMessage(text=text, role="agent", agent_name=agent))
        return entry

    async def hand_back(self, conv_id: str) -> Conversation:
        """Give the conversation back to the bot, which starts afresh."""
        conv = await self._get(conv_id)
        if conv.mode == "bot":
            return conv
        await self.store.dequeue(conv)
        holder = conv.agent
        conv.mode = "bot"
        conv.agent = None
        conv.handoff = None
        await self.store.save(conv)
        if holder:
            await self.store.release(holder, conv.id)
        await self.engine.reset(conv.id)
        await self.store.publish(conv.id, {"type": "mode", "mode": "bot"})
        await self._notify(conv, "utter_bot_back")
        return conv
