"""Conversations, transcripts and the handoff queue in Redis."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from redis.asyncio import Redis
from redis.exceptions import WatchError

from bot import keys
from bot.hours import BusinessHours

if TYPE_CHECKING:
    from bot.templates import Rendered

MODES = ("bot", "waiting", "agent")
Skill = Literal["logistics", "after_sales", "billing", "complaints", "general"]
SKILLS: tuple[Skill, ...] = ("logistics", "after_sales", "billing", "complaints", "general")
R = TypeVar("R")
Writes = Callable[[Any], object]  # commands queued on a MULTI pipeline
# Higher priority first, then longest wait: score = (MAX_PRIORITY - priority) * 1e10 + queued_at.
MAX_PRIORITY = 9
_PRIORITY_STRIDE = 1e10


@dataclass
class Handoff:
    """Why and where a conversation waits for an agent, and how its service level is going.

    `due_at` is when an agent's first answer is due (set when the handoff starts); `breached_at` when
    the SLA watcher found it missed, `escalated_at` when it raised the priority for supervisors;
    `first_response_at` when an agent first answered.
    """

    reason: str
    skill: str = "general"
    priority: int = 0
    summary: str = ""
    queued_at: float = field(default_factory=time.time)
    due_at: float = 0.0
    first_response_at: float = 0.0
    breached_at: float = 0.0
    escalated_at: float = 0.0

    def public(self) -> dict[str, Any]:
        """The fields the REST contract exposes."""
        return {"reason": self.reason, "skill": self.skill, "priority": self.priority}

    @classmethod
    def from_fields(cls, raw: dict[str, Any]) -> Handoff:
        """Rebuild from a JSON object or a Redis hash (strings); fields written by older versions may be missing."""

        def number(name: str) -> float:
            return float(raw.get(name) or 0)

        return cls(
            reason=str(raw.get("reason") or "requested"),
            skill=str(raw.get("skill") or "general"),
            priority=int(raw.get("priority") or 0),
            summary=str(raw.get("summary") or ""),
            queued_at=number("queued_at"),
            due_at=number("due_at"),
            first_response_at=number("first_response_at"),
            breached_at=number("breached_at"),
            escalated_at=number("escalated_at"),
        )

    def queue_score(self) -> float:
        """Sorted-set score: higher priority first, then longest wait."""
        priority = max(0, min(MAX_PRIORITY, self.priority))
        return (MAX_PRIORITY - priority) * _PRIORITY_STRIDE + self.queued_at


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
    # A satisfaction survey sent when an agent handed back: {asked_at, agent, reason, skill}.
    survey: dict[str, Any] | None = None

    def to_hash(self) -> dict[str, str]:
        """Flatten for HSET; empty strings stand for None."""
        data = asdict(self)
        data["handoff"] = json.dumps(asdict(self.handoff)) if self.handoff else ""
        data["survey"] = json.dumps(self.survey, ensure_ascii=False) if self.survey else ""
        return {k: "" if v is None else str(v) for k, v in data.items()}

    @classmethod
    def from_hash(cls, raw: dict[str, str]) -> Conversation:
        """Rebuild from HGETALL output."""
        handoff = Handoff.from_fields(json.loads(raw["handoff"])) if raw.get("handoff") else None
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
            survey=json.loads(raw["survey"]) if raw.get("survey") else None,
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

    def __init__(
        self, redis: Redis, *, first_response_seconds: float = 30 * 60, hours: BusinessHours | None = None
    ) -> None:
        # Typed loosely on purpose: redis-py's stubs type every reply as `bytes | str` even with
        # decode_responses=True, which is how the app always connects.
        self.redis: Any = redis
        # The service level for handoffs: an agent's first answer is due this long after queueing,
        # counted in business hours.
        self.first_response_seconds = first_response_seconds
        self.hours = hours or BusinessHours()

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

    async def claim_for_agent(
        self, conv_id: str, agent: str, *, only_waiting: bool = False
    ) -> tuple[Conversation | None, str | None]:
        """Atomically give the conversation to `agent` unless another agent holds it.

        Returns (conversation, None) when it is now the agent's, (conversation, holder) when another
        agent holds it (holder "bot" when `only_waiting` and it is no longer waiting), (None, None)
        when there is no such conversation. WATCH/MULTI makes two agents clicking Take at the same
        moment end with exactly one holder.
        """

        def claim(conv: Conversation | None) -> tuple[Writes | None, tuple[Conversation | None, str | None]]:
            if conv is None:
                return None, (None, None)
            if conv.mode == "agent" and conv.agent and conv.agent != agent:
                return None, (conv, conv.agent)
            if only_waiting and conv.mode != "waiting":
                return None, (conv, conv.agent or conv.mode)
            conv.mode, conv.agent, conv.updated_at = "agent", agent, time.time()
            fields = {"mode": "agent", "agent": agent, "updated_at": str(conv.updated_at)}
            return (lambda pipe: pipe.hset(keys.conversation(conv_id), mapping=fields)), (conv, None)

        return await self._transaction(conv_id, claim)

    async def _transaction(self, conv_id: str, step: Callable[[Conversation | None], tuple[Writes | None, R]]) -> R:
        """Read a conversation under WATCH, let `step` decide, and apply its writes in MULTI/EXEC.

        `step` returns the writes (None: nothing to write) and the result; it runs again whenever
        someone else changed the conversation in between, so it always decides on what is there now.
        """
        key = keys.conversation(conv_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(key)
                    raw = await pipe.hgetall(key)
                    writes, result = step(Conversation.from_hash(raw) if raw else None)
                    if writes is None:
                        await pipe.unwatch()
                        return result
                    pipe.multi()
                    writes(pipe)
                    await pipe.execute()
                    return result
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

    async def add_note(self, conv_id: str, agent: str, text: str) -> LogEntry:
        """An internal note (role "note"), in the notes stream that no customer channel reads."""
        ts = time.time()
        fields = {"role": "note", "text": text, "ts": repr(ts), "agent_name": agent}
        seq = await self.redis.xadd(keys.notes(conv_id), fields)
        await self.redis.expire(keys.notes(conv_id), keys.CONVERSATION_TTL_SECONDS)
        return LogEntry(seq=seq, role="note", text=text, ts=ts, agent_name=agent)

    async def notes(self, conv_id: str, count: int = 2000) -> list[LogEntry]:
        """A conversation's internal notes, oldest first."""
        rows = await self.redis.xrange(keys.notes(conv_id), count=count)
        return [_entry(seq, data) for seq, data in rows]

    async def requeue(self, conv_id: str, skill: str, by: str) -> tuple[Conversation | None, str | None]:
        """Put a conversation back in the queue, of another skill, keeping its place by priority and wait.

        Its handoff (reason, priority, queued time, SLA state) stays as it was: a transfer does not
        send the customer to the back of the line or restart their clock. Allowed for a waiting
        conversation, or one that `by` holds. Returns (conversation as written, None), or
        (conversation or None, why not).
        """

        def step(conv: Conversation | None) -> tuple[Writes | None, tuple[Conversation | None, str | None]]:
            if conv is None:
                return None, (None, "no such conversation")
            if conv.mode == "bot" or conv.handoff is None:
                return None, (conv, "the conversation is with the bot")
            if conv.mode == "agent" and conv.agent and conv.agent != by:
                return None, (conv, f"the conversation is with {conv.agent}")
            handoff, old_skill = conv.handoff, conv.handoff.skill
            handoff.skill = skill
            conv.mode, conv.agent, conv.updated_at = "waiting", None, time.time()
            fields = {k: v for k, v in conv.to_hash().items() if k in ("mode", "agent", "handoff", "updated_at")}

            def writes(pipe: Any) -> None:
                pipe.zrem(keys.handoff_queue(old_skill), conv_id)
                pipe.hset(keys.conversation(conv_id), mapping=fields)
                pipe.hset(keys.handoff_entry(conv_id), mapping=_handoff_hash(handoff))
                pipe.zadd(keys.handoff_queue(skill), {conv_id: handoff.queue_score()})

            return writes, (conv, None)

        conv, refused = await self._transaction(conv_id, step)
        if conv is not None and refused is None:
            await self.publish(conv_id, {"type": "mode", "mode": conv.mode})
        return conv, refused

    async def append_rendered(self, conv_id: str, role: str, rendered: Rendered) -> LogEntry:
        """Append a rendered template (text, buttons, HTML twin, format, name and version)."""
        return await self.append(
            conv_id,
            role,
            rendered.text,
            buttons=rendered.buttons,
            template=rendered.name,
            template_version=rendered.version,
            html=rendered.html,
            text_format=rendered.text_format,
        )

    async def publish(self, conv_id: str, frame: dict[str, Any]) -> None:
        """Fan a frame out to every process watching the conversation."""
        await self.redis.publish(keys.events(conv_id), json.dumps(frame, ensure_ascii=False))

    async def history(self, conv_id: str, after: str | None = None, count: int = 500) -> list[LogEntry]:
        """Transcript entries, all or only those after the given seq (exclusive)."""
        start = f"({after}" if after else "-"
        rows = await self.redis.xrange(keys.transcript(conv_id), min=start, max="+", count=count)
        return [_entry(seq, data) for seq, data in rows]

    async def start_handoff(self, conv: Conversation, handoff: Handoff) -> None:
        """Switch to waiting, queue the conversation for the skill's agents and start its SLA timer."""
        conv.mode = "waiting"
        if not handoff.due_at:
            handoff.due_at = self.hours.add(handoff.queued_at, self.first_response_seconds)
        conv.handoff = handoff
        pipe = self.redis.pipeline()
        pipe.hset(keys.handoff_entry(conv.id), mapping=_handoff_hash(handoff))
        pipe.zadd(keys.handoff_queue(handoff.skill), {conv.id: handoff.queue_score()})
        pipe.zadd(keys.sla_timers(), {conv.id: handoff.due_at})
        await pipe.execute()
        await self.save(conv)
        await self.publish(conv.id, {"type": "mode", "mode": conv.mode})

    async def change_handoff(self, conv_id: str, change: Callable[[Handoff], bool]) -> Conversation | None:
        """Apply `change` to the current handoff of a conversation with an agent or waiting for one.

        Read and written under WATCH, so a take or hand back at the same moment is never undone: the
        change is applied to what is there now, or not at all when the conversation went back to the
        bot. `change` returns False when it has nothing to do. Returns the conversation as written, or
        None when nothing was.
        """

        def apply(conv: Conversation | None) -> tuple[Writes | None, Conversation | None]:
            if conv is None or conv.mode == "bot" or conv.handoff is None or not change(conv.handoff):
                return None, None
            handoff, waiting = conv.handoff, conv.mode == "waiting"

            def writes(pipe: Any) -> None:
                pipe.hset(keys.conversation(conv_id), "handoff", json.dumps(asdict(handoff)))
                pipe.hset(keys.handoff_entry(conv_id), mapping=_handoff_hash(handoff))
                if waiting:  # still queued: a changed priority changes its place
                    pipe.zadd(keys.handoff_queue(handoff.skill), {conv_id: handoff.queue_score()}, xx=True)

            return writes, conv

        return await self._transaction(conv_id, apply)

    async def sla_timer(self, conv_id: str, at: float | None) -> None:
        """When the SLA watcher should next look at a conversation (None: never again)."""
        if at is None:
            await self.redis.zrem(keys.sla_timers(), conv_id)
        else:
            await self.redis.zadd(keys.sla_timers(), {conv_id: at})

    async def sla_timers_due(self, now: float, count: int = 500) -> list[str]:
        """Conversations whose SLA timer has run out."""
        ids: list[str] = await self.redis.zrangebyscore(keys.sla_timers(), "-inf", now, start=0, num=count)
        return ids

    async def record_event(self, stream: str, fields: dict[str, Any]) -> None:
        """One service-level or satisfaction fact for the agent statistics (capped stream)."""
        await self.redis.xadd(
            stream, {k: "" if v is None else str(v) for k, v in fields.items()}, maxlen=keys.STATS_MAXLEN
        )

    async def events_since(self, stream: str, since: float) -> list[dict[str, str]]:
        """Facts recorded since a time (stream ids are milliseconds)."""
        rows = await self.redis.xrange(stream, min=f"{int(since * 1000)}-0", max="+")
        return [data for _, data in rows]

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
        """Waiting conversations of a skill, most urgent first (one round trip for all their handoffs)."""
        ids = await self.redis.zrange(keys.handoff_queue(skill), 0, -1)
        if not ids:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for conv_id in ids:
            pipe.hgetall(keys.handoff_entry(conv_id))
        raws = await pipe.execute()
        return [(conv_id, Handoff.from_fields(raw)) for conv_id, raw in zip(ids, raws, strict=True) if raw]

    async def get_many(self, conv_ids: list[str]) -> dict[str, Conversation]:
        """Several conversations in one round trip; missing ones are left out."""
        pipe = self.redis.pipeline(transaction=False)
        for conv_id in conv_ids:
            pipe.hgetall(keys.conversation(conv_id))
        raws = await pipe.execute() if conv_ids else []
        return {cid: Conversation.from_hash(raw) for cid, raw in zip(conv_ids, raws, strict=True) if raw}


def _handoff_hash(handoff: Handoff) -> dict[str, str]:
    return {k: str(v) for k, v in asdict(handoff).items()}


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
