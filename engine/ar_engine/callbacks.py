"""Slim callbacks: the app's NLG and action endpoints are sent what they read, not the whole conversation.

Rasa posts `tracker.current_state(EventVerbosity.ALL)` in every NLG request and every custom-action call:
each event serialised, sent and parsed again by the app (20 KB at turn 4, 144 KB at turn 40 before the
tracker window), and every action call also carries the whole domain (4 KB).

- **NLG** (`nlg_request`): the app's NLG reads only the slots and the metadata of the latest customer
  message (`bot/engine/nlg.py`). The body keeps the state (slots, latest message, active loop, …) and, as
  `events`, only the latest `user` event.
- **Actions** (`action_call`): the app's actions read the slots, the latest message, the metadata of the
  latest customer message, the intents the customer had and the bot's last texts (`actions/`). The body
  keeps the state; `events` keeps the conversation's customer messages (the latest whole, earlier ones
  with their text, intent and entities), the bot's texts and session starts and restarts, and drops
  action, slot and policy bookkeeping. The domain is named by its digest (rasa-sdk's `domain_digest`)
  instead of being sent: the executor keeps the last domain it was sent, and answers 449 when it has none
  or another one (a new app process, another replica, a new model). Then the call is made once more with
  the domain (`run` below), before the action has run, so nothing happens twice.
"""

from __future__ import annotations

import functools
import hashlib
import json
from contextvars import ContextVar
from typing import Any

from rasa.shared.core.domain import Domain
from rasa.shared.core.events import BotUttered, Event, Restarted, SessionStarted, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker, EventVerbosity

# rasa-sdk's status for "send the domain again" (rasa_sdk.endpoint: ActionMissingDomainException).
MISSING_DOMAIN = 449
_with_domain: ContextVar[bool] = ContextVar("ar_action_call_with_domain", default=False)
_digests: dict[int, tuple[Domain, str]] = {}


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


def domain_digest(domain: Domain) -> str:
    """A digest of the domain as the app's executor receives it, computed once per domain object."""
    cached = _digests.get(id(domain))
    if cached is not None and cached[0] is domain:
        return cached[1]
    text = json.dumps(domain.as_dict(), sort_keys=True, ensure_ascii=False, default=str)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    if len(_digests) > 8:  # models replaced over a long run: forget the old domains
        _digests.clear()
    _digests[id(domain)] = (domain, digest)
    return digest


def _earlier_user(event: UserUttered) -> dict[str, Any]:
    """A customer message before the latest: its text, intent and entities (no ranking, no metadata)."""
    parse = event.parse_data or {}
    intent = parse.get("intent") or {}
    return {
        "event": UserUttered.type_name,
        "timestamp": event.timestamp,
        "text": event.text,
        "parse_data": {
            "intent": {"name": intent.get("name"), "confidence": intent.get("confidence")},
            "entities": parse.get("entities") or [],
            "text": event.text,
        },
        "input_channel": event.input_channel,
        "message_id": event.message_id,
    }


def action_events(events: list[Event]) -> list[dict[str, Any]]:
    """The events an action call carries (see the module's docstring)."""
    latest_user = next((i for i in range(len(events) - 1, -1, -1) if isinstance(events[i], UserUttered)), -1)
    out: list[dict[str, Any]] = []
    for i, event in enumerate(events):
        if isinstance(event, UserUttered):
            out.append(event.as_dict() if i == latest_user else _earlier_user(event))
        elif isinstance(event, BotUttered):
            out.append({"event": BotUttered.type_name, "timestamp": event.timestamp, "text": event.text})
        elif isinstance(event, (SessionStarted, Restarted)):
            out.append(event.as_dict())
    return out


def action_call(action: Any, tracker: DialogueStateTracker, domain: Domain) -> dict[str, Any]:
    """The body of a custom-action call, as `RemoteAction._action_call_format` builds it, slimmed."""
    import rasa

    state = tracker.current_state(EventVerbosity.NONE)
    state["events"] = action_events(list(tracker.events))
    body: dict[str, Any] = {
        "next_action": action.name(),
        "sender_id": tracker.sender_id,
        "tracker": state,
        "version": rasa.__version__,
        "domain_digest": domain_digest(domain),
    }
    if _with_domain.get():
        body["domain"] = domain.as_dict()
    return body


def _missing_domain(exc: BaseException) -> bool:
    cause = exc.__cause__
    return getattr(cause, "status", None) == MISSING_DOMAIN


def install() -> None:
    """Make Rasa's callback NLG and remote actions build their requests with the functions above."""
    from rasa.core.actions.action import RemoteAction
    from rasa.core.nlg import callback
    from rasa.shared.exceptions import RasaException

    callback.nlg_request_format = nlg_request  # type: ignore[assignment]  # same signature, smaller body
    original_run = RemoteAction.run
    if getattr(original_run, "_ar_callbacks", False):
        return

    @functools.wraps(original_run)
    async def run(self: RemoteAction, *args: Any, **kwargs: Any) -> list[Event]:
        try:
            return await original_run(self, *args, **kwargs)
        except RasaException as exc:
            if not _missing_domain(exc):
                raise
        token = _with_domain.set(True)  # the executor has another domain or none: once more, with it
        try:
            return await original_run(self, *args, **kwargs)
        finally:
            _with_domain.reset(token)

    run._ar_callbacks = True  # type: ignore[attr-defined]
    RemoteAction.run = run  # type: ignore[method-assign]
    RemoteAction._action_call_format = lambda self, tracker, domain: action_call(self, tracker, domain)  # type: ignore[method-assign]
