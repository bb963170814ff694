"""The engine's conversation locks: Rasa's ticket lock, kept in Redis through redis.asyncio.

Rasa answers one message of a conversation at a time, in arrival order, through a ticket lock. Its
RedisLockStore keeps the lock as one JSON string and talks to Redis with the synchronous client: about
seven round trips per message (get, set, get, get, set, get, delete), each one stopping the engine's
event loop until Redis answers. Under load that was the engine's largest cost after the NLU (py-spy at
50 concurrent customers: 23 % of the loop, 20 % of it blocked in a socket read).

This store keeps the same semantics with two round trips per uncontended message, neither of them
blocking the loop:
- a ticket is issued and tried in one Lua script: `{prefix}:lockseq:{id}` counts tickets,
  `{prefix}:lock:{id}` is a sorted set of the waiting tickets (score: the ticket number; member:
  "ticket:expiry-in-ms", the expiry taken from Redis's clock, so replicas with different clocks agree);
- the ticket at the head of the set holds the lock; expired tickets are dropped on each try (a process
  that died holding the lock delays the next message by the lock lifetime at most, as with Rasa's);
- a waiter polls, 5 ms doubling to the caller's wait time (Rasa sleeps a whole second between tries);
- release removes the ticket and deletes both keys once no ticket is left.
A ticket that expired while waiting raises Rasa's LockError, as Rasa's store does.

Given `sentinels` (a list of [host, port] pairs, as the app's settings name them) and `sentinel_service`,
the store asks the sentinels for the primary on every new connection and follows a fail-over.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from rasa.core.lock import TicketLock
from rasa.core.lock_store import LOCK_LIFETIME, LockError, LockStore
from rasa.utils.endpoints import EndpointConfig
from redis.asyncio import BlockingConnectionPool, Redis, SSLConnection

log = logging.getLogger(__name__)

# Options of the Redis client that are not the server's address.
_CLIENT_OPTIONS = ("db", "username", "password", "socket_timeout")
FIRST_POLL_SECONDS = 0.005
MAX_CONNECTIONS = 8

# KEYS: lock set, ticket counter. ARGV: lifetime in ms, ticket (0: issue a new one).
# Returns {ticket, state}: 1 holds the lock, 0 waits, -1 the ticket expired.
_TRY = """
local now = redis.call('TIME')
now = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local lifetime = tonumber(ARGV[1])
local ticket = tonumber(ARGV[2])
if ticket == 0 then
  ticket = redis.call('INCR', KEYS[2])
  redis.call('PEXPIRE', KEYS[2], lifetime + 1000)
  redis.call('ZADD', KEYS[1], ticket, ticket .. ':' .. (now + lifetime))
  redis.call('PEXPIRE', KEYS[1], lifetime + 1000)
end
local head = nil
local mine = false
for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local sep = string.find(member, ':', 1, true)
  local number = tonumber(string.sub(member, 1, sep - 1))
  if tonumber(string.sub(member, sep + 1)) <= now then
    redis.call('ZREM', KEYS[1], member)
  else
    if head == nil then head = number end
    if number == ticket then mine = true end
  end
end
if not mine then return {ticket, -1} end
if head == ticket then return {ticket, 1} end
return {ticket, 0}
"""

# KEYS: lock set, ticket counter. ARGV: ticket. Deletes both keys once no ticket waits.
_RELEASE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], ARGV[1], ARGV[1])
if redis.call('ZCARD', KEYS[1]) == 0 then redis.call('DEL', KEYS[1], KEYS[2]) end
return 1
"""


def sentinel_pairs(sentinels: Any) -> list[tuple[str, int]]:
    """[[host, port], …] from endpoints.yml as (host, port) pairs; anything else is a configuration error."""
    if not isinstance(sentinels, list) or not sentinels:
        raise ValueError("`sentinels` must be a non-empty list of [host, port] pairs")
    pairs = []
    for entry in sentinels:
        if not (isinstance(entry, list | tuple) and len(entry) == 2 and str(entry[1]).isdigit()):
            raise ValueError(f"sentinel {entry!r} is not [host, port]")
        pairs.append((str(entry[0]), int(entry[1])))
    return pairs


def bounded_client(max_connections: int, host: str, port: int, *, use_ssl: bool = False, **client: Any) -> Redis:
    """A client on a bounded pool that waits for a free connection: the engine's Redis calls are short,
    and without a bound every concurrent turn opens a connection of its own and keeps it (one shared
    Redis serves every replica's engines and apps)."""
    pool: dict[str, Any] = {"host": host, "port": port, **client}
    if use_ssl:
        pool["connection_class"] = SSLConnection
    return Redis(connection_pool=BlockingConnectionPool(max_connections=max_connections, timeout=20, **pool))


async def close_client(red: Redis) -> None:
    """Close an asyncio Redis client's pool, and the sentinels' connections when it asks sentinels."""
    manager = getattr(red.connection_pool, "sentinel_manager", None)
    await red.close()
    await red.connection_pool.disconnect()  # a client made by master_for does not own its pool
    for sentinel in getattr(manager, "sentinels", []):
        await sentinel.close()


class AsyncRedisLockStore(LockStore):
    """Rasa's ticket lock in Redis without blocking the event loop (endpoints: `type: ar_engine.lock_store.…`)."""

    def __init__(self, endpoint_config: EndpointConfig) -> None:
        options = dict(endpoint_config.kwargs)
        sentinels = options.pop("sentinels", None)
        service = str(options.pop("sentinel_service", None) or "autoresponder")
        client: dict[str, Any] = {k: options[k] for k in _CLIENT_OPTIONS if options.get(k) is not None}
        if "db" in client:
            client["db"] = int(client["db"])
        self.red: Redis
        if sentinels:
            from redis.asyncio.sentinel import Sentinel

            manager = Sentinel(sentinel_pairs(sentinels), socket_timeout=client.get("socket_timeout", 10))
            self.red = manager.master_for(service, **client)
        else:
            self.red = bounded_client(
                MAX_CONNECTIONS,
                endpoint_config.url or "localhost",
                int(options.get("port") or 6379),
                use_ssl=bool(options.get("use_ssl")),
                **client,
            )
        prefix = options.get("key_prefix")
        self.key_prefix = f"{prefix}:" if prefix else ""
        self._try = self.red.register_script(_TRY)
        self._release = self.red.register_script(_RELEASE)

    def _keys(self, conversation_id: str) -> list[str]:
        return [f"{self.key_prefix}lock:{conversation_id}", f"{self.key_prefix}lockseq:{conversation_id}"]

    @asynccontextmanager
    async def lock(
        self,
        conversation_id: str,
        lock_lifetime: float = LOCK_LIFETIME,
        wait_time_in_seconds: float = 1,
    ) -> AsyncIterator[TicketLock]:
        """Hold the conversation's lock: wait for the tickets issued before this one, then yield."""
        keys = self._keys(conversation_id)
        lifetime_ms = max(1, int(lock_lifetime * 1000))
        ticket, state = await self._try(keys=keys, args=[lifetime_ms, 0])
        try:
            pause = FIRST_POLL_SECONDS
            while state == 0:
                await asyncio.sleep(pause)
                pause = min(pause * 2, max(wait_time_in_seconds, FIRST_POLL_SECONDS))
                ticket, state = await self._try(keys=keys, args=[lifetime_ms, ticket])
            if state < 0:
                raise LockError(f"Could not acquire lock for conversation_id '{conversation_id}'.")
            yield TicketLock(conversation_id)  # what Rasa's store yields; Rasa does not read it
        finally:
            try:
                await self._release(keys=keys, args=[ticket])
            except Exception:  # the ticket expires by itself; the turn's own error matters more
                log.warning("could not release the lock of conversation %s (it expires by itself)", conversation_id)

    # Rasa's synchronous lock API: nothing in Rasa 3.6 calls it outside `lock()`, which this store replaces.
    def get_lock(self, conversation_id: str) -> TicketLock | None:
        """Not supported: the lock lives in Redis as a ticket set, reached only through `lock()`."""
        raise NotImplementedError("AsyncRedisLockStore is used through lock()")

    def delete_lock(self, conversation_id: str) -> None:
        """Not supported (see get_lock)."""
        raise NotImplementedError("AsyncRedisLockStore is used through lock()")

    def save_lock(self, lock: TicketLock) -> None:
        """Not supported (see get_lock)."""
        raise NotImplementedError("AsyncRedisLockStore is used through lock()")

    async def close(self) -> None:
        """Close the connection pool (and the sentinels' connections, when it asks sentinels)."""
        await close_client(self.red)
