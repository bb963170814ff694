"""/docs and /redoc render with no internet: every asset comes from the app (the fastapi-offline package).

Any request the page makes to another host is aborted and recorded; the test fails if there is one.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from playwright.async_api import Browser, Route, expect

from tests.browser.conftest import UI_TIMEOUT_MS
from tests.conftest import RunningStack

pytestmark = [pytest.mark.browser, pytest.mark.stack]


@pytest.mark.parametrize(
    ("path", "ready"), [("/docs", ".swagger-ui .opblock"), ("/redoc", "redoc-wrapper, .redoc-wrap")]
)
async def test_the_api_docs_render_offline(browser: Browser, stack: RunningStack, path: str, ready: str) -> None:
    context = await browser.new_context()
    context.set_default_timeout(UI_TIMEOUT_MS)
    outside: list[str] = []
    app_host = urlsplit(stack.base_url).netloc

    async def only_the_app(route: Route) -> None:
        if urlsplit(route.request.url).netloc == app_host:
            await route.continue_()
        else:
            outside.append(route.request.url)
            await route.abort()

    try:
        await context.route("**/*", only_the_app)
        page = await context.new_page()
        await page.goto(stack.base_url + path)
        await expect(page.locator(ready).first).to_be_visible()
        await expect(page.get_by_text("/channels/rest/messages").first).to_be_visible()
        if path == "/docs":
            # The bearer schemes are declared: Swagger UI offers "Authorize".
            await expect(page.locator(".swagger-ui .authorize").first).to_be_visible()
    finally:
        await context.close()
    assert outside == []
