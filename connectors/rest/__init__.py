"""The REST channel for company apps (contract in ARCHITECTURE.md): post a message, poll for answers."""

from __future__ import annotations

CHANNEL = "rest"
