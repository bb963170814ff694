"""What actions need from the app (the CRM, thresholds), handed over at start-up, never at import."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from rasa_sdk import Tracker

from bot.access.state import OrderAccess
from bot.crm.directory import AsyncCRM
from bot.crm.records import SHOP_TZ
from bot.crm.repository import CRM
from bot.engine.contract import MessageMetadata


def _shop_today() -> dt.date:
    return dt.datetime.now(SHOP_TZ).date()


@dataclass
class ActionServices:
    """Dependencies of the actions."""

    crm: CRM
    # Guests' second factors and changes waiting for confirmation; without it no guest sees an order and
    # no change can be confirmed.
    access: OrderAccess | None = None
    followup_limit: int = 3
    sentiment_threshold: float = 0.5
    # The shop's calendar day; tests pin it so warranty answers are stable.
    today: Callable[[], dt.date] = field(default=_shop_today)

    @property
    def shop(self) -> AsyncCRM:
        """The CRM as the actions' event loop uses it (its calls run in worker threads)."""
        return AsyncCRM(self.crm)


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


def message_metadata(tracker: Tracker) -> MessageMetadata:
    """Metadata the app attached to the customer's latest message (channel, locale, customer id, VIP), read
    by the wire contract the app writes it with."""
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            return MessageMetadata.from_wire(event.get("metadata"))
    return MessageMetadata.from_wire(None)


def message_locale(tracker: Tracker) -> str:
    """The locale the app resolved for the customer's latest message."""
    return message_metadata(tracker).locale


def latest_text(tracker: Tracker) -> str:
    """The customer's latest message."""
    return str(tracker.latest_message.get("text") or "")


def latest_intent(tracker: Tracker) -> str:
    """Name of the latest classified intent."""
    return str((tracker.latest_message.get("intent") or {}).get("name") or "")
