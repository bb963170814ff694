"""Admins' HTTP API: accounts (create, role, disable, unlock, password), API tokens, the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from bot.accounts.records import Account, AuditEntry, Role, TokenInfo
from bot.web.auth import AccountServiceDep, AdminDep
from bot.web.deps import AccountsDep

router = APIRouter(
    prefix="/admin",
    tags=["admin"],
    responses={
        401: {"description": "No valid session cookie or API token."},
        403: {"description": "Admins only (or a cookie request without its CSRF token)."},
    },
)
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No account of that name."}}


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AccountIn(_Body):
    """A new account; without a password one is generated and returned once."""

    name: str = Field(min_length=1, max_length=80)
    role: Role = Role.AGENT
    password: str | None = Field(default=None, min_length=12, max_length=1024)


class RoleIn(_Body):
    """A new role."""

    role: Role


class PasswordIn(_Body):
    """A new password; without one, one is generated and returned once."""

    password: str | None = Field(default=None, min_length=12, max_length=1024)


class TokenIn(_Body):
    """What the token is for (shown in lists, e.g. "CRM sync")."""

    name: str = Field(min_length=1, max_length=80)


def _when(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _account(a: Account) -> dict[str, Any]:
    now = datetime.now(a.created_at.tzinfo)
    return {
        "name": a.name,
        "role": str(a.role),
        "disabled": a.disabled,
        "locked": a.locked(now),
        "locked_until": _when(a.locked_until) if a.locked(now) else None,
        "failed_signins": a.failed_signins,
        "created_at": _when(a.created_at),
        "last_signin_at": _when(a.last_signin_at),
    }


def _token(t: TokenInfo) -> dict[str, Any]:
    return {
        "id": t.id,
        "account": t.account,
        "name": t.name,
        "prefix": t.prefix,
        "created_at": _when(t.created_at),
        "last_used_at": _when(t.last_used_at),
        "revoked_at": _when(t.revoked_at),
    }


def _entry(e: AuditEntry) -> dict[str, Any]:
    return {
        "id": e.id,
        "at": _when(e.at),
        "actor": e.actor,
        "role": e.role,
        "action": e.action,
        "conversation_id": e.conversation_id,
        "target": e.target,
        "detail": e.detail,
        "ip": e.ip,
        "via": e.via,
    }


@router.get("/accounts")
async def accounts(who: AdminDep, directory: AccountsDep) -> list[dict[str, Any]]:
    """Every account with its role, state (disabled, locked after wrong passwords) and last sign-in."""
    return [_account(a) for a in await directory.all()]


@router.post("/accounts", status_code=201, responses={409: {"description": "The name is taken."}})
async def add_account(body: AccountIn, who: AdminDep, service: AccountServiceDep) -> dict[str, Any]:
    """Create an account; a generated password is in the answer, this once."""
    account, generated = await service.add(who, body.name, body.role, body.password)
    return _account(account) | {"password": generated}


@router.get("/accounts/{name}", responses=NOT_FOUND)
async def account(name: str, who: AdminDep, directory: AccountsDep) -> dict[str, Any]:
    """One account and its API tokens."""
    found = await directory.get(name)
    return _account(found) | {"tokens": [_token(t) for t in await directory.tokens(found.name)]}


@router.post("/accounts/{name}/role", responses=NOT_FOUND | {409: {"description": "It is the last admin."}})
async def set_role(name: str, body: RoleIn, who: AdminDep, service: AccountServiceDep) -> dict[str, Any]:
    """Change the role; the account's sessions end."""
    return _account(await service.set_role(who, name, body.role))


@router.post("/accounts/{name}/disable", responses=NOT_FOUND | {409: {"description": "It is the last admin."}})
async def disable(name: str, who: AdminDep, service: AccountServiceDep) -> dict[str, Any]:
    """Disable: no sign-in, sessions end, its API tokens stop working."""
    return _account(await service.set_disabled(who, name, True))


@router.post("/accounts/{name}/enable", responses=NOT_FOUND)
async def enable(name: str, who: AdminDep, service: AccountServiceDep) -> dict[str, Any]:
    """Enable a disabled account again."""
    return _account(await service.set_disabled(who, name, False))


@router.post("/accounts/{name}/unlock", responses=NOT_FOUND)
async def unlock(name: str, who: AdminDep, service: AccountServiceDep) -> dict[str, Any]:
    """Lift a lock after repeated wrong passwords."""
    return _account(await service.unlock(who, name))


@router.post("/accounts/{name}/password", responses=NOT_FOUND)
async def reset_password(name: str, body: PasswordIn, who: AdminDep, service: AccountServiceDep) -> dict[str, Any]:
    """Set a new password (or generate one, in the answer this once); the account's sessions end."""
    account, generated = await service.reset_password(who, name, body.password)
    return _account(account) | {"password": generated}


@router.post("/accounts/{name}/tokens", status_code=201, responses=NOT_FOUND)
async def create_token(name: str, body: TokenIn, who: AdminDep, service: AccountServiceDep) -> dict[str, Any]:
    """A new API token acting as the account: `token` is in this answer only, and stored as a hash."""
    new = await service.create_token(who, name, body.name)
    return _token(new.info) | {"token": new.secret}


@router.get("/tokens")
async def tokens(who: AdminDep, directory: AccountsDep) -> list[dict[str, Any]]:
    """Every API token (never the secret), newest first, revoked ones included."""
    return [_token(t) for t in await directory.tokens()]


@router.delete("/tokens/{token_id}", responses={404: {"description": "No token with that id."}})
async def revoke_token(token_id: int, who: AdminDep, service: AccountServiceDep) -> dict[str, Any]:
    """Revoke a token: it stops working at once."""
    return _token(await service.revoke_token(who, token_id))


@router.get("/audit")
async def audit(
    who: AdminDep,
    directory: AccountsDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    before: Annotated[int | None, Query(ge=1, description="Page back: entries older than this id.")] = None,
    actor: Annotated[str | None, Query(max_length=80)] = None,
    action: Annotated[str | None, Query(max_length=40)] = None,
    conversation_id: Annotated[str | None, Query(max_length=64)] = None,
) -> dict[str, Any]:
    """The audit log, newest first, a page at a time: pass `next_before` as `before` for the next page."""
    entries = await directory.audit_page(
        limit=limit, before=before, actor=actor, action=action, conversation_id=conversation_id
    )
    return {
        "entries": [_entry(e) for e in entries],
        "next_before": entries[-1].id if len(entries) == limit else None,
    }
