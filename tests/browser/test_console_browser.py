"""The agent console in headless Chromium against the real stack: customers write through the REST channel.

Every test signs in with an account of its own, so that its "mine" list holds only its conversations.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, Locator, Page, Route, expect

from tests.browser.conftest import UI_TIMEOUT_MS
from tests.conftest import TEST_PASSWORD, RunningStack

pytestmark = [pytest.mark.browser, pytest.mark.stack]

OpenConsole = Callable[[str], Awaitable[Page]]
XSS = '<img src=x onerror="window.__xss=1">'


@pytest.fixture
async def open_console(browser: Browser, stack: RunningStack) -> AsyncIterator[OpenConsole]:
    """Open /console in a fresh context (empty sessionStorage) with the given browser locale.

    Uncaught page errors and Content-Security-Policy violations fail the test.
    """
    contexts: list[BrowserContext] = []
    problems: list[str] = []

    async def _open(locale: str) -> Page:
        context = await browser.new_context(locale=locale, viewport={"width": 1280, "height": 800})
        context.set_default_timeout(UI_TIMEOUT_MS)
        contexts.append(context)
        page = await context.new_page()
        page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
        page.on(
            "console",
            lambda msg: problems.append(f"console: {msg.text}") if "Content Security Policy" in msg.text else None,
        )
        await page.goto(stack.base_url + "/console")
        await expect(page.get_by_test_id("signin")).to_be_visible()
        return page

    yield _open
    for context in contexts:
        await context.close()
    assert problems == [], problems


async def sign_in(page: Page, agent: str, password: str = TEST_PASSWORD) -> None:
    await page.get_by_test_id("agent-name").fill(agent)
    await page.get_by_test_id("agent-password").fill(password)
    await page.get_by_test_id("sign-in").click()


async def session_cookie(page: Page) -> dict[str, object]:
    """The console's session cookie as the browser keeps it."""
    cookies = [dict(c) for c in await page.context.cookies() if c["name"] == "ar_agent_session"]
    assert len(cookies) == 1, cookies
    return cookies[0]


def item(page: Page, testid: str, conv_id: str) -> Locator:
    """The queue or "mine" entry of a conversation."""
    return page.locator(f'[data-testid="{testid}"][data-conversation-id="{conv_id}"]')


def shown(page: Page, role: str) -> Locator:
    """Transcript messages of one role in the open conversation."""
    return page.locator(f'[data-testid="message"][data-role="{role}"]')


def agent_name(stack: RunningStack, role: str = "agent") -> str:
    """A new account of its own for a test (password TEST_PASSWORD)."""
    return stack.account(f"小王-{uuid.uuid4().hex[:6]}", role).name


async def test_agent_takes_answers_and_hands_back(
    open_console: OpenConsole, stack: RunningStack, tmp_path: Path
) -> None:
    who = f"console-{uuid.uuid4().hex[:10]}"
    vip = {"metadata": {"customer_id": "C202405010"}}  # a VIP, owner of DD202405010
    stack.rest(who, "DD202405010 到哪了", **vip)
    handed = stack.rest(who, "转人工", **vip).json()
    assert handed["mode"] == "waiting"
    conv_id = handed["conversation_id"]
    agent = agent_name(stack, "supervisor")  # a supervisor: the figures in the top bar are theirs to see

    page = await open_console("zh-CN")
    await expect(page.get_by_test_id("sign-in")).to_have_text("登录")
    await sign_in(page, agent)
    await expect(page.get_by_test_id("whoami")).to_contain_text(agent)
    # The session is an HttpOnly, SameSite=Strict cookie: no script of the page can read it.
    cookie = await session_cookie(page)
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict"
    assert "ar_agent_session" not in await page.evaluate("document.cookie")

    # The queue shows the conversation with its channel, skill, reason, priority, VIP mark and summary.
    queued = item(page, "queue-item", conv_id)
    await expect(queued).to_be_visible()
    await expect(queued.get_by_test_id("reason")).to_have_text("客户要求人工")
    await expect(queued.get_by_test_id("channel")).to_have_attribute("data-value", "rest")
    await expect(queued.get_by_test_id("skill")).to_have_attribute("data-value", "logistics")
    await expect(queued.get_by_test_id("vip")).to_be_visible()
    await expect(queued.get_by_test_id("name")).to_have_text("周女士")
    await expect(queued.get_by_test_id("summary")).to_contain_text("DD202405010")
    await expect(queued.get_by_test_id("waited")).to_contain_text("已等待")
    await expect(queued.get_by_test_id("sla")).to_have_attribute("data-state", "ok")
    await expect(queued.get_by_test_id("sla")).to_contain_text("首次响应剩余")
    await expect(page.get_by_test_id("stat-waiting")).to_contain_text("排队")
    await expect(page.get_by_test_id("stat-csat")).to_contain_text("满意度")
    priority = int(await queued.get_attribute("data-priority") or "-1")
    assert priority == handed["handoff"]["priority"]
    await expect(queued.get_by_test_id("priority")).to_contain_text(f"P{priority}")
    await expect(item(page, "mine-item", conv_id)).to_have_count(0)

    # Filtering by another skill hides it; all skills show it again.
    await page.get_by_test_id("skill-filter").select_option("billing")
    await expect(queued).to_have_count(0)
    await page.get_by_test_id("skill-filter").select_option("")
    await expect(queued).to_be_visible()

    # Open it: transcript, handoff, customer card (masked) and the customer's order.
    await queued.click()
    view = page.locator("#conv-view")
    await expect(view).to_have_attribute("data-conversation-id", conv_id)
    await expect(page.get_by_test_id("conv-mode")).to_have_attribute("data-mode", "waiting")
    await expect(shown(page, "customer").first.get_by_test_id("message-text")).to_have_text("DD202405010 到哪了")
    await expect(shown(page, "bot").first.get_by_test_id("template")).to_contain_text("utter_order_status v")
    await expect(page.get_by_test_id("handoff-reason")).to_contain_text("客户要求人工")
    await expect(page.get_by_test_id("handoff-summary")).to_contain_text("DD202405010")
    card = page.get_by_test_id("customer-card")
    await expect(card.get_by_test_id("customer-name")).to_contain_text("周女士")
    await expect(card.get_by_test_id("vip")).to_be_visible()
    await expect(card.get_by_test_id("customer-channel")).to_have_text("应用 (REST)")
    order = page.locator('[data-testid="order"][data-order-id="DD202405010"]')
    await expect(order).to_be_visible()
    await expect(order).to_contain_text("空气净化器 A5")
    await expect(order).to_contain_text("CNY")
    context_text = await page.get_by_test_id("context").inner_text()
    for secret in ("周婷", "13800138010", "zhou.ting@example.com", "珞喻路"):
        assert secret not in context_text

    # Take it: it leaves the queue and joins "mine".
    await page.get_by_test_id("take").click()
    await expect(page.get_by_test_id("conv-mode")).to_have_attribute("data-mode", "agent")
    await expect(page.get_by_test_id("conv-mode")).to_contain_text(agent)
    await expect(page.get_by_test_id("take")).to_be_hidden()
    await expect(item(page, "mine-item", conv_id)).to_be_visible()
    await expect(item(page, "queue-item", conv_id)).to_have_count(0)
    await expect(shown(page, "system").filter(has_text=agent)).to_have_count(1)

    # Answer: Shift+Enter is a new line, Enter sends.
    box = page.get_by_test_id("reply-text")
    await box.click()
    await page.keyboard.insert_text("您好，我是客服")
    await page.keyboard.press("Shift+Enter")
    await page.keyboard.insert_text("马上为您查询")
    await page.keyboard.press("Enter")
    reply = "您好，我是客服\n马上为您查询"
    await expect(shown(page, "agent")).to_have_count(1)
    assert await shown(page, "agent").get_by_test_id("message-text").text_content() == reply
    await expect(box).to_have_value("")
    # The first answer stops the first-response timer in time.
    await expect(page.get_by_test_id("handoff").get_by_test_id("sla")).to_have_attribute("data-state", "met")

    # The answer is in the customer's conversation, and the customer's next words reach the console.
    transcript = stack.agent("GET", f"/conversations/{conv_id}").json()["transcript"]
    answers = [m for m in transcript if m["role"] == "agent"]
    assert [(m["text"], m["agent_name"]) for m in answers] == [(reply, agent)]
    assert stack.rest(who, "好的，谢谢", **vip).json()["mode"] == "agent"
    await expect(shown(page, "customer").filter(has_text="好的，谢谢")).to_have_count(1)
    await page.screenshot(path=tmp_path / "console-agent-mode.png")

    # Hand back: the bot answers the customer again and the conversation leaves "mine".
    await page.get_by_test_id("handback").click()
    await expect(page.get_by_test_id("conv-mode")).to_have_attribute("data-mode", "bot")
    await expect(page.get_by_test_id("handback")).to_be_hidden()
    await expect(item(page, "mine-item", conv_id)).to_have_count(0)
    await expect(page.get_by_test_id("reply-text")).to_be_disabled()
    back = stack.rest(who, "DD202405010 到哪了", **vip).json()
    assert back["mode"] == "bot"
    assert "DD202405010" in back["replies"][0]["text"]


async def test_customer_text_is_shown_as_text(open_console: OpenConsole, stack: RunningStack) -> None:
    who = f"console-xss-{uuid.uuid4().hex[:10]}"
    conv_id = stack.rest(who, "转人工").json()["conversation_id"]
    assert stack.rest(who, XSS).json()["mode"] == "waiting"

    page = await open_console("en-US")
    await sign_in(page, agent_name(stack))
    await item(page, "queue-item", conv_id).click()
    literal = shown(page, "customer").filter(has_text="onerror")
    await expect(literal).to_have_count(1)
    assert await literal.get_by_test_id("message-text").text_content() == XSS
    await expect(page.locator("#transcript img")).to_have_count(0)
    await page.wait_for_timeout(500)  # an injected image would have failed to load by now
    assert await page.evaluate("window.__xss") is None
    # A guest: no CRM card, no orders; the interface is in English for an English browser.
    await expect(page.get_by_test_id("customer-name")).to_have_text("Guest")
    await expect(page.get_by_test_id("orders")).to_be_empty()
    await expect(page.get_by_test_id("orders-empty")).to_have_text("Guests have no linked orders")
    await expect(page.get_by_test_id("take")).to_have_text("Take")
    assert stack.agent("POST", f"/conversations/{conv_id}/handback").status_code == 200


async def test_a_conflict_is_shown_in_the_conversation(open_console: OpenConsole, stack: RunningStack) -> None:
    who = f"console-409-{uuid.uuid4().hex[:10]}"
    conv_id = stack.rest(who, "转人工").json()["conversation_id"]
    page = await open_console("zh-CN")
    await sign_in(page, agent_name(stack))
    await item(page, "queue-item", conv_id).click()
    await expect(page.get_by_test_id("take")).to_be_visible()

    # Keep showing the conversation as it was, while another agent takes it behind the console's back.
    detail_url = f"{stack.base_url}/agent/conversations/{conv_id}"
    frozen = json.dumps(stack.agent("GET", f"/conversations/{conv_id}").json())

    async def stale(route: Route) -> None:
        await route.fulfill(status=200, content_type="application/json", body=frozen)

    await page.route(detail_url, stale)
    assert stack.agent("POST", f"/conversations/{conv_id}/take", by="另一位客服").status_code == 200
    await page.get_by_test_id("take").click()
    error = page.get_by_test_id("conv-error")
    await expect(error).to_be_visible()
    await expect(error).to_contain_text("409")
    await expect(error).to_contain_text("另一位客服")

    # Once the console sees the real state, it shows who holds the conversation and offers no reply.
    await page.unroute(detail_url, stale)
    await expect(page.get_by_test_id("conv-mode")).to_contain_text("另一位客服")
    await expect(page.get_by_test_id("reply-text")).to_be_disabled()
    await expect(page.get_by_test_id("reply-hint")).to_contain_text("另一位客服")
    assert stack.agent("POST", f"/conversations/{conv_id}/handback").status_code == 200


async def test_a_wrong_password_is_refused_at_sign_in_and_a_changed_account_is_signed_out(
    open_console: OpenConsole, stack: RunningStack
) -> None:
    agent = agent_name(stack)
    page = await open_console("en-US")
    await expect(page.get_by_test_id("sign-in")).to_have_text("Sign in")
    await sign_in(page, agent, password="not-the-password")
    error = page.get_by_test_id("signin-error")
    await expect(error).to_be_visible()
    await expect(error).to_have_text("Wrong account name or password. Check them and try again.")
    await expect(page.locator("#desk")).to_be_hidden()
    assert [c for c in await page.context.cookies() if c["name"] == "ar_agent_session"] == []

    # The language toggle switches the interface.
    await page.get_by_test_id("lang-toggle").click()
    await expect(page.get_by_test_id("sign-in")).to_have_text("登录")
    await page.get_by_test_id("lang-toggle").click()

    # Signed in; a reload keeps the session; then an admin gives the account a new password: the
    # session ends, and the console's next call sends the agent back to the form, saying why.
    await sign_in(page, agent)
    await expect(page.locator("#desk")).to_be_visible()
    await page.reload()
    await expect(page.locator("#desk")).to_be_visible()
    await expect(page.get_by_test_id("whoami")).to_contain_text(agent)
    reset = stack.admin_api("POST", f"/admin/accounts/{agent}/password", json={"password": TEST_PASSWORD})
    assert reset.status_code == 200, reset.text
    await expect(page.get_by_test_id("signin")).to_be_visible()
    await expect(error).to_have_text(
        "Your session has ended (signed out, timed out or changed by an admin). Please sign in again."
    )


async def test_an_internal_note_and_a_transfer(open_console: OpenConsole, stack: RunningStack) -> None:
    who = f"console-note-{uuid.uuid4().hex[:10]}"
    conv_id = stack.rest(who, "转人工").json()["conversation_id"]
    agent = agent_name(stack)
    page = await open_console("zh-CN")
    await sign_in(page, agent)
    await item(page, "queue-item", conv_id).click()
    await page.get_by_test_id("take").click()
    await expect(page.get_by_test_id("conv-mode")).to_have_attribute("data-mode", "agent")

    # An internal note: written in the same box with the note switch on, shown apart, never sent.
    await page.get_by_test_id("note-mode").check()
    await expect(page.get_by_test_id("reply-send")).to_have_text("添加备注")
    await page.get_by_test_id("reply-text").fill("客户是老客户，可以优先补发")
    await page.get_by_test_id("reply-send").click()
    note = shown(page, "note")
    await expect(note).to_have_count(1)
    await expect(note).to_contain_text("内部备注 · " + agent)
    await expect(note.get_by_test_id("message-text")).to_have_text("客户是老客户，可以优先补发")
    await expect(shown(page, "agent")).to_have_count(0)
    await page.get_by_test_id("note-mode").uncheck()
    await expect(page.get_by_test_id("reply-send")).to_have_text("发送")

    # Transfer to billing with a reason: it leaves "mine" and waits in the billing queue, noted.
    await expect(page.get_by_test_id("transfer-bar")).to_be_visible()
    await page.get_by_test_id("transfer-skill").select_option("billing")
    await page.get_by_test_id("transfer-reason").fill("需要开发票")
    await page.get_by_test_id("transfer").click()
    await expect(page.get_by_test_id("conv-mode")).to_have_attribute("data-mode", "waiting")
    await expect(item(page, "mine-item", conv_id)).to_have_count(0)
    queued = item(page, "queue-item", conv_id)
    await expect(queued.get_by_test_id("skill")).to_have_attribute("data-value", "billing")
    await expect(shown(page, "note").filter(has_text="需要开发票")).to_have_count(1)
    await expect(shown(page, "system").filter(has_text="转接")).to_have_count(1)
    pulled = stack.pulled(who)
    assert "优先补发" not in json.dumps(pulled, ensure_ascii=False)
    assert stack.agent("POST", f"/conversations/{conv_id}/handback").status_code == 200


async def test_taking_conversations_automatically(open_console: OpenConsole, stack: RunningStack) -> None:
    agent = agent_name(stack)
    page = await open_console("zh-CN")
    await sign_in(page, agent)
    await page.get_by_test_id("skill-filter").select_option("complaints")
    toggle = page.get_by_test_id("auto-assign")
    await expect(toggle).to_have_text("开始自动接单")
    await toggle.click()
    try:
        await expect(toggle).to_have_attribute("data-on", "true")
        await expect(toggle).to_contain_text("自动接单中 · 0/3")
        body = stack.rest(
            f"console-auto-{uuid.uuid4().hex[:10]}",
            "你们卖的耳机质量太差了，用了两天就坏了，我很不满意",
            metadata={"customer_id": "C202405003"},  # a VIP: the complaints queue at once
        ).json()
        assert body["handoff"]["skill"] == "complaints"
        await expect(item(page, "mine-item", body["conversation_id"])).to_be_visible(timeout=20_000)
        await expect(toggle).to_contain_text("/3")
    finally:
        await toggle.click()
    await expect(toggle).to_have_attribute("data-on", "false")
    for _ in range(50):  # the switch-off is on its way to the server
        if agent not in [p["agent"] for p in stack.agent("GET", "/presence").json()]:
            break
        await page.wait_for_timeout(100)
    assert agent not in [p["agent"] for p in stack.agent("GET", "/presence").json()]
    await page.wait_for_timeout(3500)  # a heartbeat round later, still off
    assert agent not in [p["agent"] for p in stack.agent("GET", "/presence").json()]
    for conv in [c["conversation_id"] for c in stack.agent("GET", "/conversations", by=agent).json()]:
        assert stack.agent("POST", f"/conversations/{conv}/handback").status_code == 200


async def page_fetch(page: Page, method: str, path: str, body: object = None, csrf: bool = True) -> dict[str, object]:
    """A request made by script in the console's page, with its cookie (and the session's CSRF token)."""
    result: dict[str, object] = await page.evaluate(
        """async ([method, path, body, csrf]) => {
            const headers = {"Content-Type": "application/json"};
            if (csrf) {
                const me = await (await fetch("/auth/session", {credentials: "same-origin"})).json();
                headers["X-CSRF-Token"] = me.csrf_token;
            }
            const resp = await fetch(path, {
                method, headers, credentials: "same-origin", body: body === null ? undefined : JSON.stringify(body),
            });
            return {status: resp.status, body: await resp.text()};
        }""",
        [method, path, body, csrf],
    )
    return result


async def test_an_agent_signs_in_and_out(open_console: OpenConsole, stack: RunningStack) -> None:
    agent = agent_name(stack)
    page = await open_console("zh-CN")
    await sign_in(page, agent)
    await expect(page.get_by_test_id("whoami")).to_have_text(f"客服：{agent}")
    await expect(page.get_by_test_id("whoami")).to_have_attribute("data-role", "agent")
    sid = str((await session_cookie(page))["value"])
    cookie = {"ar_agent_session": sid}
    me = stack.call("GET", "/auth/session", cookies=cookie)
    assert me.status_code == 200 and me.json()["name"] == agent and me.json()["via"] == "session"

    await page.get_by_test_id("sign-out").click()
    await expect(page.get_by_test_id("signin")).to_be_visible()
    await expect(page.get_by_test_id("signin-error")).to_have_text("您已退出登录。")
    await expect(page.get_by_test_id("agent-name")).to_have_value(agent)
    assert [c for c in await page.context.cookies() if c["name"] == "ar_agent_session"] == []
    # The session is gone on the server too: the old cookie value opens nothing.
    assert stack.call("GET", "/auth/session", cookies=cookie).status_code == 401
    assert stack.call("GET", "/agent/queue", cookies=cookie).status_code == 401
    await page.reload()
    await expect(page.get_by_test_id("signin")).to_be_visible()

    # Both ends are in the audit log, with the agent's name, role and address.
    audit = stack.admin_api("GET", "/admin/audit", params={"actor": agent}).json()
    assert [(e["action"], e["role"], e["ip"]) for e in audit["entries"]][:2] == [
        ("sign_out", "agent", "127.0.0.1"),
        ("sign_in", "agent", "127.0.0.1"),
    ]


async def test_a_supervisor_sees_what_an_agent_does_not(
    open_console: OpenConsole, stack: RunningStack, tmp_path: Path
) -> None:
    agent, holder = agent_name(stack), agent_name(stack)
    supervisor = agent_name(stack, "supervisor")
    conv_id = stack.rest(f"console-roles-{uuid.uuid4().hex[:10]}", "转人工").json()["conversation_id"]
    assert stack.agent("POST", f"/conversations/{conv_id}/take", by=holder).status_code == 200

    # An agent: no figures, and on a colleague's conversation no take-over, hand back or reassignment.
    page = await open_console("en-US")
    await sign_in(page, agent)
    await expect(page.get_by_test_id("whoami")).to_have_text(f"Agent: {agent}")
    await expect(page.get_by_test_id("queue-count")).to_be_visible()
    await page.wait_for_timeout(500)
    await expect(page.get_by_test_id("stats")).to_be_hidden()
    assert (await page_fetch(page, "GET", "/agent/stats"))["status"] == 403
    assert (await page_fetch(page, "GET", "/agent/team"))["status"] == 403
    assert (await page_fetch(page, "POST", f"/agent/conversations/{conv_id}/takeover"))["status"] == 403
    assert (await page_fetch(page, "POST", f"/agent/conversations/{conv_id}/handback"))["status"] == 409
    detail = stack.agent("GET", f"/conversations/{conv_id}").json()
    assert detail["conversation"]["agent"] == holder

    await expect(page.get_by_test_id("team-panel")).to_be_hidden()

    # A supervisor: the figures, the team with what each colleague holds, Take over and Reassign.
    boss = await open_console("en-US")
    await sign_in(boss, supervisor)
    await expect(boss.get_by_test_id("whoami")).to_have_text(f"Supervisor: {supervisor}")
    await expect(boss.get_by_test_id("stats")).to_be_visible()
    await expect(boss.get_by_test_id("stat-waiting")).to_contain_text("Waiting")
    await expect(boss.get_by_test_id("team-panel")).to_be_visible()
    await expect(boss.locator(f'[data-testid="team-member"][data-agent="{holder}"]')).to_be_visible()
    await item(boss, "team-item", conv_id).click()
    await expect(boss.get_by_test_id("conv-mode")).to_contain_text(holder)
    await expect(boss.get_by_test_id("reply-text")).to_be_disabled()
    await expect(boss.get_by_test_id("takeover")).to_be_visible()
    await boss.get_by_test_id("takeover").click()
    await expect(boss.get_by_test_id("conv-mode")).to_contain_text(supervisor)
    await expect(item(boss, "mine-item", conv_id)).to_be_visible()
    await expect(boss.get_by_test_id("takeover")).to_be_hidden()
    await expect(boss.get_by_test_id("reassign-bar")).to_be_visible()
    await boss.get_by_test_id("reassign-agent").fill(holder)
    await boss.get_by_test_id("reassign").click()
    await expect(boss.get_by_test_id("conv-mode")).to_contain_text(holder)
    await expect(item(boss, "mine-item", conv_id)).to_have_count(0)
    await expect(item(boss, "team-item", conv_id)).to_be_visible()
    await boss.screenshot(path=tmp_path / "console-supervisor.png")
    notes = [
        m["text"] for m in stack.agent("GET", f"/conversations/{conv_id}").json()["transcript"] if m["role"] == "note"
    ]
    assert notes[-2:] == [
        f"Taken over by {supervisor} from {holder}",
        f"Reassigned to {holder} by {supervisor} from {supervisor}",
    ]
    actions = stack.admin_api("GET", "/admin/audit", params={"conversation_id": conv_id}).json()["entries"]
    assert [(e["action"], e["actor"]) for e in actions][:3] == [
        ("reassign", supervisor),
        ("takeover", supervisor),
        ("take", holder),
    ]
    assert stack.agent("POST", f"/conversations/{conv_id}/handback").status_code == 200


async def test_an_agent_cannot_act_under_another_agents_name(open_console: OpenConsole, stack: RunningStack) -> None:
    agent, other = agent_name(stack), agent_name(stack)
    mine = stack.rest(f"console-name-{uuid.uuid4().hex[:10]}", "转人工").json()["conversation_id"]
    theirs = stack.rest(f"console-name-{uuid.uuid4().hex[:10]}", "转人工").json()["conversation_id"]
    assert stack.agent("POST", f"/conversations/{theirs}/take", by=other).status_code == 200
    page = await open_console("zh-CN")
    await sign_in(page, agent)
    await expect(page.get_by_test_id("whoami")).to_contain_text(agent)

    # A body naming someone else is refused; the console's own answers carry the session's name.
    forged = await page_fetch(page, "POST", f"/agent/conversations/{mine}/messages", {"agent": other, "text": "冒名"})
    assert forged["status"] == 422 and "agent" in str(forged["body"])
    await item(page, "queue-item", mine).click()
    await page.get_by_test_id("reply-text").fill("您好，我来处理")
    await page.get_by_test_id("reply-send").click()
    await expect(shown(page, "agent")).to_have_count(1)
    await expect(shown(page, "agent")).to_contain_text("客服 · " + agent)
    answers = [m for m in stack.agent("GET", f"/conversations/{mine}").json()["transcript"] if m["role"] == "agent"]
    assert [(m["agent_name"], m["text"]) for m in answers] == [(agent, "您好，我来处理")]

    # Another agent's conversation: neither answered, taken, transferred nor handed back.
    for path, body in (
        ("messages", {"text": "我来"}),
        ("take", None),
        ("transfer", {"skill": "billing"}),
        ("handback", None),
    ):
        refused = await page_fetch(page, "POST", f"/agent/conversations/{theirs}/{path}", body)
        assert refused["status"] == 409, (path, refused)
        assert other in str(refused["body"])
    # And with the cookie but without the session's CSRF token, nothing at all.
    assert (await page_fetch(page, "POST", f"/agent/conversations/{mine}/notes", {"text": "x"}, csrf=False))[
        "status"
    ] == 403
    assert stack.agent("GET", f"/conversations/{theirs}").json()["conversation"]["agent"] == other
    for conv in (mine, theirs):
        assert stack.agent("POST", f"/conversations/{conv}/handback").status_code == 200


async def test_a_supervisor_labels_what_the_assistant_did_not_understand(
    open_console: OpenConsole, stack: RunningStack
) -> None:
    text = "qwxz 呃呃 vbnm"  # nonsense: answered by the fallback, or with low confidence
    stack.rest(f"review-{uuid.uuid4().hex[:8]}", text)
    # Agents have no review list.
    page = await open_console("zh-CN")
    await sign_in(page, agent_name(stack))
    await expect(page.get_by_test_id("whoami")).to_be_visible()
    await expect(page.get_by_test_id("review-toggle")).to_be_hidden()

    page = await open_console("zh-CN")
    await sign_in(page, agent_name(stack, "supervisor"))
    toggle = page.get_by_test_id("review-toggle")
    await expect(toggle).to_have_text("待复盘")
    await toggle.click()
    await expect(page.get_by_test_id("review-view")).to_be_visible()
    entry = page.get_by_test_id("review-item").filter(has=page.get_by_test_id("review-text").get_by_text(text))
    await expect(entry).to_have_count(1)
    await expect(entry.get_by_test_id("review-predicted")).to_contain_text("预测：")
    await entry.get_by_test_id("review-intent").select_option("out_of_scope")
    await entry.get_by_test_id("review-assign").click()
    await expect(entry).to_have_count(0)
    reviewed = (stack.var_dir / "reviewed" / "reviewed.yml").read_text()
    assert f"- {text}\n" in reviewed
    # In English, and back to the desk.
    await page.get_by_test_id("lang-toggle").click()
    await expect(toggle).to_have_text("Back to the desk")
    await expect(page.get_by_test_id("review-view")).to_contain_text("Review: messages the assistant")
    await toggle.click()
    await expect(page.get_by_test_id("review-view")).to_be_hidden()
    await expect(page.locator("#desk")).to_be_visible()
