"""Event classes by name: the table gives what Rasa's subclass walk gives, for every event type."""

from __future__ import annotations

import pytest
from rasa.shared.core.events import ActionExecuted, Event, SlotSet, UserUttered
from rasa.shared.utils.common import all_subclasses

from ar_engine import event_types


@pytest.fixture(autouse=True)
def installed() -> None:
    event_types.install()


def test_every_event_type_resolves_to_the_class_rasas_walk_finds_first() -> None:
    for cls in all_subclasses(Event):
        assert event_types.resolve_by_type(cls.type_name) is event_types._original(cls.type_name)
    assert Event.resolve_by_type("user") is UserUttered


def test_unknown_names_topic_and_defaults_behave_as_in_rasa() -> None:
    with pytest.raises(ValueError, match="Unknown event name"):
        Event.resolve_by_type("no-such-event")
    assert Event.resolve_by_type("topic") is None
    assert Event.resolve_by_type("no-such-event", SlotSet) is SlotSet


def test_events_round_trip_through_from_parameters() -> None:
    for event in (UserUttered("你好", intent={"name": "greet", "confidence": 1.0}), ActionExecuted("utter_greet")):
        again = Event.from_parameters(event.as_dict())
        assert again == event and type(again) is type(event)
