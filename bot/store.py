"""Conversations, transcripts and the handoff queue in Redis."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import WatchError

from bot import keys

MODES = ("bot", "waiting", "agent")
# Higher priority first, then longest wait: score = (MAX_PRIORITY - priority) * 1e10 + queued_at.
MAX_PRIORITY = 9
_PRIORITY_STRIDE = 1e10


@dataclass
class Handoff:
    """Why and where a conversation waits for an agent."""

    reason: str
    skill: str = "general"
    priority: int = 0
    summary: str = ""
    queued_at: float = field(default_factory=time.time)

    def public(self) -> dict[str, Any]:
        """The fields the REST contract exposes."""
        return {"reason": self.reason, "skill": self.skill, "priority": self.priority}


@dataclass
class Conversation:
    """A conversation's state as kept in its Redis hash."""

    id: str
    channel: str
    thread_id: str
    customer_id: str | None = None
    mode: str = "bot"
    locale: str | None = None
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    handoff: Handoff | None = None
    agent: str | None = None

    def to_hash(self) -> dict[str, str]:
        """Flatten for HSET; empty strings stand for None."""
        data = asdict(self)
        data["handoff"] = json.dumps(asdict(self.handoff)) if self.handoff else ""
        return {k: "" if v is None else str(v) for k, v in data.items()}

    @classmethod
    def from_hash(cls, raw: dict[str, str]) -> Conversation:
        """Rebuild from HGETALL output."""
        handoff = Handoff(**json.loads(raw["handoff"])) if raw.get("handoff") else None
        return cls(
            id=raw["id"],
            channel=raw["channel"],
            thread_id=raw["thread_id"],
            customer_id=raw.get("customer_id") or None,
            mode=raw.get("mode") or "bot",
            locale=raw.get("locale") or None,
            created_at=float(raw.get("created_at") or 0),
            updated_at=float(raw.get("updated_at") or 0),
            handoff=handoff,
            agent=raw.get("agent") or None,
        )


@dataclass(frozen=True)
class LogEntry:
    """One transcript line; `seq` is the Redis stream id."""

    seq: str
    role: str
    text: str
    ts: float
    buttons: list[dict[str, str]] = field(default_factory=list)
    client_id: str | None = None
    template: str | None = None
    template_version: int | None = None
    agent_name: str | None = None
    html: str | None = None
    text_format: str | None = None  # "html" when `text` is HTML (Telegram replies), else plain text

    def frame(self) -> dict[str, Any]:
        """The web chat / agent console frame for this entry."""
        frame: dict[str, Any] = {
            "type": "message",
            "seq": self.seq,
            "role": self.role,
            "text": self.text,
            "buttons": self.buttons,
            "ts": self.ts,
        }
        if self.client_id:
            frame["client_id"] = self.client_id
        if self.agent_name:
            frame["agent_name"] = self.agent_name
        return frame


class ConversationStore:
    """Reads and writes conversations; the one place that touches their Redis keys."""

    def __init__(self, redis: Redis) -> None:
        # Typed loosely on purpose: redis-py's stubs type every reply as `bytes | str` even with
        # decode_responses=True, which is how the app always connects.
        self.redis: Any = redis

    async def claim_idempotency_key(self, channel: str, key: str) -> bool:
        """True when this key is new (or its earlier processing died); False for a duplicate.

        The claim is short-lived until `complete_idempotency_key` makes it permanent, so a process
        killed mid-message does not turn the channel's retry into a silently dropped duplicate.
        """
        created = await self.redis.set(keys.seen(channel, key), "pending", nx=True, ex=keys.CLAIM_TTL_SECONDS)
        return bool(created)

    async def complete_idempotency_key(self, channel: str, key: str) -> None:
        """The message was fully processed: remember its key for the dedupe period."""
        await self.redis.set(keys.seen(channel, key), "done", ex=keys.SEEN_TTL_SECONDS)

    async def release_idempotency_key(self, channel: str, key: str) -> None:
        """Forget a key whose processing failed, so that a retry is processed."""
        await self.redis.delete(keys.seen(channel, key))

    async def get(self, conv_id: str) -> Conversation | None:
        """Load a conversation, or None."""
        raw = await self.redis.hgetall(keys.conversation(conv_id))
        return Conversation.from_hash(raw) if raw else None

    async def find(self, channel: str, thread_id: str) -> Conversation | None:
        """The open conversation of a channel thread, or None (never opens one)."""
        existing = await self.redis.get(keys.thread(channel, thread_id))
        return await self.get(existing) if existing else None

    async def find_or_open(self, channel: str, thread_id: str, customer_id: str | None) -> tuple[Conversation, bool]:
        """The open conversation of a channel thread, or a new one; second item: newly opened."""
        thread_key = keys.thread(channel, thread_id)
        existing = await self.redis.get(thread_key)
        if existing:
            conv = await self.get(existing)
            if conv is not None:
                return conv, False
        conv = Conversation(id=uuid.uuid4().hex, channel=channel, thread_id=thread_id, customer_id=customer_id)
        # SET NX so that two replicas racing on a first message agree on one conversation.
        if not await self.redis.set(thread_key, conv.id, nx=True, ex=keys.CONVERSATION_TTL_SECONDS):
            winner = await self.redis.get(thread_key)
            conv_won = await self.get(winner) if winner else None
            if conv_won is not None:
                return conv_won, False
            await self.redis.set(thread_key, conv.id, ex=keys.CONVERSATION_TTL_SECONDS)
        await self.save(conv)
        return conv, True

    async def save(self, conv: Conversation) -> None:
        """Write the whole conversation hash and refresh TTLs."""
        await self.update(conv, *conv.to_hash())

    async def update(self, conv: Conversation, *fields: str) -> None:
        """Write only the named fields (and the activity time), leaving the rest as others wrote it.

        The router uses it for what a customer message changes (customer, locale), so that it never
        writes back a mode or an agent read before an agent took the conversation.
        """
        conv.updated_at = time.time()
        data = conv.to_hash()
        pipe = self.redis.pipeline()
        pipe.hset(keys.conversation(conv.id), mapping={f: data[f] for f in {*fields, "updated_at"}})
        pipe.expire(keys.conversation(conv.id), keys.CONVERSATION_TTL_SECONDS)
        pipe.expire(keys.thread(conv.channel, conv.thread_id), keys.CONVERSATION_TTL_SECONDS)
        await pipe.execute()

    async def claim_for_agent(self, conv_id: str, agent: str) -> tuple[Conversation | None, str | None]:
        """Atomically give the conversation to `agent` unless another agent holds it.

        Returns (conversation, None) when it is now the agent's, (conversation, holder) when another
        agent holds it, (None, None) when there is no such conversation. WATCH/MULTI makes two agents
        clicking Take at the same moment end with exactly one holder.
        """
        key = keys.conversation(conv_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(key)
                    raw = await pipe.hgetall(key)
                    if not raw:
                        await pipe.unwatch()
                        return None, None
                    conv = Conversation.from_hash(raw)
                    if conv.mode == "agent" and conv.agent and conv.agent != agent:
                        await pipe.unwatch()
                        return conv, conv.agent
                    conv.mode, conv.agent, conv.updated_at = "agent", agent, time.time()
                    pipe.multi()
                    pipe.hset(key, mapping={"mode": "agent", "agent": agent, "updated_at": str(conv.updated_at)})
                    await pipe.execute()
                    return conv, None
                except WatchError:
                    continue

    async def append(
        self,
        conv_id: str,
        role: str,
        text: str,
        *,
        buttons: list[dict[str, str]] | None = None,
        client_id: str | None = None,
        template: str | None = None,
        template_version: int | None = None,
        agent_name: str | None = None,
        html: str | None = None,
        text_format: str | None = None,
    ) -> LogEntry:
        """Append a transcript line and publish it to the conversation's watchers."""
        ts = time.time()
        fields: dict[str, str] = {"role": role, "text": text, "ts": repr(ts)}
        if buttons:
            fields["buttons"] = json.dumps(buttons, ensure_ascii=False)
        if client_id:
            fields["client_id"] = client_id
        if template:
            fields["template"] = template
        if template_version is not None:
            fields["template_version"] = str(template_version)
        if agent_name:
            fields["agent_name"] = agent_name
        if html:
            fields["html"] = html
        if text_format:
            fields["text_format"] = text_format
        seq = await self.redis.xadd(keys.transcript(conv_id), fields)
        await self.redis.expire(keys.transcript(conv_id), keys.CONVERSATION_TTL_SECONDS)
        entry = LogEntry(
            seq=seq,
            role=role,
            text=text,
            ts=ts,
            buttons=buttons or [],
            client_id=client_id,
            template=template,
            template_version=template_version,
            agent_name=agent_name,
            html=html,
            text_format=text_format,
        )
        await self.publish(conv_id, entry.frame())
        return entry

    async def publish(self, conv_id: str, frame: dict[str, Any]) -> None:
        """Fan a frame out to every process watching the conversation."""
        await self.redis.publish(keys.events(conv_id), json.dumps(frame, ensure_ascii=False))

    async def history(self, conv_id: str, after: str | None = None, count: int = 500) -> list[LogEntry]:
        """Transcript entries, all or only those after the given seq (exclusive)."""
        start = f"({after}" if after else "-"
        rows = await self.redis.xrange(keys.transcript(conv_id), min=start, max="+", count=count)
        return [_entry(seq, data) for seq, data in rows]

    async def start_handoff(self, conv: Conversation, handoff: Handoff) -> None:
        """Switch to waiting and queue the conversation for the skill's agents."""
        conv.mode = "waiting"
        conv.handoff = handoff
        priority = max(0, min(MAX_PRIORITY, handoff.priority))
        score = (MAX_PRIORITY - priority) * _PRIORITY_STRIDE + handoff.queued_at
        pipe = self.redis.pipeline()
        pipe.hset(keys.handoff_entry(conv.id), mapping={k: str(v) for k, v in asdict(handoff).items()})
        pipe.zadd(keys.handoff_queue(handoff.skill), {conv.id: score})
        await pipe.execute()
        await self.save(conv)
        await self.publish(conv.id, {"type": "mode", "mode": conv.mode})

    async def dequeue(self, conv: Conversation) -> None:
        """Take a conversation out of its skill's queue (an agent took it, or it went back to the bot)."""
        if conv.handoff is not None:
            await self.redis.zrem(keys.handoff_queue(conv.handoff.skill), conv.id)

    async def hold(self, agent: str, conv_id: str) -> None:
        """Record that an agent holds a conversation (for the agent's "mine" list)."""
        pipe = self.redis.pipeline()
        pipe.sadd(keys.agent_conversations(agent), conv_id)
        pipe.expire(keys.agent_conversations(agent), keys.CONVERSATION_TTL_SECONDS)
        await pipe.execute()

    async def release(self, agent: str, conv_id: str) -> None:
        """The agent no longer holds the conversation."""
        await self.redis.srem(keys.agent_conversations(agent), conv_id)

    async def held_by(self, agent: str) -> list[Conversation]:
        """The conversations an agent holds, most recently active first.

        Only conversations still with that agent count; ids of conversations that expired are dropped.
        """
        key = keys.agent_conversations(agent)
        held: list[Conversation] = []
        gone: list[str] = []
        for conv_id in sorted(await self.redis.smembers(key)):
            conv = await self.get(conv_id)
            if conv is None:
                gone.append(conv_id)
            elif conv.mode == "agent" and conv.agent == agent:
                held.append(conv)
        if gone:
            await self.redis.srem(key, *gone)
        return sorted(held, key=lambda c: c.updated_at, reverse=True)

    async def queue(self, skill: str) -> list[tuple[str, Handoff]]:
        """Waiting conversations of a skill, most urgent first."""
        ids = await self.redis.zrange(keys.handoff_queue(skill), 0, -1)
        result = []
        for conv_id in ids:
            raw = await self.redis.hgetall(keys.handoff_entry(conv_id))
            if raw:
                result.append(
                    (
                        conv_id,
                        Handoff(
                            reason=raw["reason"],
                            skill=raw["skill"],
                            priority=int(raw["priority"]),
                            summary=raw.get("summary", ""),
                            queued_at=float(raw["queued_at"]),
                        ),
                    )
                )
        return result


def _entry(seq: str, data: dict[str, str]) -> LogEntry:
    return LogEntry(
        seq=seq,
        role=data.get("role", "system"),
        text=data.get("text", ""),
        ts=float(data.get("ts", "0")),
        buttons=json.loads(data["buttons"]) if data.get("buttons") else [],
        client_id=data.get("client_id"),
        template=data.get("template"),
        template_version=int(data["template_version"]) if data.get("template_version") else None,
        agent_name=data.get("agent_name"),
        html=data.get("html"),
        text_format=data.get("text_format"),
    )
