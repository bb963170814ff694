"""/metrics: Prometheus' text format with the product's series, filled by real traffic through the stack;
a metrics token, when set, is required; labels never carry what a caller sent."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.settings import Settings
from bot.web.app import create_app
from tests.conftest import RunningStack


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of an exposition, keyed by name and labels."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
async def guarded(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(var_dir=tmp_path, metrics_token="scrape-secret"), engine_token="unused")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://metrics.test") as c:
        yield c


async def test_a_metrics_token_is_required_when_set(guarded: httpx.AsyncClient) -> None:
    assert (await guarded.get("/metrics")).status_code == 401
    assert (await guarded.get("/metrics", headers={"Authorization": "Bearer wrong"})).status_code == 401
    ok = await guarded.get("/metrics", headers={"Authorization": "Bearer scrape-secret"})
    assert ok.status_code == 200
    assert ok.headers["content-type"].startswith("text/plain")
    assert "process_resident_memory_bytes" in ok.text


@pytest.mark.stack
def test_traffic_shows_in_the_metrics(stack: RunningStack) -> None:
    before = samples(httpx.get(f"{stack.base_url}/metrics", timeout=10).text)
    sender = f"metrics-{uuid.uuid4().hex[:8]}"
    assert stack.rest(sender, "DD202405001 到哪了").status_code == 200
    assert stack.rest(f"{sender}-h", "转人工").status_code == 200
    # A path a stranger made up is counted under one label, not under its own.
    strange = f"/no/such/{uuid.uuid4().hex}"
    assert httpx.get(f"{stack.base_url}{strange}", timeout=10).status_code == 404
    page = httpx.get(f"{stack.base_url}/metrics", timeout=10)
    assert page.status_code == 200
    after = samples(page.text)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("autoresponder_messages_total", channel="rest", outcome="answered") >= 1
    assert grew("autoresponder_messages_total", channel="rest", outcome="handed_off") >= 1
    assert grew("autoresponder_handoffs_total", reason="requested", skill="general") >= 1
    for layer in ("app", "engine", "nlg_callback", "action_callback"):
        assert grew("autoresponder_latency_seconds_count", layer=layer) >= 1, layer
    assert (
        grew(
            "autoresponder_http_request_duration_seconds_count",
            method="POST",
            route="/channels/rest/messages",
            status="2xx",
        )
        >= 2
    )
    assert grew("autoresponder_http_request_duration_seconds_count", method="GET", route="unmatched", status="4xx") >= 1
    assert value(after, "autoresponder_queue_length", skill="general") >= 1
    assert ("autoresponder_webchat_connections", frozenset()) in after
    assert strange not in page.text
    assert not re.search(r"DD202405001|转人工", page.text)
