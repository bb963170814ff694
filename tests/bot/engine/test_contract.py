"""The app-engine wire contract, both sides: what the NLG endpoint and action_handoff write comes back,
through Rasa's own bot-utterance code and the engine's AppInput channel, as the same typed reply."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest
from rasa_sdk.executor import CollectingDispatcher

import connectors
from actions.handoff import ActionHandoff
from bot.crm.directory import AsyncCRM
from bot.crm.repository import CRM
from bot.engine.contract import EngineReply, HandoffRequest, MessageMetadata, Prediction, prediction_of
from bot.engine.nlg import render_nlg
from bot.settings import PROJECT_ROOT
from bot.templates import TemplateRegistry
from tests.actions.test_orders import tracker

ENGINE_PYTHON = PROJECT_ROOT / "engine" / ".venv" / "bin" / "python"
# Rasa 3.6 builds the bot message from the NLG draft and the action's response (RemoteAction._utter_responses
# and create_bot_utterance), and the engine's AppOutput channel hands it to the app: run exactly that.
THROUGH_THE_ENGINE = """
import asyncio, json, sys
from rasa.core.actions.action import create_bot_utterance
from ar_engine.channel import AppOutput

async def main():
    draft, response = json.load(sys.stdin)
    response = {k: v for k, v in response.items() if v}
    draft.update(response)
    out = AppOutput()
    await out.send_response("conversation", create_bot_utterance(draft).message())
    print(json.dumps(out.messages))

asyncio.run(main())
"""


def through_the_engine(draft: dict[str, Any], response: dict[str, Any]) -> list[dict[str, Any]]:
    if not ENGINE_PYTHON.exists():
        pytest.fail(f"{ENGINE_PYTHON} is missing: run `make setup`")
    proc = subprocess.run(
        [str(ENGINE_PYTHON), "-c", THROUGH_THE_ENGINE],
        input=json.dumps([draft, response]),
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT / "engine",
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    messages: list[dict[str, Any]] = json.loads(proc.stdout.strip().splitlines()[-1])
    return messages


def nlg_body(
    response: str, metadata: MessageMetadata, latest: dict[str, Any] | None = None, **arguments: Any
) -> dict[str, Any]:
    """What Rasa posts to an NLG server (`latest`: the parse data of the customer's message)."""
    events = [{"event": "user", "text": "…", "metadata": metadata.to_wire()}]
    tracker = {"events": events, "slots": {}, "latest_message": latest or {}}
    return {"response": response, "arguments": arguments, "tracker": tracker}


FALLBACK_PARSE = {
    "text": "嗯嗯那个",
    "intent": {"name": "nlu_fallback", "confidence": 0.4},
    "intent_ranking": [
        {"name": "nlu_fallback", "confidence": 0.4},
        {"name": "order_status", "confidence": 0.31},
        {"name": "greet", "confidence": 0.2},
    ],
}


@pytest.fixture(scope="module")
def templates() -> TemplateRegistry:
    return TemplateRegistry.from_dir(PROJECT_ROOT / "responses", strict=True, variants=connectors.variants())


async def test_an_nlg_reply_comes_back_unchanged(templates: TemplateRegistry, crm: CRM) -> None:
    metadata = MessageMetadata(channel="email", locale="zh-TW", customer_id="C202405001", vip=False)
    reply = await render_nlg(templates, AsyncCRM(crm), nlg_body("utter_greet", metadata))
    assert reply.template == "utter_greet" and reply.html  # email replies carry their HTML twin
    [message] = through_the_engine(reply.to_wire(), {})
    assert EngineReply.from_wire(message) == reply


async def test_a_telegram_reply_keeps_its_format_and_buttons(templates: TemplateRegistry, crm: CRM) -> None:
    metadata = MessageMetadata(channel="telegram", locale="en")
    reply = await render_nlg(templates, AsyncCRM(crm), nlg_body("utter_greet", metadata))
    assert reply.text_format == "html" and reply.buttons
    [message] = through_the_engine(reply.to_wire(), {})
    assert EngineReply.from_wire(message) == reply


async def test_the_handoff_action_and_its_reply_arrive_as_one_typed_reply(
    templates: TemplateRegistry, crm: CRM
) -> None:
    dispatcher = CollectingDispatcher()
    slots = {"handoff_reason": "sentiment", "handoff_skill": "complaints", "handoff_priority": 7.0}
    await ActionHandoff().run(dispatcher, tracker("complaint_service", "太差了", slots=slots), {})
    [response] = dispatcher.messages  # what the action server answers Rasa
    metadata = MessageMetadata(channel="webchat", locale="zh-CN")
    draft = await render_nlg(templates, AsyncCRM(crm), nlg_body(response["response"], metadata))
    [message] = through_the_engine(draft.to_wire(), {k: v for k, v in response.items() if k != "response"})
    parsed = EngineReply.from_wire(message)
    assert parsed.handoff is not None
    assert (parsed.handoff.reason, parsed.handoff.skill, parsed.handoff.priority) == ("sentiment", "complaints", 7)
    assert "sentiment" in parsed.handoff.summary
    assert (parsed.text, parsed.template) == (draft.text, "utter_handoff")


def test_metadata_round_trips_and_fills_in_defaults() -> None:
    metadata = MessageMetadata(channel="telegram", locale="zh-TW", customer_id="C202405003", vip=True)
    assert MessageMetadata.from_wire(metadata.to_wire()) == metadata
    assert MessageMetadata.from_wire(None) == MessageMetadata(channel="rest", locale="zh-CN")


def test_malformed_replies_are_read_without_errors() -> None:
    assert EngineReply.from_wire({}) == EngineReply()
    odd = EngineReply.from_wire(
        {"text": 5, "buttons": ["x", {"title": "t"}], "ar_template_version": "v2", "custom": {"handoff": "no"}}
    )
    assert odd.text == "5" and [b.title for b in odd.buttons] == ["t"] and odd.template_version is None
    assert odd.handoff is None
    assert HandoffRequest.from_custom({"handoff": {"priority": "high"}}) == HandoffRequest(reason="requested")


async def test_the_prediction_rides_on_the_nlg_reply_through_the_engine(templates: TemplateRegistry, crm: CRM) -> None:
    metadata = MessageMetadata(channel="webchat", locale="zh-CN")
    latest = {"text": "你好", "intent": {"name": "greet", "confidence": 0.87}, "intent_ranking": []}
    reply = await render_nlg(templates, AsyncCRM(crm), nlg_body("utter_greet", metadata, latest))
    assert reply.prediction == Prediction("greet", 0.87)
    fallback = await render_nlg(templates, AsyncCRM(crm), nlg_body("utter_default", metadata, FALLBACK_PARSE))
    assert fallback.prediction == Prediction("order_status", 0.31, fallback=True)
    messages = [m for r in (reply, fallback) for m in through_the_engine(r.to_wire(), {})]
    assert [EngineReply.from_wire(m) for m in messages] == [reply, fallback]
    assert prediction_of([EngineReply(text="x"), *map(EngineReply.from_wire, messages)]) == reply.prediction


def test_predictions_are_read_leniently() -> None:
    # An older engine (or a reply not rendered by the NLG endpoint) sends none: the reply has none.
    assert EngineReply.from_wire({"text": "hi"}).prediction is None
    assert prediction_of([]) is None
    for bad in (
        {"ar_intent": "greet", "ar_confidence": "high"},
        {"ar_intent": "", "ar_confidence": 0.5},
        {"ar_intent": "greet", "ar_confidence": 1.5},
        {"ar_intent": "greet", "ar_confidence": True},
    ):
        assert Prediction.from_wire(bad) is None, bad
    assert Prediction.from_parse_data(None) is None
    assert Prediction.from_parse_data({"intent": {}}) is None
    only_fallback = {"intent": {"name": "nlu_fallback", "confidence": 0.4}, "intent_ranking": []}
    assert Prediction.from_parse_data(only_fallback) == Prediction("nlu_fallback", 0.4, fallback=True)
