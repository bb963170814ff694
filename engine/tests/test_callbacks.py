"""Slim callbacks: NLG requests carry the state and the latest customer message; action calls carry the
customer's messages and the bot's texts, and name the domain by digest until the executor asks for it."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from aiohttp import web
from rasa.core.actions.action import RemoteAction
from rasa.core.channels.channel import CollectingOutputChannel
from rasa.core.nlg import TemplatedNaturalLanguageGenerator, callback
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, Restarted, SessionStarted, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.exceptions import RasaException
from rasa.utils.endpoints import EndpointConfig

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


# --- custom-action calls ---------------------------------------------------------------------------------


def _domain() -> Domain:
    return Domain.from_dict({"intents": ["order_status"], "actions": ["action_order_status"], "slots": {}})


def test_an_action_call_carries_the_messages_and_texts_not_the_bookkeeping_nor_the_domain() -> None:
    tracker = _tracker(40)
    domain = _domain()
    action = RemoteAction("action_order_status", None)
    stock = RemoteAction._action_call_format(action, tracker, domain)
    slim = callbacks.action_call(action, tracker, domain)
    assert "domain" in stock and "domain" not in slim
    assert slim["domain_digest"] == callbacks.domain_digest(domain) == callbacks.domain_digest(_domain())
    for key in ("next_action", "sender_id", "version"):
        assert slim[key] == stock[key]
    assert set(slim["tracker"]) == set(stock["tracker"])
    for key in ("slots", "latest_message", "latest_event_time", "latest_action_name", "paused"):
        assert slim["tracker"][key] == stock["tracker"][key]
    events = slim["tracker"]["events"]
    assert [e["event"] for e in events] == ["user", "bot"] * 40
    users = [e for e in events if e["event"] == "user"]
    stock_users = [e for e in stock["tracker"]["events"] if e["event"] == "user"]
    assert users[-1] == stock_users[-1]  # the latest whole, metadata included
    assert [u["parse_data"]["intent"]["name"] for u in users] == ["order_status"] * 40
    assert [u["text"] for u in users] == [u["text"] for u in stock_users]
    assert "metadata" not in users[0] and "intent_ranking" not in users[0]["parse_data"]
    assert [e["text"] for e in events if e["event"] == "bot"] == [f"answer {n}" for n in range(40)]
    assert len(json.dumps(slim)) * 2 < len(json.dumps(stock))  # more with real parse data (rankings)


def test_session_starts_and_restarts_stay_in_order() -> None:
    tracker = DialogueStateTracker("c3", slots=[])
    for event in (SessionStarted(), UserUttered("a"), Restarted(), SessionStarted(), UserUttered("b")):
        tracker.update(event)
    events = callbacks.action_events(list(tracker.events))
    assert [e["event"] for e in events] == ["session_started", "user", "restart", "session_started", "user"]
    assert [e.get("text") for e in events if e["event"] == "user"] == ["a", "b"]


class _Executor:
    """rasa-sdk's domain handling, as its executor does it: the last domain sent is kept by its digest."""

    def __init__(self, fail: int = 0) -> None:
        self.domain: dict[str, Any] | None = None
        self.digest: str | None = None
        self.bodies: list[dict[str, Any]] = []
        self.fail = fail

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.bodies.append(body)
        if self.fail:
            self.fail -= 1
            return web.json_response({"error": "boom"}, status=500)
        if body.get("domain"):
            self.domain, self.digest = body["domain"], body.get("domain_digest")
        elif not self.digest or body.get("domain_digest") != self.digest:
            return web.json_response({"error": "no domain", "action_name": body["next_action"]}, status=449)
        return web.json_response({"events": [{"event": "slot", "name": "seen", "value": len(self.bodies)}]})


async def _serve(executor: _Executor) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_post("/webhooks/actions", executor.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}/webhooks/actions"


@pytest.fixture
def patched(monkeypatch: pytest.MonkeyPatch) -> None:
    """callbacks.install(), undone after the test."""
    monkeypatch.setattr(RemoteAction, "run", RemoteAction.run)
    monkeypatch.setattr(RemoteAction, "_action_call_format", RemoteAction._action_call_format)
    monkeypatch.setattr(callback, "nlg_request_format", callback.nlg_request_format)
    callbacks.install()
    callbacks.install()  # twice: wrapped once


async def _run(url: str, domain: Domain, tracker: DialogueStateTracker) -> list[Any]:
    action = RemoteAction("action_order_status", EndpointConfig(url=url))
    nlg = TemplatedNaturalLanguageGenerator(domain.responses)
    return await action.run(CollectingOutputChannel(), nlg, tracker, domain)


@pytest.mark.usefixtures("patched")
def test_install_swaps_the_builders_rasa_calls() -> None:
    assert callback.nlg_request_format is callbacks.nlg_request
    action = RemoteAction("action_order_status", None)
    assert "domain_digest" in action._action_call_format(_tracker(1), _domain())


@pytest.mark.usefixtures("patched")
def test_the_domain_is_sent_once_when_the_executor_asks_for_it_then_named_by_digest() -> None:
    async def main() -> None:
        executor = _Executor()
        runner, url = await _serve(executor)
        try:
            domain, tracker = _domain(), _tracker(3)
            first = await _run(url, domain, tracker)
            second = await _run(url, domain, tracker)
            other = Domain.from_dict({"intents": ["greet"], "actions": ["action_order_status"]})
            third = await _run(url, other, tracker)  # a new model: its domain is asked for and sent
        finally:
            await runner.cleanup()
        sent = ["domain" in b for b in executor.bodies]
        assert sent == [False, True, False, False, True]
        assert [e.value for e in first + second + third] == [2, 3, 5]  # each action ran once

    asyncio.run(main())


@pytest.mark.usefixtures("patched")
def test_other_failures_are_not_retried() -> None:
    async def main() -> None:
        executor = _Executor(fail=1)
        runner, url = await _serve(executor)
        try:
            with pytest.raises(RasaException):
                await _run(url, _domain(), _tracker(1))
        finally:
            await runner.cleanup()
        assert len(executor.bodies) == 1

    asyncio.run(main())
