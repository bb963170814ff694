"""Rasa still rejects invalid action and NLG responses with the validator built once per schema."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
from jsonschema import Draft202012Validator
from rasa.core.actions.action import RemoteAction
from rasa.core.nlg.callback import CallbackNaturalLanguageGenerator
from rasa.shared.exceptions import RasaException

from ar_engine import validation


@pytest.fixture
def installed(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    checked: list[Any] = []
    real_check = Draft202012Validator.check_schema.__func__  # type: ignore[attr-defined]

    def counting_check(cls: Any, schema: Any, *args: Any, **kwargs: Any) -> None:
        checked.append(schema)
        real_check(cls, schema, *args, **kwargs)

    monkeypatch.setattr(Draft202012Validator, "check_schema", classmethod(counting_check))
    monkeypatch.setattr(validation, "_validators", type(validation._validators)())
    monkeypatch.setattr(jsonschema, "validate", jsonschema.validate)  # undone after the test
    validation.install()
    return checked


def test_nlg_responses_are_validated_and_the_schema_checked_once(installed: list[Any]) -> None:
    validate = CallbackNaturalLanguageGenerator.validate_response
    for _ in range(3):
        assert validate({"text": "您好", "buttons": [{"title": "是", "payload": "/affirm"}]})
    assert validate(None)
    with pytest.raises(RasaException, match="Failed to validate NLG response"):
        validate({"text": 42})
    with pytest.raises(RasaException, match="Failed to validate NLG response"):
        validate({"buttons": "not a list"})
    assert len(installed) == 1


def test_action_results_are_validated_with_rasas_message(installed: list[Any]) -> None:
    action = RemoteAction("action_order_status", None)
    ok = {"events": [{"event": "slot", "name": "order_id", "value": "DD202405001"}], "responses": [{"text": "x"}]}
    assert action._validate_action_result(ok)
    assert action._validate_action_result(ok)
    with pytest.raises(jsonschema.ValidationError, match="Failed to validate Action server response"):
        action._validate_action_result({"events": [{"no_event_key": 1}]})
    with pytest.raises(jsonschema.ValidationError):
        action._validate_action_result({"responses": "text"})
    assert len(installed) == 1


def test_an_invalid_schema_is_still_an_error_and_not_cached(installed: list[Any]) -> None:
    with pytest.raises(jsonschema.SchemaError):
        jsonschema.validate({}, {"type": 12})
    with pytest.raises(jsonschema.SchemaError):
        jsonschema.validate({}, {"type": 12})
    assert validation._validators == {}
    # Options for the validator go to the original function.
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate("x", {"type": "integer"}, Draft202012Validator, format_checker=None)
