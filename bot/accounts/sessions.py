"""Console sessions in Redis (expiry, idle timeout, ended all at once per account) and sign-in rate limits.

The cookie carries a random session id; Redis keeps the session under the id's SHA-256, so a copy of
Redis holds no usable session. Each session has its own CSRF token, sent back by the console in a
header with every state-changing request.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from typing import Any

from bot import keys
from bot.accounts.records import Account, Principal, Role, TooManyAttempts, name_key


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class Sessions:
    """Server-side sessions of signed-in agents."""

    def __init__(self, redis: Any, *, idle_seconds: float, max_seconds: float) -> None:
        self.redis = redis
        self.idle_seconds = int(idle_seconds)
        self.max_seconds = int(max_seconds)

    async def create(self, account: Account, ip: str | None) -> tuple[str, Principal]:
        """A new session for an account: (the cookie value, the caller it stands for)."""
        sid = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        now = time.time()
        digest = _digest(sid)
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(
            keys.agent_session(digest),
            mapping={
                "account_id": account.id,
                "name": account.name,
                "role": str(account.role),
                "csrf": csrf,
                "created_at": now,
                "expires_at": now + self.max_seconds,
                "ip": ip or "",
            },
        )
        pipe.expire(keys.agent_session(digest), min(self.idle_seconds, self.max_seconds))
        pipe.sadd(keys.account_sessions(account.id), digest)
        pipe.expire(keys.account_sessions(account.id), self.max_seconds)
        await pipe.execute()
        return sid, Principal(account.id, account.name, account.role, "session", ip=ip, csrf_token=csrf)

    async def get(self, sid: str, ip: str | None) -> Principal | None:
        """The caller a session cookie stands for, renewing its idle timeout; None when gone or expired."""
        if not sid or len(sid) > 100:
            return None
        key = keys.agent_session(_digest(sid))
        raw = await self.redis.hgetall(key)
        if not raw:
            return None
        left = float(raw["expires_at"]) - time.time()
        if left <= 0:
            await self.destroy(sid)
            return None
        await self.redis.expire(key, max(1, int(min(self.idle_seconds, left))))
        return Principal(
            int(raw["account_id"]), raw["name"], Role(raw["role"]), "session", ip=ip, csrf_token=raw["csrf"]
        )

    async def created_at(self, sid: str) -> float:
        """When a session began (0 when there is none)."""
        value = await self.redis.hget(keys.agent_session(_digest(sid)), "created_at")
        return float(value) if value else 0.0

    async def destroy(self, sid: str) -> None:
        """End one session (sign-out, or a new sign-in replacing it)."""
        digest = _digest(sid)
        raw = await self.redis.hgetall(keys.agent_session(digest))
        await self.redis.delete(keys.agent_session(digest))
        if raw:
            await self.redis.srem(keys.account_sessions(int(raw["account_id"])), digest)

    async def destroy_all(self, account_id: int) -> int:
        """End every session of an account (disabled, new role or password); how many there were."""
        digests = await self.redis.smembers(keys.account_sessions(account_id))
        pipe = self.redis.pipeline(transaction=True)
        for digest in digests:
            pipe.delete(keys.agent_session(digest))
        pipe.delete(keys.account_sessions(account_id))
        results = await pipe.execute()
        return sum(int(r) for r in results[:-1])


class SignInLimits:
    """Fixed-window limits on sign-in attempts per client address and per account name."""

    def __init__(self, redis: Any, *, per_ip: int, per_name: int, window_seconds: float) -> None:
        self.redis = redis
        self.per_ip = per_ip
        self.per_name = per_name
        self.window = max(1, int(window_seconds))

    async def attempt(self, ip: str | None, name: str) -> None:
        """Count an attempt; TooManyAttempts (with the seconds to wait) when over either limit."""
        checks = [(keys.signin_attempts_name(_digest(name_key(name))[:32]), self.per_name, "this account")]
        if ip:
            checks.append((keys.signin_attempts_ip(ip), self.per_ip, "this address"))
        pipe = self.redis.pipeline(transaction=True)
        for key, _, _ in checks:
            pipe.set(key, 0, ex=self.window, nx=True)
            pipe.incr(key)
            pipe.ttl(key)
        results = await pipe.execute()
        for i, (_, limit, what) in enumerate(checks):
            count, ttl = int(results[3 * i + 1]), int(results[3 * i + 2])
            if count > limit:
                wait = max(1, ttl)
                raise TooManyAttempts(f"too many sign-in attempts for {what}; try again in {wait} s", wait)
