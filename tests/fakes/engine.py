"""A stand-in for the engine client where a test is about what happens around the assistant."""

from __future__ import annotations

import asyncio
from typing import Any

from bot.errors import EngineUnavailable


class StubEngine:
    """Answers every message with "answer to: TEXT", after an optional delay; or is down.

    `texts` lists what reached it, in order. "转人工" is answered with a handoff to general agents.
    """

    HANDOFF = "转人工"

    def __init__(self) -> None:
        self.down = False
        self.delay = 0.0
        self.texts: list[str] = []

    @property
    def calls(self) -> int:
        """How many messages reached it."""
        return len(self.texts)

    async def send(self, conversation_id: str, text: str, metadata: dict[str, Any]) -> list[dict[str, Any]]:
        self.texts.append(text)
        await asyncio.sleep(self.delay)
        if self.down:
            raise EngineUnavailable("stub engine is down")
        if text == self.HANDOFF:
            handoff = {"reason": "requested", "skill": "general", "priority": 3, "summary": "asked for an agent"}
            return [{"text": "好的，正在为您转接", "ar_template": "utter_handoff", "custom": {"handoff": handoff}}]
        return [{"text": f"answer to: {text}", "ar_template": "utter_default", "ar_template_version": 1}]

    async def reset(self, conversation_id: str) -> None:
        return None
