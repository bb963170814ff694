"""Who is calling: the console's session cookie (with its CSRF token) or an account's API token, and the
role a route needs. Routes take the caller as a typed dependency (`AgentDep`, `SupervisorDep`, `AdminDep`);
the name on everything an agent does comes from here, never from a request body.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Request
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer

from bot.accounts.records import Forbidden, NotAuthenticated, Principal, Role
from bot.accounts.service import AccountService
from bot.web.deps import ContainerDep

SESSION_COOKIE = "ar_agent_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="agentToken",
    description="An agent account's API token (`autoresponder agent token create NAME`, or an admin's "
    "POST /admin/accounts/{name}/tokens): acts as that account with its role.",
)
cookie_scheme = APIKeyCookie(
    name=SESSION_COOKIE,
    auto_error=False,
    scheme_name="agentSession",
    description="The console's session cookie, set by POST /auth/sign-in; state-changing requests "
    f"made with it also send the session's CSRF token in the {CSRF_HEADER} header.",
)


def client_ip(request: Request) -> str | None:
    """The client's address as the server sees it (uvicorn applies X-Forwarded-For only from trusted proxies)."""
    return request.client.host if request.client else None


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def same_origin(request: Request, public_url: str) -> bool:
    """Whether a browser request comes from the app's own pages (no Origin header: not a browser's cross-site one)."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    own = {_origin(public_url), f"{request.url.scheme}://{request.headers.get('host', '')}".lower()}
    return origin.lower() in own


async def _accounts(c: ContainerDep) -> AccountService:
    return c.account_service


AccountServiceDep = Annotated[AccountService, Depends(_accounts)]


async def caller(
    request: Request,
    c: ContainerDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    session: Annotated[str | None, Depends(cookie_scheme)],
) -> Principal:
    """The signed-in caller; 401 without a valid credential, 403 for a cookie request without its CSRF token."""
    ip = client_ip(request)
    service = c.account_service
    if bearer is not None:  # an Authorization header decides alone: a bad token is not rescued by a cookie
        who = await service.from_token(bearer.credentials, ip)
        if who is None:
            raise NotAuthenticated("wrong, revoked or disabled API token: send Authorization: Bearer <API token>")
        return who
    if session:
        who = await service.from_session(session, ip)
        if who is None:
            raise NotAuthenticated("your session has ended (signed out, expired or changed by an admin): sign in again")
        if request.method not in SAFE_METHODS:
            if not same_origin(request, c.settings.base_url):
                raise Forbidden("cross-site request refused")
            supplied = request.headers.get(CSRF_HEADER, "")
            expected = who.csrf_token or ""
            if not (supplied and expected and hmac.compare_digest(supplied.encode(), expected.encode())):
                raise Forbidden(f"missing or wrong {CSRF_HEADER} header: send the csrf_token of GET /auth/session")
        return who
    raise NotAuthenticated("sign in (POST /auth/sign-in) or send Authorization: Bearer <API token>")


def role(needed: Role) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency that lets through callers whose role may do what `needed` may; 403 for the others."""

    async def check(who: Annotated[Principal, Depends(caller)]) -> Principal:
        if not who.allows(needed):
            raise Forbidden(f"this needs the {needed} role; {who.name} is {who.role}")
        return who

    return check


AgentDep = Annotated[Principal, Depends(role(Role.AGENT))]
SupervisorDep = Annotated[Principal, Depends(role(Role.SUPERVISOR))]
AdminDep = Annotated[Principal, Depends(role(Role.ADMIN))]
