"""A stand-in for the engine client where a test is about what happens around the assistant."""

from __future__ import annotations

import asyncio

from bot.engine.contract import EngineReply, HandoffRequest, MessageMetadata, Prediction
from bot.errors import EngineUnavailable


class StubEngine:
    """Answers every message with "answer to: TEXT", after an optional delay; or is down.

    `texts` lists what reached it, in order. "转人工" is answered with a handoff to general agents.
    Every reply carries what the engine "understood": `understood[text]` if a test set it, else a
    confident `inform` (`request_human` for the handoff).
    """

    HANDOFF = "转人工"

    def __init__(self) -> None:
        self.down = False
        self.delay = 0.0
        self.texts: list[str] = []
        self.resets: list[str] = []
        self.understood: dict[str, Prediction] = {}

    @property
    def calls(self) -> int:
        """How many messages reached it."""
        return len(self.texts)

    async def send(self, conversation_id: str, text: str, metadata: MessageMetadata) -> list[EngineReply]:
        """The scripted answer (a handoff for "转人工"); EngineUnavailable while `down`."""
        self.texts.append(text)
        await asyncio.sleep(self.delay)
        if self.down:
            raise EngineUnavailable("stub engine is down")
        if text == self.HANDOFF:
            understood = self.understood.get(text, Prediction("request_human", 0.99))
            handoff = HandoffRequest(reason="requested", skill="general", priority=3, summary="asked for an agent")
            return [
                EngineReply(text="好的，正在为您转接", template="utter_handoff", handoff=handoff, prediction=understood)
            ]
        understood = self.understood.get(text, Prediction("inform", 0.99))
        return [
            EngineReply(text=f"answer to: {text}", template="utter_default", template_version=1, prediction=understood)
        ]

    async def reset(self, conversation_id: str) -> None:
        """Forget the conversation; EngineUnavailable while `down`."""
        if self.down:
            raise EngineUnavailable("stub engine is down")
        self.resets.append(conversation_id)

    async def ready(self) -> bool:
        """Up unless `down`."""
        return not self.down
