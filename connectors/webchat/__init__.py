"""The web chat channel: the widget's websocket (`channel`), with signed sessions and history replay."""

from __future__ import annotations

CHANNEL = "webchat"
