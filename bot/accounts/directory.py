"""The accounts' one async façade: every repository call the event loop makes, run in a worker thread."""

from __future__ import annotations

import asyncio
from typing import Any

from bot.accounts.records import Account, AuditEntry, NewToken, Principal, Role, TokenInfo
from bot.accounts.repository import AccountRepository, PasswordCheck


class Accounts:
    """Accounts, tokens and the audit log for async callers."""

    def __init__(self, repository: AccountRepository) -> None:
        self.sync = repository

    async def count(self) -> int:
        """How many accounts exist."""
        return await asyncio.to_thread(self.sync.count)

    async def get(self, name: str) -> Account:
        """The account with this name, or UnknownAccount."""
        return await asyncio.to_thread(self.sync.get, name)

    async def by_id(self, account_id: int) -> Account | None:
        """The account with this id."""
        return await asyncio.to_thread(self.sync.by_id, account_id)

    async def all(self) -> list[Account]:
        """Every account, by name."""
        return await asyncio.to_thread(self.sync.all)

    async def create(self, name: str, role: Role, password: str) -> Account:
        """A new account."""
        return await asyncio.to_thread(self.sync.create, name, role, password)

    async def set_role(self, name: str, role: Role) -> Account:
        """Change an account's role."""
        return await asyncio.to_thread(self.sync.set_role, name, role)

    async def set_disabled(self, name: str, disabled: bool) -> Account:
        """Disable or enable an account."""
        return await asyncio.to_thread(self.sync.set_disabled, name, disabled)

    async def set_password(self, name: str, password: str) -> Account:
        """Replace a password (clears a lock)."""
        return await asyncio.to_thread(self.sync.set_password, name, password)

    async def unlock(self, name: str) -> Account:
        """Lift a lock."""
        return await asyncio.to_thread(self.sync.unlock, name)

    async def check_password(self, name: str, password: str, *, lock_after: int, lock_seconds: float) -> PasswordCheck:
        """Check a sign-in attempt (Argon2 runs in the worker thread, off the event loop)."""
        return await asyncio.to_thread(
            self.sync.check_password, name, password, lock_after=lock_after, lock_seconds=lock_seconds
        )

    async def create_token(self, account: str, name: str) -> NewToken:
        """A new API token."""
        return await asyncio.to_thread(self.sync.create_token, account, name)

    async def tokens(self, account: str | None = None) -> list[TokenInfo]:
        """Tokens of one account or all."""
        return await asyncio.to_thread(self.sync.tokens, account)

    async def revoke_token(self, token_id: int) -> TokenInfo:
        """Revoke a token."""
        return await asyncio.to_thread(self.sync.revoke_token, token_id)

    async def authenticate_token(self, secret: str) -> tuple[Account, TokenInfo] | None:
        """The account a bearer token acts as."""
        return await asyncio.to_thread(self.sync.authenticate_token, secret)

    async def audit(self, who: Principal, action: str, **fields: Any) -> AuditEntry:
        """Append an audit entry for what `who` did."""
        return await asyncio.to_thread(
            self.sync.audit,
            action,
            actor=who.name,
            actor_id=who.account_id,
            role=str(who.role),
            via=who.via,
            ip=who.ip,
            **fields,
        )

    async def audit_anonymous(self, action: str, *, actor: str | None, ip: str | None, detail: str) -> AuditEntry:
        """Append an entry for someone not signed in (a refused sign-in)."""
        return await asyncio.to_thread(
            self.sync.audit, action, actor=actor, actor_id=None, role=None, via="session", ip=ip, detail=detail
        )

    async def audit_page(self, **query: Any) -> list[AuditEntry]:
        """A page of the audit log, newest first."""
        return await asyncio.to_thread(lambda: self.sync.audit_page(**query))
