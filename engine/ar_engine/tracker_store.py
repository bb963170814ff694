"""AppendOnlyRedisTrackerStore: a conversation's events in a Redis list, written once, read in a bounded window.

Rasa's RedisTrackerStore keeps a tracker as one JSON string: each save reads it back, compares every
new event with every stored one (`_merge_trackers`) and rewrites it whole, so a turn costs more the
longer the conversation (4 s at turn 200), with synchronous Redis calls inside the event loop. Here:

- `{prefix}:tracker:{id}` is a list of events, one JSON document each. A save RPUSHes only the events
  the tracker gained since it was read (found by the identity of the last event read), and refreshes
  the TTL of both keys. A tracker the store did not read (a new one, one whose events were replaced
  through the HTTP API, one in Rasa's old string format) is written whole instead.
- `{prefix}:trackerstate:{id}` is a hash: where the latest session starts in the list, and the
  conversation's state after the last event (slot values, active loop, paused) as events.
- `retrieve` reads the latest session (as Rasa's stores do) but at most `max_events` events of it:
  the state events come first, so slots set before the window keep their values, then the window.
  Policies look at the last few turns; the window holds many more. `retrieve_full_tracker` reads all.
- Redis is used through redis.asyncio; each read and each write is one round trip (a script, a MULTI).
  Given `sentinels` ([host, port] pairs) and `sentinel_service`, the store finds the primary through
  Redis Sentinel and follows a fail-over.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import Any

from rasa.core.brokers.broker import EventBroker
from rasa.core.tracker_store import TrackerStore
from rasa.shared.core.constants import ACTION_SESSION_START_NAME
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, ActiveLoop, ConversationPaused, Event, SlotSet
from rasa.shared.core.trackers import DialogueStateTracker
from redis.asyncio import Redis

from ar_engine import turns
from ar_engine.lock_store import bounded_client, close_client, sentinel_pairs

logger = logging.getLogger(__name__)

DEFAULT_MAX_EVENTS = 80
# Redis connections per engine process at most (a turn makes one or two short calls).
MAX_CONNECTIONS = 16
# The attribute a retrieved tracker carries: how many events the list held, and the last one read.
_MARK = "_ar_stored"

# KEYS: events list, state hash. ARGV: max events (0: no limit), "1" for every session.
# Returns [kind, first index read, length, state events or "", events...].
# A save of the events a tracker gained since it was read, only while the list still holds what it held
# then (the read's length): a second turn of the conversation saving in between (its lock expired during a
# turn of over a minute, and the app's retry ran beside it) or the list expiring meanwhile would otherwise
# interleave two turns or leave a tracker without its beginning. KEYS: events list, state hash. ARGV: the
# length read, TTL seconds (0: none), the session start ("": unchanged), the state events, then the new
# events. Returns 0, with nothing written, when the list changed.
_APPEND = """
if redis.call('LLEN', KEYS[1]) ~= tonumber(ARGV[1]) then return 0 end
if #ARGV > 4 then redis.call('RPUSH', KEYS[1], unpack(ARGV, 5)) end
redis.call('HSET', KEYS[2], 'state', ARGV[4])
if ARGV[3] ~= '' then redis.call('HSET', KEYS[2], 'session', ARGV[3]) end
if ARGV[2] ~= '0' then
  redis.call('EXPIRE', KEYS[1], ARGV[2])
  redis.call('EXPIRE', KEYS[2], ARGV[2])
end
return 1
"""

_READ = """
local kind = redis.call('TYPE', KEYS[1])['ok']
if kind == 'none' then return {'none'} end
if kind == 'string' then return {'string', 0, 0, '', redis.call('GET', KEYS[1])} end
local n = redis.call('LLEN', KEYS[1])
local session = 0
if ARGV[2] ~= '1' then session = tonumber(redis.call('HGET', KEYS[2], 'session') or '0') end
local first = session
local limit = tonumber(ARGV[1])
if limit > 0 and n - first > limit then first = n - limit end
local state = ''
if first > session then state = redis.call('HGET', KEYS[2], 'state') or '' end
local reply = {'list', first, n, state}
for _, event in ipairs(redis.call('LRANGE', KEYS[1], first, -1)) do reply[#reply + 1] = event end
return reply
"""


class AppendOnlyRedisTrackerStore(TrackerStore):
    """Tracker store with append-only event lists in Redis (endpoints: `type: ar_engine.tracker_store.…`)."""

    def __init__(
        self,
        domain: Domain | None = None,
        host: str = "localhost",
        port: int = 6379,
        db: int = 0,
        username: str | None = None,
        password: str | None = None,
        event_broker: EventBroker | None = None,
        record_exp: float | None = None,
        key_prefix: str | None = None,
        use_ssl: bool = False,
        max_events: int = DEFAULT_MAX_EVENTS,
        sentinels: list[list[Any]] | None = None,
        sentinel_service: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(domain, event_broker, **kwargs)
        self.red: Redis
        if sentinels:  # the primary the sentinels name, followed through a fail-over
            from redis.asyncio.sentinel import Sentinel

            if use_ssl:
                raise ValueError("the engine's tracker store does not speak TLS to Redis through Sentinel")
            manager = Sentinel(sentinel_pairs(sentinels), socket_timeout=10)
            self.red = manager.master_for(
                sentinel_service or "autoresponder",
                db=int(db),
                username=username,
                password=password,
                decode_responses=True,
            )
        else:
            # Bounded as the lock store's (unbounded, a burst after a Redis restart left dozens open).
            self.red = bounded_client(
                MAX_CONNECTIONS,
                host or "localhost",
                int(port),
                use_ssl=bool(use_ssl),
                db=int(db),
                username=username,
                password=password,
                decode_responses=True,
            )
        self.record_exp = int(record_exp) if record_exp else None
        prefix = f"{key_prefix}:" if key_prefix else ""
        self._events_prefix = f"{prefix}tracker:"
        self._state_prefix = f"{prefix}trackerstate:"
        self.max_events = int(max_events)
        self._read = self.red.register_script(_READ)
        self._append = self.red.register_script(_APPEND)

    def _keys(self, sender_id: str) -> list[str]:
        return [self._events_prefix + sender_id, self._state_prefix + sender_id]

    async def _load(self, sender_id: str, limit: int, every_session: bool) -> DialogueStateTracker | None:
        reply = await self._read(keys=self._keys(sender_id), args=[limit, "1" if every_session else "0"])
        kind = reply[0]
        if kind == "none":
            return None
        if kind == "string":  # written by Rasa's RedisTrackerStore: read whole, rewritten at the next save
            return self.deserialise_tracker(sender_id, reply[4])
        length, state, stored = int(reply[2]), reply[3], reply[4:]
        events = [Event.from_parameters(json.loads(e)) for e in stored]
        prefix = [Event.from_parameters(e) for e in json.loads(state)] if state else []
        if prefix and events:
            for event in prefix:
                event.timestamp = events[0].timestamp
        tracker = self.init_tracker(sender_id)
        for event in prefix + events:
            tracker.update(event)
        setattr(tracker, _MARK, (length, events[-1] if events else None))
        return tracker

    async def retrieve(self, sender_id: str) -> DialogueStateTracker | None:
        """The latest session of a conversation, its last `max_events` events at most (state kept)."""
        return await self._load(sender_id, self.max_events, every_session=False)

    async def retrieve_full_tracker(self, conversation_id: str) -> DialogueStateTracker | None:
        """Every event of a conversation, across sessions."""
        return await self._load(conversation_id, 0, every_session=True)

    async def exists(self, conversation_id: str) -> bool:
        """Whether the conversation has a tracker."""
        return bool(await self.red.exists(self._events_prefix + conversation_id))

    async def keys(self) -> Iterable[str]:
        """Conversation ids with a tracker."""
        return [key[len(self._events_prefix) :] async for key in self.red.scan_iter(self._events_prefix + "*")]

    async def save(self, tracker: DialogueStateTracker) -> None:
        """Append the events the tracker gained since it was read (or write it whole if it was not read).

        A turn during which the app's endpoints failed is not saved (ar_engine.turns): TurnFailed.
        """
        turns.check_save()
        await self.stream_events(tracker)
        events = list(tracker.events)
        new, base, whole = events, 0, True
        mark = getattr(tracker, _MARK, None)
        if mark is not None:
            length, last = mark
            found = _position(events, last)
            if found is not None:  # else the tracker's events were replaced: write them whole
                new, base, whole = events[found + 1 :], length, False
        if not new and not whole:
            return
        events_key, state_key = self._keys(tracker.sender_id)
        session = 0 if whole else None
        for offset in range(len(new) - 1, -1, -1):
            if _starts_session(new[offset]):
                session = base + offset
                break
        state = json.dumps(_state_events(tracker), ensure_ascii=False)
        rows = [json.dumps(e.as_dict(), ensure_ascii=False) for e in new]
        if not whole:
            appended = await self._append(
                keys=[events_key, state_key],
                args=[base, int(self.record_exp or 0), "" if session is None else session, state, *rows],
            )
            if not int(appended):
                raise turns.TurnFailed(f"conversation {tracker.sender_id} changed during the turn; not saved")
        else:
            async with self.red.pipeline(transaction=True) as pipe:
                pipe.delete(events_key, state_key)
                if rows:
                    pipe.rpush(events_key, *rows)
                pipe.hset(state_key, mapping={"state": state, "session": str(session)})
                if self.record_exp:
                    pipe.expire(events_key, self.record_exp)
                    pipe.expire(state_key, self.record_exp)
                await pipe.execute()
        setattr(tracker, _MARK, (base + len(new), events[-1] if events else None))

    async def close(self) -> None:
        """Close the connection pool (and the sentinels' connections, when it asks sentinels)."""
        await close_client(self.red)


def _position(events: list[Event], last: Event | None) -> int | None:
    """Where the last event read is in a tracker's events (-1 before the first), None if it is not there."""
    if last is None:
        return -1
    for index in range(len(events) - 1, -1, -1):
        if events[index] is last:
            return index
    # A copy of the tracker (copy.deepcopy) holds equal events, not the same ones.
    wanted = last.as_dict()
    for index in range(len(events) - 1, -1, -1):
        if events[index].as_dict() == wanted:
            return index
    return None


def _starts_session(event: Event) -> bool:
    # Where Rasa's RedisTrackerStore splits sessions: at `action_session_start`, included.
    return isinstance(event, ActionExecuted) and event.action_name == ACTION_SESSION_START_NAME


def _state_events(tracker: DialogueStateTracker) -> list[dict[str, Any]]:
    """Events that put a fresh tracker in this tracker's state: slot values, active loop, paused."""
    state: list[Event] = [
        SlotSet(slot.name, slot.value) for slot in tracker.slots.values() if slot.value != slot.initial_value
    ]
    if tracker.active_loop_name:
        state.append(ActiveLoop(tracker.active_loop_name))
    if tracker.is_paused():
        state.append(ConversationPaused())
    return [e.as_dict() for e in state]
