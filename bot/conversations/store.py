"""Conversations, transcripts and the handoff queue in Redis: the one place that touches their keys."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import WatchError

from bot import keys
from bot.conversations.model import Conversation, Handoff, LogEntry, Mode, Skill

if TYPE_CHECKING:
    from bot.templates import Rendered


R = TypeVar("R")

# A thread's open conversation in one round trip: its id and its hash (empty when it expired). The
# hash's key is built here from the id, which the caller cannot know beforehand: fine on one primary
# (with or without Sentinel), not on Redis Cluster. KEYS: the thread. ARGV: the conversation prefix.
_FIND = """
local id = redis.call('GET', KEYS[1])
if not id then return false end
return {id, redis.call('HGETALL', ARGV[1] .. id)}
"""

# A thread's first conversation, opened in one step so that replicas racing on a first message agree on
# one: the thread's open conversation (its hash) when it has one, else the new one's id set on the thread
# and its hash written, both with the TTL. A thread naming a conversation whose hash is gone (expired) is
# given the new one. KEYS: the thread. ARGV: the conversation prefix, the new id, the TTL, the hash pairs.
_OPEN = """
local existing = redis.call('GET', KEYS[1])
if existing then
  local found = redis.call('HGETALL', ARGV[1] .. existing)
  if #found > 0 then return found end
end
local conv_key = ARGV[1] .. ARGV[2]
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
redis.call('HSET', conv_key, unpack(ARGV, 4))
redis.call('EXPIRE', conv_key, ARGV[3])
return false
"""


@dataclass(frozen=True)
class HandBack:
    """A hand back: the conversation before and after (the same object when it was already with the bot)."""

    before: Conversation | None
    after: Conversation | None
    # Refused: the agent who holds it (the hand back was limited to conversations `by` may give back).
    held_by: str | None = None


Writes = Callable[[Any], object]  # commands queued on a MULTI pipeline


class ConversationStore:
    """Reads and writes conversations; the one place that touches their Redis keys."""

    def __init__(self, redis: Redis, *, min_replicas: int = 0, replica_wait_ms: int = 1000) -> None:
        # Typed loosely on purpose: redis-py's stubs type every reply as `bytes | str` even with
        # decode_responses=True, which is how the app always connects.
        self.redis: Any = redis
        self._find = redis.register_script(_FIND)
        self._open = redis.register_script(_OPEN)
        self.min_replicas = min_replicas
        self.replica_wait_ms = replica_wait_ms

    async def replicated(self) -> None:
        """With `min_replicas`, wait until that many replicas have every write made so far on this
        connection's primary; a fail-over can then lose nothing a customer was told was accepted or answered.
        Too few in time is a connection error: the caller is answered 503 and sends again."""
        if self.min_replicas <= 0:
            return
        # WAIT counts the writes of its own connection; a write of that connection made after ours
        # completed comes later in the replication stream, so a replica that has it has ours too.
        pipe = self.redis.pipeline(transaction=False)
        pipe.incr(keys.replication_probe())
        pipe.wait(self.min_replicas, self.replica_wait_ms)
        got = int((await pipe.execute())[1])
        if got < self.min_replicas:
            raise RedisConnectionError(f"a write reached {got} of {self.min_replicas} replicas in time")

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
        found = await self._find(keys=[keys.thread(channel, thread_id)], args=[keys.CONVERSATION_PREFIX])
        if not found or not found[1]:
            return None
        return Conversation.from_hash(hash_from_pairs(found[1]))

    async def find_or_open(self, channel: str, thread_id: str, customer_id: str | None) -> tuple[Conversation, bool]:
        """The open conversation of a channel thread, or a new one; second item: newly opened."""
        conv = await self.find(channel, thread_id)
        if conv is not None:
            return conv, False
        return await self.open(channel, thread_id, customer_id)

    async def open(self, channel: str, thread_id: str, customer_id: str | None) -> tuple[Conversation, bool]:
        """A new conversation for a thread just found without one; second item: newly opened (False when
        another replica opened it first, which is then the one returned)."""
        conv = Conversation(id=uuid.uuid4().hex, channel=channel, thread_id=thread_id, customer_id=customer_id)
        conv.updated_at = time.time()
        # The only whole-hash write: a new conversation nobody else can have changed yet, and for which
        # nothing of order access can wait (its marker, bot.keys.ACCESS_WAITS_FIELD, says so at once).
        mapping = {**conv.to_hash(), keys.ACCESS_WAITS_FIELD: "0"}
        won = await self._open(
            keys=[keys.thread(channel, thread_id)],
            args=[
                keys.CONVERSATION_PREFIX,
                conv.id,
                keys.CONVERSATION_TTL_SECONDS,
                *[x for kv in mapping.items() for x in kv],
            ],
        )
        if won:  # another replica opened the thread's conversation first
            return Conversation.from_hash(hash_from_pairs(won)), False
        return conv, True

    async def update(self, conv: Conversation, *fields: str) -> None:
        """Write only the named fields (and the activity time), leaving the rest as others wrote it.

        Channels and the desk use it for the fields they change (the router writes what a customer
        message changes with its acceptance), so that nobody writes back a mode or an agent read before
        an agent took the conversation.
        """
        conv.updated_at = time.time()
        data = conv.to_hash()
        await self._write(conv, {f: data[f] for f in {*fields, "updated_at"}})

    async def _write(self, conv: Conversation, mapping: dict[str, str]) -> None:
        """Fields of the conversation's hash written, its TTL and its thread's renewed: one round trip."""
        pipe = self.redis.pipeline()
        pipe.hset(keys.conversation(conv.id), mapping=mapping)
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
            conv.mode, conv.agent, conv.updated_at = Mode.AGENT, agent, time.time()
            fields = {"mode": "agent", "agent": agent, "updated_at": str(conv.updated_at)}
            return (lambda pipe: pipe.hset(keys.conversation(conv_id), mapping=fields)), (conv, None)

        return await self._transaction(conv_id, claim)

    async def give_to_agent(self, conv_id: str, agent: str) -> tuple[Conversation | None, str | None]:
        """Atomically give a waiting conversation, or one another agent holds, to `agent` (a supervisor's
        take-over or reassignment). Returns (conversation, previous holder or None); (None, None) when
        there is no such conversation; (conversation, "bot") and no change when the bot has it.
        """

        def give(conv: Conversation | None) -> tuple[Writes | None, tuple[Conversation | None, str | None]]:
            if conv is None:
                return None, (None, None)
            if conv.mode == "bot":
                return None, (conv, "bot")
            previous = conv.agent if conv.mode == "agent" else None
            conv.mode, conv.agent, conv.updated_at = Mode.AGENT, agent, time.time()
            fields = {"mode": "agent", "agent": agent, "updated_at": str(conv.updated_at)}
            return (lambda pipe: pipe.hset(keys.conversation(conv_id), mapping=fields)), (conv, previous)

        return await self._transaction(conv_id, give)

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
        fields = entry_fields(
            role,
            text,
            buttons=buttons,
            client_id=client_id,
            template=template,
            template_version=template_version,
            agent_name=agent_name,
            html=html,
            text_format=text_format,
        )
        [entry] = await self.commit(conv_id, [fields], lambda pipe: None)
        return entry

    async def commit(self, conv_id: str, lines: list[dict[str, str]], also: Writes) -> list[LogEntry]:
        """Append transcript lines and `also`'s writes in one MULTI/EXEC, then publish the lines."""
        async with self.redis.pipeline(transaction=True) as pipe:
            for fields in lines:
                pipe.xadd(keys.transcript(conv_id), fields)
            pipe.expire(keys.transcript(conv_id), keys.CONVERSATION_TTL_SECONDS)
            also(pipe)
            results = await pipe.execute()
        entries = [entry_from_fields(str(seq), fields) for seq, fields in zip(results, lines, strict=False)]
        for entry in entries:
            await self.publish(conv_id, entry.frame())
        return entries

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

    async def requeue(self, conv_id: str, skill: Skill, by: str) -> tuple[Conversation | None, str | None]:
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
            conv.mode, conv.agent, conv.updated_at = Mode.WAITING, None, time.time()
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
        """Switch to waiting and queue the conversation for the skill's agents, in one transaction.

        A handoff with a due time (the desk's SLA clock sets it) also gets its timer. Only the fields a
        handoff changes are written, under WATCH, so an agent's take at the same moment is not undone:
        a conversation an agent already holds keeps its agent and mode and only records the handoff.
        """

        def step(current: Conversation | None) -> tuple[Writes | None, None]:
            if current is None:
                return None, None
            mode = current.mode if current.mode == Mode.AGENT else Mode.WAITING
            conv.mode, conv.agent, conv.handoff, conv.updated_at = mode, current.agent, handoff, time.time()
            fields = {k: v for k, v in conv.to_hash().items() if k in ("mode", "handoff", "updated_at")}

            def writes(pipe: Any) -> None:
                pipe.hset(keys.conversation(conv.id), mapping=fields)
                pipe.hset(keys.handoff_entry(conv.id), mapping=_handoff_hash(handoff))
                pipe.expire(keys.handoff_entry(conv.id), keys.CONVERSATION_TTL_SECONDS)
                if mode == Mode.WAITING:
                    pipe.zadd(keys.handoff_queue(handoff.skill), {conv.id: handoff.queue_score()})
                if handoff.due_at:
                    pipe.zadd(keys.sla_timers(), {conv.id: handoff.due_at})

            return writes, None

        await self._transaction(conv.id, step)
        await self.publish(conv.id, {"type": "mode", "mode": conv.mode})

    async def hand_back(
        self, conv_id: str, survey: Callable[[Conversation], dict[str, Any] | None], *, by: str | None = None
    ) -> HandBack:
        """Give a conversation back to the bot in one transaction; None when there is no such conversation.

        With `by`, only a waiting conversation or one `by` holds, checked in the transaction (another agent
        taking it meanwhile refuses it: `held_by`, nothing written).

        Out of the queue, no agent, no handoff, its SLA timer stopped, released from its agent, and a
        flag that the engine's dialogue state must be reset before the bot answers again (done at once
        by the desk, or by the router on the next message if the engine is down now). `survey` decides,
        from the conversation as it was, which satisfaction survey (if any) is now open.
        """

        def step(conv: Conversation | None) -> tuple[Writes | None, HandBack]:
            if conv is None:
                return None, HandBack(None, None)
            if conv.mode == Mode.BOT:
                return None, HandBack(conv, conv)
            if by is not None and conv.mode == Mode.AGENT and conv.agent and conv.agent != by:
                return None, HandBack(conv, conv, held_by=conv.agent)
            before = Conversation.from_hash(conv.to_hash())
            opened = survey(before)
            conv.mode, conv.agent, conv.handoff, conv.survey = Mode.BOT, None, None, opened
            conv.reset_engine, conv.updated_at = True, time.time()
            fields = {
                k: v
                for k, v in conv.to_hash().items()
                if k in ("mode", "agent", "handoff", "survey", "reset_engine", "updated_at")
            }

            def writes(pipe: Any) -> None:
                pipe.hset(keys.conversation(conv_id), mapping=fields)
                if before.handoff is not None:
                    pipe.zrem(keys.handoff_queue(before.handoff.skill), conv_id)
                pipe.delete(keys.handoff_entry(conv_id))
                pipe.zrem(keys.sla_timers(), conv_id)
                if before.agent:
                    pipe.srem(keys.agent_conversations(before.agent), conv_id)

            return writes, HandBack(before, conv)

        result = await self._transaction(conv_id, step)
        if result.after is not None and result.before is not result.after:
            await self.publish(conv_id, {"type": "mode", "mode": Mode.BOT})
        return result

    async def engine_reset_done(self, conv_id: str) -> None:
        """The engine's dialogue state of a handed-back conversation was reset."""
        await self.redis.hset(keys.conversation(conv_id), "reset_engine", "")

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

    async def queue_length(self, skill: str) -> int:
        """How many conversations of a skill wait for an agent."""
        return int(await self.redis.zcard(keys.handoff_queue(skill)))

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


def hash_from_pairs(flat: list[str]) -> dict[str, str]:
    """A hash as a Lua script returns it (HGETALL's flat field, value list) as a dict."""
    return dict(zip(flat[::2], flat[1::2], strict=True))


def _handoff_hash(handoff: Handoff) -> dict[str, str]:
    return {k: str(v) for k, v in asdict(handoff).items()}


def entry_fields(
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
) -> dict[str, str]:
    """A transcript line as the stream stores it."""
    fields: dict[str, str] = {"role": role, "text": text, "ts": repr(time.time())}
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
    return fields


def rendered_fields(role: str, rendered: Rendered) -> dict[str, str]:
    """A rendered template as a transcript line."""
    return entry_fields(
        role,
        rendered.text,
        buttons=rendered.buttons,
        template=rendered.name,
        template_version=rendered.version,
        html=rendered.html,
        text_format=rendered.text_format,
    )


def entry_from_fields(seq: str, data: dict[str, str]) -> LogEntry:
    """A transcript line from its stored fields."""
    return _entry(seq, data)


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
