"""The wire contract between the app and the Rasa engine, in one typed module used by both sides.

Three things cross the process boundary:

- the app sends each customer message with `MessageMetadata` (channel, locale, customer, VIP);
  actions and the NLG endpoint read it back from the tracker's latest user event;
- the app's NLG endpoint answers Rasa with a rendered reply (`EngineReply.to_wire`): Rasa's own
  `text` and `buttons` plus the template name, version, format and HTML twin under `ar_*` keys,
  which the engine's `AppInput` channel passes through untouched;
- `action_handoff` attaches a `HandoffRequest` as the message's `custom` payload;
- the NLG endpoint adds what the engine understood of the customer's message (`Prediction`: intent,
  confidence, whether the fallback classifier took over) from the tracker Rasa sends with the request,
  so that the app learns it with every rendered reply at no extra cost. An engine or app of an older
  version simply sends or finds no prediction.

The engine client turns what the engine returns into `EngineReply` values with `EngineReply.from_wire`;
nothing else reads or writes these keys.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

TEMPLATE = "ar_template"
TEMPLATE_VERSION = "ar_template_version"
TEXT_FORMAT = "ar_format"
HTML = "ar_html"
CUSTOM = "custom"
HANDOFF = "handoff"
INTENT = "ar_intent"
CONFIDENCE = "ar_confidence"
FALLBACK = "ar_fallback"
# The intent Rasa's FallbackClassifier predicts when no intent is confident enough.
FALLBACK_INTENT = "nlu_fallback"


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
class Prediction:
    """What the engine understood of a customer message: its best intent and that intent's confidence.

    With `fallback`, Rasa's FallbackClassifier found no intent confident enough; `intent` and
    `confidence` are then those of the best real intent it set aside.
    """

    intent: str
    confidence: float
    fallback: bool = False

    def to_wire(self) -> dict[str, Any]:
        """The keys a reply carries the prediction in."""
        return {INTENT: self.intent, CONFIDENCE: self.confidence, FALLBACK: self.fallback}

    @classmethod
    def from_wire(cls, message: dict[str, Any]) -> Prediction | None:
        """The prediction a reply carries, or None (an older engine, a reply without one, bad values)."""
        intent = message.get(INTENT)
        confidence = _confidence(message.get(CONFIDENCE))
        if not isinstance(intent, str) or not intent or confidence is None:
            return None
        return cls(intent=intent, confidence=confidence, fallback=message.get(FALLBACK) is True)

    @classmethod
    def from_parse_data(cls, parse_data: object) -> Prediction | None:
        """The prediction in Rasa's parse data of a message (a tracker's `latest_message`)."""
        if not isinstance(parse_data, dict):
            return None
        best = parse_data.get("intent")
        if not isinstance(best, dict) or not best.get("name"):
            return None
        if best["name"] != FALLBACK_INTENT:
            confidence = _confidence(best.get("confidence"))
            return cls(str(best["name"]), confidence) if confidence is not None else None
        for ranked in parse_data.get("intent_ranking") or []:
            if isinstance(ranked, dict) and ranked.get("name") and ranked["name"] != FALLBACK_INTENT:
                return cls(str(ranked["name"]), _confidence(ranked.get("confidence")) or 0.0, fallback=True)
        return cls(FALLBACK_INTENT, _confidence(best.get("confidence")) or 0.0, fallback=True)


def _confidence(value: object) -> float | None:
    """A confidence between 0 and 1, or None for anything else (booleans included)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if 0.0 <= number <= 1.0 else None


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
    prediction: Prediction | None = None

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
        if self.prediction is not None:
            wire.update(self.prediction.to_wire())
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
            prediction=Prediction.from_wire(message),
        )


def prediction_of(replies: Sequence[EngineReply]) -> Prediction | None:
    """What the engine understood of the message these replies answer (the first reply that says)."""
    return next((r.prediction for r in replies if r.prediction is not None), None)
