"""What actions need from the app (the CRM, thresholds), handed over at start-up, never at import."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rasa_sdk import Tracker

from bot.crm import CRM


@dataclass
class ActionServices:
    """Dependencies of the actions."""

    crm: CRM
    followup_limit: int = 3
    sentiment_threshold: float = 0.75


_services: ActionServices | None = None


def configure(services: ActionServices) -> None:
    """Called once by the app before it serves the action endpoint."""
    global _services
    _services = services


def services() -> ActionServices:
    """The configured services; an action running before start-up is a programming error."""
    if _services is None:
        raise RuntimeError("actions.deps.configure() was not called: start the app with `autoresponder up`")
    return _services


def message_metadata(tracker: Tracker) -> dict[str, Any]:
    """Metadata the app attached to the customer's latest message (channel, locale, customer id)."""
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            meta = event.get("metadata") or {}
            return meta if isinstance(meta, dict) else {}
    return {}


def latest_intent(tracker: Tracker) -> str:
    """Name of the latest classified intent."""
    return str((tracker.latest_message.get("intent") or {}).get("name") or "")
