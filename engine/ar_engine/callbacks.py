"""Slim NLG callbacks: the app's NLG endpoint is sent the tracker's state and the latest customer message,
not every event of the conversation.

Rasa's `CallbackNaturalLanguageGenerator` posts `tracker.current_state(EventVerbosity.ALL)` for every
response it asks for: each event serialised, sent and parsed again by the app (20 KB at turn 4, 144 KB
at turn 40 before the tracker window), while the app's NLG reads only the slots and the metadata of the
latest customer message (`bot/engine/nlg.py`). `install()` swaps the module's request builder for one
that keeps the state (slots, latest message, active loop, …) and, as `events`, only the latest `user`
event. Custom actions still get the whole tracker (they count follow-ups in it) and the domain (rasa-sdk's
executor refuses a call without one, since Rasa 3.6 sends no domain digest).
"""

from __future__ import annotations

from typing import Any

from rasa.shared.core.events import UserUttered
from rasa.shared.core.trackers import DialogueStateTracker, EventVerbosity


def nlg_request(utter_action: str, tracker: DialogueStateTracker, output_channel: str, **kwargs: Any) -> dict[str, Any]:
    """The body of an NLG request, as Rasa's `nlg_request_format` builds it but with one event."""
    state = tracker.current_state(EventVerbosity.NONE)
    latest_user = next((e for e in reversed(tracker.events) if isinstance(e, UserUttered)), None)
    state["events"] = [latest_user.as_dict()] if latest_user is not None else []
    response_id = kwargs.pop("response_id", None)
    return {
        "response": utter_action,
        "id": response_id,
        "arguments": kwargs,
        "tracker": state,
        "channel": {"name": output_channel},
    }


def install() -> None:
    """Make Rasa's callback NLG build its requests with `nlg_request`."""
    from rasa.core.nlg import callback

    callback.nlg_request_format = nlg_request  # type: ignore[assignment]  # same signature, smaller body
