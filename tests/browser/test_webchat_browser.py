"""The web chat widget in headless Chromium against the real stack (Redis, the Rasa engine, the app).

Each test uses its own browser context, so its own localStorage: a new visitor and a new conversation.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from playwright.async_api import (
    Browser,
    BrowserContext,
    Locator,
    Page,
    WebSocketRoute,
    expect,
)

from tests.browser.conftest import BOT_TIMEOUT_MS, UI_TIMEOUT_MS
from tests.conftest import RunningStack

pytestmark = [pytest.mark.browser, pytest.mark.stack]

OpenPage = Callable[[str], Awaitable[Page]]


@pytest.fixture
async def open_page(browser: Browser, stack: RunningStack) -> AsyncIterator[OpenPage]:
    """Open the demo page in a fresh context (new visitor) with the given browser locale.

    Uncaught page errors fail the test.
    """
    contexts: list[BrowserContext] = []
    page_errors: list[str] = []

    async def _open(locale: str) -> Page:
        context = await browser.new_context(locale=locale, viewport={"width": 1280, "height": 860})
        context.set_default_timeout(UI_TIMEOUT_MS)
        contexts.append(context)
        page = await context.new_page()
        page.on("pageerror", lambda exc: page_errors.append(f"{exc}"))
        await page.goto(stack.base_url + "/")
        await expect(page.get_by_test_id("ar-panel")).to_be_visible()
        await expect(page.get_by_test_id("ar-status")).to_have_attribute("data-state", "online")
        return page

    yield _open
    for context in contexts:
        await context.close()
    assert page_errors == [], f"uncaught errors in the page: {page_errors}"


def messages(page: Page, role: str | None = None) -> Locator:
    """The rendered chat messages (inside the widget's open shadow root), optionally of one role."""
    selector = '[data-testid="ar-message"]' + (f'[data-role="{role}"]' if role else "")
    return page.locator(selector)


async def type_and_send(page: Page, text: str) -> None:
    """Type into the widget's input and press its send button, the way a customer does."""
    await page.get_by_test_id("ar-input").fill(text)
    await page.get_by_test_id("ar-send").click()
    await expect(page.get_by_test_id("ar-input")).to_have_value("")


async def settled(page: Page) -> None:
    """Connected, and every message the customer sent confirmed by the server (none pending)."""
    await expect(page.get_by_test_id("ar-status")).to_have_attribute("data-state", "online")
    await expect(page.locator('[data-testid="ar-message"][data-status]')).to_have_count(0, timeout=BOT_TIMEOUT_MS)


async def seqs(page: Page) -> list[str | None]:
    """data-seq of every rendered message, in display order."""
    found: list[str | None] = await messages(page).evaluate_all("els => els.map(e => e.getAttribute('data-seq'))")
    return found


async def texts(page: Page, role: str) -> list[str]:
    return [t.strip() for t in await messages(page, role).locator(".ar-bubble").all_inner_texts()]


async def test_order_question_answered_and_history_replayed_after_reload(
    open_page: OpenPage, stack: RunningStack, tmp_path: Path
) -> None:
    tracking = stack.tracking_number("DD202405001")
    question = "DD202405001 到哪了"
    page = await open_page("zh-CN")
    await expect(page.get_by_test_id("ar-input")).to_have_attribute("placeholder", "请输入您的问题…")
    await expect(page.get_by_test_id("ar-empty")).to_be_visible()

    await type_and_send(page, question)
    # A guest proves the order is theirs first (tests/bot/access).
    await expect(messages(page, "bot").filter(has_text="后 4 位")).to_have_count(1, timeout=BOT_TIMEOUT_MS)
    await type_and_send(page, "8001")
    answer = messages(page, "bot").filter(has_text=tracking)
    await expect(answer).to_have_count(1, timeout=BOT_TIMEOUT_MS)
    await expect(answer).to_contain_text("DD202405001")
    await expect(answer).to_contain_text("运单号")  # simplified Chinese
    await settled(page)
    await expect(page.get_by_test_id("ar-empty")).to_be_hidden()
    await expect(page.get_by_test_id("ar-typing")).to_have_count(0)
    assert await texts(page, "customer") == [question, "8001"]
    before = await seqs(page)
    assert all(before), before

    # A reload keeps the session (localStorage) and replays the conversation, each message once.
    await page.reload()
    await expect(page.get_by_test_id("ar-panel")).to_be_visible()
    await expect(page.get_by_test_id("ar-status")).to_have_attribute("data-state", "online")
    await expect(messages(page, "bot").filter(has_text=tracking)).to_have_count(1)
    assert await texts(page, "customer") == [question, "8001"]
    assert sum(tracking in t for t in await texts(page, "bot")) == 1
    after = await seqs(page)
    assert after == before, "the replayed history differs from what was shown before the reload"
    await expect(page.get_by_test_id("ar-empty")).to_be_hidden()

    await page.screenshot(path=tmp_path / "order-answer-after-reload.png")


@pytest.mark.parametrize(
    ("locale", "placeholder", "title", "send"),
    [
        ("en-US", "Type your message…", "Customer service", "Send"),
        ("zh-TW", "請輸入您的問題…", "線上客服", "傳送"),
        ("zh-CN", "请输入您的问题…", "在线客服", "发送"),
    ],
)
async def test_interface_language_follows_the_browser(
    open_page: OpenPage, locale: str, placeholder: str, title: str, send: str
) -> None:
    page = await open_page(locale)
    assert await page.evaluate("navigator.language") == locale
    await expect(page.get_by_test_id("ar-input")).to_have_attribute("placeholder", placeholder)
    await expect(page.locator(".ar-title")).to_have_text(title)
    await expect(page.get_by_test_id("ar-send")).to_have_attribute("aria-label", send)
    expected = "en" if locale.startswith("en") else locale
    assert await page.evaluate("window.AutoResponderWidget.locale") == expected


async def test_dropped_connection_resends_without_duplicates(open_page: OpenPage) -> None:
    page = await open_page("zh-CN")
    await type_and_send(page, "你好")
    await expect(messages(page, "bot")).to_have_count(1, timeout=BOT_TIMEOUT_MS)
    await settled(page)
    first_socket_was_open = await page.evaluate(
        """() => {
            const ws = window.AutoResponderWidget.socket();
            const open = ws !== null && ws.readyState === WebSocket.OPEN;
            ws.close();
            return open;
        }"""
    )
    assert first_socket_was_open
    await expect(page.get_by_test_id("ar-status")).not_to_have_attribute("data-state", "online")

    # Sent while disconnected: queued, then delivered once the widget has reconnected.
    await type_and_send(page, "你好")
    await expect(messages(page, "bot")).to_have_count(2, timeout=BOT_TIMEOUT_MS)
    await settled(page)
    assert await page.evaluate("window.AutoResponderWidget.socket().readyState") == 1

    shown = await seqs(page)
    assert all(shown), shown
    assert len(shown) == len(set(shown)), f"a message is shown twice: {shown}"
    assert await texts(page, "customer") == ["你好", "你好"]
    assert len(await texts(page, "bot")) == 2


@pytest.mark.parametrize("reconnect", ["backoff", "at-once"])
async def test_connection_dropped_while_messages_are_in_flight(open_page: OpenPage, reconnect: str) -> None:
    page = await open_page("zh-CN")
    await type_and_send(page, "你好")
    await expect(messages(page, "bot")).to_have_count(1, timeout=BOT_TIMEOUT_MS)
    await settled(page)

    # Two frames leave on the old socket, which is closed before any echo. The server answers them one at a
    # time, so when the widget reconnects (after its backoff, or at once on an "online" event) the second is
    # usually not in the replayed history yet: the widget resends it with the same client_id, and the server
    # must still process each message exactly once.
    await page.evaluate(
        """(atOnce) => {
            const w = window.AutoResponderWidget;
            w.send("DD202405001 到哪了");
            w.send("谢谢");
            w.socket().close();
            if (atOnce) window.dispatchEvent(new Event("online"));
        }""",
        reconnect == "at-once",
    )
    await expect(messages(page, "bot").filter(has_text="DD202405001")).to_have_count(1, timeout=BOT_TIMEOUT_MS)
    await expect(messages(page, "bot")).to_have_count(3, timeout=BOT_TIMEOUT_MS)
    await settled(page)
    await page.wait_for_timeout(2000)  # give a duplicate time to show up

    shown = await seqs(page)
    assert all(shown), shown
    assert len(shown) == len(set(shown)), f"a message is shown twice: {shown}"
    assert await texts(page, "customer") == ["你好", "DD202405001 到哪了", "谢谢"]
    await expect(messages(page, "bot").filter(has_text="DD202405001")).to_have_count(1)
    assert len(await texts(page, "bot")) == 3
    # The page shows what the server holds: a reload replays the same messages.
    await page.reload()
    await expect(page.get_by_test_id("ar-status")).to_have_attribute("data-state", "online")
    assert await seqs(page) == shown


@pytest.mark.parametrize("reconnect", ["backoff", "at-once"])
async def test_message_lost_with_the_connection_is_resent(
    open_page: OpenPage, stack: RunningStack, reconnect: str
) -> None:
    page = await open_page("zh-CN")
    await type_and_send(page, "你好")
    await expect(messages(page, "bot")).to_have_count(1, timeout=BOT_TIMEOUT_MS)
    await settled(page)

    # From now on the page's websockets go through a proxy that loses the first "谢谢" frame, the way a
    # connection that is dying loses what was written to it.
    lost: list[str] = []
    forwarded: list[str] = []

    def proxy(route: WebSocketRoute) -> None:
        server = route.connect_to_server()

        def from_page(message: str | bytes) -> None:
            frame = json.loads(message)
            if frame.get("type") == "message" and frame.get("text") == "谢谢" and not lost:
                lost.append(frame["client_id"])
                return
            if frame.get("type") == "message":
                forwarded.append(frame["client_id"])
            server.send(message)

        route.on_message(from_page)

    await page.route_web_socket(stack.ws_url, proxy)
    await page.evaluate("window.AutoResponderWidget.socket().close()")
    await expect(page.get_by_test_id("ar-status")).not_to_have_attribute("data-state", "online")
    await expect(page.get_by_test_id("ar-status")).to_have_attribute("data-state", "online")

    # Sent on a socket that then dies: the widget reconnects (after its backoff, or at once when the browser
    # says it is back online, while the old socket is still closing) and must resend it with the same client_id.
    await page.evaluate(
        """(atOnce) => {
            const w = window.AutoResponderWidget;
            w.send("谢谢");
            w.socket().close();
            if (atOnce) window.dispatchEvent(new Event("online"));
        }""",
        reconnect == "at-once",
    )
    await expect(messages(page, "bot")).to_have_count(2, timeout=BOT_TIMEOUT_MS)
    await settled(page)
    assert len(lost) == 1
    assert forwarded == lost, "the lost message was not resent with its client_id"
    assert await texts(page, "customer") == ["你好", "谢谢"]
    shown = await seqs(page)
    assert len(shown) == len(set(shown)), f"a message is shown twice: {shown}"


async def test_quick_reply_asks_for_the_order_id(open_page: OpenPage) -> None:
    page = await open_page("zh-CN")
    await type_and_send(page, "你好")
    await expect(messages(page, "bot")).to_have_count(1, timeout=BOT_TIMEOUT_MS)
    quick = page.get_by_test_id("ar-quick-reply")
    await expect(quick.first).to_be_visible()
    track = quick.filter(has_text="查询订单")
    await expect(track).to_have_count(1)
    await expect(track).to_have_attribute("data-payload", "/order_status")

    await track.click()
    await expect(quick).to_have_count(0)  # answered: the buttons go away
    await expect(messages(page, "bot").filter(has_text="订单号")).to_have_count(1, timeout=BOT_TIMEOUT_MS)
    await settled(page)
    # The customer's bubble shows the button's title, not its payload.
    assert await texts(page, "customer") == ["你好", "查询订单"]
    await expect(quick).to_have_count(0)


async def test_handoff_shows_the_waiting_notice(open_page: OpenPage) -> None:
    page = await open_page("zh-CN")
    mode = page.get_by_test_id("ar-mode")
    await expect(mode).to_have_count(0)

    await type_and_send(page, "转人工")
    await expect(mode).to_be_visible(timeout=BOT_TIMEOUT_MS)
    await expect(mode).to_have_attribute("data-mode", "waiting")
    await expect(mode).to_contain_text("正在为您转接人工客服")
    await settled(page)

    # The notice survives a reload: the mode comes back with the welcome.
    await page.reload()
    await expect(page.get_by_test_id("ar-status")).to_have_attribute("data-state", "online")
    await expect(mode).to_be_visible()
    await expect(mode).to_have_attribute("data-mode", "waiting")
