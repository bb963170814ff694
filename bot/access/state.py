"""The Redis state of order access in one conversation: the open challenge, wrong answers, locks,
verified orders and a change waiting for its confirmation. Keys come from `bot.keys` and never hold a
phone number or an email address."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot import keys
from bot.conversations.store import hash_from_pairs
from bot.crm.records import OrderStatus


@dataclass(frozen=True)
class AccessPolicy:
    """How many wrong second factors lock an order, and for how long.

    `max_failures` counts one conversation's; `order_max_failures` every guest's for the same order, so that
    opening conversation after conversation (new REST senders, web chat sessions, mail addresses) buys no
    more guesses: at that many the order is locked for every guest (a signed-in owner is never asked).
    """

    max_failures: int = 3
    lock_seconds: int = 30 * 60
    order_max_failures: int = 10

    @property
    def lock_minutes(self) -> int:
        """The lock time as customers are told it."""
        return max(1, self.lock_seconds // 60)


@dataclass(frozen=True)
class Challenge:
    """A second factor asked for: which order, the action waiting for it and the question to answer after."""

    order_id: str
    action: str
    question: str


@dataclass(frozen=True)
class PendingChange:
    """A change waiting for the customer: `kind` is cancel, address (waiting for the address), address_confirm
    or repair; `detail` is the new address or the repair description."""

    kind: str
    order_id: str
    detail: str = ""


# What waits for a conversation's next message: its pending change and its challenge; with ARGV[1] set,
# the challenge is dropped when no change waits (the message cannot answer it). When neither is left, the
# conversation's marker says so ("0", see _RECORD; only on a conversation that exists). KEYS: change,
# challenge, the conversation.
_WAITING = (
    """
local change = redis.call('HGETALL', KEYS[1])
local challenge = redis.call('HGETALL', KEYS[2])
local dropped = ARGV[1] == '1' and #change == 0 and #challenge > 0
if dropped then redis.call('DEL', KEYS[2]) end
if #change == 0 and (#challenge == 0 or dropped) and redis.call('EXISTS', KEYS[3]) == 1 then
  redis.call('HSET', KEYS[3], '"""
    + keys.ACCESS_WAITS_FIELD
    + """', '0')
end
return {change, challenge}
"""
)
# A challenge or a change recorded in place of what its key held, with a TTL, deleting the other keys
# named, and the conversation's marker set (bot.keys.ACCESS_WAITS_FIELD: the router's acceptance reads
# it to know whether the guard has anything to read), all in one step; the marker only on a
# conversation that exists (never a hash holding nothing else).
_RECORD_FUNCTION = (
    """
local function record(key, conv, ttl, first_field, also_delete)
  redis.call('DEL', key, unpack(also_delete))
  local fields = {}
  for j = first_field, #ARGV do fields[#fields + 1] = ARGV[j] end
  redis.call('HSET', key, unpack(fields))
  redis.call('EXPIRE', key, ttl)
  if redis.call('EXISTS', conv) == 1 then redis.call('HSET', conv, '"""
    + keys.ACCESS_WAITS_FIELD
    + """', '1') end
end
"""
)
# KEYS: the key, the conversation, the keys to delete. ARGV: ttl, then the fields as pairs.
_RECORD = _RECORD_FUNCTION + "record(KEYS[1], KEYS[2], tonumber(ARGV[1]), 2, {unpack(KEYS, 3)})\n"
# A guest asking about an order: "verified" when they proved to own it in this conversation, "locked" when
# too many wrong factors locked it, else the challenge recorded (as `ask`) and "asked": one round trip.
# KEYS: challenge, the conversation, verified set, lock, the order's lock for every guest. ARGV: ttl, order id,
# then the fields as pairs.
_GUEST = (
    _RECORD_FUNCTION
    + """
if redis.call('SISMEMBER', KEYS[3], ARGV[2]) == 1 then return 'verified' end
if redis.call('EXISTS', KEYS[4]) == 1 or redis.call('EXISTS', KEYS[5]) == 1 then return 'locked' end
record(KEYS[1], KEYS[2], tonumber(ARGV[1]), 3, {})
return 'asked'
"""
)


# The guest proved the order is theirs, unless wrong factors locked it meanwhile (a wrong answer read
# beside this one, on another replica, or other guests' guesses locking it for everyone): the order
# remembered as verified and the challenge and the conversation's failures forgotten, or nothing written
# and 0. KEYS: verified, lock, challenge, failures, the order's lock for every guest. ARGV: the order, the
# verified set's TTL.
_VERIFY = """
if redis.call('EXISTS', KEYS[2]) == 1 or redis.call('EXISTS', KEYS[5]) == 1 then return 0 end
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('DEL', KEYS[3], KEYS[4])
return 1
"""
# A wrong factor counted for the conversation and for the order, and at either limit the order locked (for
# the conversation, or for every guest) with the conversation's failures and challenge forgotten, in the
# same step. Returns {count, scope}: the conversation's count (the limit when the order is locked, for it
# or for everyone, and then nothing is counted: a wrong answer read beside the one that locked it) and
# what this answer locked: 0 nothing, 1 the conversation, 2 every guest. KEYS: failures, lock, challenge,
# the order's failures and its lock for every guest. ARGV: the limit, the lock TTL, the order's limit.
_FAIL = """
local limit = tonumber(ARGV[1])
if redis.call('EXISTS', KEYS[2]) == 1 or redis.call('EXISTS', KEYS[5]) == 1 then return {limit, 0} end
local count = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
local total = redis.call('INCR', KEYS[4])
redis.call('EXPIRE', KEYS[4], ARGV[2])
local scope = 0
if total >= tonumber(ARGV[3]) then
  redis.call('SET', KEYS[5], '1', 'EX', ARGV[2])
  redis.call('DEL', KEYS[4])
  scope, count = 2, limit
elseif count >= limit then
  redis.call('SET', KEYS[2], '1', 'EX', ARGV[2])
  scope = 1
end
if scope > 0 then redis.call('DEL', KEYS[1], KEYS[3]) end
return {count, scope}
"""


@dataclass(frozen=True)
class Failure:
    """A wrong second factor counted: the tries left in the conversation (0: the order is locked for it)
    and whether this answer locked the order for every guest (too many wrong ones across conversations)."""

    left: int
    locked_for_everyone: bool = False


def _challenge_fields(order_id: str, action: str, question: str) -> dict[str, str]:
    """A challenge's hash: the order, the action to replay and the question (bounded)."""
    return {"order_id": order_id, "action": action, "question": question[:2000]}


def _flat(fields: dict[str, str]) -> list[str]:
    """A hash's fields as the pairs a script takes."""
    return [x for kv in fields.items() for x in kv]


class OrderAccess:
    """Reads and writes the access state of conversations (used by actions and by the guard interceptor)."""

    def __init__(self, redis: Any, policy: AccessPolicy | None = None) -> None:
        self.redis = redis
        self.policy = policy or AccessPolicy()
        self._waiting = redis.register_script(_WAITING)
        self._record = redis.register_script(_RECORD)
        self._guest = redis.register_script(_GUEST)
        self._verify = redis.register_script(_VERIFY)
        self._fail = redis.register_script(_FAIL)

    # --- the second factor ---

    async def ask(self, conv_id: str, order_id: str, action: str, question: str) -> None:
        """Record that the guest is asked to prove the order is theirs (replacing an older challenge)."""
        fields = _challenge_fields(order_id, action, question)
        await self._replace(conv_id, keys.access_challenge(conv_id), fields, keys.CHALLENGE_TTL_SECONDS)

    async def guest_access(self, conv_id: str, order_id: str, action: str, question: str) -> str:
        """For a guest asking about an order: "verified" (they proved to own it here), "locked" (too many
        wrong factors), or "asked" (a challenge recorded for it, as `ask` records one), in one round trip."""
        conv = keys.conversation(conv_id)
        verified, lock = keys.access_verified(conv_id), keys.access_lock(conv_id, order_id)
        return str(
            await self._guest(
                keys=[keys.access_challenge(conv_id), conv, verified, lock, keys.access_order_lock(order_id)],
                args=[keys.CHALLENGE_TTL_SECONDS, order_id, *_flat(_challenge_fields(order_id, action, question))],
            )
        )

    async def _replace(self, conv_id: str, key: str, fields: dict[str, str], ttl: int, *also_delete: str) -> None:
        """Write a hash with a TTL in place of what the key held, deleting `also_delete`, and mark the
        conversation as having something waiting: one script."""
        await self._record(keys=[key, keys.conversation(conv_id), *also_delete], args=[ttl, *_flat(fields)])

    async def challenge(self, conv_id: str) -> Challenge | None:
        """The open challenge of the conversation, if any."""
        return _challenge(await self.redis.hgetall(keys.access_challenge(conv_id)))

    async def waiting(
        self, conv_id: str, *, drop_challenge: bool = False
    ) -> tuple[PendingChange | None, Challenge | None]:
        """The change and the challenge waiting for the customer's next message, in one round trip.

        `drop_challenge`: the message cannot answer a challenge (it names no factor), so an open one is
        forgotten in the same round trip unless a change waits (which the message answers first); the
        challenge is still returned, as it was.
        """
        raw_change, raw_challenge = await self._waiting(
            keys=[keys.pending_change(conv_id), keys.access_challenge(conv_id), keys.conversation(conv_id)],
            args=["1" if drop_challenge else ""],
        )
        return _pending(hash_from_pairs(raw_change)), _challenge(hash_from_pairs(raw_challenge))

    async def drop_challenge(self, conv_id: str) -> None:
        """Forget the open challenge (answered, or the guest moved on)."""
        await self.redis.delete(keys.access_challenge(conv_id))

    async def verify(self, conv_id: str, order_id: str) -> bool:
        """The guest proved the order is theirs: remember it for the conversation, forget its failures.
        False, with nothing remembered, when wrong factors locked the order first (in this conversation, or
        for every guest)."""
        done = await self._verify(
            keys=[
                keys.access_verified(conv_id),
                keys.access_lock(conv_id, order_id),
                keys.access_challenge(conv_id),
                keys.access_failures(conv_id, order_id),
                keys.access_order_lock(order_id),
            ],
            args=[order_id, keys.VERIFIED_TTL_SECONDS],
        )
        return bool(int(done))

    async def is_verified(self, conv_id: str, order_id: str) -> bool:
        """Whether the guest of this conversation proved to own the order."""
        return bool(await self.redis.sismember(keys.access_verified(conv_id), order_id))

    async def verified(self, conv_id: str) -> set[str]:
        """Every order the guest of this conversation proved to own."""
        return {str(o) for o in await self.redis.smembers(keys.access_verified(conv_id))}

    async def fail(self, conv_id: str, order_id: str) -> Failure:
        """Count a wrong factor, for the conversation and for the order: the tries left (0: locked now)."""
        count, scope = await self._fail(
            keys=[
                keys.access_failures(conv_id, order_id),
                keys.access_lock(conv_id, order_id),
                keys.access_challenge(conv_id),
                keys.access_order_failures(order_id),
                keys.access_order_lock(order_id),
            ],
            args=[self.policy.max_failures, self.policy.lock_seconds, self.policy.order_max_failures],
        )
        return Failure(max(0, self.policy.max_failures - int(count)), locked_for_everyone=int(scope) == 2)

    async def is_locked(self, conv_id: str, order_id: str) -> bool:
        """Whether too many wrong factors locked the order for this conversation (its own, or every guest's)."""
        return bool(await self.redis.exists(keys.access_lock(conv_id, order_id), keys.access_order_lock(order_id)))

    # --- changes waiting for the customer ---

    async def propose(self, conv_id: str, change: PendingChange) -> None:
        """Record a change that waits for the customer's next message (an address, or a confirmation)."""
        fields = {"kind": change.kind, "order_id": change.order_id, "detail": change.detail[:2000]}
        await self._replace(
            conv_id, keys.pending_change(conv_id), fields, keys.CHANGE_TTL_SECONDS, keys.access_challenge(conv_id)
        )

    async def pending(self, conv_id: str) -> PendingChange | None:
        """The change waiting for the customer, if any."""
        return _pending(await self.redis.hgetall(keys.pending_change(conv_id)))

    async def take_pending(self, conv_id: str) -> PendingChange | None:
        """The waiting change, removed at once, so that one confirmation performs it once."""
        key = keys.pending_change(conv_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hgetall(key)
            pipe.delete(key)
            raw, _ = await pipe.execute()
        if not raw or not raw.get("kind"):
            return None
        return PendingChange(raw["kind"], raw.get("order_id", ""), raw.get("detail", ""))


# The statuses in which each change makes sense (checked again inside the CRM transaction that makes it).
CANCELLABLE = frozenset({OrderStatus.PAID})
ADDRESS_CHANGEABLE = frozenset({OrderStatus.PAID})
REPAIRABLE = frozenset({OrderStatus.DELIVERED})


def _challenge(raw: dict[str, str]) -> Challenge | None:
    if not raw or not raw.get("order_id"):
        return None
    return Challenge(raw["order_id"], raw.get("action", ""), raw.get("question", ""))


def _pending(raw: dict[str, str]) -> PendingChange | None:
    if not raw or not raw.get("kind"):
        return None
    return PendingChange(raw["kind"], raw.get("order_id", ""), raw.get("detail", ""))
