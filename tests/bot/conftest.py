"""Fixtures for the in-process app: its object graph from the composition root with a stub engine."""

from __future__ import annotations

import pytest

from bot.crm.repository import CRM
from bot.web.container import Container
from tests.conftest import TextRedis, in_process
from tests.fakes.engine import StubEngine


@pytest.fixture
def engine() -> StubEngine:
    """An engine that answers "answer to: <text>" and can be told to fail (see tests/fakes/engine.py)."""
    return StubEngine()


@pytest.fixture
def app(redis: TextRedis, crm: CRM, engine: StubEngine) -> Container:
    """The app on the tests' Redis and CRM with the stub engine."""
    return in_process(redis, crm, engine)
