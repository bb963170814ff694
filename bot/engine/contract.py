"""The wire contract between the app and the Rasa engine, in one typed module used by both sides.

Three things cross the process boundary:

- the app sends each customer message with `MessageMetadata` (channel, locale, customer, VIP);
  actions and the NLG endpoint read it back from the tracker's latest user event;
- the app's NLG endpoint answers Rasa with a rendered reply (`EngineReply.to_wire`): Rasa's own
  `text` and `buttons` plus the template name, version, format and HTML twin under `ar_*` keys,
  which the engine's `AppInput` channel passes through untouched;
- `action_handoff` attaches a `HandoffRequest` as the message's `custom` payload.

The engine client turns what the engine returns into `EngineReply` values with `EngineReply.from_wire`;
nothing else reads or writes these keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

TEMPLATE = "ar_template"
TEMPLATE_VERSION = "ar_template_version"
TEXT_FORMAT = "ar_format"
HTML = "ar_html"
CUSTOM = "custom"
HANDOFF = "handoff"


@dataclass(frozen=True)
class MessageMetadata:
    """What the app tells the engine about a customer message."""

    channel: str
    locale: str
    customer_id: str | None = None
    vip: bool = False

    def to_wire(self) -> dict[str, Any]:
        """The `metadata` object of the engine webhook's body."""
        return {"channel": self.channel, "locale": self.locale, "customer_id": self.customer_id, "vip": self.vip}

    @classmethod
    def from_wire(cls, raw: object) -> MessageMetadata:
        """Read metadata back from a tracker event; anything missing gets the shop's defaults."""
        data = raw if isinstance(raw, dict) else {}
        customer = data.get("customer_id")
        return cls(
            channel=str(data.get("channel") or "rest"),
            locale=str(data.get("locale") or "zh-CN"),
            customer_id=str(customer) if customer else None,
            vip=bool(data.get("vip")),
        )


@dataclass(frozen=True)
class HandoffRequest:
    """The engine's decision to hand the conversation to a human: why, to which queue, how urgent."""

    reason: str
    skill: str = "general"
    priority: int = 0
    summary: str = ""

    def to_custom(self) -> dict[str, Any]:
        """The `custom` payload (rasa-sdk's `json_message`) that carries the request."""
        return {
            HANDOFF: {"reason": self.reason, "skill": self.skill, "priority": self.priority, "summary": self.summary}
        }

    @classmethod
    def from_custom(cls, custom: object) -> HandoffRequest | None:
        """The request in a message's `custom` payload, or None when it carries none."""
        raw = custom.get(HANDOFF) if isinstance(custom, dict) else None
        if not isinstance(raw, dict):
            return None
        try:
            priority = int(raw.get("priority") or 0)
        except (TypeError, ValueError):
            priority = 0
        return cls(
            reason=str(raw.get("reason") or "requested"),
            skill=str(raw.get("skill") or "general"),
            priority=priority,
            summary=str(raw.get("summary") or ""),
        )


@dataclass(frozen=True)
class Button:
    """A quick reply: what the customer sees and what is sent back when pressed."""

    title: str
    payload: str


@dataclass(frozen=True)
class EngineReply:
    """One bot message as the engine returns it."""

    text: str = ""
    buttons: tuple[Button, ...] = ()
    template: str | None = None
    template_version: int | None = None
    text_format: str = "text"
    html: str | None = None
    handoff: HandoffRequest | None = None

    def button_dicts(self) -> list[dict[str, str]]:
        """The buttons as the transcript and the channels keep them."""
        return [{"title": b.title, "payload": b.payload} for b in self.buttons]

    def to_wire(self) -> dict[str, Any]:
        """What the NLG endpoint answers Rasa (the handoff travels separately, as `custom`)."""
        wire: dict[str, Any] = {
            "text": self.text,
            "buttons": self.button_dicts(),
            TEMPLATE: self.template,
            TEMPLATE_VERSION: self.template_version,
            TEXT_FORMAT: self.text_format,
        }
        if self.html:
            wire[HTML] = self.html
        if self.handoff is not None:
            wire[CUSTOM] = self.handoff.to_custom()
        return wire

    @classmethod
    def from_wire(cls, message: dict[str, Any]) -> EngineReply:
        """Parse one message of the engine's answer; unknown keys are ignored, bad values dropped."""
        version = message.get(TEMPLATE_VERSION)
        return cls(
            text=str(message.get("text") or ""),
            buttons=tuple(
                Button(title=str(b.get("title", "")), payload=str(b.get("payload", "")))
                for b in message.get("buttons") or []
                if isinstance(b, dict)
            ),
            template=str(message[TEMPLATE]) if message.get(TEMPLATE) else None,
            template_version=int(version) if isinstance(version, int | str) and str(version).isdigit() else None,
            text_format=str(message.get(TEXT_FORMAT) or "text"),
            html=str(message[HTML]) if message.get(HTML) else None,
            handoff=HandoffRequest.from_custom(message.get(CUSTOM)),
        )
