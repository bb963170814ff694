"""Signing in to the console and out again: a server-side session behind an HttpOnly cookie."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from bot.accounts.records import Forbidden, Principal
from bot.errors import BadInput
from bot.web.auth import (
    SESSION_COOKIE,
    AccountServiceDep,
    AgentDep,
    client_ip,
    cookie_scheme,
    same_origin,
)
from bot.web.deps import ContainerDep

router = APIRouter(prefix="/auth", tags=["sign-in"])


class SignInIn(BaseModel):
    """An account's name and password."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=80)
    password: str = Field(min_length=1, max_length=1024)


def _me(who: Principal) -> dict[str, Any]:
    return {"name": who.name, "role": str(who.role), "via": who.via, "csrf_token": who.csrf_token}


@router.post(
    "/sign-in",
    responses={
        200: {"description": "Signed in: the session cookie is set; send `csrf_token` in the X-CSRF-Token header."},
        401: {"description": "Wrong name or password (which of the two is not said)."},
        403: {"description": "Sent from another site's page."},
        423: {"description": "The account is locked after repeated wrong passwords (Retry-After says how long)."},
        429: {"description": "Too many attempts from this address or for this name (Retry-After says how long)."},
    },
)
async def sign_in(
    body: SignInIn,
    request: Request,
    response: Response,
    c: ContainerDep,
    service: AccountServiceDep,
) -> dict[str, Any]:
    """Check the name and password and start a session (any earlier session of this browser ends)."""
    old = request.cookies.get(SESSION_COOKIE)  # read directly: signing in needs no credential
    if not same_origin(request, c.settings.base_url):
        raise Forbidden("cross-site sign-in refused")
    sid, who = await service.sign_in(body.name, body.password, client_ip(request))
    if old:
        await service.sessions.destroy(old)  # a new id at every sign-in: a planted cookie is worth nothing
    response.set_cookie(
        SESSION_COOKIE,
        sid,
        max_age=int(c.settings.session_max_hours * 3600),
        path="/",
        secure=c.settings.secure_cookies,
        httponly=True,
        samesite="strict",
    )
    response.headers["Cache-Control"] = "no-store"
    return _me(who) | {"idle_timeout_seconds": service.sessions.idle_seconds}


@router.get("/session")
async def session(who: AgentDep, response: Response) -> dict[str, Any]:
    """Who the caller is (name, role, session or token) and, for a session, its CSRF token."""
    response.headers["Cache-Control"] = "no-store"
    return _me(who)


@router.post(
    "/sign-out",
    responses={400: {"description": "Called with an API token: tokens are revoked by an admin, not signed out."}},
)
async def sign_out(
    who: AgentDep,
    response: Response,
    c: ContainerDep,
    service: AccountServiceDep,
    sid: Annotated[str | None, Depends(cookie_scheme)],
) -> dict[str, Any]:
    """End the session: the cookie is cleared and the session is gone on the server too."""
    if who.via != "session" or not sid:
        raise BadInput("not_a_session", "only a console session signs out; an API token is revoked by an admin")
    await service.sign_out(sid, who)
    response.delete_cookie(SESSION_COOKIE, path="/", secure=c.settings.secure_cookies, httponly=True, samesite="strict")
    return {"signed_out": True}
