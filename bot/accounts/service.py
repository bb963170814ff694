"""What people do with accounts: sign in and out, prove who they are on each request, and what admins
change (accounts, passwords, locks, tokens). Every change and every sign-in lands in the audit log.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from bot.accounts.directory import Accounts
from bot.accounts.passwords import check_strength, generate_password
from bot.accounts.records import (
    Account,
    AccountLocked,
    LastAdmin,
    NewToken,
    NotAuthenticated,
    Principal,
    Role,
    TokenInfo,
)
from bot.accounts.sessions import Sessions, SignInLimits

log = logging.getLogger(__name__)

WRONG = "wrong name or password"


@dataclass(frozen=True)
class LockPolicy:
    """An account refuses sign-in for `seconds` after `after` wrong passwords in a row."""

    after: int = 5
    seconds: float = 15 * 60


class AccountService:
    """Sign-in, per-request authentication and account administration, audited."""

    def __init__(self, accounts: Accounts, sessions: Sessions, limits: SignInLimits, lock: LockPolicy) -> None:
        self.accounts = accounts
        self.sessions = sessions
        self.limits = limits
        self.lock = lock

    # --- signing in and out ---

    async def sign_in(self, name: str, password: str, ip: str | None) -> tuple[str, Principal]:
        """A new session for a right name and password: (cookie value, caller).

        Refused with TooManyAttempts (rate limits), AccountLocked, or NotAuthenticated, which never
        says whether the name exists.
        """
        await self.limits.attempt(ip, name)
        check = await self.accounts.check_password(
            name, password, lock_after=self.lock.after, lock_seconds=self.lock.seconds
        )
        account = check.account
        if check.outcome != "ok" or account is None:
            detail = check.outcome + (" (account now locked)" if check.locked_now else "")
            await self.accounts.audit_anonymous(
                "sign_in_failed", actor=account.name if account else name, ip=ip, detail=detail
            )
            log.info("sign-in refused from %s: %s", ip, detail)
            if check.outcome == "locked" or check.locked_now:
                raise AccountLocked(
                    f"this account is locked after {self.lock.after} wrong passwords; try again in "
                    f"{int(self.lock.seconds // 60)} minutes or ask an admin to unlock it",
                    int(self.lock.seconds),
                )
            raise NotAuthenticated(WRONG)
        sid, who = await self.sessions.create(account, ip)
        await self.accounts.audit(who, "sign_in")
        return sid, who

    async def sign_out(self, sid: str, who: Principal) -> None:
        """End the caller's session."""
        await self.sessions.destroy(sid)
        await self.accounts.audit(who, "sign_out")

    async def from_session(self, sid: str, ip: str | None) -> Principal | None:
        """The caller a session cookie stands for, while its account is enabled and unchanged since sign-in."""
        who = await self.sessions.get(sid, ip)
        if who is None or who.account_id is None:
            return None
        account = await self.accounts.by_id(who.account_id)
        started = await self.sessions.created_at(sid)
        if account is None or account.disabled or account.updated_at.timestamp() > started:
            await self.sessions.destroy(sid)
            return None
        return replace(who, name=account.name, role=account.role)

    async def from_token(self, secret: str, ip: str | None) -> Principal | None:
        """The caller an API token stands for."""
        found = await self.accounts.authenticate_token(secret)
        if found is None:
            return None
        account, token = found
        return Principal(account.id, account.name, account.role, "token", ip=ip, token_id=token.id)

    # --- administration (admins through the API, or the CLI) ---

    async def _changed(self, who: Principal, action: str, account: Account, detail: str = "") -> Account:
        await self.sessions.destroy_all(account.id)
        await self.accounts.audit(who, action, target=account.name, detail=detail)
        return account

    async def add(self, who: Principal, name: str, role: Role, password: str | None) -> tuple[Account, str | None]:
        """Create an account; with no password given, one is generated and returned (shown once)."""
        generated = None if password else generate_password()
        account = await self.accounts.create(name, role, password or generated or "")
        await self.accounts.audit(who, "account_created", target=account.name, detail=f"role {role}")
        return account, generated

    async def _keep_an_admin(self, name: str) -> None:
        """Refuse to demote or disable the last enabled admin (nobody could manage accounts then)."""
        target = await self.accounts.get(name)
        if target.role != Role.ADMIN or target.disabled:
            return
        others = [a for a in await self.accounts.all() if a.role == Role.ADMIN and not a.disabled and a.id != target.id]
        if not others:
            raise LastAdmin(f"{target.name} is the last enabled admin; make another admin first")

    async def set_role(self, who: Principal, name: str, role: Role) -> Account:
        """Change a role (the account's sessions end)."""
        if role != Role.ADMIN:
            await self._keep_an_admin(name)
        return await self._changed(
            who, "account_role_changed", await self.accounts.set_role(name, role), f"role {role}"
        )

    async def set_disabled(self, who: Principal, name: str, disabled: bool) -> Account:
        """Disable or enable an account (its sessions end; its tokens stop working while disabled)."""
        if disabled:
            await self._keep_an_admin(name)
        account = await self.accounts.set_disabled(name, disabled)
        return await self._changed(who, "account_disabled" if disabled else "account_enabled", account)

    async def unlock(self, who: Principal, name: str) -> Account:
        """Lift a lock after wrong passwords."""
        return await self._changed(who, "account_unlocked", await self.accounts.unlock(name))

    async def reset_password(self, who: Principal, name: str, password: str | None) -> tuple[Account, str | None]:
        """Set a new password, or generate one and return it (shown once); the account's sessions end."""
        if password:
            check_strength(password)
        generated = None if password else generate_password()
        account = await self.accounts.set_password(name, password or generated or "")
        await self._changed(who, "password_reset", account)
        return account, generated

    async def create_token(self, who: Principal, account: str, name: str) -> NewToken:
        """A new API token for an account (its secret is shown once)."""
        new = await self.accounts.create_token(account, name)
        await self.accounts.audit(
            who, "token_created", target=new.info.account, detail=f"token {new.info.id} {new.info.name}"
        )
        return new

    async def revoke_token(self, who: Principal, token_id: int) -> TokenInfo:
        """Revoke an API token."""
        info = await self.accounts.revoke_token(token_id)
        await self.accounts.audit(who, "token_revoked", target=info.account, detail=f"token {info.id} {info.name}")
        return info
