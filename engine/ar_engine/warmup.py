"""Warm-up before the engine says it is ready: the first parses load jieba's dictionary and TensorFlow.

Without it the first customer after "ready" waits 3-12 s. The engine's health route (ar_engine.channel)
answers 503 until these texts, one per script the shop serves, have gone through the NLU pipeline.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

logger = logging.getLogger(__name__)

TEXTS = ("你好，我的订单DD202405001到哪了？", "請問退貨要怎麼辦理？", "Where is my order DD202405002?", "谢谢")
POLL_SECONDS = 0.2


class WarmUp:
    """Parses the warm-up texts once, as soon as Rasa's agent has loaded its model."""

    def __init__(self, texts: tuple[str, ...] = TEXTS) -> None:
        self.texts = texts
        self._task: asyncio.Task[None] | None = None

    @property
    def done(self) -> bool:
        """Whether the warm-up has finished (a failed one counts: it must not keep the engine unready)."""
        return self._task is not None and self._task.done()

    def start(self, app: Any) -> None:
        """Start the warm-up for a Sanic app that Rasa gives an agent (`app.ctx.agent`); once."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(app))

    async def _run(self, app: Any) -> None:
        while True:
            agent = getattr(app.ctx, "agent", None)
            if agent is not None and agent.is_ready():
                break
            await asyncio.sleep(POLL_SECONDS)
        try:
            for text in self.texts:
                await agent.parse_message(text)
        except Exception:  # a warm-up is an optimisation: a failure is logged, the engine still serves
            logger.exception("engine warm-up failed; the first messages will be slower")
