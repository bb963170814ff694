"""Atomic turns: a turn during which the app's action server or NLG endpoint could not be reached is not
saved, and the app is told so (503) and sends the message again later.

Rasa runs custom actions and fetches responses from the app (`action_endpoint`, `nlg`). When one of those
calls fails, Rasa logs the exception, drops the action's events and goes on predicting: the turn ends
with a tracker in a state no story has (a session start without its events, a run of fallbacks) and
with no reply or only part of one, and it is saved so. After an app restart that conversation then
answered nothing, every time. Here every failed call is noted in the turn's context; the engine's
tracker store refuses to save a turn with a failure (`check_save`), so the tracker stays as it was
before the message, and the channel answers 503 instead of a partial reply.

A call the app refused on purpose (a 4xx: an action rejecting its execution, a form's validation) is
part of the dialogue, not a failure.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

_failures: ContextVar[list[str] | None] = ContextVar("ar_turn_failures", default=None)


class TurnFailed(Exception):
    """The turn could not be completed (the app's endpoints failed); nothing of it was saved."""


@contextlib.contextmanager
def turn() -> Iterator[list[str]]:
    """The context of one turn: the list of the endpoint calls that failed during it."""
    failures: list[str] = []
    token = _failures.set(failures)
    try:
        yield failures
    finally:
        _failures.reset(token)


def failed(what: str) -> None:
    """Note a failed endpoint call in the current turn (outside a turn: nothing to note)."""
    failures = _failures.get()
    if failures is not None:
        failures.append(what)


def check_save() -> None:
    """Raise TurnFailed when the current turn had a failed endpoint call (called before saving it)."""
    failures = _failures.get()
    if failures:
        raise TurnFailed("; ".join(failures[:3]))


def transient(exc: BaseException) -> bool:
    """Whether an endpoint call's exception means "try again later" (unreachable, timeout, 5xx)."""
    status = getattr(exc, "status", None)
    return not (isinstance(status, int) and 400 <= status < 500)


def install() -> None:
    """Note every failed request Rasa makes to an endpoint (`EndpointConfig.request`) in the turn."""
    from rasa.utils.endpoints import EndpointConfig

    original = EndpointConfig.request
    if getattr(original, "_ar_turns", False):
        return

    @functools.wraps(original)
    async def request(self: EndpointConfig, *args: Any, **kwargs: Any) -> Any:
        try:
            return await original(self, *args, **kwargs)
        except Exception as exc:
            if transient(exc):
                failed(f"{self.url}: {exc!r}"[:300])
            raise

    request._ar_turns = True  # type: ignore[attr-defined]
    EndpointConfig.request = request  # type: ignore[method-assign]
