"""ASGI factory for uvicorn: `uvicorn --factory bot.web.asgi:build` (started by `autoresponder up`)."""

from __future__ import annotations

import os

from fastapi import FastAPI

from bot.settings import Settings
from bot.web.app import create_app


def build() -> FastAPI:
    """The app, configured from the environment the stack launcher prepared."""
    return create_app(Settings(), engine_token=os.environ.get("AUTORESPONDER_ENGINE_TOKEN", ""))
