"""The mailbox reader: one replica per mailbox (Redis lease), IDLE or polling, new mail by UID.

Each session selects the folder, compares UIDVALIDITY with the one stored in Redis (a change means
the UIDs were renumbered: every mail of the folder is looked at again, and the processed ones are
recognised by their Message-ID), searches for UIDs above the watermark that are not yet marked
processed, fetches and processes them a few at a time, then marks them (flags, or a move to the
configured folder) and advances the watermark past every UID that is done. With nothing to do it
IDLEs, or polls when the server has no IDLE. Every failure reconnects with exponential backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aioimaplib
from redis.exceptions import RedisError

from connectors.email import keys as mail_keys
from connectors.email.errors import ImapError, LeaseLost, MailError, RetryLater
from connectors.email.imap import ImapClient, ImapConfig
from connectors.email.processor import Outcome

log = logging.getLogger(__name__)

PROCESSED_KEYWORD = "$AutoResponded"
IDLE_SECONDS = 300.0  # re-issue IDLE well within the 29 minutes servers allow
FETCH_BATCH = 50
RETRY_FIRST_SECONDS = 5.0
RETRY_MAX_SECONDS = 300.0
# A mail that breaks the processor this many times in a row (about 15 minutes of backoff) is given up:
# marked read but not answered, left in the mailbox for a person, so that it no longer holds the
# watermark (every later mail searched and fetched again each round) or burns a core.
MAX_FAILURES = 8
RECONNECT_MAX_SECONDS = 60.0

_LEASE_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end
return 0
"""
_LEASE_TAKEOVER = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('set', KEYS[1], ARGV[2], 'PX', ARGV[3]) end
return false
"""
_LEASE_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""

Process = Callable[[bytes, int, int], Awaitable[Outcome]]


class Lease:
    """A Redis lease on the mailbox, so that one replica reads it.

    `identity` names the replica (host and HTTP port, which no two live processes share): a replica
    restarted after a crash takes its own stale lease back at once instead of waiting for it to expire.
    """

    def __init__(self, redis: Any, key: str, identity: str, ttl_seconds: float = mail_keys.MAIL_LEASE_SECONDS) -> None:
        self.redis = redis
        self.key = key
        self.identity = identity
        self.ttl_ms = int(ttl_seconds * 1000)
        self.token = f"{identity}#{uuid.uuid4().hex}"

    async def acquire(self) -> bool:
        """Take the lease if it is free, or if it is a stale one of this same replica."""
        if await self.redis.set(self.key, self.token, nx=True, px=self.ttl_ms):
            return True
        current = await self.redis.get(self.key)
        if current == self.token:
            return True
        if current and str(current).rsplit("#", 1)[0] == self.identity:
            return bool(await self.redis.eval(_LEASE_TAKEOVER, 1, self.key, current, self.token, self.ttl_ms))
        return False

    async def renew(self) -> bool:
        """Extend the lease; False when another replica holds it now."""
        return bool(await self.redis.eval(_LEASE_RENEW, 1, self.key, self.token, self.ttl_ms))

    async def release(self) -> None:
        """Give the lease up (at shutdown), so another replica can start at once."""
        await self.redis.eval(_LEASE_RELEASE, 1, self.key, self.token)


@dataclass
class _Retry:
    attempts: int
    next_at: float
    failures: int = 0  # of them, the processor's unexpected errors (not "retry later")


class MailboxReader:
    """Reads one folder of one mailbox and hands each new mail to `process`."""

    def __init__(
        self,
        config: ImapConfig,
        redis: Any,
        process: Process,
        *,
        identity: str,
        max_bytes: int,
        processed_folder: str | None = None,
        poll_seconds: float = 30.0,
        concurrency: int = 4,
    ) -> None:
        self.config = config
        self.redis = redis
        self.process = process
        self.max_bytes = max_bytes
        self.processed_folder = processed_folder
        self.poll_seconds = poll_seconds
        self.concurrency = concurrency
        self.lease = Lease(redis, mail_keys.mail_lease(config.mailbox_id), identity)
        self.mode = "starting"  # then "idle" or "poll": how this session waits for new mail
        self.sessions = 0
        self.processed = 0
        self.failed = 0  # mails given up after MAX_FAILURES
        # Marked on the server but above the watermark (a mail before them still waits): where the server
        # keeps no keyword of ours, the search finds them again, and they must not be fetched again.
        self._flagged: set[int] = set()
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self._lease_lost = False
        self._pending: dict[int, asyncio.Task[None]] = {}
        self._done: dict[int, Outcome] = {}
        self._retry: dict[int, _Retry] = {}
        self._max_seen = 0
        self._slots = asyncio.Semaphore(concurrency)
        self._progress = asyncio.Event()
        self._marking: tuple[str, int, bool] | None = None  # state key, watermark, keywords: for the last flush

    def stop(self) -> None:
        """Ask the reader to finish; the current IDLE or poll wait ends at once."""
        self._stop.set()
        self._wake.set()

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    async def run(self) -> None:
        """Read the mailbox until stopped; every failure reconnects with backoff."""
        backoff = 1.0
        sessions = self.sessions
        try:
            while not self._stop.is_set():
                try:
                    if not await self.lease.acquire():
                        await self._sleep(self.lease.ttl_ms / 3000)
                        continue
                    self._lease_lost = False
                    sessions = self.sessions
                    await self._session()
                    backoff = 1.0
                except (TimeoutError, MailError, OSError, aioimaplib.AioImapException, RedisError) as exc:
                    if self._stop.is_set():
                        break
                    if self.sessions > sessions:
                        backoff = 1.0  # that session was up: this is a new outage, not the same one going on
                    delay = backoff * random.uniform(0.8, 1.2)
                    log.warning("mail reader (%s): %s; reconnecting in %.1f s", self.config.mailbox_id, exc, delay)
                    await self._sleep(delay)
                    backoff = min(RECONNECT_MAX_SECONDS, backoff * 2)
                except Exception:  # a bug must not stop the mailbox for good: log it loudly and retry
                    if self._stop.is_set():
                        break
                    log.exception("mail reader (%s) failed; restarting in %.0f s", self.config.mailbox_id, backoff)
                    await self._sleep(backoff)
                    backoff = min(RECONNECT_MAX_SECONDS, backoff * 2)
                if not self._stop.is_set():
                    self._wake.clear()
        finally:
            for task in self._pending.values():
                task.cancel()
            with contextlib.suppress(RedisError, OSError):
                await self.lease.release()

    async def _renew_lease(self) -> None:
        while True:
            await asyncio.sleep(self.lease.ttl_ms / 3000)
            try:
                held = await self.lease.renew()
            except RedisError as exc:
                log.warning("cannot renew the mailbox lease: %s", exc)
                continue
            if not held:
                self._lease_lost = True
                self._wake.set()
                return

    async def _session(self) -> None:
        client = ImapClient(self.config)
        renewer = asyncio.create_task(self._renew_lease())
        try:
            await client.connect()
            self.sessions += 1
            await self._serve(client)
        finally:
            renewer.cancel()
            if self._pending:
                # Let mails already being processed commit; they are flagged now or in the next session.
                await asyncio.wait(list(self._pending.values()), timeout=120)
            if self._done and self._marking is not None and not client.lost.is_set():
                with contextlib.suppress(MailError, OSError, TimeoutError, aioimaplib.AioImapException, RedisError):
                    await self._flush(client, *self._marking)
            await client.close()

    async def _serve(self, client: ImapClient) -> None:
        selected = await client.select()
        state_key = mail_keys.mail_uid(self.config.mailbox_id)
        stored = await self.redis.hgetall(state_key)
        if stored and int(stored.get("uidvalidity") or 0) != selected.uidvalidity:
            log.warning(
                "UIDVALIDITY of %s changed (%s → %s): rescanning the folder; processed mails are known by Message-ID",
                self.config.mailbox_id,
                stored.get("uidvalidity"),
                selected.uidvalidity,
            )
        if not stored or int(stored.get("uidvalidity") or 0) != selected.uidvalidity:
            await self.redis.hset(state_key, mapping={"uidvalidity": selected.uidvalidity, "last_uid": 0})
            self._done.clear()
            self._retry.clear()
            self._flagged.clear()
            self._max_seen = 0
            last_uid = 0
        else:
            last_uid = int(stored.get("last_uid") or 0)
            self._max_seen = max(self._max_seen, last_uid)
        if self.processed_folder:
            await client.ensure_folder(self.processed_folder)
        keywords = selected.keywords_allowed and not self.processed_folder
        self.mode = "idle" if client.has_capability("IDLE") else "poll"
        self._marking = (state_key, last_uid, keywords)
        while not self._stop.is_set():
            if self._lease_lost:
                raise LeaseLost(f"another replica took the lease on {self.config.mailbox_id}")
            last_uid = await self._flush(client, state_key, last_uid, keywords)
            self._marking = (state_key, last_uid, keywords)
            criteria = [f"UID {last_uid + 1}:*", "UNDELETED"]
            if keywords:
                criteria.append(f"UNKEYWORD {PROCESSED_KEYWORD}")
            now = time.time()
            found = await client.uid_search(*criteria)
            present = set(found)
            for uid in [u for u in self._retry if u not in present]:
                del self._retry[uid]  # expunged, moved or marked by someone else meanwhile
            todo = [
                uid
                for uid in found
                if uid > last_uid
                and uid not in self._pending
                and uid not in self._done
                and uid not in self._flagged
                and (uid not in self._retry or self._retry[uid].next_at <= now)
            ]
            if todo:
                await self._dispatch(client, todo[:FETCH_BATCH])
                continue
            if self._done:
                continue  # mark them on the server before waiting for anything
            if self._pending:
                self._progress.clear()
                if not self._done:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._progress.wait(), 1.0)
                continue
            if self._retry:
                await self._sleep(min(self.poll_seconds, max(0.5, min(r.next_at for r in self._retry.values()) - now)))
                continue
            if self.mode == "idle":
                await client.wait_for_news(IDLE_SECONDS, self._wake)
            else:
                await self._sleep(self.poll_seconds)
            if client.lost.is_set():
                raise ImapError("IMAP connection lost")

    async def _dispatch(self, client: ImapClient, uids: list[int]) -> None:
        sizes = await client.fetch_sizes(uids)
        for uid in uids:
            if uid not in sizes:  # expunged since the search, most likely: the next search tells
                self._schedule_retry(uid, "no size reported")
                continue
            await self._slots.acquire()
            try:
                raw = await client.fetch(uid, header_only=sizes[uid] > self.max_bytes)
            except BaseException:
                self._slots.release()
                raise
            if raw is None:
                self._slots.release()
                self._schedule_retry(uid, "no content returned")
                continue
            self._max_seen = max(self._max_seen, uid)
            self._pending[uid] = asyncio.create_task(self._run_one(uid, raw, sizes[uid]))

    async def _run_one(self, uid: int, raw: bytes, size: int) -> None:
        try:
            outcome = await self.process(raw, size, uid)
        except RetryLater as exc:
            self._schedule_retry(uid, str(exc))
        except asyncio.CancelledError:
            raise
        except Exception:  # a mail that breaks the processor is retried with backoff, then given up
            log.exception("mail uid %s of %s failed", uid, self.config.mailbox_id)
            previous = self._retry.get(uid)
            if (previous.failures if previous else 0) + 1 >= MAX_FAILURES:
                log.error(
                    "mail uid %s of %s failed %d times: marked read, not answered, left for a person",
                    uid,
                    self.config.mailbox_id,
                    MAX_FAILURES,
                )
                self._retry.pop(uid, None)
                self._done[uid] = Outcome("failed", reason="processing failed")
                self.failed += 1
            else:
                self._schedule_retry(uid, "unexpected error", failed=True)
        else:
            self._retry.pop(uid, None)
            self._done[uid] = outcome
            self.processed += 1
        finally:
            self._pending.pop(uid, None)
            self._slots.release()
            self._progress.set()

    def _schedule_retry(self, uid: int, why: str, *, failed: bool = False) -> None:
        previous = self._retry.get(uid)
        attempts = (previous.attempts if previous else 0) + 1
        failures = (previous.failures if previous else 0) + 1 if failed else 0
        delay = min(RETRY_MAX_SECONDS, RETRY_FIRST_SECONDS * 2 ** (attempts - 1)) * random.uniform(0.8, 1.2)
        self._retry[uid] = _Retry(attempts, time.time() + delay, failures)
        log.warning("mail uid %s: %s; attempt %d, next in %.0f s", uid, why, attempts, delay)

    async def _flush(self, client: ImapClient, state_key: str, last_uid: int, keywords: bool) -> int:
        """Mark processed mail on the server, then move the watermark past every finished UID."""
        done = dict(self._done)
        if done:
            uids = sorted(done)
            if self.processed_folder:
                await client.move(uids, self.processed_folder)
            else:
                await client.add_flags(uids, f"\\Seen {PROCESSED_KEYWORD}" if keywords else "\\Seen")
                answered = [u for u in uids if done[u].answered]
                await client.add_flags(answered, "\\Answered")
            for uid in uids:
                self._done.pop(uid, None)
            self._flagged.update(uids)
        blocked = set(self._pending) | set(self._retry)
        watermark = min(blocked) - 1 if blocked else self._max_seen
        self._flagged = {u for u in self._flagged if u > max(watermark, last_uid)}
        if watermark > last_uid:
            await self.redis.hset(state_key, "last_uid", watermark)
            return watermark
        return last_uid
