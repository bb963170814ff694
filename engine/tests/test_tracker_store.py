"""The append-only tracker store against a real Redis: what Rasa reads back, what Redis holds."""

from __future__ import annotations

import copy
import json
import warnings
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from conftest import run_with_store
from rasa.core.tracker_store import InMemoryTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    BotUttered,
    Restarted,
    SessionStarted,
    SlotSet,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker

from ar_engine import turns
from ar_engine.tracker_store import AppendOnlyRedisTrackerStore

with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)  # Rasa 3.6 warns about slot auto-fill for any slot
    DOMAIN = Domain.from_yaml(
        """
version: "3.1"
intents: [greet, order_status]
slots:
  order_id:
    type: text
    mappings: [{type: custom}]
  customer_vip:
    type: bool
    mappings: [{type: custom}]
responses:
  utter_greet: [{text: hi}]
"""
    )


Body = Callable[[AppendOnlyRedisTrackerStore], Awaitable[None]]


def run(port: int, body: Body) -> None:
    """Run a test body with a fresh store (its own event loop, an empty database)."""
    run_with_store(
        lambda: AppendOnlyRedisTrackerStore(
            DOMAIN, host="127.0.0.1", port=port, key_prefix="ar", record_exp=3600, max_events=12
        ),
        body,
    )


def _turn(n: int) -> list[Any]:
    return [
        UserUttered(f"message {n}", intent={"name": "order_status", "confidence": 1.0}),
        ActionExecuted("utter_greet"),
        BotUttered(f"answer {n}"),
        ActionExecuted("action_listen"),
    ]


def _dicts(tracker: DialogueStateTracker | None) -> list[dict[str, Any]]:
    assert tracker is not None
    return [e.as_dict() for e in tracker.events]


async def _talk(store: Any, sender: str, turns: int) -> DialogueStateTracker:
    tracker = await store.get_or_create_tracker(sender)
    tracker.update(SlotSet("order_id", "DD202405001"))
    for n in range(turns):
        tracker = await store.get_or_create_tracker(sender)
        for event in _turn(n):
            tracker.update(event)
        await store.save(tracker)
    result: DialogueStateTracker = await store.retrieve_full_tracker(sender)
    return result


def test_only_new_events_are_appended_and_both_keys_expire(redis_port: int) -> None:
    async def body(store: AppendOnlyRedisTrackerStore) -> None:
        tracker = await store.get_or_create_tracker("c1")
        assert await store.red.llen("ar:tracker:c1") == 1  # the initial action_listen
        for event in _turn(0):
            tracker.update(event)
        await store.save(tracker)
        await store.save(tracker)  # nothing new: nothing written
        assert await store.red.llen("ar:tracker:c1") == 5
        again = await store.retrieve("c1")
        assert _dicts(again) == _dicts(tracker)
        assert 0 < await store.red.ttl("ar:tracker:c1") <= 3600
        assert 0 < await store.red.ttl("ar:trackerstate:c1") <= 3600
        assert await store.exists("c1") and not await store.exists("nobody")
        assert list(await store.keys()) == ["c1"]

    run(redis_port, body)


def test_the_full_tracker_matches_rasas_in_memory_store(redis_port: int) -> None:
    async def body(store: AppendOnlyRedisTrackerStore) -> None:
        ours = await _talk(store, "c2", 8)
        theirs = await _talk(InMemoryTrackerStore(DOMAIN), "c2", 8)
        assert [type(e) for e in ours.events] == [type(e) for e in theirs.events]
        assert [json.loads(e)["event"] for e in await store.red.lrange("ar:tracker:c2", 0, -1)] == [
            e["event"] for e in _dicts(ours)
        ]

    run(redis_port, body)


def test_a_long_session_is_read_in_a_window_with_its_state(redis_port: int) -> None:
    async def body(store: AppendOnlyRedisTrackerStore) -> None:
        tracker = await store.get_or_create_tracker("c3")
        tracker.update(SlotSet("order_id", "DD202405001"))
        tracker.update(SlotSet("customer_vip", True))
        await store.save(tracker)
        for n in range(20):
            tracker = await store.retrieve("c3")  # type: ignore[assignment]
            assert tracker.get_slot("order_id") == "DD202405001" and tracker.get_slot("customer_vip") is True
            for event in _turn(n):
                tracker.update(event)
            await store.save(tracker)
        window = await store.retrieve("c3")
        assert window is not None
        assert len(window.events) <= 12 + 2  # the window plus the state events
        assert window.get_slot("order_id") == "DD202405001"
        assert window.latest_message is not None and window.latest_message.text == "message 19"
        full = await store.retrieve_full_tracker("c3")
        assert full is not None and len(full.events) == 1 + 2 + 20 * 4
        assert await store.red.llen("ar:tracker:c3") == 83

    run(redis_port, body)


def test_sessions_and_a_restart(redis_port: int) -> None:
    async def body(store: AppendOnlyRedisTrackerStore) -> None:
        tracker = await store.get_or_create_tracker("c4")
        for event in _turn(0):
            tracker.update(event)
        await store.save(tracker)
        tracker = await store.retrieve("c4")  # type: ignore[assignment]
        for event in [ActionExecuted("action_session_start"), SessionStarted(), *_turn(1)]:
            tracker.update(event)
        await store.save(tracker)
        latest = await store.retrieve("c4")
        assert latest is not None and latest.events[0].as_dict()["name"] == "action_session_start"
        assert len(latest.events) == 6
        full = await store.retrieve_full_tracker("c4")
        assert full is not None and len(full.events) == 11
        # The app's reset on hand back: a restart appended through the HTTP API.
        full.update(Restarted())
        full.update(ActionExecuted("action_listen"))
        await store.save(full)
        after = await store.retrieve("c4")
        assert after is not None and after.latest_message is not None and after.latest_message.text is None

    run(redis_port, body)


def test_a_copy_of_a_tracker_read_from_the_store_appends_too(redis_port: int) -> None:
    async def body(store: AppendOnlyRedisTrackerStore) -> None:
        await _talk(store, "c7", 20)
        tracker = await store.retrieve("c7")
        copied = copy.deepcopy(tracker)
        assert copied is not None
        copied.update(UserUttered("one more"))
        await store.save(copied)
        assert await store.red.llen("ar:tracker:c7") == 1 + 20 * 4 + 1
        full = await store.retrieve_full_tracker("c7")
        assert full is not None and full.events[-1].as_dict()["text"] == "one more"

    run(redis_port, body)


def test_a_tracker_not_read_from_the_store_replaces_it(redis_port: int) -> None:
    async def body(store: AppendOnlyRedisTrackerStore) -> None:
        await _talk(store, "c5", 3)
        replaced = DialogueStateTracker.from_events("c5", _turn(9), DOMAIN.slots)
        await store.save(replaced)
        assert _dicts(await store.retrieve_full_tracker("c5")) == _dicts(replaced)

    run(redis_port, body)


def test_a_tracker_in_rasas_string_format_is_read_then_written_as_a_list(redis_port: int) -> None:
    async def body(store: AppendOnlyRedisTrackerStore) -> None:
        old = DialogueStateTracker.from_events("c6", _turn(0), DOMAIN.slots)
        await store.red.set("ar:tracker:c6", json.dumps(old.as_dialogue().as_dict()))
        tracker = await store.retrieve("c6")
        assert _dicts(tracker) == _dicts(old)
        assert tracker is not None
        tracker.update(UserUttered("again"))
        await store.save(tracker)
        assert await store.red.type("ar:tracker:c6") == "list"
        assert await store.red.llen("ar:tracker:c6") == 5

    run(redis_port, body)


def test_a_turn_whose_endpoints_failed_is_not_saved(redis_port: int) -> None:
    async def body(store: AppendOnlyRedisTrackerStore) -> None:
        tracker = await _talk(store, "c9", 2)
        before = await store.red.lrange("ar:tracker:c9", 0, -1)
        state = await store.red.hgetall("ar:trackerstate:c9")
        tracker = await store.get_or_create_tracker("c9")
        tracker.update(UserUttered("你好", intent={"name": "greet", "confidence": 1.0}))
        tracker.update(ActionExecuted("action_default_fallback"))
        with turns.turn():
            turns.failed("http://app/webhooks/nlg: ClientConnectorError")
            with pytest.raises(turns.TurnFailed):
                await store.save(tracker)
        assert await store.red.lrange("ar:tracker:c9", 0, -1) == before
        assert await store.red.hgetall("ar:trackerstate:c9") == state
        with turns.turn():  # the next try of the message, with the app back
            await store.save(tracker)
        assert await store.red.llen("ar:tracker:c9") == len(before) + 2

    run(redis_port, body)


def test_two_turns_read_at_once_save_one_and_refuse_the_other(redis_port: int) -> None:
    # A turn of over a minute outlives its lock: the app's retry of the message runs a second turn from
    # the same read. The second save must not append beside the first (a message stored twice, slots
    # lost to the last writer): it fails, and the app sends the message again to a fresh read.
    async def body(store: AppendOnlyRedisTrackerStore) -> None:
        await _talk(store, "c10", 2)
        slow = await store.get_or_create_tracker("c10")
        retry = await store.get_or_create_tracker("c10")
        for tracker, slot in ((retry, "DD202405002"), (slow, "DD202405009")):
            tracker.update(UserUttered("DD 到哪了", intent={"name": "order_status", "confidence": 1.0}))
            tracker.update(SlotSet("order_id", slot))
            tracker.update(ActionExecuted("action_listen"))
        with turns.turn():
            await store.save(retry)
        saved = await store.red.lrange("ar:tracker:c10", 0, -1)
        state = await store.red.hgetall("ar:trackerstate:c10")
        with turns.turn(), pytest.raises(turns.TurnFailed):
            await store.save(slow)
        assert await store.red.lrange("ar:tracker:c10", 0, -1) == saved
        assert await store.red.hgetall("ar:trackerstate:c10") == state
        again = await store.retrieve("c10")
        assert again is not None and again.get_slot("order_id") == "DD202405002"
        # An expired list is not re-created as a tracker without its beginning either.
        await store.red.delete("ar:tracker:c10")
        for event in _turn(5):
            again.update(event)
        with turns.turn(), pytest.raises(turns.TurnFailed):
            await store.save(again)
        assert not await store.red.exists("ar:tracker:c10")

    run(redis_port, body)
