"""The conversation model: modes, skills, handoffs, conversations and transcript entries."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class Mode(StrEnum):
    """Who answers the customer: the bot, nobody yet (waiting for an agent), or an agent."""

    BOT = "bot"
    WAITING = "waiting"
    AGENT = "agent"


class Skill(StrEnum):
    """The agent queues a handoff can go to."""

    LOGISTICS = "logistics"
    AFTER_SALES = "after_sales"
    BILLING = "billing"
    COMPLAINTS = "complaints"
    GENERAL = "general"

    @classmethod
    def parse(cls, value: object) -> Skill:
        """The skill a value names; anything unknown goes to the general queue."""
        try:
            return cls(str(value))
        except ValueError:
            return cls.GENERAL


SKILLS: tuple[Skill, ...] = tuple(Skill)
# Higher priority first, then longest wait: score = (MAX_PRIORITY - priority) * 1e10 + queued_at.
MAX_PRIORITY = 9

# A transcript line's seq as a client may send it back: a Redis stream id (`is_seq`).
_SEQ_MAX = 2**64 - 1


def is_seq(value: str) -> bool:
    """Whether a client's seq is one Redis can read the transcript after: two unsigned 64-bit numbers, not
    both the largest (anything else makes XRANGE fail, which was a 500 for a stranger's query)."""
    ms, dash, n = value.partition("-")
    if not (dash and 0 < len(ms) <= 20 and 0 < len(n) <= 20 and (ms + n).isascii() and (ms + n).isdigit()):
        return False
    return int(ms) <= _SEQ_MAX and int(n) <= _SEQ_MAX and (int(ms), int(n)) != (_SEQ_MAX, _SEQ_MAX)


_PRIORITY_STRIDE = 1e10


@dataclass
class Handoff:
    """Why and where a conversation waits for an agent, and how its service level is going.

    `due_at` is when an agent's first answer is due (set when the handoff starts); `breached_at` when
    the SLA watcher found it missed, `escalated_at` when it raised the priority for supervisors;
    `first_response_at` when an agent first answered.
    """

    reason: str
    skill: Skill = Skill.GENERAL
    priority: int = 0
    summary: str = ""
    queued_at: float = field(default_factory=time.time)
    due_at: float = 0.0
    first_response_at: float = 0.0
    breached_at: float = 0.0
    escalated_at: float = 0.0

    def public(self) -> dict[str, Any]:
        """The fields the REST contract exposes."""
        return {"reason": self.reason, "skill": self.skill, "priority": self.priority}

    @classmethod
    def from_fields(cls, raw: dict[str, Any]) -> Handoff:
        """Rebuild from a JSON object or a Redis hash (strings); fields written by older versions may be missing."""

        def number(name: str) -> float:
            return float(raw.get(name) or 0)

        return cls(
            reason=str(raw.get("reason") or "requested"),
            skill=Skill.parse(raw.get("skill") or "general"),
            priority=int(raw.get("priority") or 0),
            summary=str(raw.get("summary") or ""),
            queued_at=number("queued_at"),
            due_at=number("due_at"),
            first_response_at=number("first_response_at"),
            breached_at=number("breached_at"),
            escalated_at=number("escalated_at"),
        )

    def queue_score(self) -> float:
        """Sorted-set score: higher priority first, then longest wait."""
        priority = max(0, min(MAX_PRIORITY, self.priority))
        return (MAX_PRIORITY - priority) * _PRIORITY_STRIDE + self.queued_at


@dataclass
class Conversation:
    """A conversation's state as kept in its Redis hash."""

    id: str
    channel: str
    thread_id: str
    customer_id: str | None = None
    mode: Mode = Mode.BOT
    locale: str | None = None
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    handoff: Handoff | None = None
    agent: str | None = None
    # A satisfaction survey sent when an agent handed back: {asked_at, agent, reason, skill}.
    survey: dict[str, Any] | None = None
    # Handed back to the bot, and the engine's dialogue state not reset yet (the engine was down).
    reset_engine: bool = False

    def to_hash(self) -> dict[str, str]:
        """Flatten for HSET; empty strings stand for None."""
        data = asdict(self)
        data["handoff"] = json.dumps(asdict(self.handoff)) if self.handoff else ""
        data["survey"] = json.dumps(self.survey, ensure_ascii=False) if self.survey else ""
        data["reset_engine"] = "1" if self.reset_engine else ""
        return {k: "" if v is None else str(v) for k, v in data.items()}

    @classmethod
    def from_hash(cls, raw: dict[str, str]) -> Conversation:
        """Rebuild from HGETALL output."""
        handoff = Handoff.from_fields(json.loads(raw["handoff"])) if raw.get("handoff") else None
        return cls(
            id=raw["id"],
            channel=raw["channel"],
            thread_id=raw["thread_id"],
            customer_id=raw.get("customer_id") or None,
            mode=Mode(raw.get("mode") or "bot"),
            locale=raw.get("locale") or None,
            created_at=float(raw.get("created_at") or 0),
            updated_at=float(raw.get("updated_at") or 0),
            handoff=handoff,
            agent=raw.get("agent") or None,
            survey=json.loads(raw["survey"]) if raw.get("survey") else None,
            reset_engine=bool(raw.get("reset_engine")),
        )


@dataclass(frozen=True)
class LogEntry:
    """One transcript line; `seq` is the Redis stream id."""

    seq: str
    role: str
    text: str
    ts: float
    buttons: list[dict[str, str]] = field(default_factory=list)
    client_id: str | None = None
    template: str | None = None
    template_version: int | None = None
    agent_name: str | None = None
    html: str | None = None
    text_format: str | None = None  # "html" when `text` is HTML (Telegram replies), else plain text

    def frame(self) -> dict[str, Any]:
        """The web chat / agent console frame for this entry."""
        frame: dict[str, Any] = {
            "type": "message",
            "seq": self.seq,
            "role": self.role,
            "text": self.text,
            "buttons": self.buttons,
            "ts": self.ts,
        }
        if self.client_id:
            frame["client_id"] = self.client_id
        if self.agent_name:
            frame["agent_name"] = self.agent_name
        return frame
