"""What callers get from the accounts package: roles, accounts, tokens, audit entries and the signed-in caller."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from bot.errors import AutoresponderError

NAME_MAX = 80


class Role(StrEnum):
    """What an account may do; each role may do everything the roles before it may."""

    AGENT = "agent"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        """agent 0 < supervisor 1 < admin 2."""
        return list(Role).index(self)

    def allows(self, needed: Role) -> bool:
        """Whether this role may do what `needed` may."""
        return self.rank >= needed.rank


class AccountError(AutoresponderError):
    """Root of the accounts package's errors."""


class NotAuthenticated(AccountError):
    """No valid session cookie or API token came with the request (or the name and password are wrong)."""


class Forbidden(AccountError):
    """The caller is signed in, but their role may not do this."""


class AccountLocked(AccountError):
    """Too many wrong passwords in a row: the account refuses sign-in until `retry_after` seconds pass."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TooManyAttempts(AccountError):
    """Sign-in attempts from this address or for this name are over the limit for now."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class UnknownAccount(AccountError):
    """No account with that name (or token with that id)."""


class AccountExists(AccountError):
    """An account with that name exists already (names are compared case-insensitively)."""


class BadAccountInput(AccountError):
    """A name, role or password that cannot be used; the message says why."""


def name_key(name: str) -> str:
    """The form names are compared and looked up in: NFKC, trimmed, case-folded ("Alex" and "ＡＬＥＸ" are one)."""
    return unicodedata.normalize("NFKC", name).strip().casefold()


def clean_name(name: str) -> str:
    """A display name as stored: NFKC, trimmed; refuses empty, over-long and control characters."""
    cleaned = unicodedata.normalize("NFKC", name).strip()
    if not cleaned:
        raise BadAccountInput("an account name must not be empty")
    if len(cleaned) > NAME_MAX:
        raise BadAccountInput(f"an account name has at most {NAME_MAX} characters")
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Zl", "Zp") for ch in cleaned):
        raise BadAccountInput("an account name must not contain control or invisible characters")
    return cleaned


def parse_role(value: str) -> Role:
    """The role a string names, or BadAccountInput listing the roles."""
    try:
        return Role(value)
    except ValueError:
        raise BadAccountInput(f"unknown role {value!r}: use one of {', '.join(Role)}") from None


@dataclass(frozen=True)
class Account:
    """An agent account; the password hash never leaves the repository."""

    id: int
    name: str
    role: Role
    disabled: bool
    failed_signins: int
    locked_until: datetime | None
    created_at: datetime
    updated_at: datetime  # any change by an admin (role, password, disabled, unlock): older sessions end
    last_signin_at: datetime | None

    def locked(self, now: datetime) -> bool:
        """Whether sign-in is refused right now because of wrong passwords."""
        return self.locked_until is not None and self.locked_until > now


@dataclass(frozen=True)
class TokenInfo:
    """An API token as admins see it: never the token itself, which is shown once when created."""

    id: int
    account: str
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True)
class NewToken:
    """A token just created: `secret` is shown this once and stored only as a hash."""

    info: TokenInfo
    secret: str


@dataclass(frozen=True)
class AuditEntry:
    """One line of the append-only audit log."""

    id: int
    at: datetime
    actor: str | None
    role: str | None
    action: str
    conversation_id: str | None
    target: str | None
    detail: str
    ip: str | None
    via: str


@dataclass(frozen=True)
class Principal:
    """Who is calling: an account, how it proved it (a session cookie, an API token, the CLI), and its role."""

    account_id: int | None
    name: str
    role: Role
    via: str  # "session", "token" or "cli"
    ip: str | None = None
    csrf_token: str | None = None  # sessions only
    token_id: int | None = None  # tokens only

    def allows(self, needed: Role) -> bool:
        """Whether the caller's role may do what `needed` may."""
        return self.role.allows(needed)


CLI = Principal(account_id=None, name="cli", role=Role.ADMIN, via="cli")


class LastAdmin(AccountError):
    """The change would leave no enabled admin account."""
