"""The agent desk: take a waiting conversation, answer through the customer's channel, hand back."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from bot import keys
from bot.csat import CsatPolicy
from bot.errors import AutoresponderError
from bot.store import Conversation, ConversationStore, Handoff, LogEntry
from bot.templates import TemplateRegistry
from connectors.base import Connector, OutboundMessage

if TYPE_CHECKING:
    from bot.crm import CRM
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
        *,
        crm: CRM | None = None,
        csat: CsatPolicy | None = None,
    ) -> None:
        self.store = store
        self.templates = templates
        self.engine = engine
        self.connectors = connectors
        self.crm = crm
        self.csat = csat or CsatPolicy()

    async def _get(self, conv_id: str) -> Conversation:
        conv = await self.store.get(conv_id)
        if conv is None:
            raise ConversationNotFound(f"no conversation {conv_id}")
        return conv

    async def _notify(self, conv: Conversation, template: str, role: str = "system", **variables: str) -> LogEntry:
        """Tell the customer something in their language, on their channel."""
        locale = conv.locale or "zh-CN"
        context = {"name": await self._masked_name(conv, locale), **variables}
        rendered = self.templates.render(template, conv.channel, locale, context)
        entry = await self.store.append_rendered(conv.id, role, rendered)
        await self._deliver(
            conv,
            OutboundMessage(
                text=rendered.text,
                role=role,
                buttons=tuple(rendered.buttons),
                html=rendered.html,
                template=rendered.name,
                template_version=rendered.version,
                text_format=rendered.text_format,
            ),
        )
        return entry

    async def _masked_name(self, conv: Conversation, locale: str) -> str:
        """The customer's surname and title (the seeds' privacy rule), or "" for a guest."""
        if self.crm is None or not conv.customer_id:
            return ""
        customer = await asyncio.to_thread(self.crm.get_customer, conv.customer_id)
        return customer.masked_name(locale) if customer is not None else ""

    async def _deliver(self, conv: Conversation, message: OutboundMessage) -> None:
        connector = self.connectors.get(conv.channel)
        if connector is not None:
            await connector.deliver(conv, message)

    async def take(self, conv_id: str, agent: str, *, only_waiting: bool = False) -> Conversation:
        """An agent takes a conversation: it leaves the queue and the customer is told.

        `only_waiting`: refuse unless it is waiting for an agent right now (automatic assignment).
        """
        conv, holder = await self.store.claim_for_agent(conv_id, agent, only_waiting=only_waiting)
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
        if conv.handoff is not None and not conv.handoff.first_response_at:  # only the first answer is timed
            await self._first_response(conv.id, agent, entry.ts)
        return entry

    async def note(self, conv_id: str, agent: str, text: str) -> LogEntry:
        """An internal note for colleagues; never delivered or shown to the customer."""
        await self._get(conv_id)
        return await self.store.add_note(conv_id, agent, text)

    async def transfer(self, conv_id: str, agent: str, skill: str, reason: str) -> Conversation:
        """Send a conversation to another skill's queue ("转派"), with the reason as an internal note.

        The customer keeps their place (priority and time waited) and is told another colleague will
        take over; the agent who held it no longer does.
        """
        conv, refused = await self.store.requeue(conv_id, skill, agent)
        if conv is None:
            raise ConversationNotFound(f"no conversation {conv_id}")
        if refused is not None:
            raise WrongMode(f"cannot transfer conversation {conv_id}: {refused}")
        await self.store.release(agent, conv_id)
        note = f"Transferred to {skill} by {agent}" + (f": {reason}" if reason else "")
        await self.store.add_note(conv_id, agent, note)
        await self._notify(conv, "utter_transfer")
        return conv

    async def _first_response(self, conv_id: str, agent: str, at: float) -> None:
        """Stop the handoff's SLA timer at the first agent answer and record how long the customer waited."""

        def answered(h: Handoff) -> bool:
            if h.first_response_at:
                return False
            h.first_response_at = at
            return True

        conv = await self.store.change_handoff(conv_id, answered)
        if conv is None or conv.handoff is None:
            return
        h = conv.handoff
        await self.store.sla_timer(conv_id, None)
        await self.store.record_event(
            keys.stats_first_responses(),
            {
                "conversation_id": conv_id,
                "agent": agent,
                "channel": conv.channel,
                "skill": h.skill,
                "reason": h.reason,
                "waited": round(at - h.queued_at, 1),
                "met": int(not h.due_at or at <= h.due_at),
            },
        )

    async def hand_back(self, conv_id: str) -> Conversation:
        """Give the conversation back to the bot, which starts afresh; ask for a rating if an agent answered."""
        conv = await self._get(conv_id)
        if conv.mode == "bot":
            return conv
        await self.store.dequeue(conv)
        holder = conv.agent
        handoff = conv.handoff
        answered_by = (holder or await self._answering_agent(conv)) if handoff and handoff.first_response_at else None
        conv.mode = "bot"
        conv.agent = None
        conv.handoff = None
        conv.survey = None
        if self.csat.enabled and answered_by:
            assert handoff is not None
            conv.survey = {
                "asked_at": time.time(),
                "agent": answered_by,
                "reason": handoff.reason,
                "skill": handoff.skill,
            }
        await self.store.save(conv)
        await self.store.sla_timer(conv.id, None)
        if holder:
            await self.store.release(holder, conv.id)
        await self.engine.reset(conv.id)
        await self.store.publish(conv.id, {"type": "mode", "mode": "bot"})
        if conv.survey:
            await self._notify(conv, "utter_bot_back_csat", role="bot", agent_name=str(conv.survey["agent"]))
            await self.store.record_event(
                keys.stats_csat(),
                {"event": "asked", "conversation_id": conv.id, "agent": conv.survey["agent"], "channel": conv.channel},
            )
        else:
            await self._notify(conv, "utter_bot_back")
        return conv

    async def _answering_agent(self, conv: Conversation) -> str | None:
        """The agent who last answered in a conversation nobody holds (it was answered while waiting)."""
        for entry in reversed(await self.store.history(conv.id, count=2000)):
            if entry.role == "agent" and entry.agent_name:
                return entry.agent_name
        return None
