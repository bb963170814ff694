"""The agent desk: take a waiting conversation, answer through the customer's channel, hand back."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from bot import keys
from bot.conversations.channels import Channels
from bot.conversations.messages import OutboundMessage
from bot.conversations.model import SKILLS, Conversation, Handoff, LogEntry, Mode, Skill
from bot.conversations.ports import CustomerDirectory, Engine
from bot.conversations.store import ConversationStore
from bot.desk.csat import CsatPolicy
from bot.errors import AutoresponderError, EngineUnavailable
from bot.templates import TemplateRegistry

log = logging.getLogger(__name__)


class ConversationNotFound(AutoresponderError):
    """No conversation with that id."""


class WrongMode(AutoresponderError):
    """The conversation is not in a mode that allows the operation."""


@dataclass(frozen=True)
class Waiting:
    """A conversation in an agents' queue, with its handoff."""

    conversation: Conversation
    handoff: Handoff


class AgentDesk:
    """Operations agents perform on conversations, whatever the channel."""

    def __init__(
        self,
        store: ConversationStore,
        templates: TemplateRegistry,
        engine: Engine,
        channels: Channels,
        customers: CustomerDirectory,
        *,
        csat: CsatPolicy | None = None,
    ) -> None:
        self.store = store
        self.templates = templates
        self.engine = engine
        self.channels = channels
        self.customers = customers
        self.csat = csat or CsatPolicy()

    async def get(self, conv_id: str) -> Conversation:
        """The conversation, or ConversationNotFound."""
        conv = await self.store.get(conv_id)
        if conv is None:
            raise ConversationNotFound(f"no conversation {conv_id}")
        return conv

    async def waiting(self, skill: Skill | None = None) -> list[Waiting]:
        """Conversations waiting for an agent (of one skill, or all), most urgent first."""
        queued = [entry for s in ([skill] if skill else SKILLS) for entry in await self.store.queue(s)]
        convs = await self.store.get_many([cid for cid, _ in queued])
        waiting = [Waiting(convs[cid], handoff) for cid, handoff in queued if cid in convs]
        return sorted(waiting, key=lambda w: (-w.handoff.priority, w.handoff.queued_at))

    async def _notify(self, conv: Conversation, template: str, role: str = "system", **variables: Any) -> LogEntry:
        """Tell the customer something in their language, on their channel."""
        locale = conv.locale or "zh-CN"
        context = {"name": await self.customers.masked_name(conv.customer_id, locale), **variables}
        rendered = self.templates.render(template, conv.channel, locale, context)
        return await self.channels.deliver(
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
        await self.store.publish(conv.id, {"type": "mode", "mode": Mode.AGENT, "agent_name": agent})
        await self._notify(conv, "utter_agent_joined", agent_name=agent)
        return conv

    async def give(self, conv_id: str, to: str, by: str) -> tuple[Conversation, str | None]:
        """A supervisor gives a waiting or held conversation to `to` (themselves: a take-over; another
        agent: a reassignment). The previous holder lets go, a note records it, and the customer is told
        who joined. Returns the conversation and the previous holder."""
        conv, previous = await self.store.give_to_agent(conv_id, to)
        if conv is None:
            raise ConversationNotFound(f"no conversation {conv_id}")
        if previous == "bot":
            raise WrongMode(f"conversation {conv_id} is with the bot; nobody can take it over")
        if previous is not None and previous != to:
            await self.store.release(previous, conv.id)
        await self.store.dequeue(conv)
        await self.store.hold(to, conv.id)
        what = "Taken over" if to == by else f"Reassigned to {to}"
        await self.store.add_note(conv.id, by, f"{what} by {by}" + (f" from {previous}" if previous else ""))
        await self.store.publish(conv.id, {"type": "mode", "mode": Mode.AGENT, "agent_name": to})
        if previous != to:
            await self._notify(conv, "utter_agent_joined", agent_name=to)
        return conv, previous

    async def reply(self, conv_id: str, agent: str, text: str) -> LogEntry:
        """An agent's answer, recorded and delivered through the customer's channel."""
        conv = await self.get(conv_id)
        if conv.mode == Mode.BOT:
            raise WrongMode(f"conversation {conv_id} is with the bot; take it first")
        if conv.mode == Mode.AGENT and conv.agent and conv.agent != agent:
            raise WrongMode(f"conversation {conv_id} is with {conv.agent}")
        if conv.mode == Mode.WAITING:
            conv = await self.take(conv_id, agent)
        entry = await self.channels.deliver(conv, OutboundMessage(text=text, role="agent", agent_name=agent))
        if conv.handoff is not None and not conv.handoff.first_response_at:  # only the first answer is timed
            await self._first_response(conv.id, agent, entry.ts)
        return entry

    async def note(self, conv_id: str, agent: str, text: str) -> LogEntry:
        """An internal note for colleagues; never delivered or shown to the customer."""
        await self.get(conv_id)
        return await self.store.add_note(conv_id, agent, text)

    async def transfer(self, conv_id: str, agent: str, skill: Skill, reason: str) -> Conversation:
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

    async def hand_back(self, conv_id: str, by: str | None = None) -> Conversation:
        """Give the conversation back to the bot, which starts afresh; ask for a rating if an agent answered.

        With `by`, only a waiting conversation or one `by` holds (a supervisor passes None: any). The
        switch is one transaction; resetting the engine's dialogue state comes after it and, if the
        engine is down, is left to the router, which does it before the customer's next message.
        """
        current = await self.get(conv_id)
        if current.mode == Mode.BOT:
            return current
        if by is not None and current.mode == Mode.AGENT and current.agent and current.agent != by:
            raise WrongMode(f"conversation {conv_id} is with {current.agent}")
        # Who answered, for the survey: the holder, or (answered while waiting) the last agent to write.
        answered_by = current.agent or await self._answering_agent(current)

        def survey(before: Conversation) -> dict[str, Any] | None:
            handoff = before.handoff
            agent = before.agent or answered_by
            if not (self.csat.enabled and handoff is not None and handoff.first_response_at and agent):
                return None
            return {"asked_at": time.time(), "agent": agent, "reason": handoff.reason, "skill": handoff.skill}

        result = await self.store.hand_back(conv_id, survey, by=by)
        if result.held_by is not None:  # another agent took it after the check above
            raise WrongMode(f"conversation {conv_id} is with {result.held_by}")
        conv = result.after
        if conv is None:
            raise ConversationNotFound(f"no conversation {conv_id}")
        if result.before is conv:  # someone else handed it back first
            return conv
        try:
            await self.engine.reset(conv.id)
            await self.store.engine_reset_done(conv.id)
        except EngineUnavailable as exc:
            log.warning("conversation %s handed back; engine reset deferred to its next message: %s", conv.id, exc)
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
        if conv.handoff is None or not conv.handoff.first_response_at:
            return None
        for entry in reversed(await self.store.history(conv.id, count=2000)):
            if entry.role == "agent" and entry.agent_name:
                return entry.agent_name
        return None
