"""Slim NLG requests: the state and the latest customer message, whatever the conversation's length."""

from __future__ import annotations

import json

from rasa.core.nlg import callback
from rasa.shared.core.events import ActionExecuted, BotUttered, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from ar_engine import callbacks


def _tracker(turns: int) -> DialogueStateTracker:
    tracker = DialogueStateTracker("c1", slots=[])
    tracker.update(SlotSet("order_id", "DD202405001"))
    for n in range(turns):
        tracker.update(
            UserUttered(
                f"message {n}",
                intent={"name": "order_status", "confidence": 0.9},
                metadata={"channel": "rest", "locale": "zh-CN", "n": n},
            )
        )
        tracker.update(ActionExecuted("utter_greet"))
        tracker.update(BotUttered(f"answer {n}"))
        tracker.update(ActionExecuted("action_listen"))
    return tracker


def test_the_body_keeps_what_rasa_sends_but_only_the_latest_customer_message() -> None:
    tracker = _tracker(40)
    stock = callback.nlg_request_format("utter_greet", tracker, "app", response_id=None, order_id="x")
    slim = callbacks.nlg_request("utter_greet", tracker, "app", response_id=None, order_id="x")
    assert {k: v for k, v in slim.items() if k != "tracker"} == {k: v for k, v in stock.items() if k != "tracker"}
    assert set(slim["tracker"]) == set(stock["tracker"])
    for key in ("sender_id", "slots", "latest_message", "latest_event_time", "paused", "latest_action_name"):
        assert slim["tracker"][key] == stock["tracker"][key]
    [event] = slim["tracker"]["events"]
    last_user = [e for e in stock["tracker"]["events"] if e["event"] == "user"][-1]
    assert event == last_user and event["metadata"]["n"] == 39
    assert len(json.dumps(slim)) * 20 < len(json.dumps(stock))


def test_a_tracker_without_a_customer_message_has_no_events() -> None:
    slim = callbacks.nlg_request("utter_greet", DialogueStateTracker("c2", slots=[]), "app")
    assert slim["tracker"]["events"] == []


def test_install_swaps_the_builder_rasa_calls() -> None:
    original = callback.nlg_request_format
    try:
        callbacks.install()
        assert callback.nlg_request_format is callbacks.nlg_request
    finally:
        callback.nlg_request_format = original
