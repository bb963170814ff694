"""The engine's conversation locks in Redis, found through Redis Sentinel when the deployment has one.

Rasa's RedisLockStore connects to one fixed host: after a fail-over it keeps talking to the old primary
(refused, or read-only once it comes back as a replica) and every message fails. Given `sentinels` (a
list of [host, port] pairs, as the app's settings name them) and `sentinel_service`, this store asks the
sentinels for the primary on every new connection and follows a fail-over; without them it is Rasa's.
"""

from __future__ import annotations

from typing import Any

from rasa.core.lock_store import RedisLockStore
from rasa.utils.endpoints import EndpointConfig

# Options of the Redis client that are not the server's address.
_CLIENT_OPTIONS = ("db", "username", "password", "socket_timeout")


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


class SentinelRedisLockStore(RedisLockStore):
    """Rasa's Redis lock store; with `sentinels` in its endpoint, on the primary the sentinels name."""

    def __init__(self, endpoint_config: EndpointConfig) -> None:
        options = dict(endpoint_config.kwargs)
        sentinels = options.pop("sentinels", None)
        service = str(options.pop("sentinel_service", None) or "autoresponder")
        super().__init__(host=endpoint_config.url or "localhost", **options)
        if sentinels:
            from redis.sentinel import Sentinel

            client = {k: options[k] for k in _CLIENT_OPTIONS if options.get(k) is not None}
            manager = Sentinel(sentinel_pairs(sentinels), socket_timeout=client.get("socket_timeout", 10))
            self.red = manager.master_for(service, **client)
