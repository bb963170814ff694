"""The review list: customer messages the assistant may have misunderstood, masked, for an admin to label.

A message comes in when the engine answered it with low confidence (`low_confidence`) or through the
fallback (`fallback`), or when the customer's next message says the answer did not help: a follow-up
(`follow_up`) or a handoff (`handoff`) brings in the message that was answered. Only masked text is
kept (`bot.masking`); identical masked texts are one entry with a count. The list lives in Redis,
capped and expiring (`bot.keys`); an admin's decision (an intent, or dismissed) removes the entry,
and an assigned intent adds the example to the reviewed training data (`bot.desk.reviewed`).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from bot import keys
from bot.conversations.ports import Answered, AnswerListener
from bot.crm.records import CustomerInfo
from bot.desk.reviewed import ReviewedExamples
from bot.engine.contract import Prediction, prediction_of
from bot.errors import AutoresponderError, BadInput
from bot.masking import mask

# Messages that say the previous answer did not help: the previous message is the one to review.
FOLLOW_UP_INTENT = "followup_unresolved"
REQUEST_HUMAN_INTENT = "request_human"


class Reason(StrEnum):
    """Why a message is in the review list."""

    LOW_CONFIDENCE = "low_confidence"
    FALLBACK = "fallback"
    FOLLOW_UP = "follow_up"
    HANDOFF = "handoff"


class ReviewItemNotFound(AutoresponderError):
    """No entry with that id in the review list (decided by someone else, or expired)."""


@dataclass(frozen=True)
class Sighting:
    """One masked message seen with its prediction, as the list records it."""

    text: str
    locale: str
    channel: str
    intent: str
    confidence: float
    conversation_id: str

    def fields(self) -> dict[str, str]:
        """As the hashes keep it."""
        return {
            "text": self.text,
            "locale": self.locale,
            "channel": self.channel,
            "intent": self.intent,
            "confidence": f"{self.confidence:.4f}",
            "conversation_id": self.conversation_id,
        }

    @classmethod
    def from_fields(cls, raw: dict[str, str]) -> Sighting:
        """Read back from a hash."""
        return cls(
            text=raw.get("text", ""),
            locale=raw.get("locale", ""),
            channel=raw.get("channel", ""),
            intent=raw.get("intent", ""),
            confidence=float(raw.get("confidence") or 0.0),
            conversation_id=raw.get("conversation_id", ""),
        )


@dataclass(frozen=True)
class ReviewItem:
    """An entry of the list: the latest sighting of a masked text, why it came in, how often, since when."""

    id: str
    seen: Sighting
    reasons: tuple[Reason, ...]
    count: int
    first_at: float
    last_at: float

    def to_json(self) -> dict[str, Any]:
        """As the API shows it."""
        return {
            "id": self.id,
            "text": self.seen.text,
            "locale": self.seen.locale,
            "channel": self.seen.channel,
            "intent": self.seen.intent,
            "confidence": round(self.seen.confidence, 4),
            "reasons": [str(r) for r in self.reasons],
            "count": self.count,
            "first_at": self.first_at,
            "last_at": self.last_at,
            "conversation_id": self.seen.conversation_id,
        }


@dataclass(frozen=True)
class ReviewPage:
    """A page of the list, newest first, and the offset of the next page (None on the last)."""

    items: list[ReviewItem]
    total: int
    next_offset: int | None


def item_id(masked: str) -> str:
    """An entry's id: the digest of its masked text, whitespace-normalised (identical texts are one entry)."""
    return hashlib.sha256(" ".join(masked.split()).encode("utf-8", "surrogatepass")).hexdigest()[:24]


class ReviewQueue:
    """The list in Redis: record sightings, read pages, and take an admin's decision."""

    def __init__(
        self, redis: Any, examples: ReviewedExamples, *, max_items: int = 2000, ttl: int = keys.REVIEW_TTL_SECONDS
    ) -> None:
        self.redis = redis
        self.examples = examples
        self.max_items = max_items
        self.ttl = ttl

    async def record(self, seen: Sighting, *reasons: Reason, now: float | None = None) -> str | None:
        """Add a sighting, for one or more reasons (or count it on the entry of the same text); None if
        it was decided lately."""
        now = time.time() if now is None else now
        if not reasons:  # most answers: nothing to record, no round trip
            return None
        found = item_id(seen.text)
        decided = await self.redis.zscore(keys.review_decided(), found)
        if decided is not None and now - float(decided) < self.ttl:
            return None
        key = keys.review_item(found)
        flags = {f"reason:{reason}": "1" for reason in reasons}
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hsetnx(key, "first_at", repr(now))
            pipe.hset(key, mapping={**seen.fields(), "last_at": repr(now), **flags})
            pipe.hincrby(key, "count", 1)
            pipe.expire(key, self.ttl)
            for index in (keys.review_items(), *(keys.review_reason(reason) for reason in reasons)):
                pipe.zadd(index, {found: now})
                pipe.expire(index, self.ttl)
            await pipe.execute()
        await self._trim()
        return found

    async def _trim(self) -> None:
        """Drop the entries seen longest ago past the cap."""
        excess = int(await self.redis.zcard(keys.review_items())) - self.max_items
        if excess > 0:
            await self._forget(list(await self.redis.zrange(keys.review_items(), 0, excess - 1)))

    async def _forget(self, ids: Sequence[str]) -> None:
        if not ids:
            return
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zrem(keys.review_items(), *ids)
            for reason in Reason:
                pipe.zrem(keys.review_reason(reason), *ids)
            pipe.delete(*(keys.review_item(i) for i in ids))
            await pipe.execute()

    async def page(self, reason: Reason | None = None, offset: int = 0, limit: int = 50) -> ReviewPage:
        """Entries seen most recently first, optionally only those that came in for `reason`."""
        index = keys.review_reason(reason) if reason else keys.review_items()
        total = int(await self.redis.zcard(index))
        ids = list(await self.redis.zrevrange(index, offset, offset + limit - 1))
        async with self.redis.pipeline(transaction=False) as pipe:
            for i in ids:
                pipe.hgetall(keys.review_item(i))
            found: list[dict[str, str]] = await pipe.execute()
        items = [_item(i, raw) for i, raw in zip(ids, found, strict=True) if raw]
        expired = [i for i, raw in zip(ids, found, strict=True) if not raw]
        await self._forget(expired)  # their hashes expired: the indexes follow
        total -= len(expired)
        more = offset + len(ids) < total + len(expired)
        return ReviewPage(items=items, total=total, next_offset=offset + limit if more else None)

    async def get(self, found: str) -> ReviewItem:
        """One entry; ReviewItemNotFound when there is none."""
        raw: dict[str, str] = await self.redis.hgetall(keys.review_item(found))
        if not raw:
            raise ReviewItemNotFound(f"no review entry {found}: decided already or expired; reload the list")
        return _item(found, raw)

    async def assign(self, found: str, intent: str) -> ReviewItem:
        """Label the entry with `intent`: its text joins the reviewed examples, and it leaves the list."""
        item = await self.get(found)
        if intent not in self.examples.intents:
            raise BadInput(
                "unknown_intent", f"unknown intent {intent!r}: choose one of {', '.join(sorted(self.examples.intents))}"
            )
        await self.examples.add(intent, item.seen.text)
        await self._decided(found)
        return item

    async def dismiss(self, found: str) -> ReviewItem:
        """Take the entry off the list without an example (nothing to learn from it)."""
        item = await self.get(found)
        await self._decided(found)
        return item

    async def _decided(self, found: str) -> None:
        now = time.time()
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zadd(keys.review_decided(), {found: now})
            pipe.zremrangebyscore(keys.review_decided(), 0, now - self.ttl)
            pipe.expire(keys.review_decided(), self.ttl)
            await pipe.execute()
        await self._forget([found])

    async def remember(self, conv_id: str, seen: Sighting) -> None:
        """Keep a conversation's latest understood message, for a follow-up or handoff after it."""
        key = keys.review_last(conv_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(key)
            pipe.hset(key, mapping=seen.fields())
            pipe.expire(key, keys.REVIEW_LAST_TTL_SECONDS)
            await pipe.execute()

    async def previous(self, conv_id: str) -> Sighting | None:
        """The conversation's latest understood message before this one, if it is recent."""
        raw: dict[str, str] = await self.redis.hgetall(keys.review_last(conv_id))
        return Sighting.from_fields(raw) if raw else None


def _item(found: str, raw: dict[str, str]) -> ReviewItem:
    reasons = tuple(r for r in Reason if raw.get(f"reason:{r}"))
    return ReviewItem(
        id=found,
        seen=Sighting.from_fields(raw),
        reasons=reasons,
        count=int(raw.get("count") or 0),
        first_at=float(raw.get("first_at") or 0.0),
        last_at=float(raw.get("last_at") or 0.0),
    )


def _known_names(customer: CustomerInfo | None) -> list[str]:
    if customer is None:
        return []
    return [customer.surname + customer.given_name, customer.given_name]


class ReviewListener(AnswerListener):
    """Brings the messages worth a look into the review list as the engine answers them."""

    def __init__(self, queue: ReviewQueue, threshold: float) -> None:
        self.queue = queue
        self.threshold = threshold

    async def answered(self, answered: Answered) -> None:
        """Record the message (low confidence, fallback), or the one before it (follow-up, handoff)."""
        prediction = prediction_of(answered.replies)
        if prediction is None:  # an engine that does not say what it understood
            return
        conv = answered.turn.conversation
        seen = Sighting(
            text=mask(answered.text, _known_names(answered.turn.customer)),
            locale=conv.locale or "",
            channel=conv.channel,
            intent=prediction.intent,
            confidence=prediction.confidence,
            conversation_id=conv.id,
        )
        says_unhelped = prediction.intent in (FOLLOW_UP_INTENT, REQUEST_HUMAN_INTENT) and not prediction.fallback
        previous = await self.queue.previous(conv.id) if says_unhelped else None
        current = self._reasons(prediction)
        earlier: list[Reason] = []
        if prediction.intent == FOLLOW_UP_INTENT and previous is not None:
            earlier.append(Reason.FOLLOW_UP)
        if answered.handoff is not None:
            (earlier if says_unhelped else current).append(Reason.HANDOFF)
        # One sighting per message and turn, however many reasons it has: the count counts messages.
        await self.queue.record(seen, *current)
        if previous is not None:
            await self.queue.record(previous, *earlier)
        if not says_unhelped:
            await self.queue.remember(conv.id, seen)

    def _reasons(self, prediction: Prediction) -> list[Reason]:
        if prediction.fallback:
            return [Reason.FALLBACK]
        return [Reason.LOW_CONFIDENCE] if prediction.confidence < self.threshold else []
