"""Fixtures of the browser tests: headless Debian Chromium driven by Playwright."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, async_playwright

from tests.conftest import chromium_path

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-quic",
]
# The engine may take a few seconds on the first message of a run.
BOT_TIMEOUT_MS = 60_000
UI_TIMEOUT_MS = 15_000


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    """Headless Debian Chromium driven by Playwright; skipped without Chromium, except under CI."""
    path = chromium_path()
    if path is None:
        message = "no Chromium: install Debian's chromium package (make test does it where apt-get is usable)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}; CI must run the browser test")
        pytest.skip(message)
    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()
