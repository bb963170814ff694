"""The desk's figures: the queue now, first responses against the SLA, satisfaction scores."""

from __future__ import annotations

import statistics
import time
from typing import Any

from bot import keys
from bot.conversations.model import SKILLS
from bot.conversations.store import ConversationStore
from bot.desk.csat import SCALE
from bot.desk.sla import SlaPolicy


def percentile(values: list[float], share: float) -> float | None:
    """The value below which `share` of the values lie (nearest rank), or None for none."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


class DeskStats:
    """Computes the figures from the queues and the capped fact streams."""

    def __init__(self, store: ConversationStore, policy: SlaPolicy) -> None:
        self.store = store
        self.policy = policy

    async def compute(self, hours: float, now: float | None = None) -> dict[str, Any]:
        """The figures over the last `hours` hours (the queue as it is now)."""
        store, policy = self.store, self.policy
        now = time.time() if now is None else now
        since = now - hours * 3600
        waiting: dict[str, int] = {}
        overdue = escalated = 0
        oldest = 0.0
        for skill in SKILLS:
            queued = await store.queue(skill)
            waiting[skill] = len(queued)
            for _, handoff in queued:
                state = policy.state(handoff, now)
                overdue += state["state"] in ("overdue", "escalated")
                escalated += bool(handoff.escalated_at)
                oldest = max(oldest, now - handoff.queued_at)
        firsts = await store.events_since(keys.stats_first_responses(), since)
        waits = [float(e.get("waited") or 0) for e in firsts]
        met = sum(1 for e in firsts if e.get("met") == "1")
        sla_events = await store.events_since(keys.stats_sla(), since)
        csat = await store.events_since(keys.stats_csat(), since)
        scores = [int(e["score"]) for e in csat if e.get("event") == "score" and e.get("score", "").isdigit()]
        asked = sum(1 for e in csat if e.get("event") == "asked")
        return {
            "window_hours": hours,
            "queue": {
                "waiting": sum(waiting.values()),
                "by_skill": waiting,
                "overdue": overdue,
                "escalated": escalated,
                "oldest_wait_seconds": round(oldest, 1),
            },
            "first_response": {
                "target_seconds": policy.first_response,
                "count": len(waits),
                "median_seconds": statistics.median(waits) if waits else None,
                "p90_seconds": percentile(waits, 0.9),
                "within_target": round(met / len(firsts), 3) if firsts else None,
                "breached": sum(1 for e in sla_events if e.get("event") == "breached"),
                "escalated": sum(1 for e in sla_events if e.get("event") == "escalated"),
            },
            "csat": {
                "surveys": asked,
                "responses": len(scores),
                "response_rate": round(len(scores) / asked, 3) if asked else None,
                "average": round(sum(scores) / len(scores), 2) if scores else None,
                "distribution": {str(n): scores.count(n) for n in SCALE},
                "low": sum(1 for e in csat if e.get("event") == "score" and e.get("low") == "1"),
            },
        }
