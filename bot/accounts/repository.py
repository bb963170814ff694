"""The accounts repository: accounts, API tokens and the audit log in the SQL database of the CRM.

Synchronous SQLAlchemy like `bot.crm.repository`; async callers use `bot.accounts.directory`. Reads
return the frozen records of `bot.accounts.records`. The audit log is only ever appended to.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Self, cast

from sqlalchemy import CursorResult, Engine, create_engine, func, make_url, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bot.accounts.models import AccountRow, AuditRow, TokenRow
from bot.accounts.passwords import hash_password, needs_rehash, verify_password
from bot.accounts.records import (
    Account,
    AccountExists,
    AuditEntry,
    NewToken,
    Role,
    TokenInfo,
    UnknownAccount,
    clean_name,
    name_key,
)
from bot.crm.migrations import migrate

TOKEN_PREFIX = "art_"
# A token's last use is written at most this often: not one UPDATE per API call.
TOKEN_TOUCH_SECONDS = 60


def _utcnow() -> datetime:
    return datetime.now(UTC)


def token_digest(secret: str) -> str:
    """What is stored of a token: its SHA-256 (a token is random, so no slow hash is needed)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def _account(row: AccountRow) -> Account:
    return Account(
        id=row.id,
        name=row.name,
        role=Role(row.role),
        disabled=row.disabled,
        failed_signins=row.failed_signins,
        locked_until=row.locked_until,
        created_at=row.created_at,
        updated_at=row.updated_at,
        last_signin_at=row.last_signin_at,
    )


def _token(row: TokenRow, account: str) -> TokenInfo:
    return TokenInfo(
        id=row.id,
        account=account,
        name=row.name,
        prefix=row.prefix,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )


def _entry(row: AuditRow) -> AuditEntry:
    return AuditEntry(
        id=row.id,
        at=row.at,
        actor=row.actor,
        role=row.role,
        action=row.action,
        conversation_id=row.conversation_id,
        target=row.target,
        detail=row.detail,
        ip=row.ip,
        via=row.via,
    )


@dataclass(frozen=True)
class PasswordCheck:
    """The outcome of a sign-in attempt: `outcome` is ok, unknown, disabled, locked or wrong."""

    outcome: str
    account: Account | None
    locked_now: bool = False  # this attempt was the one that locked the account


class AccountRepository:
    """Accounts, tokens and audit entries behind a small synchronous API."""

    def __init__(self, engine: Engine, *, schema: str | None = None, clock: Callable[[], datetime] = _utcnow) -> None:
        """Use `engine`; `schema` puts the tables in a PostgreSQL schema, `clock` dates rows."""
        self._engine = engine
        self._bind = engine.execution_options(schema_translate_map={None: schema}) if schema else engine
        self._sessions = sessionmaker(self._bind, expire_on_commit=False)
        self.clock = clock

    @classmethod
    def from_url(
        cls, url: str, *, schema: str | None = None, clock: Callable[[], datetime] = _utcnow
    ) -> AccountRepository:
        """The accounts in the database at `url` (the CRM's: `settings.resolved_crm_url`)."""
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite":
            database = parsed.database or ""
            if database and database != ":memory:" and not database.startswith("file:"):
                Path(database).parent.mkdir(parents=True, exist_ok=True)
        return cls(create_engine(parsed, pool_pre_ping=True), schema=schema, clock=clock)

    def __enter__(self) -> Self:
        """Use the repository in a `with` block that closes it."""
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Close the repository."""
        self.close()

    def close(self) -> None:
        """Close every pooled connection."""
        self._engine.dispose()

    def create_schema(self) -> list[int]:
        """Bring the database to the current schema version (the CRM's migrations, accounts included)."""
        return migrate(self._bind)

    @contextmanager
    def _transaction(self) -> Iterator[Session]:
        with self._sessions.begin() as session:
            yield session

    def _row(self, session: Session, name: str) -> AccountRow:
        row = session.scalar(select(AccountRow).where(AccountRow.name_key == name_key(name)))
        if row is None:
            raise UnknownAccount(f"no account named {name!r}")
        return row

    # --- accounts ---

    def count(self) -> int:
        """How many accounts exist (disabled ones included)."""
        with self._sessions() as session:
            return int(session.scalar(select(func.count()).select_from(AccountRow)) or 0)

    def create(self, name: str, role: Role, password: str) -> Account:
        """A new account; AccountExists when the name (compared case-insensitively) is taken."""
        shown = clean_name(name)
        hashed = hash_password(password)
        now = self.clock()
        try:
            with self._transaction() as session:
                row = AccountRow(
                    name=shown,
                    name_key=name_key(shown),
                    role=str(role),
                    password_hash=hashed,
                    disabled=False,
                    failed_signins=0,
                    created_at=now,
                    updated_at=now,
                )
                session.add(row)
                session.flush()
                return _account(row)
        except IntegrityError:
            raise AccountExists(f"an account named {shown!r} exists already") from None

    def get(self, name: str) -> Account:
        """The account with this name (case-insensitive), or UnknownAccount."""
        with self._sessions() as session:
            return _account(self._row(session, name))

    def by_id(self, account_id: int) -> Account | None:
        """The account with this id."""
        with self._sessions() as session:
            row = session.get(AccountRow, account_id)
            return _account(row) if row is not None else None

    def all(self) -> list[Account]:
        """Every account, by name."""
        with self._sessions() as session:
            return [_account(r) for r in session.scalars(select(AccountRow).order_by(AccountRow.name_key))]

    def set_role(self, name: str, role: Role) -> Account:
        """Change an account's role."""
        with self._transaction() as session:
            row = self._row(session, name)
            row.role, row.updated_at = str(role), self.clock()
            return _account(row)

    def set_disabled(self, name: str, disabled: bool) -> Account:
        """Disable (no sign-in, no token works) or enable an account."""
        with self._transaction() as session:
            row = self._row(session, name)
            row.disabled, row.updated_at = disabled, self.clock()
            return _account(row)

    def set_password(self, name: str, password: str) -> Account:
        """Replace an account's password; clears a lock and the count of wrong passwords."""
        hashed = hash_password(password)
        with self._transaction() as session:
            row = self._row(session, name)
            row.password_hash, row.failed_signins, row.locked_until = hashed, 0, None
            row.updated_at = self.clock()
            return _account(row)

    def unlock(self, name: str) -> Account:
        """Lift a lock after wrong passwords (an admin's decision)."""
        with self._transaction() as session:
            row = self._row(session, name)
            row.failed_signins, row.locked_until, row.updated_at = 0, None, self.clock()
            return _account(row)

    def check_password(self, name: str, password: str, *, lock_after: int, lock_seconds: float) -> PasswordCheck:
        """Check a sign-in; count a wrong password and lock the account after `lock_after` in a row.

        The slow hash is checked outside any transaction, so a sign-in never holds a database lock
        while Argon2 runs; the counter is one atomic UPDATE.
        """
        key = name_key(name)
        with self._sessions() as session:
            row = session.scalar(select(AccountRow).where(AccountRow.name_key == key))
            stored = row.password_hash if row is not None else None
            account = _account(row) if row is not None else None
        good = verify_password(stored, password)  # always costs one Argon2 check, known name or not
        now = self.clock()
        if account is None:
            return PasswordCheck("unknown", None)
        if account.disabled:
            return PasswordCheck("disabled", account)
        if account.locked(now):
            return PasswordCheck("locked", account)
        # Each UPDATE applies only while the account is still unlocked: sign-ins checked side by side (worker
        # threads, replicas) all read it unlocked above, and a right password among them must neither
        # clear a lock a wrong one set meanwhile nor restart its count.
        unlocked = or_(AccountRow.locked_until.is_(None), AccountRow.locked_until <= now)
        with self._transaction() as session:
            if good:
                values: dict[str, object] = {"failed_signins": 0, "locked_until": None, "last_signin_at": now}
                if stored is not None and needs_rehash(stored):
                    values["password_hash"] = hash_password(password)
                granted = update(AccountRow).where(AccountRow.id == account.id, unlocked).values(**values)
                done = cast(CursorResult[Any], session.execute(granted))
                row = session.get(AccountRow, account.id)
                assert row is not None
                session.refresh(row)
                return PasswordCheck("ok" if done.rowcount else "locked", _account(row))
            counted = (
                update(AccountRow)
                .where(AccountRow.id == account.id, unlocked)
                .values(failed_signins=AccountRow.failed_signins + 1)
            )
            done = cast(CursorResult[Any], session.execute(counted))
            row = session.get(AccountRow, account.id)
            assert row is not None
            session.refresh(row)
            if not done.rowcount:
                return PasswordCheck("locked", _account(row))
            locked_now = row.failed_signins >= lock_after
            if locked_now:
                row.locked_until, row.failed_signins = now + timedelta(seconds=lock_seconds), 0
            return PasswordCheck("wrong", _account(row), locked_now=locked_now)

    # --- API tokens ---

    def create_token(self, account: str, name: str) -> NewToken:
        """A new API token for an account; the secret is in the result only."""
        label = clean_name(name)
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self._transaction() as session:
            owner = self._row(session, account)
            row = TokenRow(
                account_id=owner.id,
                name=label,
                token_hash=token_digest(secret),
                prefix=secret[: len(TOKEN_PREFIX) + 6],
                created_at=self.clock(),
            )
            session.add(row)
            session.flush()
            return NewToken(_token(row, owner.name), secret)

    def tokens(self, account: str | None = None) -> list[TokenInfo]:
        """The tokens of one account, or of all, newest first (revoked ones included)."""
        with self._sessions() as session:
            query = select(TokenRow, AccountRow.name).join(AccountRow, TokenRow.account_id == AccountRow.id)
            if account is not None:
                query = query.where(AccountRow.id == self._row(session, account).id)
            rows = session.execute(query.order_by(TokenRow.id.desc())).all()
            return [_token(t, owner) for t, owner in rows]

    def revoke_token(self, token_id: int) -> TokenInfo:
        """Revoke a token for good (revoking twice keeps the first time)."""
        with self._transaction() as session:
            row = session.get(TokenRow, token_id)
            if row is None:
                raise UnknownAccount(f"no API token with id {token_id}")
            if row.revoked_at is None:
                row.revoked_at = self.clock()
            owner = session.get(AccountRow, row.account_id)
            assert owner is not None
            return _token(row, owner.name)

    def authenticate_token(self, secret: str) -> tuple[Account, TokenInfo] | None:
        """The account a token acts as, when the token is known, not revoked and its account enabled."""
        if not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
            return None
        digest = token_digest(secret)
        now = self.clock()
        with self._sessions() as session:
            found = session.execute(
                select(TokenRow, AccountRow)
                .join(AccountRow, TokenRow.account_id == AccountRow.id)
                .where(TokenRow.token_hash == digest)
            ).first()
            if found is None:
                return None
            token, owner = found[0], found[1]
            if token.revoked_at is not None or owner.disabled:
                return None
            info, account = _token(token, owner.name), _account(owner)
            stale = token.last_used_at is None or (now - token.last_used_at).total_seconds() >= TOKEN_TOUCH_SECONDS
        if stale:
            with self._transaction() as session:
                session.execute(update(TokenRow).where(TokenRow.id == info.id).values(last_used_at=now))
        return account, info

    # --- audit log ---

    def audit(
        self,
        action: str,
        *,
        actor: str | None,
        actor_id: int | None,
        role: str | None,
        via: str,
        ip: str | None = None,
        conversation_id: str | None = None,
        target: str | None = None,
        detail: str = "",
    ) -> AuditEntry:
        """Append one entry; there is no way to change or remove one."""
        with self._transaction() as session:
            row = AuditRow(
                at=self.clock(),
                actor=actor[:80] if actor else actor,
                actor_id=actor_id,
                role=role,
                action=action,
                conversation_id=conversation_id,
                target=target[:120] if target else target,
                detail=detail[:2000],
                ip=ip[:64] if ip else ip,
                via=via,
            )
            session.add(row)
            session.flush()
            return _entry(row)

    def audit_page(
        self,
        *,
        limit: int = 100,
        before: int | None = None,
        actor: str | None = None,
        action: str | None = None,
        conversation_id: str | None = None,
    ) -> list[AuditEntry]:
        """Entries newest first; `before` (an entry id) pages back through older ones."""
        query = select(AuditRow)
        if before is not None:
            query = query.where(AuditRow.id < before)
        if actor is not None:
            query = query.where(AuditRow.actor == actor)
        if action is not None:
            query = query.where(AuditRow.action == action)
        if conversation_id is not None:
            query = query.where(AuditRow.conversation_id == conversation_id)
        with self._sessions() as session:
            return [_entry(r) for r in session.scalars(query.order_by(AuditRow.id.desc()).limit(limit))]
