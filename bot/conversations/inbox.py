"""The inbox: every customer message accepted is recorded as pending until it is answered, exactly once.

Accepting a message is one Redis script: the dedupe key (scoped to the channel and the sender), the
customer's line in the transcript, the message's record and its place in the pending set, all or
nothing (and, for the router, the conversation's customer and locale, the line published and the
lease taken). Answering it is one script too: the bot's lines in the transcript and the record marked
answered, only while it is still pending. Between the two, whoever processes the message holds its
lease (renewed while the engine works); a process that dies lets the lease expire and the recovery
pass of any replica takes the message over. So an accepted message is answered once, whatever crashes
in between; a second accept of the same key is told which message it is, and waits for its answer.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from bot import keys
from bot.conversations.messages import InboundMessage
from bot.conversations.model import Conversation, LogEntry
from bot.conversations.store import entry_from_fields, hash_from_pairs
from bot.locale import LocaleChoice

# What both scripts share. pairs_at(i): at ARGV index i a count n, then n field pairs; returns the pairs
# as one flat list and the index after them. publish_line: a transcript line's frame, sent without its
# seq (only the script knows it), with the seq put first.
_SHARED = """
local function pairs_at(i)
  local n = tonumber(ARGV[i])
  local out = {}
  for j = i + 1, i + 2 * n do out[#out + 1] = ARGV[j] end
  return out, i + 1 + 2 * n
end
local function publish_line(channel, seq, frame)
  redis.call('PUBLISH', channel, '{"seq": "' .. seq .. '", ' .. string.sub(frame, 2))
end
"""
# The one script that accepts a message (see the module docstring). KEYS: seen, transcript, record,
# pending, the conversation's unanswered, the conversation, its thread, the lease, the events channel.
# ARGV: message id, dedupe ttl, transcript ttl, record ttl, due time, lease owner ("": take no lease),
# lease ms, the customer line's frame without its seq ("": publish nothing), the thread mode (below; ""
# for none), n conversation fields and the fields as pairs (written with the message: the customer, the
# locale, the activity time), n transcript fields and the pairs, then the record's fields as pairs. The
# conversation's unanswered messages are scored by their place (`order`, from the transcript line). The
# lease is taken only when no other message of the
# conversation waits for its answer (those go first, which the router sorts out).
#
# In the thread mode (JSON: the key templates, the locale for each current one, the customer and the
# activity time) the conversation is the one the thread names, read in the same step: the keys that
# depend on its id are built here (fine on one primary, with or without Sentinel, not on Redis
# Cluster), its locale is chosen from what it was (bot.locale.LocaleChoice), its customer set if it had
# none, and its hash returned; {2} and nothing written when the thread has no conversation.
# Returns {0, the accepted message's id[, "", the hash]} for a duplicate, else {1, id, seq, leased, the
# access marker (bot.keys.ACCESS_WAITS_FIELD), the message's place[, the hash]}.
_ACCEPT = (
    _SHARED
    + """
local conv_key, transcript, unanswered, events = KEYS[6], KEYS[2], KEYS[5], KEYS[9]
local thread, conv_id = nil, nil
if ARGV[9] ~= '' then
  thread = cjson.decode(ARGV[9])
  conv_id = redis.call('GET', KEYS[7])
  if not conv_id then return {2} end
  local function key(name) return thread.keys[name][1] .. conv_id .. thread.keys[name][2] end
  conv_key = key('conversation')
  if redis.call('EXISTS', conv_key) == 0 then return {2} end
  transcript, unanswered, events = key('transcript'), key('unanswered'), key('events')
end
local existing = redis.call('GET', KEYS[1])
if existing then
  if thread then return {0, existing, '', redis.call('HGETALL', conv_key)} end
  return {0, existing}
end
local ttl = tonumber(ARGV[3])
local conv, i = pairs_at(10)
if thread then
  local current = redis.call('HGET', conv_key, 'locale') or ''
  local locale = thread.locales[current]
  if not locale then
    if thread.detected ~= '' then locale = thread.detected else locale = current end
  end
  conv = {'locale', locale, 'updated_at', thread.updated_at}
  if thread.customer_id ~= '' and (redis.call('HGET', conv_key, 'customer_id') or '') == '' then
    conv[#conv + 1] = 'customer_id'
    conv[#conv + 1] = thread.customer_id
  end
end
if #conv > 0 then
  redis.call('HSET', conv_key, unpack(conv))
  redis.call('EXPIRE', conv_key, ttl)
  redis.call('EXPIRE', KEYS[7], ttl)
end
local fields
fields, i = pairs_at(i)
local seq = redis.call('XADD', transcript, '*', unpack(fields))
redis.call('EXPIRE', transcript, ttl)
-- The message's place among the conversation's unanswered ones: its transcript line's id, which Redis
-- makes increase within the stream whatever the replicas' clocks say (milliseconds, then the entry's
-- number in them).
local ms, n = string.match(seq, '^(%d+)-(%d+)$')
local order = ms .. string.format('%03d', math.min(tonumber(n), 999))
local record = {'seq', seq, 'order', order}
for j = i, #ARGV do record[#record + 1] = ARGV[j] end
if conv_id then
  record[#record + 1] = 'conversation_id'
  record[#record + 1] = conv_id
end
redis.call('HSET', KEYS[3], unpack(record))
redis.call('EXPIRE', KEYS[3], tonumber(ARGV[4]))
redis.call('ZADD', KEYS[4], tonumber(ARGV[5]), ARGV[1])
local others = redis.call('ZCARD', unanswered)
redis.call('ZADD', unanswered, order, ARGV[1])
redis.call('EXPIRE', unanswered, tonumber(ARGV[4]))
redis.call('SET', KEYS[1], ARGV[1], 'EX', tonumber(ARGV[2]))
if ARGV[8] ~= '' then publish_line(events, seq, ARGV[8]) end
local leased = 0
if ARGV[6] ~= '' and others == 0 and redis.call('SET', KEYS[8], ARGV[6], 'NX', 'PX', ARGV[7]) then
  leased = 1
end
local waits = redis.call('HGET', conv_key, '"""
    + keys.ACCESS_WAITS_FIELD
    + """') or ''
if thread then return {1, ARGV[1], seq, leased, waits, order, redis.call('HGETALL', conv_key)} end
return {1, ARGV[1], seq, leased, waits, order}
"""
)
# The one script that answers a message, while its record is still pending (else nothing is written:
# another process answered it first). KEYS: record, transcript, pending, the conversation's unanswered,
# undelivered, the lease, the events channel. ARGV: message id, the state it goes to, the replies as
# JSON, now, transcript ttl, lease owner (released if it still holds it, either way), n lines, then for
# each: n fields, the fields as pairs, its frame without the seq (each line is published).
_COMMIT = (
    _SHARED
    + """
local function release()
  if redis.call('GET', KEYS[6]) == ARGV[6] then redis.call('DEL', KEYS[6]) end
end
if redis.call('HGET', KEYS[1], 'state') ~= 'pending' then
  release()
  return {0}
end
local out = {1}
local i = 8
for _ = 1, tonumber(ARGV[7]) do
  local fields
  fields, i = pairs_at(i)
  local seq = redis.call('XADD', KEYS[2], '*', unpack(fields))
  out[#out + 1] = seq
  publish_line(KEYS[7], seq, ARGV[i])
  i = i + 1
end
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[5]))
redis.call('HSET', KEYS[1], 'state', ARGV[2], 'replies', ARGV[3])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
if ARGV[2] ~= 'delivered' then redis.call('ZADD', KEYS[5], tonumber(ARGV[4]), ARGV[1]) end
release()
return out
"""
)
# Claim an undelivered answer for pushing: only while its time in the undelivered index (its commit's, or
# the last claim's) is still at or before ARGV[2], so that of the replicas' recovery passes finding it at
# once exactly one pushes it; the claim moves that time past it (ARGV[3], the claimer's now), so that if
# the claimer dies before `delivered`, a pass pushes it again a grace period later. KEYS: undelivered.
# ARGV: message id, before, the new time.
_CLAIM_PUSH = """
local at = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not at or tonumber(at) > tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
return 1
"""
# Remove a lease that nobody renews: less than ARGV[1] ms left (or none at all). KEYS: the lease.
_BREAK_LEASE = """
local left = redis.call('PTTL', KEYS[1])
if left >= tonumber(ARGV[1]) then return 0 end
redis.call('DEL', KEYS[1])
return 1
"""
# Release a lease only if it is still ours.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
# Renew a lease only if it is still ours.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""

PENDING, ANSWERED, DELIVERED = "pending", "answered", "delivered"
# What a customer message changes in its conversation, written with its acceptance.
MESSAGE_FIELDS = ("customer_id", "locale", "updated_at")


@dataclass(frozen=True)
class Accepted:
    """The outcome of accepting a message: its id, and whether it was new."""

    message_id: str
    new: bool
    entry: LogEntry | None = None  # the customer's transcript line, when new
    record: InboxMessage | None = None  # its record as written, when new
    leased: bool = False  # the lease was taken with it (asked for, and nothing earlier waits)
    # With the lease: whether an order-access challenge or change may wait (the conversation's marker, read
    # with the lease, so that nothing earlier of the conversation can still be adding one); None: unknown
    # (no marker yet, or no lease).
    access_waits: bool | None = None
    # The conversation as the acceptance left it (accepted in its thread, `Inbox.accept_in_thread`).
    conversation: Conversation | None = None


@dataclass
class InboxMessage:
    """A message's record: what the customer sent, where, and how far its answer got."""

    id: str
    conversation_id: str
    seq: str
    state: str
    message: InboundMessage
    accepted_at: float
    # Its place among the conversation's unanswered messages (its score there; `earlier` reads it).
    order: float = 0.0
    attempts: int = 0
    notified: bool = False
    replies: list[dict[str, str]] = field(default_factory=list)

    @classmethod
    def from_hash(cls, message_id: str, raw: dict[str, str]) -> InboxMessage:
        """Rebuild from the record's hash."""
        metadata = json.loads(raw.get("metadata") or "{}")
        message = InboundMessage(
            channel=raw.get("channel", ""),
            thread_id=raw.get("thread_id", ""),
            sender=raw.get("sender", ""),
            text=raw.get("text", ""),
            idempotency_key=raw.get("key") or None,
            locale_hint=raw.get("locale_hint") or None,
            metadata=metadata if isinstance(metadata, dict) else {},
            received_at=float(raw.get("accepted_at") or 0),
            sender_is_contact=raw.get("sender_is_contact") == "1",
            redeliverable=raw.get("redeliverable") == "1",
            pushes_replies=raw.get("pushes_replies") == "1",
        )
        return cls(
            id=message_id,
            conversation_id=raw.get("conversation_id", ""),
            seq=raw.get("seq", ""),
            state=raw.get("state", PENDING),
            message=message,
            accepted_at=float(raw.get("accepted_at") or 0),
            # Records from before the place was kept were scored by their acceptance time.
            order=float(raw.get("order") or raw.get("accepted_at") or 0),
            attempts=int(raw.get("attempts") or 0),
            notified=raw.get("notified") == "1",
            replies=json.loads(raw["replies"]) if raw.get("replies") else [],
        )


class Inbox:
    """The pending messages in Redis."""

    def __init__(self, redis: Any, *, lease_seconds: float = 30.0) -> None:
        self.redis = redis
        self.lease_ms = int(lease_seconds * 1000)
        self._accept = redis.register_script(_ACCEPT)
        self._commit = redis.register_script(_COMMIT)
        self._release = redis.register_script(_RELEASE)
        self._renew = redis.register_script(_RENEW)
        self._claim_push = redis.register_script(_CLAIM_PUSH)
        self._break_lease = redis.register_script(_BREAK_LEASE)

    async def accept(
        self,
        conv_id: str,
        msg: InboundMessage,
        transcript_fields: dict[str, str],
        *,
        due_in: float,
        conversation: Conversation | None = None,
        owner: str = "",
        publish: bool = False,
    ) -> Accepted:
        """Record the message (and its transcript line) unless its dedupe key was seen: one script.

        With it, in the same script: what a customer message changes in `conversation` (the conversation
        `conv_id`: its customer, locale and activity time) written, the customer's line published to the
        conversation's watchers (`publish`), and the message's lease taken for `owner` when no earlier
        message of the conversation waits.
        """
        conv_pairs: list[str] = []
        if conversation is not None:
            data = conversation.to_hash()
            conv_pairs = [x for f in MESSAGE_FIELDS for x in (f, data[f])]
        thread = keys.thread(conversation.channel, conversation.thread_id) if conversation else keys.thread("", "")
        accepted = await self._run_accept(
            conv_id, thread, "", conv_pairs, msg, transcript_fields, due_in=due_in, owner=owner, publish=publish
        )
        assert accepted is not None  # only the thread mode finds no conversation
        return accepted

    async def accept_in_thread(
        self,
        msg: InboundMessage,
        transcript_fields: dict[str, str],
        *,
        due_in: float,
        locale: LocaleChoice,
        customer_id: str | None,
        owner: str = "",
        publish: bool = False,
    ) -> Accepted | None:
        """`accept` into the open conversation of the message's thread, read in the same script: its
        locale chosen from what it was (`locale`), its customer set to `customer_id` if it had none, its
        activity time now; the conversation returned in `Accepted.conversation`. None, with nothing
        written, when the thread has no open conversation (the caller opens one and calls `accept`).
        """
        mode = json.dumps(
            {
                "keys": _THREAD_KEYS,
                "locales": locale.by_current,
                "detected": locale.detected,
                "customer_id": customer_id or "",
                "updated_at": str(time.time()),
            },
            ensure_ascii=False,
        )
        thread = keys.thread(msg.channel, msg.thread_id)
        return await self._run_accept(
            "", thread, mode, [], msg, transcript_fields, due_in=due_in, owner=owner, publish=publish
        )

    async def _run_accept(
        self,
        conv_id: str,
        thread: str,
        mode: str,
        conv_pairs: list[str],
        msg: InboundMessage,
        transcript_fields: dict[str, str],
        *,
        due_in: float,
        owner: str,
        publish: bool,
    ) -> Accepted | None:
        now = time.time()
        message_id = uuid.uuid4().hex
        key = msg.idempotency_key or message_id  # without a key of its own, a message is never a duplicate
        record = {
            "accepted_at": repr(now),
            "conversation_id": conv_id,  # in the thread mode, the script adds the one it read
            "state": PENDING,
            "channel": msg.channel,
            "thread_id": msg.thread_id,
            "sender": msg.sender,
            "text": msg.text,
            "key": msg.idempotency_key or "",
            "locale_hint": msg.locale_hint or "",
            "metadata": json.dumps(msg.metadata, ensure_ascii=False),
            "sender_is_contact": "1" if msg.sender_is_contact else "",
            "redeliverable": "1" if msg.redeliverable else "",
            "pushes_replies": "1" if msg.pushes_replies else "",
        }
        entry = entry_from_fields("", transcript_fields)
        args = [
            message_id,
            keys.SEEN_TTL_SECONDS,
            keys.CONVERSATION_TTL_SECONDS,
            keys.INBOX_RECORD_TTL_SECONDS,
            now + due_in,
            owner,
            self.lease_ms,
            _frame_json(entry) if publish else "",
            mode,
            len(conv_pairs) // 2,
            *conv_pairs,
            len(transcript_fields),
            *[x for kv in transcript_fields.items() for x in kv],
            *[x for kv in record.items() for x in kv],
        ]
        by_id = bool(conv_id)  # the classic mode: the keys that depend on the conversation are known here
        result = await self._accept(
            keys=[
                keys.seen(msg.channel, f"{msg.sender}:{key}"),
                keys.transcript(conv_id) if by_id else "",
                keys.inbox_message(message_id),
                keys.inbox_pending(),
                keys.inbox_conversation(conv_id) if by_id else "",
                keys.conversation(conv_id) if by_id else "",
                thread,
                keys.inbox_lease(message_id),
                keys.events(conv_id) if by_id else "",
            ],
            args=args,
        )
        state = int(result[0])
        if state == 2:
            return None
        conversation = Conversation.from_hash(hash_from_pairs(result[-1])) if mode else None
        if state == 0:
            return Accepted(message_id=str(result[1]), new=False, conversation=conversation)
        seq = str(result[2])
        leased = bool(int(result[3]))
        conv_id = conversation.id if conversation is not None else conv_id
        return Accepted(
            message_id=message_id,
            new=True,
            entry=replace(entry, seq=seq),
            record=InboxMessage.from_hash(
                message_id, {**record, "conversation_id": conv_id, "seq": seq, "order": str(result[5])}
            ),
            leased=leased,
            access_waits=_marker(result[4]) if leased else None,
            conversation=conversation,
        )

    async def commit(
        self, conv_id: str, message_id: str, lines: list[dict[str, str]], *, delivered: bool, owner: str
    ) -> list[LogEntry] | None:
        """Answer a pending message: its lines in the transcript (published), its record answered, its
        indexes moved and this owner's lease released, in one script. None when it was no longer pending
        (another process answered it first) and nothing was written.

        `delivered`: its channel pushes nothing (its customers read the transcript or the HTTP answer), so
        the answer is delivered as it is committed.
        """
        entries = [entry_from_fields("", fields) for fields in lines]
        per_line: list[object] = []
        for fields, entry in zip(lines, entries, strict=True):
            per_line += [len(fields), *[x for kv in fields.items() for x in kv], _frame_json(entry)]
        result = await self._commit(
            keys=[
                keys.inbox_message(message_id),
                keys.transcript(conv_id),
                keys.inbox_pending(),
                keys.inbox_conversation(conv_id),
                keys.inbox_undelivered(),
                keys.inbox_lease(message_id),
                keys.events(conv_id),
            ],
            args=[
                message_id,
                DELIVERED if delivered else ANSWERED,
                json.dumps(lines, ensure_ascii=False),
                time.time(),
                keys.CONVERSATION_TTL_SECONDS,
                owner,
                len(lines),
                *per_line,
            ],
        )
        if int(result[0]) == 0:
            return None
        return [replace(entry, seq=str(seq)) for seq, entry in zip(result[1:], entries, strict=True)]

    async def get(self, message_id: str) -> InboxMessage | None:
        """A message's record, or None when it expired."""
        raw = await self.redis.hgetall(keys.inbox_message(message_id))
        return InboxMessage.from_hash(message_id, raw) if raw else None

    async def lease(self, message_id: str, owner: str) -> bool:
        """Take the message's lease: True when this owner may process it now."""
        return bool(await self.redis.set(keys.inbox_lease(message_id), owner, nx=True, px=self.lease_ms))

    async def break_lease(self, message_id: str) -> bool:
        """Remove a lease whose holder is believed dead, unless it is being renewed: a live holder renews it
        every third of its time (`_Renewal`), so one with less than half of it left has not been renewed
        for longer than that. True when no lease is left."""
        broken = await self._break_lease(keys=[keys.inbox_lease(message_id)], args=[self.lease_ms // 2])
        return bool(int(broken))

    async def leased(self, message_id: str) -> bool:
        """Whether some process holds the message's lease now."""
        return bool(await self.redis.exists(keys.inbox_lease(message_id)))

    async def renew(self, message_id: str, owner: str) -> bool:
        """Extend a lease this owner holds; False when it was lost."""
        return bool(await self._renew(keys=[keys.inbox_lease(message_id)], args=[owner, self.lease_ms]))

    async def release(self, message_id: str, owner: str) -> None:
        """Give the lease back (if it is still ours)."""
        await self._release(keys=[keys.inbox_lease(message_id)], args=[owner])

    async def delivered(self, message_id: str) -> None:
        """The answer reached the customer's channel (or the channel needs no push)."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(keys.inbox_message(message_id), "state", DELIVERED)
        pipe.zrem(keys.inbox_undelivered(), message_id)
        await pipe.execute()

    async def drop(self, conv_id: str, message_id: str, msg: InboundMessage) -> None:
        """Forget a message its channel will deliver again (a mail left unread): no record, no dedupe key."""
        key = msg.idempotency_key or message_id
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(keys.inbox_message(message_id), keys.seen(msg.channel, f"{msg.sender}:{key}"))
        pipe.zrem(keys.inbox_pending(), message_id)
        pipe.zrem(keys.inbox_conversation(conv_id), message_id)
        await pipe.execute()

    async def later(self, message_id: str, delay: float, *, notified: bool) -> int:
        """Try again in `delay` seconds (the engine is down); returns the attempts made so far."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.hincrby(keys.inbox_message(message_id), "attempts", 1)
        if notified:
            pipe.hset(keys.inbox_message(message_id), "notified", "1")
        pipe.zadd(keys.inbox_pending(), {message_id: time.time() + delay}, xx=True)
        attempts, *_ = await pipe.execute()
        return int(attempts)

    async def earlier(self, conv_id: str, record: InboxMessage) -> list[str]:
        """The conversation's unanswered messages accepted before this one, oldest first."""
        found: list[str] = await self.redis.zrangebyscore(
            keys.inbox_conversation(conv_id), "-inf", f"({record.order!r}"
        )
        return [m for m in found if m != record.id]

    async def due(self, now: float, count: int = 100) -> list[str]:
        """Pending messages whose time has come (their first processor is gone, or a retry is due)."""
        found: list[str] = await self.redis.zrangebyscore(keys.inbox_pending(), "-inf", now, start=0, num=count)
        return found

    async def undelivered(self, before: float, count: int = 100) -> list[str]:
        """Answered messages whose answer was not yet handed to their channel."""
        found: list[str] = await self.redis.zrangebyscore(keys.inbox_undelivered(), "-inf", before, start=0, num=count)
        return found

    async def claim_push(self, message_id: str, before: float, until: float) -> bool:
        """Take an answer of `undelivered(before)` for pushing: False when another process took it first (or
        it was delivered meanwhile). Until `delivered`, it stays in the index at `until` (> `before`: the
        claimer's time, a grace period after `before`), so that a pass finds it again only if the claimer
        died."""
        claimed = await self._claim_push(
            keys=[keys.inbox_undelivered()], args=[message_id, repr(before), repr(max(until, before + 1))]
        )
        return bool(int(claimed))

    async def forget_expired(self, message_id: str) -> None:
        """Drop an index entry whose record has expired."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.zrem(keys.inbox_pending(), message_id)
        pipe.zrem(keys.inbox_undelivered(), message_id)
        await pipe.execute()


def _marker(value: object) -> bool | None:
    """The access marker as the acceptance read it (bot.keys.ACCESS_WAITS_FIELD): None when absent."""
    if value in ("", None):
        return None
    return value != "0"


def _template(key_of: Callable[[str], str]) -> list[str]:
    """A key function's key as the text before and after the id (for the scripts that build keys)."""
    before, _, after = key_of("\0").partition("\0")
    return [before, after]


# The keys of a conversation that the acceptance builds from the id its thread names (the thread mode).
_THREAD_KEYS = {
    "conversation": _template(keys.conversation),
    "transcript": _template(keys.transcript),
    "unanswered": _template(keys.inbox_conversation),
    "events": _template(keys.events),
}


def _frame_json(entry: LogEntry) -> str:
    """A transcript line's frame as JSON without its seq, which the scripts put first once they know it."""
    frame = entry.frame()
    del frame["seq"]
    return json.dumps(frame, ensure_ascii=False)
