"""Automatic assignment ("规则化自动派单"): waiting conversations go to available agents by skill and load.

An agent who switches on "take conversations" in the console is available with their skills and a
capacity (how many conversations they hold at once); the console repeats it as a heartbeat, so an
agent who closes the page is unavailable within `keys.PRESENCE_TTL_SECONDS`. Every few seconds, and
whenever asked to look now, the assigner gives each available agent with room the most urgent
waiting conversations of their skills (priority, then time waited), least loaded agent first and,
between equals, the one who got a conversation longest ago: round robin. Assigning is the agent
desk's own take (the customer is told who joined), so it is as atomic as a click on Take: two
replicas, or an agent clicking at the same moment, never give one conversation to two agents, and a
per-agent lock keeps two replicas from filling one agent beyond capacity. Agents who are not
available keep taking conversations by hand, as before.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from bot import keys
from bot.conversations.model import SKILLS, Handoff
from bot.conversations.periodic import Periodic
from bot.conversations.store import ConversationStore
from bot.desk.agents import AgentDesk, ConversationNotFound, WrongMode

log = logging.getLogger(__name__)

_LOCK_SECONDS = 10


@dataclass(frozen=True)
class Presence:
    """An agent taking conversations automatically."""

    agent: str
    skills: tuple[str, ...]
    capacity: int
    seen_at: float
    last_assigned_at: float = 0.0


class Presences:
    """Who is available, kept in Redis with a heartbeat."""

    def __init__(self, redis: Any) -> None:
        self.redis = redis

    async def set(self, agent: str, *, available: bool, skills: tuple[str, ...], capacity: int) -> Presence | None:
        """Announce (or renew) an agent's availability, or withdraw it."""
        if not available:
            pipe = self.redis.pipeline(transaction=True)
            pipe.zrem(keys.agents_available(), agent)
            pipe.delete(keys.agent_presence(agent))
            await pipe.execute()
            return None
        now = time.time()
        key = keys.agent_presence(agent)
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(key, mapping={"skills": json.dumps(list(skills)), "capacity": str(capacity), "seen_at": str(now)})
        pipe.expire(key, keys.PRESENCE_TTL_SECONDS)
        pipe.zadd(keys.agents_available(), {agent: now})
        pipe.hget(key, "last_assigned_at")
        *_, last = await pipe.execute()
        return Presence(agent, skills, capacity, now, float(last or 0))

    async def available(self, now: float) -> list[Presence]:
        """Agents whose heartbeat is recent; the others are dropped."""
        await self.redis.zremrangebyscore(keys.agents_available(), "-inf", now - keys.PRESENCE_TTL_SECONDS)
        agents = await self.redis.zrange(keys.agents_available(), 0, -1)
        out = []
        for agent in agents:
            raw = await self.redis.hgetall(keys.agent_presence(agent))
            if raw:
                out.append(
                    Presence(
                        agent=agent,
                        skills=tuple(json.loads(raw.get("skills") or "[]")),
                        capacity=int(raw.get("capacity") or 0),
                        seen_at=float(raw.get("seen_at") or 0),
                        last_assigned_at=float(raw.get("last_assigned_at") or 0),
                    )
                )
        return out

    async def assigned(self, agent: str, at: float) -> None:
        """Remember when the agent last got a conversation (round robin between equally loaded agents)."""
        await self.redis.hset(keys.agent_presence(agent), "last_assigned_at", str(at))


class Assigner(Periodic):
    """Gives waiting conversations to available agents; one per app replica, all safe together."""

    def __init__(self, store: ConversationStore, desk: AgentDesk, interval: float = 3.0) -> None:
        super().__init__(interval)
        self.store = store
        self.desk = desk
        self.presences = Presences(store.redis)

    async def round(self, now: float) -> list[tuple[str, str]]:
        """One round of assignment: `assign`."""
        return await self.assign(now)

    async def assign(self, now: float) -> list[tuple[str, str]]:
        """One round; returns the (conversation id, agent) pairs assigned."""
        agents = await self.presences.available(now)
        if not agents:
            return []
        loads = {p.agent: len(await self.store.held_by(p.agent)) for p in agents}
        waiting = await self._waiting()  # read once a round; what agents take is removed as they go
        done: list[tuple[str, str]] = []
        while True:
            # Least loaded first; between equals, the one who waited longest for a conversation.
            ready = sorted(
                (p for p in agents if loads[p.agent] < p.capacity), key=lambda p: (loads[p.agent], p.last_assigned_at)
            )
            progressed = False
            for presence in ready:
                conv_id = await self._give_one(presence, waiting)
                if conv_id is not None:
                    loads[presence.agent] += 1
                    done.append((conv_id, presence.agent))
                    agents = [
                        Presence(p.agent, p.skills, p.capacity, p.seen_at, now) if p.agent == presence.agent else p
                        for p in agents
                    ]
                    progressed = True
                    break  # re-sort: this agent's load changed
            if not progressed:
                return done

    async def _give_one(self, presence: Presence, waiting: list[tuple[str, Handoff]]) -> str | None:
        lock = keys.assign_lock(presence.agent)
        if not await self.store.redis.set(lock, "1", nx=True, ex=_LOCK_SECONDS):
            return None  # another replica is filling this agent right now
        try:
            # Re-count under the lock: another replica may have just given this agent one.
            if len(await self.store.held_by(presence.agent)) >= presence.capacity:
                return None
            skills = presence.skills or SKILLS
            for entry in [e for e in waiting if e[1].skill in skills]:
                conv_id = entry[0]
                waiting.remove(entry)  # taken now, or by someone else already: not a candidate again
                try:
                    await self.desk.take(conv_id, presence.agent, only_waiting=True)
                except (WrongMode, ConversationNotFound):
                    continue  # someone else was quicker
                now = time.time()
                await self.presences.assigned(presence.agent, now)
                await self.store.add_note(conv_id, presence.agent, f"Assigned to {presence.agent} automatically")
                log.info("conversation %s assigned to %s", conv_id, presence.agent)
                return conv_id
            return None
        finally:
            await self.store.redis.delete(lock)

    async def _waiting(self) -> list[tuple[str, Handoff]]:
        """Every waiting conversation, most urgent first across the skills."""
        queued = [entry for skill in SKILLS for entry in await self.store.queue(skill)]
        return sorted(queued, key=lambda entry: entry[1].queue_score())
