"""The handoff decision as pure functions (run in the engine environment)."""

from __future__ import annotations

import pytest

from ar_engine.handoff import Thresholds, Turn, asks_for_human, consecutive_followups, decide

DEFAULT = Thresholds(followup_limit=3, sentiment_threshold=0.75)


def turns(*intents: str) -> list[Turn]:
    return [Turn(i) for i in intents]


@pytest.mark.parametrize(
    ("intents", "expected"),
    [
        (("order_status",), 0),
        (("order_status", "followup_unresolved"), 1),
        (("order_status", "followup_unresolved", "followup_unresolved", "followup_unresolved"), 3),
        (("order_status", "order_status"), 1),
        (("order_status", "followup_unresolved", "inform", "followup_unresolved"), 2),
        (("order_status", "followup_unresolved", "thank", "followup_unresolved"), 1),
        (("order_status", "followup_unresolved", "refund_status", "followup_unresolved"), 1),
        (("nlu_fallback", "nlu_fallback"), 2),
    ],
)
def test_consecutive_followups(intents: tuple[str, ...], expected: int) -> None:
    assert consecutive_followups(turns(*intents)) == expected


def test_third_followup_hands_off_not_before() -> None:
    history = ["order_status"]
    for n in (1, 2):
        history.append("followup_unresolved")
        assert decide(turns(*history), False, DEFAULT) is None, n
    history.append("followup_unresolved")
    decision = decide(turns(*history), False, DEFAULT)
    assert decision is not None
    assert (decision.reason, decision.skill) == ("followups", "logistics")


def test_limit_is_configuration() -> None:
    history = turns("order_status", "followup_unresolved")
    assert decide(history, False, Thresholds(followup_limit=1)) is not None
    assert decide(history, False, Thresholds(followup_limit=5)) is None


def test_explicit_request_and_vip_priorities() -> None:
    plain = decide(turns("order_status", "request_human"), False, DEFAULT)
    vip = decide(turns("order_status", "request_human"), True, DEFAULT)
    assert plain is not None and vip is not None
    assert plain.reason == vip.reason == "requested"
    assert vip.priority > plain.priority


def test_vip_complaint_is_top_priority_and_anger_hands_off() -> None:
    vip = decide(turns("complaint_delivery"), True, DEFAULT)
    assert vip is not None
    assert (vip.reason, vip.skill, vip.priority) == ("vip_complaint", "complaints", 9)
    assert decide(turns("complaint_delivery"), False, DEFAULT) is None
    angry = decide([Turn("complaint_delivery", sentiment=0.9)], False, DEFAULT)
    assert angry is not None
    assert angry.reason == "sentiment"
    assert angry.priority < 9


def test_an_angry_request_for_a_human_is_requested_with_the_urgency_of_anger() -> None:
    # Issue #10 item 4: the customer asked for a human, so the reason is `requested` (it used to be
    # `sentiment`); the anger keeps the priority it would have had.
    decision = decide([Turn("request_human", sentiment=0.95)], False, DEFAULT)
    calm = decide([Turn("request_human", sentiment=0.1)], False, DEFAULT)
    angry = decide([Turn("order_status", sentiment=0.95)], False, DEFAULT)
    assert decision is not None and calm is not None and angry is not None
    assert decision.reason == calm.reason == "requested"
    assert angry.reason == "sentiment"
    assert decision.priority == angry.priority > calm.priority


@pytest.mark.parametrize(
    "text",
    ["垃圾机器人，气死我了，马上给我转人工！！", "我要人工客服", "let me talk to a human now", "get me a REAL PERSON"],
)
def test_a_message_asking_for_a_person_is_a_request_whatever_its_intent(text: str) -> None:
    assert asks_for_human(text)
    angry = decide([Turn("complaint_service", sentiment=0.95, asks_human=asks_for_human(text))], False, DEFAULT)
    assert angry is not None
    assert angry.reason == "requested"


def test_a_complaint_without_a_request_is_not_one() -> None:
    assert not asks_for_human("你们的客服态度太差了")
    angry = decide([Turn("complaint_service", sentiment=0.95)], False, DEFAULT)
    assert angry is not None and angry.reason == "sentiment"
