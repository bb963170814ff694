"""The app's Prometheus metrics (one registry per process, served at `/metrics`).

What customers sent and what became of it, how long each layer took, handoffs by reason, queue lengths,
SLA breaches, errors of the systems the app depends on, open web chat connections. Labels take values
from small fixed sets (channels, outcomes, reasons, skills, route templates), never from what a
customer typed, so that a stranger cannot grow the series without bound.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

REGISTRY = CollectorRegistry()
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)

CONTENT_TYPE = CONTENT_TYPE_LATEST

# Seconds: from a few milliseconds (a duplicate, an agent's conversation) to the engine's time-out.
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

MESSAGES = Counter(
    "autoresponder_messages",
    "Customer messages by channel and outcome (answered, handed_off, to_agent, waiting, engine_delayed, "
    "pending, duplicate).",
    ["channel", "outcome"],
    registry=REGISTRY,
)
LATENCY = Histogram(
    "autoresponder_latency_seconds",
    "Time spent per layer: app (a message from arrival to its committed answer), engine (one engine "
    "turn as the app waits for it), nlg_callback and action_callback (the engine's calls into the app).",
    ["layer"],
    buckets=_BUCKETS,
    registry=REGISTRY,
)
HTTP = Histogram(
    "autoresponder_http_request_duration_seconds",
    "HTTP requests by method, route template and status class.",
    ["method", "route", "status"],
    buckets=_BUCKETS,
    registry=REGISTRY,
)
HANDOFFS = Counter(
    "autoresponder_handoffs",
    "Conversations handed to a human, by reason and skill.",
    ["reason", "skill"],
    registry=REGISTRY,
)
SLA_BREACHES = Counter(
    "autoresponder_sla_breaches",
    "First-response targets missed (breached) and handoffs escalated after missing them (escalated).",
    ["kind"],
    registry=REGISTRY,
)
DEPENDENCY_ERRORS = Counter(
    "autoresponder_dependency_errors",
    "Failed calls to a system the app depends on (redis, engine).",
    ["dependency"],
    registry=REGISTRY,
)
QUEUE_LENGTH = Gauge(
    "autoresponder_queue_length",
    "Conversations waiting for an agent, by skill (read from Redis when scraped).",
    ["skill"],
    registry=REGISTRY,
)
WEBCHAT_CONNECTIONS = Gauge(
    "autoresponder_webchat_connections",
    "Open web chat connections (websockets and HTTP polls) of this process.",
    registry=REGISTRY,
)


@contextmanager
def timed(layer: str) -> Iterator[None]:
    """Observe the block's duration in the latency histogram of `layer` (also when it raises)."""
    start = time.perf_counter()
    try:
        yield
    finally:
        LATENCY.labels(layer).observe(time.perf_counter() - start)


def status_class(status: int) -> str:
    """`2xx`, `4xx`, `5xx`…: one series per class, not per code."""
    return f"{status // 100}xx"


def exposition() -> bytes:
    """The registry in Prometheus' text format."""
    return generate_latest(REGISTRY)
