"""The engine says ready only after the warm-up texts went through the loaded model."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from ar_engine import warmup
from ar_engine.warmup import WarmUp


class FakeAgent:
    def __init__(self, fail: bool = False) -> None:
        self.parsed: list[str] = []
        self.fail = fail

    def is_ready(self) -> bool:
        return True

    async def parse_message(self, text: str) -> dict[str, Any]:
        if self.fail:
            raise RuntimeError("model broken")
        self.parsed.append(text)
        return {}


def test_warm_once_the_model_is_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(warmup, "POLL_SECONDS", 0.01)

    async def main() -> None:
        app = SimpleNamespace(ctx=SimpleNamespace(agent=None))
        warm = WarmUp()
        assert not warm.done
        warm.start(app)
        warm.start(app)  # a second health check does not start a second warm-up
        await asyncio.sleep(0.05)
        assert not warm.done  # still no model
        agent = FakeAgent()
        app.ctx.agent = agent
        for _ in range(100):
            if warm.done:
                break
            await asyncio.sleep(0.01)
        assert warm.done
        assert agent.parsed == list(warmup.TEXTS)
        assert any("DD202405001" in t for t in agent.parsed) and any("請問" in t for t in agent.parsed)

    asyncio.run(main())


def test_a_failed_warm_up_does_not_keep_the_engine_unready(caplog: Any) -> None:
    async def main() -> None:
        warm = WarmUp()
        warm.start(SimpleNamespace(ctx=SimpleNamespace(agent=FakeAgent(fail=True))))
        for _ in range(100):
            if warm.done:
                break
            await asyncio.sleep(0.01)
        assert warm.done

    asyncio.run(main())
    assert "warm-up failed" in caplog.text
