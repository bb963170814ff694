"""Sessions and sign-in limits on a real Redis, and the sign-in service with its audit entries."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot import keys
from bot.accounts.directory import Accounts
from bot.accounts.records import CLI, AccountLocked, LastAdmin, NotAuthenticated, Role, TooManyAttempts
from bot.accounts.repository import AccountRepository
from bot.accounts.service import AccountService, LockPolicy
from bot.accounts.sessions import Sessions, SignInLimits
from tests.conftest import TextRedis

PASSWORD = "correct horse battery staple"


@pytest.fixture
def repository(tmp_path: Path) -> AccountRepository:
    repo = AccountRepository.from_url(f"sqlite:///{tmp_path / 'accounts.sqlite3'}")
    repo.create_schema()
    return repo


def service(redis: TextRedis, repository: AccountRepository, **limits: float) -> AccountService:
    return AccountService(
        Accounts(repository),
        Sessions(redis, idle_seconds=limits.get("idle", 1800), max_seconds=limits.get("max", 12 * 3600)),
        SignInLimits(
            redis,
            per_ip=int(limits.get("per_ip", 30)),
            per_name=int(limits.get("per_name", 10)),
            window_seconds=limits.get("window", 300),
        ),
        LockPolicy(after=int(limits.get("lock_after", 5)), seconds=limits.get("lock_seconds", 900)),
    )


@pytest.fixture
async def accounts(redis: TextRedis, repository: AccountRepository) -> AsyncIterator[AccountService]:
    made = service(redis, repository)
    await made.add(CLI, "小李", Role.AGENT, PASSWORD)
    yield made
    repository.close()


async def actions(s: AccountService) -> list[tuple[str, str | None, str]]:
    return [(e.action, e.actor, e.detail) for e in reversed(await s.accounts.audit_page(limit=100))]


async def test_a_session_stands_for_the_account_and_ends_on_sign_out(
    accounts: AccountService, redis: TextRedis
) -> None:
    sid, who = await accounts.sign_in("小李", PASSWORD, "10.0.0.7")
    assert (who.name, who.role, who.via, who.ip) == ("小李", Role.AGENT, "session", "10.0.0.7")
    assert who.csrf_token and who.csrf_token != sid
    # Redis keeps the session under the SHA-256 of the cookie value: the value itself is nowhere.
    stored = [k for k in await redis.keys("ar:session:*")]
    assert len(stored) == 1 and sid not in stored[0]
    assert sid not in str(await redis.hgetall(stored[0]))
    again = await accounts.from_session(sid, "10.0.0.7")
    assert again is not None and again.csrf_token == who.csrf_token
    assert await accounts.from_session("forged-" + sid, None) is None
    # A second sign-in is a second session with its own id and CSRF token.
    other_sid, other = await accounts.sign_in("小李", PASSWORD, "10.0.0.8")
    assert other_sid != sid and other.csrf_token != who.csrf_token
    await accounts.sign_out(sid, who)
    assert await accounts.from_session(sid, None) is None
    assert await accounts.from_session(other_sid, None) is not None
    assert await actions(accounts) == [
        ("account_created", "cli", "role agent"),
        ("sign_in", "小李", ""),
        ("sign_in", "小李", ""),
        ("sign_out", "小李", ""),
    ]
    entry = (await accounts.accounts.audit_page(limit=1, action="sign_out"))[0]
    assert (entry.role, entry.ip, entry.via) == ("agent", "10.0.0.7", "session")


async def test_sessions_expire_when_idle_and_after_their_lifetime(
    redis: TextRedis, repository: AccountRepository
) -> None:
    short = service(redis, repository, idle=1, max=3600)
    await short.add(CLI, "Lin", Role.AGENT, PASSWORD)
    sid, _ = await short.sign_in("Lin", PASSWORD, None)
    assert await short.from_session(sid, None) is not None
    await asyncio.sleep(1.3)
    assert await short.from_session(sid, None) is None  # idle too long

    brief = service(redis, repository, idle=60, max=1)
    sid, _ = await brief.sign_in("Lin", PASSWORD, None)
    assert 0 < await redis.ttl(next(iter(await redis.keys("ar:session:*")))) <= 1
    await asyncio.sleep(0.6)
    assert await brief.from_session(sid, None) is not None  # in use, yet ...
    await asyncio.sleep(0.6)
    assert await brief.from_session(sid, None) is None  # ... over its lifetime


async def test_an_admin_change_ends_the_accounts_sessions(accounts: AccountService, redis: TextRedis) -> None:
    sid, _ = await accounts.sign_in("小李", PASSWORD, None)
    await accounts.set_role(CLI, "小李", Role.SUPERVISOR)
    assert await accounts.from_session(sid, None) is None
    sid, who = await accounts.sign_in("小李", PASSWORD, None)
    assert who.role == Role.SUPERVISOR
    await accounts.set_disabled(CLI, "小李", True)
    assert await accounts.from_session(sid, None) is None
    with pytest.raises(NotAuthenticated):
        await accounts.sign_in("小李", PASSWORD, None)
    await accounts.set_disabled(CLI, "小李", False)
    sid, _ = await accounts.sign_in("小李", PASSWORD, None)
    _, generated = await accounts.reset_password(CLI, "小李", None)
    assert generated and await accounts.from_session(sid, None) is None
    await accounts.sign_in("小李", generated, None)
    # A change made elsewhere (the CLI, another replica) is noticed as well: the account changed after sign-in.
    sid, _ = await accounts.sign_in("小李", generated, None)
    await asyncio.to_thread(accounts.accounts.sync.set_role, "小李", Role.AGENT)
    assert await accounts.from_session(sid, None) is None
    assert await redis.exists(keys.account_sessions(1)) in (0, 1)


async def test_wrong_passwords_lock_the_account(redis: TextRedis, repository: AccountRepository) -> None:
    s = service(redis, repository, lock_after=3, lock_seconds=600)
    await s.add(CLI, "小王", Role.AGENT, PASSWORD)
    for _ in range(2):
        with pytest.raises(NotAuthenticated, match="wrong name or password"):
            await s.sign_in("小王", "wrong password!", "10.0.0.1")
    with pytest.raises(AccountLocked) as locked:
        await s.sign_in("小王", "wrong password!", "10.0.0.1")
    assert locked.value.retry_after == 600
    with pytest.raises(AccountLocked):
        await s.sign_in("小王", PASSWORD, "10.0.0.1")  # the right password too, while locked
    # An unknown name is refused with the same words as a wrong password.
    with pytest.raises(NotAuthenticated, match="wrong name or password"):
        await s.sign_in("nobody", PASSWORD, "10.0.0.1")
    assert (await s.accounts.get("小王")).locked_until is not None  # what admins see
    await s.unlock(CLI, "小王")
    await s.sign_in("小王", PASSWORD, "10.0.0.1")
    failures = [d for a, _, d in await actions(s) if a == "sign_in_failed"]
    assert failures == ["wrong", "wrong", "wrong (account now locked)", "locked", "unknown"]
    assert [a for a, _, _ in await actions(s)][-2:] == ["account_unlocked", "sign_in"]


async def test_sign_in_is_rate_limited_per_address_and_per_name(
    redis: TextRedis, repository: AccountRepository
) -> None:
    s = service(redis, repository, per_ip=4, per_name=3, window=60, lock_after=100)
    await s.add(CLI, "Alex", Role.AGENT, PASSWORD)
    for _ in range(3):
        with pytest.raises(NotAuthenticated):
            await s.sign_in("alex", "wrong password!", "10.0.0.2")
    with pytest.raises(TooManyAttempts, match="this account") as limited:
        await s.sign_in("ALEX", PASSWORD, "10.0.0.3")  # the name, however written, from anywhere
    assert 0 < limited.value.retry_after <= 60
    # The same address trying other names meets the per-address limit.
    with pytest.raises(NotAuthenticated):
        await s.sign_in("someone", PASSWORD, "10.0.0.2")
    with pytest.raises(TooManyAttempts, match="this address"):
        await s.sign_in("someone else", PASSWORD, "10.0.0.2")
    # Other addresses and names are not affected; the window passes.
    await s.add(CLI, "Bo", Role.AGENT, PASSWORD)
    await s.sign_in("Bo", PASSWORD, "10.0.0.9")
    await redis.delete(*await redis.keys("ar:signin:*"))
    await s.sign_in("Alex", PASSWORD, "10.0.0.2")


async def test_the_last_admin_cannot_be_demoted_or_disabled(accounts: AccountService) -> None:
    await accounts.add(CLI, "root", Role.ADMIN, PASSWORD)
    with pytest.raises(LastAdmin):
        await accounts.set_role(CLI, "root", Role.AGENT)
    with pytest.raises(LastAdmin):
        await accounts.set_disabled(CLI, "root", True)
    await accounts.add(CLI, "root2", Role.ADMIN, PASSWORD)
    assert (await accounts.set_role(CLI, "root", Role.SUPERVISOR)).role == Role.SUPERVISOR


async def test_tokens_act_as_their_account_until_revoked(accounts: AccountService) -> None:
    new = await accounts.create_token(CLI, "小李", "CRM sync")
    who = await accounts.from_token(new.secret, "10.1.1.1")
    assert who is not None and (who.name, who.role, who.via, who.token_id) == ("小李", Role.AGENT, "token", new.info.id)
    await accounts.revoke_token(CLI, new.info.id)
    assert await accounts.from_token(new.secret, None) is None
    assert [(a, d) for a, _, d in await actions(accounts)][-2:] == [
        ("token_created", f"token {new.info.id} CRM sync"),
        ("token_revoked", f"token {new.info.id} CRM sync"),
    ]
