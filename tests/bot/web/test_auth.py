"""Sign-in, the session cookie, CSRF and roles on the app in-process (real Redis and CRM, a stub engine)."""

from __future__ import annotations

import uuid

from bot.accounts.records import CLI, Role
from tests.bot.web.conftest import BASE, PASSWORD, Client, account, container_of, signed_in


async def test_sign_in_sets_an_httponly_strict_cookie_and_rotates_it(app_client: Client) -> None:
    client = await app_client()
    name = await account(client)
    resp = await client.post("/auth/sign-in", json={"name": name, "password": PASSWORD})
    assert resp.status_code == 200
    assert resp.json()["name"] == name and resp.json()["role"] == "agent" and resp.json()["csrf_token"]
    cookie = resp.headers["set-cookie"]
    assert cookie.startswith("ar_agent_session=")
    for flag in ("HttpOnly", "SameSite=strict", "Path=/", "Max-Age=43200"):
        assert flag.lower() in cookie.lower(), cookie
    assert "secure" not in cookie.lower()  # plain http: a Secure cookie would never come back
    assert resp.headers["cache-control"] == "no-store"
    first = client.cookies["ar_agent_session"]
    # Signing in again (a planted or old cookie in the jar) gives a new id and ends the old session.
    again = await client.post("/auth/sign-in", json={"name": name, "password": PASSWORD})
    assert again.status_code == 200 and client.cookies["ar_agent_session"] != first
    client.cookies.clear()
    client.cookies.set("ar_agent_session", first)
    assert (await client.get("/auth/session")).status_code == 401


async def test_the_cookie_is_secure_behind_https(app_client: Client) -> None:
    client = await app_client(public_url="https://desk.example.test")
    name = await account(client)
    resp = await client.post("/auth/sign-in", json={"name": name, "password": PASSWORD})
    assert "; secure" in resp.headers["set-cookie"].lower()


async def test_state_changing_cookie_requests_need_the_csrf_token(app_client: Client) -> None:
    client = await app_client()
    _, csrf = await signed_in(client)
    body = {"available": False}
    assert (await client.get("/agent/queue")).status_code == 200  # reading needs no token
    refused = await client.post("/agent/presence", json=body)
    assert refused.status_code == 403 and "X-CSRF-Token" in refused.json()["detail"]
    wrong = await client.post("/agent/presence", json=body, headers={"X-CSRF-Token": csrf[:-2] + "xx"})
    assert wrong.status_code == 403
    assert (await client.post("/agent/presence", json=body, headers={"X-CSRF-Token": csrf})).status_code == 200
    # Another site's page sending the token it somehow learnt is refused by its Origin.
    foreign = await client.post(
        "/agent/presence", json=body, headers={"X-CSRF-Token": csrf, "Origin": "https://evil.example"}
    )
    assert foreign.status_code == 403
    own = await client.post("/agent/presence", json=body, headers={"X-CSRF-Token": csrf, "Origin": BASE})
    assert own.status_code == 200
    # Another session's token is not this session's.
    other = await app_client()
    _, other_csrf = await signed_in(other)
    assert (await client.post("/agent/presence", json=body, headers={"X-CSRF-Token": other_csrf})).status_code == 403


async def test_sign_in_from_another_site_is_refused(app_client: Client) -> None:
    client = await app_client()
    name = await account(client)
    resp = await client.post(
        "/auth/sign-in", json={"name": name, "password": PASSWORD}, headers={"Origin": "https://evil.example"}
    )
    assert resp.status_code == 403 and "ar_agent_session" not in client.cookies


async def test_sign_out_ends_the_session_and_clears_the_cookie(app_client: Client) -> None:
    client = await app_client()
    _, csrf = await signed_in(client)
    sid = client.cookies["ar_agent_session"]
    assert (await client.post("/auth/sign-out")).status_code == 403  # CSRF applies to sign-out too
    out = await client.post("/auth/sign-out", headers={"X-CSRF-Token": csrf})
    assert out.status_code == 200
    assert 'ar_agent_session=""' in out.headers["set-cookie"] and "max-age=0" in out.headers["set-cookie"].lower()
    client.cookies.set("ar_agent_session", sid)  # the old value, kept by hand: the server has forgotten it
    assert (await client.get("/agent/queue")).status_code == 401


async def test_refusals_say_how_long_to_wait(app_client: Client) -> None:
    client = await app_client(signin_lock_after=2, signin_account_limit=4)
    name = await account(client)
    wrong = await client.post("/auth/sign-in", json={"name": name, "password": "wrong password!"})
    assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
    assert wrong.json()["detail"] == "wrong name or password"
    locked = await client.post("/auth/sign-in", json={"name": name, "password": "wrong password!"})
    assert locked.status_code == 423 and locked.headers["retry-after"] == "900"
    listed = {a.name: a for a in await container_of(client).accounts.all()}
    assert listed[name].locked_until is not None
    for _ in range(2):  # attempts 3 and 4 of the four a name may have in the window
        assert (await client.post("/auth/sign-in", json={"name": name, "password": PASSWORD})).status_code == 423
    limited = await client.post("/auth/sign-in", json={"name": name, "password": PASSWORD})
    assert limited.status_code == 429 and 0 < int(limited.headers["retry-after"]) <= 300


async def test_a_bearer_token_acts_as_its_account_and_outranks_a_cookie(app_client: Client) -> None:
    client = await app_client()
    await signed_in(client, Role.SUPERVISOR)  # a cookie in the jar ...
    agent = await account(client)
    new = await container_of(client).account_service.create_token(CLI, agent, "tests")
    me = await client.get("/auth/session", headers={"Authorization": f"Bearer {new.secret}"})
    assert me.json() == {"name": agent, "role": "agent", "via": "token", "csrf_token": None}
    # ... does not rescue a wrong token, nor lend its role to an agent's token.
    assert (await client.get("/agent/queue", headers={"Authorization": "Bearer art_wrong"})).status_code == 401
    assert (await client.get("/agent/stats", headers={"Authorization": f"Bearer {new.secret}"})).status_code == 403
    assert (await client.get("/agent/stats")).status_code == 200
    # Tokens need no CSRF token (no browser sends them by itself) and cannot "sign out".
    auth = {"Authorization": f"Bearer {new.secret}"}
    assert (await client.post("/agent/presence", json={"available": False}, headers=auth)).status_code == 200
    assert (await client.post("/auth/sign-out", headers=auth)).status_code == 400


async def test_roles_decide_what_each_caller_may_do(app_client: Client) -> None:
    client = await app_client()
    service = container_of(client).account_service
    tokens = {}
    for role in Role:
        name = await account(client, role)
        tokens[role] = {"Authorization": f"Bearer {(await service.create_token(CLI, name, 't')).secret}"}
    expected = {
        ("GET", "/agent/queue"): {Role.AGENT: 200, Role.SUPERVISOR: 200, Role.ADMIN: 200},
        ("GET", "/agent/stats"): {Role.AGENT: 403, Role.SUPERVISOR: 200, Role.ADMIN: 200},
        ("GET", "/agent/team"): {Role.AGENT: 403, Role.SUPERVISOR: 200, Role.ADMIN: 200},
        ("GET", "/agent/presence"): {Role.AGENT: 403, Role.SUPERVISOR: 200, Role.ADMIN: 200},
        ("POST", "/agent/conversations/none/takeover"): {Role.AGENT: 403, Role.SUPERVISOR: 404, Role.ADMIN: 404},
        ("GET", "/admin/accounts"): {Role.AGENT: 403, Role.SUPERVISOR: 403, Role.ADMIN: 200},
        ("GET", "/admin/audit"): {Role.AGENT: 403, Role.SUPERVISOR: 403, Role.ADMIN: 200},
    }
    for (method, path), by_role in expected.items():
        for role, status in by_role.items():
            resp = await client.request(method, path, headers=tokens[role])
            assert resp.status_code == status, (method, path, role, resp.text)


async def test_admins_manage_accounts_and_tokens_through_the_api(app_client: Client) -> None:
    client = await app_client()
    admin = await account(client, Role.ADMIN)
    service = container_of(client).account_service
    auth = {"Authorization": f"Bearer {(await service.create_token(CLI, admin, 'admin')).secret}"}
    name = f"新同事-{uuid.uuid4().hex[:6]}"
    made = await client.post("/admin/accounts", json={"name": name, "role": "supervisor"}, headers=auth)
    assert made.status_code == 201 and made.json()["role"] == "supervisor"
    password = made.json()["password"]
    assert len(password) == 20  # generated, shown this once
    assert (await client.get(f"/admin/accounts/{name}", headers=auth)).json().get("password") is None
    dup = await client.post("/admin/accounts", json={"name": name.upper()}, headers=auth)
    assert dup.status_code == 409
    short = await client.post("/admin/accounts", json={"name": "x-" + name, "password": "short"}, headers=auth)
    assert short.status_code == 422
    token = await client.post(f"/admin/accounts/{name}/tokens", json={"name": "报表"}, headers=auth)
    assert token.status_code == 201
    secret = token.json()["token"]
    assert (await client.get("/agent/stats", headers={"Authorization": f"Bearer {secret}"})).status_code == 200
    listed = (await client.get(f"/admin/accounts/{name}", headers=auth)).json()["tokens"]
    assert [t["name"] for t in listed] == ["报表"] and "token" not in listed[0]
    assert (await client.delete(f"/admin/tokens/{token.json()['id']}", headers=auth)).status_code == 200
    assert (await client.get("/agent/queue", headers={"Authorization": f"Bearer {secret}"})).status_code == 401
    assert (await client.post(f"/admin/accounts/{name}/disable", headers=auth)).json()["disabled"] is True
    refused = await client.post("/auth/sign-in", json={"name": name, "password": password})
    assert refused.status_code == 401
    assert (await client.post(f"/admin/accounts/{name}/enable", headers=auth)).status_code == 200
    reset = await client.post(f"/admin/accounts/{name}/password", json={}, headers=auth)
    assert reset.status_code == 200 and reset.json()["password"] != password
    assert (await client.post("/admin/accounts/nobody-here/unlock", headers=auth)).status_code == 404
    page = (await client.get("/admin/audit", params={"limit": 3}, headers=auth)).json()
    assert [e["action"] for e in page["entries"]] == ["password_reset", "account_enabled", "sign_in_failed"]
    older = (await client.get("/admin/audit", params={"limit": 3, "before": page["next_before"]}, headers=auth)).json()
    assert [e["action"] for e in older["entries"]] == ["account_disabled", "token_revoked", "token_created"]
    assert all(e["actor"] == admin and e["via"] == "token" for e in older["entries"])
