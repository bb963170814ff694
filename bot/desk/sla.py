"""Service levels of handoffs: a first-response target, a missed target flagged, escalation after.

When a conversation is handed to agents its first answer falls due `first_response` seconds later
(30 minutes by default, the seeds' "初步响应需30分钟内完成"), counted in business hours. A watcher
in the app looks at every handoff whose timer has run out: the first time, the target is marked
missed (the console shows it in red, the statistics count it); `escalate_after` seconds of business
time after that, the handoff goes to the top priority so that it heads its queue and supervisors see
it flagged. An agent's first answer stops the timer and records the wait. The timers live in one
Redis sorted set, so the watcher's cost depends on the handoffs that are due, not on how many
conversations there are, and any number of app replicas can run it: every change is a WATCH/MULTI
on the conversation, applied once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from bot import keys, metrics
from bot.conversations.model import MAX_PRIORITY, Conversation, Handoff
from bot.conversations.periodic import Periodic
from bot.conversations.ports import HandoffListener
from bot.conversations.store import ConversationStore
from bot.hours import BusinessHours

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SlaPolicy:
    """The targets, in seconds of business time."""

    first_response: float = 30 * 60
    escalate_after: float = 60 * 60
    hours: BusinessHours = field(default_factory=BusinessHours)

    def due_at(self, handoff: Handoff) -> float:
        """When an agent's first answer to a handoff is due: the one place this is computed."""
        return handoff.due_at or self.hours.add(handoff.queued_at, self.first_response)

    def escalate_at(self, handoff: Handoff) -> float:
        """When a handoff that missed its target is escalated."""
        return self.hours.add(handoff.breached_at, self.escalate_after)

    def state(self, handoff: Handoff, now: float) -> dict[str, Any]:
        """Where a handoff stands, for the console: state, due time and seconds left (negative: late)."""
        due = self.due_at(handoff)
        if handoff.first_response_at:
            state = "met" if handoff.first_response_at <= due else "missed"
        elif handoff.escalated_at:
            state = "escalated"
        elif now >= due:
            state = "overdue"
        elif due - now <= self.first_response / 5:
            state = "due_soon"
        else:
            state = "ok"
        return {
            "state": state,
            "due_at": due,
            "seconds_left": round(due - now, 1),
            "breached": bool(handoff.breached_at) or state in ("overdue", "missed", "escalated"),
            "escalated": bool(handoff.escalated_at),
        }


class SlaClock(HandoffListener):
    """Starts a handoff's first-response timer (a router handoff listener): sets its due time."""

    def __init__(self, policy: SlaPolicy) -> None:
        self.policy = policy

    def preparing(self, conversation: Conversation, handoff: Handoff) -> None:
        """Set the due time; the store starts the timer with the handoff, in the same transaction."""
        handoff.due_at = self.policy.due_at(handoff)


class SlaWatcher(Periodic):
    """Checks the handoffs whose timers ran out; one per app replica, all safe together."""

    def __init__(self, store: ConversationStore, policy: SlaPolicy, interval: float = 15.0) -> None:
        super().__init__(interval)
        self.store = store
        self.policy = policy

    async def round(self, now: float) -> list[tuple[str, str]]:
        """One round of the watcher: `check`."""
        return await self.check(now)

    async def check(self, now: float) -> list[tuple[str, str]]:
        """Handle every timer that has run out; returns (conversation id, what happened)."""
        happened: list[tuple[str, str]] = []
        for conv_id in await self.store.sla_timers_due(now):
            outcome = await self._check_one(conv_id, now)
            happened.append((conv_id, outcome))
        return happened

    async def _check_one(self, conv_id: str, now: float) -> str:
        def breach(h: Handoff) -> bool:
            if h.first_response_at or h.breached_at:
                return False
            h.breached_at = now
            return True

        def escalate(h: Handoff) -> bool:
            if h.first_response_at or h.escalated_at:
                return False
            h.escalated_at = now
            h.priority = MAX_PRIORITY
            return True

        conv = await self.store.get(conv_id)
        handoff = conv.handoff if conv is not None and conv.mode != "bot" else None
        if conv is None or handoff is None or handoff.first_response_at or handoff.escalated_at:
            await self.store.sla_timer(conv_id, None)  # answered, handed back or gone: nothing to watch
            return "stopped"
        if not handoff.breached_at:
            changed = await self.store.change_handoff(conv_id, breach)
            if changed is None or changed.handoff is None:
                return "unchanged"
            await self.store.sla_timer(conv_id, self.policy.escalate_at(changed.handoff))
            await self._record("breached", changed.id, changed.channel, changed.handoff, now)
            metrics.SLA_BREACHES.labels("breached").inc()
            log.warning(
                "conversation %s: first-response target missed (%s, waiting %.0f min)",
                conv_id,
                changed.handoff.skill,
                (now - changed.handoff.queued_at) / 60,
            )
            return "breached"
        if now < self.policy.escalate_at(handoff):  # a replica with another setting was early
            await self.store.sla_timer(conv_id, self.policy.escalate_at(handoff))
            return "unchanged"
        changed = await self.store.change_handoff(conv_id, escalate)
        await self.store.sla_timer(conv_id, None)
        if changed is None or changed.handoff is None:
            return "unchanged"
        await self._record("escalated", changed.id, changed.channel, changed.handoff, now)
        metrics.SLA_BREACHES.labels("escalated").inc()
        log.warning("conversation %s: escalated to top priority after the missed first-response target", conv_id)
        return "escalated"

    async def _record(self, event: str, conv_id: str, channel: str, handoff: Handoff, now: float) -> None:
        await self.store.record_event(
            keys.stats_sla(),
            {
                "event": event,
                "conversation_id": conv_id,
                "channel": channel,
                "skill": handoff.skill,
                "reason": handoff.reason,
                "waited": round(now - handoff.queued_at, 1),
            },
        )
