"""The authorization matrix: every route of the app called with no credential, a wrong one, a customer's
(the REST channel token), an agent's, a supervisor's and an admin's, against the running stack.

`ROUTES` classifies every route of /openapi.json plus the pages and callbacks left out of the schema;
a route nobody classified fails the test, so a new route gets a decision. The README's table
("## Agents", "Who may call what") is `readme_table()`, checked here to be the same.
"""

from __future__ import annotations

import re
import secrets
import uuid
from typing import Any

import pytest
import websockets

from bot.settings import PROJECT_ROOT
from tests.conftest import RunningStack
from tests.connectors.webchat.test_webchat import hello

pytestmark = pytest.mark.stack

CALLERS = ("none", "wrong", "customer", "agent", "supervisor", "admin")
OK = "ok"  # allowed: the route's own answer (200, 404 for an unknown id, 422 for a bad body), never 401/403/5xx

# What each kind of route answers each caller.
EXPECTED: dict[str, tuple[int | str, ...]] = {
    "public": (OK, OK, OK, OK, OK, OK),
    "sign-in": (401, 401, 401, 401, 401, 401),  # called with a wrong name and password: nobody is let in by a header
    "customer": (401, 401, OK, 401, 401, 401),
    "engine": (401, 401, 401, 401, 401, 401),  # only the engine's own token, in ?token=
    "agent": (401, 401, 401, OK, OK, OK),
    "supervisor": (401, 401, 401, 403, OK, OK),
    "admin": (401, 401, 401, 403, 403, OK),
}

ROUTES: dict[tuple[str, str], str] = {
    ("GET", "/"): "public",
    ("GET", "/widget.js"): "public",
    ("GET", "/widget.css"): "public",
    ("GET", "/console"): "public",
    ("GET", "/console.js"): "public",
    ("GET", "/console.css"): "public",
    ("GET", "/openapi.json"): "public",
    ("GET", "/docs"): "public",
    ("GET", "/redoc"): "public",
    ("GET", "/healthz"): "public",
    ("GET", "/livez"): "public",
    ("GET", "/metrics"): "public",
    # The web chat's HTTP transport: customers' browsers, identified by the session token in the request.
    ("POST", "/channels/webchat/http/hello"): "public",
    ("POST", "/channels/webchat/http/frames"): "public",
    ("GET", "/channels/webchat/http/poll"): "public",
    ("POST", "/auth/sign-in"): "sign-in",
    ("POST", "/channels/rest/messages"): "customer",
    ("GET", "/channels/rest/messages"): "customer",
    ("POST", "/webhooks/nlg"): "engine",
    ("POST", "/webhooks/actions"): "engine",
    ("GET", "/auth/session"): "agent",
    ("POST", "/auth/sign-out"): "agent",
    ("GET", "/agent/queue"): "agent",
    ("GET", "/agent/conversations"): "agent",
    ("GET", "/agent/conversations/{conv_id}"): "agent",
    ("POST", "/agent/conversations/{conv_id}/take"): "agent",
    ("POST", "/agent/conversations/{conv_id}/messages"): "agent",
    ("POST", "/agent/conversations/{conv_id}/notes"): "agent",
    ("POST", "/agent/conversations/{conv_id}/transfer"): "agent",
    ("POST", "/agent/conversations/{conv_id}/handback"): "agent",
    ("POST", "/agent/presence"): "agent",
    ("GET", "/agent/presence"): "supervisor",
    ("GET", "/agent/stats"): "supervisor",
    ("GET", "/agent/team"): "supervisor",
    ("POST", "/agent/conversations/{conv_id}/takeover"): "supervisor",
    ("POST", "/agent/conversations/{conv_id}/reassign"): "supervisor",
    ("GET", "/agent/review"): "supervisor",
    ("GET", "/agent/review/intents"): "supervisor",
    ("POST", "/agent/review/{item_id}/assign"): "supervisor",
    ("POST", "/agent/review/{item_id}/dismiss"): "supervisor",
    ("GET", "/admin/accounts"): "admin",
    ("POST", "/admin/accounts"): "admin",
    ("GET", "/admin/accounts/{name}"): "admin",
    ("POST", "/admin/accounts/{name}/role"): "admin",
    ("POST", "/admin/accounts/{name}/disable"): "admin",
    ("POST", "/admin/accounts/{name}/enable"): "admin",
    ("POST", "/admin/accounts/{name}/unlock"): "admin",
    ("POST", "/admin/accounts/{name}/password"): "admin",
    ("POST", "/admin/accounts/{name}/tokens"): "admin",
    ("GET", "/admin/tokens"): "admin",
    ("DELETE", "/admin/tokens/{token_id}"): "admin",
    ("GET", "/admin/audit"): "admin",
}
# Routes the schema leaves out on purpose: pages, the API documentation itself, the engine's callbacks.
NOT_IN_SCHEMA = {
    ("GET", "/"),
    ("GET", "/widget.js"),
    ("GET", "/widget.css"),
    ("GET", "/console"),
    ("GET", "/console.js"),
    ("GET", "/console.css"),
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("GET", "/redoc"),
    ("POST", "/webhooks/nlg"),
    ("POST", "/webhooks/actions"),
}


def readme_table() -> str:
    """The matrix as the README shows it: one row per route, ✓ where the caller is let through."""
    shown = {OK: "✓", 401: "401", 403: "403"}
    lines = [
        "| route | no credential | wrong token | customer (REST token) | agent | supervisor | admin |",
        "|---|---|---|---|---|---|---|",
    ]
    for (method, path), kind in ROUTES.items():
        cells = " | ".join(shown[e] for e in EXPECTED[kind])
        lines.append(f"| `{method} {path}` | {cells} |")
    return "\n".join(lines)


def _filled(path: str) -> str:
    """A path with its parameters filled with ids that name nothing (actions find nothing to change)."""
    filled = path.replace("{token_id}", "999999").replace("{name}", "matrix-nobody")
    return filled.replace("{conv_id}", "matrix-none").replace("{item_id}", "matrix-none")


def _headers(stack: RunningStack, caller: str) -> dict[str, str]:
    tokens = {
        "none": None,
        "wrong": "art_" + secrets.token_urlsafe(32),
        "customer": stack.rest_token,
        "agent": stack.account("matrix-agent").token,
        "supervisor": stack.account("matrix-supervisor", "supervisor").token,
        "admin": stack.admin.token,
    }
    token = tokens[caller]
    return {"Authorization": f"Bearer {token}"} if token else {}


def test_every_route_answers_each_caller_as_documented(stack: RunningStack) -> None:
    schema = stack.call("GET", "/openapi.json").json()
    documented = {(m.upper(), p) for p, ops in schema["paths"].items() for m in ops}
    assert documented - ROUTES.keys() == set(), "classify the new routes in ROUTES (and the README table)"
    assert documented == ROUTES.keys() - NOT_IN_SCHEMA
    # Every protected route says so in the schema, so that /docs offers "Authorize".
    for (method, path), kind in ROUTES.items():
        if kind in ("agent", "supervisor", "admin"):
            assert schema["paths"][path][method.lower()]["security"], (method, path)

    wrong: list[str] = []
    for (method, path), kind in ROUTES.items():
        for caller, expected in zip(CALLERS, EXPECTED[kind], strict=True):
            body: dict[str, Any] | None = {} if method == "POST" else None
            if kind == "sign-in":
                body = {"name": f"matrix-{uuid.uuid4().hex[:6]}", "password": "not the password"}
            resp = stack.call(method, _filled(path), json=body, headers=_headers(stack, caller))
            allowed = resp.status_code not in (401, 403) and resp.status_code < 500
            if (expected == OK and not allowed) or (expected != OK and resp.status_code != expected):
                wrong.append(f"{method} {path} as {caller}: {resp.status_code} (expected {expected}) {resp.text[:120]}")
    assert wrong == []


async def test_the_web_chat_websocket_is_open_to_visitors_without_credentials(stack: RunningStack) -> None:
    async with websockets.connect(stack.ws_url) as ws:
        welcome = await hello(ws)
        assert welcome["conversation_id"]


def test_the_readme_shows_this_matrix() -> None:
    readme = (PROJECT_ROOT / "README.md").read_text()
    assert readme_table() in readme, "regenerate the README table from tests/bot/web/test_authorization_matrix.py"
    assert re.search(r"^### Who may call what", readme, re.M)
