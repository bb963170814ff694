"""The accounts repository on SQLite and on PostgreSQL: hashing, lockout, tokens, the append-only audit log."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, delete, inspect, make_url, select, text, update
from sqlalchemy.exc import DatabaseError, OperationalError

from bot.accounts.models import AuditRow, Base, TokenRow
from bot.accounts.passwords import generate_password, hash_password, needs_rehash, verify_password
from bot.accounts.records import AccountExists, BadAccountInput, Role, UnknownAccount
from bot.accounts.repository import AccountRepository, token_digest
from bot.crm.migrations import STEPS

POSTGRES_URL = os.environ.get("AUTORESPONDER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
PASSWORD = "correct horse battery staple"


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str | None]]:
    """(URL, schema) of an empty database: a SQLite file, or a throwaway schema in PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'accounts.sqlite3'}", None
        return
    admin = create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
    try:
        with admin.connect():
            pass
    except OperationalError as exc:
        admin.dispose()
        where = make_url(POSTGRES_URL).render_as_string(hide_password=True)
        pytest.skip(f"PostgreSQL not reachable at {where} ({exc.orig}); see tests/bot/crm/test_crm.py")
    schema = f"accounts_test_{uuid.uuid4().hex[:12]}"
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield POSTGRES_URL, schema
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def repo(database: tuple[str, str | None], clock: Clock) -> Iterator[AccountRepository]:
    url, schema = database
    accounts = AccountRepository.from_url(url, schema=schema, clock=clock)
    assert accounts.create_schema() == [step.version for step in STEPS]
    yield accounts
    accounts.close()


def test_passwords_are_argon2id_hashes_that_verify() -> None:
    stored = hash_password(PASSWORD)
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored
    assert verify_password(stored, PASSWORD)
    assert not verify_password(stored, PASSWORD.upper())
    assert not verify_password(None, PASSWORD)  # no account: the same work, and no
    assert not verify_password("not a hash", PASSWORD)
    assert not needs_rehash(stored)
    assert hash_password(PASSWORD) != stored  # salted
    with pytest.raises(BadAccountInput, match="at least 12"):
        hash_password("short")
    assert len(generate_password()) == 20


def test_accounts_by_name_case_insensitively(repo: AccountRepository) -> None:
    made = repo.create(" Alex ", Role.SUPERVISOR, PASSWORD)
    assert (made.name, made.role, made.disabled) == ("Alex", Role.SUPERVISOR, False)
    assert repo.get("ALEX").id == made.id
    assert repo.get("ａｌｅｘ").id == made.id  # full-width letters are the same name
    with pytest.raises(AccountExists):
        repo.create("alex", Role.AGENT, PASSWORD)
    with pytest.raises(UnknownAccount):
        repo.get("nobody")
    for bad in ("", "   ", "a\u0000b", "x" * 81, "zero\u200bwidth"):
        with pytest.raises(BadAccountInput):
            repo.create(bad, Role.AGENT, PASSWORD)
    repo.create("小李", Role.AGENT, PASSWORD)
    assert [a.name for a in repo.all()] == ["Alex", "小李"]
    assert repo.set_role("小李", Role.ADMIN).role == Role.ADMIN
    assert repo.set_disabled("小李", True).disabled is True
    assert repo.count() == 2


def test_wrong_passwords_lock_the_account_for_a_while(repo: AccountRepository, clock: Clock) -> None:
    repo.create("小王", Role.AGENT, PASSWORD)
    check = repo.check_password("小王", PASSWORD, lock_after=3, lock_seconds=900)
    assert check.outcome == "ok" and check.account is not None and check.account.last_signin_at == clock.now
    for n in (1, 2):
        wrong = repo.check_password("小王", "wrong password!", lock_after=3, lock_seconds=900)
        assert (wrong.outcome, wrong.locked_now) == ("wrong", False)
        assert wrong.account is not None and wrong.account.failed_signins == n
    third = repo.check_password("小王", "wrong password!", lock_after=3, lock_seconds=900)
    assert (third.outcome, third.locked_now) == ("wrong", True)
    assert repo.get("小王").locked(clock.now)
    # Locked: even the right password is refused, and nothing is counted, until the time is up.
    assert repo.check_password("小王", PASSWORD, lock_after=3, lock_seconds=900).outcome == "locked"
    clock.now += timedelta(seconds=901)
    assert repo.check_password("小王", PASSWORD, lock_after=3, lock_seconds=900).outcome == "ok"
    # A success clears the count; an admin's unlock lifts a lock at once.
    for _ in range(3):
        repo.check_password("小王", "wrong password!", lock_after=3, lock_seconds=900)
    assert repo.get("小王").locked(clock.now)
    assert not repo.unlock("小王").locked(clock.now)
    assert repo.check_password("小王", PASSWORD, lock_after=3, lock_seconds=900).outcome == "ok"
    assert repo.check_password("nobody", PASSWORD, lock_after=3, lock_seconds=900).outcome == "unknown"
    repo.set_disabled("小王", True)
    assert repo.check_password("小王", PASSWORD, lock_after=3, lock_seconds=900).outcome == "disabled"


def test_a_right_password_checked_beside_the_wrong_one_that_locks_does_not_lift_the_lock(
    repo: AccountRepository, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Sign-ins are checked side by side (worker threads, replicas): the right password's check reads the
    # account unlocked, and while Argon2 runs, a wrong one reaches the limit and locks it. The right one
    # must then be refused, the lock and its time kept.
    repo.create("小周", Role.AGENT, PASSWORD)
    for _ in range(2):
        repo.check_password("小周", "wrong password!", lock_after=3, lock_seconds=900)

    def slow_check(stored: str | None, password: str) -> bool:
        monkeypatch.setattr("bot.accounts.repository.verify_password", verify_password)
        assert repo.check_password("小周", "wrong password!", lock_after=3, lock_seconds=900).locked_now
        return verify_password(stored, password)

    monkeypatch.setattr("bot.accounts.repository.verify_password", slow_check)
    assert repo.check_password("小周", PASSWORD, lock_after=3, lock_seconds=900).outcome == "locked"
    assert repo.get("小周").locked(clock.now)
    # A wrong one read beside the lock the same way counts nothing towards a next lock.
    repo.unlock("小周")
    for _ in range(2):
        repo.check_password("小周", "wrong password!", lock_after=3, lock_seconds=900)
    monkeypatch.setattr("bot.accounts.repository.verify_password", slow_check)
    assert repo.check_password("小周", "another wrong one", lock_after=3, lock_seconds=900).outcome == "locked"
    account = repo.get("小周")
    assert account.locked(clock.now) and account.failed_signins == 0


def test_a_new_password_replaces_the_old_and_clears_a_lock(repo: AccountRepository, clock: Clock) -> None:
    repo.create("Lin", Role.AGENT, PASSWORD)
    for _ in range(2):
        repo.check_password("Lin", "wrong password!", lock_after=2, lock_seconds=900)
    assert repo.get("Lin").locked(clock.now)
    repo.set_password("Lin", "another long password")
    assert not repo.get("Lin").locked(clock.now)
    assert repo.check_password("Lin", PASSWORD, lock_after=5, lock_seconds=900).outcome == "wrong"
    assert repo.check_password("Lin", "another long password", lock_after=5, lock_seconds=900).outcome == "ok"


def test_api_tokens_are_stored_hashed_and_revocable(repo: AccountRepository, clock: Clock) -> None:
    repo.create("CRM sync", Role.AGENT, PASSWORD)
    new = repo.create_token("CRM sync", "nightly export")
    assert new.secret.startswith("art_") and len(new.secret) > 40
    assert new.info.prefix == new.secret[:10] and new.info.last_used_at is None
    # Only the SHA-256 is in the database.
    with repo._sessions() as session:
        stored = session.execute(select(TokenRow.token_hash, TokenRow.prefix)).all()
    assert stored == [(token_digest(new.secret), new.info.prefix)]
    found = repo.authenticate_token(new.secret)
    assert found is not None and found[0].name == "CRM sync" and found[1].id == new.info.id
    assert repo.tokens("CRM sync")[0].last_used_at == clock.now
    assert repo.authenticate_token(new.secret[:-1] + "x") is None
    assert repo.authenticate_token("not-a-token") is None
    # The last use is written at most once a minute.
    clock.now += timedelta(seconds=30)
    repo.authenticate_token(new.secret)
    assert repo.tokens()[0].last_used_at == clock.now - timedelta(seconds=30)
    # A disabled account's tokens do not work; revoked ones never again.
    repo.set_disabled("CRM sync", True)
    assert repo.authenticate_token(new.secret) is None
    repo.set_disabled("CRM sync", False)
    assert repo.revoke_token(new.info.id).revoked_at == clock.now
    assert repo.authenticate_token(new.secret) is None
    with pytest.raises(UnknownAccount):
        repo.revoke_token(9999)


def test_the_audit_log_is_append_only_and_pages_back(repo: AccountRepository, clock: Clock) -> None:
    for n in range(5):
        clock.now += timedelta(seconds=1)
        repo.audit(
            "take" if n % 2 else "answer",
            actor="小李",
            actor_id=1,
            role="agent",
            via="session",
            ip="127.0.0.1",
            conversation_id=f"conv-{n}",
        )
    first = repo.audit_page(limit=2)
    assert [e.conversation_id for e in first] == ["conv-4", "conv-3"]
    second = repo.audit_page(limit=2, before=first[-1].id)
    assert [e.conversation_id for e in second] == ["conv-2", "conv-1"]
    assert [e.conversation_id for e in repo.audit_page(action="take")] == ["conv-3", "conv-1"]
    assert repo.audit_page(conversation_id="conv-0")[0].at == datetime(2026, 5, 1, 9, 0, 1, tzinfo=UTC)
    # Not even SQL sent by hand can change or remove an entry: triggers refuse it.
    for statement in (update(AuditRow).values(actor="someone else"), delete(AuditRow)):
        with pytest.raises(DatabaseError, match="append-only"), repo._transaction() as session:
            session.execute(statement)
    assert len(repo.audit_page(limit=500)) == 5


def test_the_models_match_the_migrated_tables(repo: AccountRepository) -> None:
    """Step 2 of the migrations is frozen; the ORM models must still describe the tables it made."""
    with repo._bind.connect() as conn:
        found = inspect(conn)
        schema = (conn.get_execution_options().get("schema_translate_map") or {}).get(None)
        for table in Base.metadata.sorted_tables:
            columns = {c["name"]: c["nullable"] for c in found.get_columns(table.name, schema=schema)}
            assert columns == {c.name: c.nullable for c in table.columns}, table.name
