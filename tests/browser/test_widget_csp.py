"""The widget on a shop page with a strict Content-Security-Policy, in headless Chromium.

The shop's page (served by a little HTTP server of the test's, another origin than the app's) allows
scripts, styles and connections only from itself and the app; the widget must render styled, connect
and chat, with no CSP violation in the console.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from playwright.async_api import Browser, Page, expect

from tests.browser.conftest import BOT_TIMEOUT_MS, UI_TIMEOUT_MS
from tests.conftest import RunningStack

pytestmark = [pytest.mark.browser, pytest.mark.stack]


@contextlib.contextmanager
def shop(page_html: str, policy: str) -> Iterator[str]:
    """A shop's web server on loopback serving one page under a Content-Security-Policy; yields its URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = page_html.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Security-Policy", policy)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def shop_page(stack: RunningStack, transport: str | None) -> str:
    option = f' data-transport="{transport}"' if transport else ""
    return f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>Shop</title></head>
<body><h1>A shop</h1>
<script src="{stack.base_url}/widget.js" data-open="true"{option} async></script>
</body></html>"""


def policies(stack: RunningStack) -> list[tuple[str, str | None, bool]]:
    """(policy, data-transport, whether the console stays free of CSP reports)."""
    app = stack.base_url
    host = app.removeprefix("http://")
    return [
        # The app's origin for everything, its websocket included: the websocket.
        (f"default-src 'self' {app} ws://{host}", None, True),
        # Spelled out per directive.
        (
            f"default-src 'none'; script-src 'self' {app}; style-src 'self' {app}; "
            f"connect-src 'self' {app} ws://{host}; img-src 'self'",
            "websocket",
            True,
        ),
        # The app's origin only, no ws: source: the HTTP transport, chosen by the shop.
        (f"default-src 'self' {app}", "http", True),
        # The same, with the widget left to find out: the refused websocket is reported once, then HTTP.
        (f"default-src 'self' {app}", None, False),
    ]


@pytest.mark.parametrize("which", [0, 1, 2, 3])
async def test_the_widget_works_under_a_strict_csp(browser: Browser, stack: RunningStack, which: int) -> None:
    policy, transport, quiet = policies(stack)[which]
    context = await browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 860})
    context.set_default_timeout(UI_TIMEOUT_MS)
    console: list[str] = []
    errors: list[str] = []
    try:
        page: Page = await context.new_page()
        page.on("console", lambda msg: console.append(f"{msg.type}: {msg.text}"))
        page.on("pageerror", lambda exc: errors.append(str(exc)))

        with shop(shop_page(stack, transport), policy) as url:
            await page.goto(url)
            await chat(page)
    finally:
        await context.close()
    violations = [line for line in console if "Content Security Policy" in line or "Refused to" in line]
    if quiet:
        assert violations == [], violations
    else:
        assert len(violations) <= 2, violations  # the websocket refused, once (Chromium words it twice at most)
    assert errors == [], errors


async def chat(page: Page) -> None:
    """The widget is there, styled, connected, and answers."""
    panel = page.get_by_test_id("ar-panel")
    await expect(panel).to_be_visible()
    await expect(page.get_by_test_id("ar-status")).to_have_attribute("data-state", "online")
    # Styled by its stylesheet: the launcher is a round button fixed in the corner.
    launcher = page.get_by_test_id("ar-launcher")
    assert await launcher.evaluate("el => getComputedStyle(el).position") == "fixed"
    await page.get_by_test_id("ar-input").fill("DD202405001 到哪了")
    await page.get_by_test_id("ar-send").click()
    bot = page.locator('[data-testid="ar-message"][data-role="bot"]')
    await expect(bot.first).to_contain_text("DD202405001", timeout=BOT_TIMEOUT_MS)
