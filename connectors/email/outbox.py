"""The outbox: composed mails in a Redis stream, sent over SMTP with retries, each exactly once.

Producers add an entry in the same MULTI/EXEC that records why it exists (an inbound mail marked
processed, an agent's answer), so nothing is queued twice and nothing queued is lost. The worker
reads with a consumer group and acknowledges an entry once its SMTP transaction is over. After a
crash the entries the dead process had read are still pending: the same replica takes its own back
at start, other replicas claim them with XAUTOCLAIM once they are idle long enough.

Whether a transaction that a crash interrupted delivered its mail is decided by one point in time:
the final "." of DATA. A server that never saw it drops the message when the connection dies; one
that saw it delivers. So the worker sends the whole message body, waits until the kernel holds every
byte of it, and then, with no await in between that could let other work run, writes a "sent"
marker to Redis on a connection of its own and the final dot to the SMTP socket. A process killed
before the marker is in the kernel left an unfinished transaction behind and the mail is sent again;
one killed after the dot left a delivered mail and a marker that stops a second send (the kernel
delivers both sockets' buffered bytes after the process is gone). Only a kill in the microseconds
between the two writes loses the answer; no kill sends one twice. An answer refused after the dot
removes the marker again and is retried or recorded as failed.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import random
import re
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiosmtplib
from aiosmtplib.protocol import normalize_message_line_endings
from aiosmtplib.response import SMTPResponse
from aiosmtplib.typing import Default, SMTPStatus
from redis.exceptions import ResponseError

from connectors.email import keys as mail_keys
from connectors.email.errors import SendError
from connectors.email.imap import check_security

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 10
BACKOFF_FIRST_SECONDS = 2.0
BACKOFF_MAX_SECONDS = 300.0
# An entry read by a consumer that stays unacknowledged this long belongs to a dead replica.
CLAIM_IDLE_MS = 5 * 60 * 1000
SMTP_TIMEOUT_SECONDS = 30.0
_IDLE_RECHECK_SECONDS = 20.0
_LINE_STARTING_WITH_DOT = re.compile(rb"(?m)^\.")

BeforeFinalDot = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class OutboundMail:
    """One composed mail waiting in the outbox."""

    message_id: str
    envelope_from: str
    recipients: tuple[str, ...]
    data: bytes
    conversation_id: str = ""
    kind: str = "auto"  # auto: an automatic answer; agent: an agent's answer; notice: a system notice
    source: str = ""  # key of the inbound mail it answers, if any

    def fields(self) -> dict[str, str]:
        """Stream entry fields (the message base64-encoded: Redis values are text here)."""
        return {
            "message_id": self.message_id,
            "from": self.envelope_from,
            # A JSON list: an address may hold a comma ("sales,ceo"@example.com is one mailbox).
            "to": json.dumps(list(self.recipients)),
            "data": base64.b64encode(self.data).decode("ascii"),
            "conversation_id": self.conversation_id,
            "kind": self.kind,
            "source": self.source,
        }

    @classmethod
    def from_fields(cls, fields: dict[str, str]) -> OutboundMail:
        """Rebuild from a stream entry."""
        return cls(
            message_id=fields["message_id"],
            envelope_from=fields.get("from", ""),
            recipients=_recipients(fields.get("to", "")),
            data=base64.b64decode(fields.get("data", "")),
            conversation_id=fields.get("conversation_id", ""),
            kind=fields.get("kind", "auto"),
            source=fields.get("source", ""),
        )


def _recipients(value: str) -> tuple[str, ...]:
    """The recipients of a stream entry: a JSON list, or the comma-joined text of entries written before."""
    if value.startswith("["):
        with contextlib.suppress(ValueError):
            found = json.loads(value)
            if isinstance(found, list):
                return tuple(str(r) for r in found if r)
    return tuple(r for r in value.split(",") if r)


@dataclass(frozen=True)
class SmtpConfig:
    """Where and how to submit mail."""

    host: str
    port: int
    security: str = "starttls"  # ssl, starttls or none
    user: str | None = None
    password: str | None = None
    tls_context: ssl.SSLContext | None = None
    timeout: float = SMTP_TIMEOUT_SECONDS

    def __post_init__(self) -> None:
        check_security(self.security, self.host, "AUTORESPONDER_SMTP_SECURITY")


class _CommitPointSMTP(aiosmtplib.SMTP):
    """aiosmtplib's client with one change: DATA can run a hook just before its final dot.

    `sendmail` keeps doing everything else (EHLO, SIZE, MAIL, RCPT, RSET after an error); only the
    DATA step is split so that the hook runs once the server holds the whole body and nothing but
    ".\r\n" is left to write. The hook must not give the event loop a turn after its last write.
    """

    before_final_dot: BeforeFinalDot | None = None

    async def data(
        self,
        message: str | bytes,
        /,
        *,
        timeout: float | Default | None = Default.token,  # noqa: ASYNC109 (aiosmtplib's signature)
    ) -> SMTPResponse:
        hook, protocol = self.before_final_dot, self.protocol
        if hook is None or protocol is None:
            return await super().data(message, timeout=timeout)
        wait = self.timeout if isinstance(timeout, Default) else timeout
        raw = message.encode("ascii") if isinstance(message, str) else message
        body = _LINE_STARTING_WITH_DOT.sub(b"..", normalize_message_line_endings(raw))
        try:
            start = await self.execute_command(b"DATA", timeout=wait)
            if start.code != SMTPStatus.start_input:
                raise aiosmtplib.SMTPDataError(start.code, start.message)
            protocol.write(body)
            await _written_out(protocol, wait)
            await hook()
            protocol.write(b".\r\n")
            response = await protocol.read_response(timeout=wait)
        except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError):
            self.close()
            raise
        if response.code != SMTPStatus.completed:
            raise aiosmtplib.SMTPDataError(response.code, response.message)
        return response


async def _written_out(protocol: Any, seconds: float | None) -> None:
    """Wait until the transport's buffer is empty: every byte written so far is in the kernel."""
    transport = protocol.transport
    deadline = None if seconds is None else time.monotonic() + seconds
    while transport is not None and transport.get_write_buffer_size() > 0:
        if transport.is_closing():
            raise aiosmtplib.SMTPServerDisconnected("Connection lost while sending the message")
        if deadline is not None and time.monotonic() > deadline:
            raise aiosmtplib.SMTPTimeoutError("Timed out sending the message")
        await asyncio.sleep(0.002)


class CommitMarker:
    """A Redis connection of the worker's own for the "sent" marker written before the final dot.

    redis-py's client awaits each reply, which would let other tasks run between the marker and the
    dot; this connection sends the SET, lets the dot follow at once and reads the reply afterwards.
    """

    def __init__(self, redis: Any) -> None:
        pool = redis.connection_pool
        kwargs = dict(pool.connection_kwargs)
        kwargs["socket_timeout"] = None  # with a timeout redis-py writes in a task of its own: a loop turn
        self._connection = pool.connection_class(**kwargs)
        self._unread = 0

    async def ready(self) -> None:
        """Before a transaction: connected, caught up with earlier replies, and answering."""
        try:
            await self.settle()
            await self._connection.send_command("PING", check_health=False)
            await self._connection.read_response()
        except Exception:
            await self._reset()
            raise

    async def mark(self, key: str, value: str, ttl: int) -> None:
        """Send SET without waiting for its reply (with no timeout configured this never yields)."""
        await self._connection.send_command("SET", key, value, "EX", str(ttl), check_health=False)
        self._unread += 1

    async def settle(self) -> None:
        """Read the replies of earlier marks."""
        try:
            while self._unread:
                await self._connection.read_response()
                self._unread -= 1
        except Exception:
            await self._reset()
            raise

    async def _reset(self) -> None:
        self._unread = 0
        with contextlib.suppress(Exception):
            await self._connection.disconnect()

    async def close(self) -> None:
        """Drop the connection."""
        await self._reset()


class SmtpSender:
    """One SMTP connection, reused across mails and reopened when the server drops it."""

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config
        self._client: _CommitPointSMTP | None = None
        self._last_used = 0.0
        self._lock = asyncio.Lock()

    def _new_client(self) -> _CommitPointSMTP:
        c = self.config
        return _CommitPointSMTP(
            hostname=c.host,
            port=c.port,
            username=c.user or None,
            password=c.password or None,
            use_tls=c.security == "ssl",
            start_tls=c.security == "starttls",
            tls_context=c.tls_context,
            timeout=c.timeout,
        )

    async def _connected(self) -> _CommitPointSMTP:
        client = self._client
        if client is not None and client.is_connected:
            if time.monotonic() - self._last_used < _IDLE_RECHECK_SECONDS:
                return client
            try:  # servers close idle sessions; find out before the next transaction, not during it
                await client.noop()
                return client
            except aiosmtplib.SMTPException:
                client.close()
        client = self._new_client()
        try:
            await client.connect()
        except aiosmtplib.SMTPResponseException as exc:
            raise SendError(f"SMTP server refused the session: {exc.code} {exc.message}", permanent=False) from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise SendError(
                f"cannot reach the SMTP server {self.config.host}:{self.config.port}: {exc}", permanent=False
            ) from exc
        self._client = client
        return client

    async def send(self, mail: OutboundMail, *, before_final_dot: BeforeFinalDot | None = None) -> None:
        """One SMTP transaction; SendError tells whether to retry.

        `before_final_dot` runs once the server holds the whole message and only the dot that
        completes it is left to write (see the module's docstring).
        """
        async with self._lock:
            client = await self._connected()
            client.before_final_dot = before_final_dot
            try:
                errors, _ = await client.sendmail(mail.envelope_from, list(mail.recipients), mail.data)
            except aiosmtplib.SMTPRecipientsRefused as exc:
                codes = [r.code for r in exc.recipients]
                permanent = all(500 <= code < 600 for code in codes)
                self._drop()
                raise SendError(f"recipients refused: {exc.recipients}", permanent=permanent, code=codes[0]) from exc
            except aiosmtplib.SMTPResponseException as exc:
                self._drop()  # start the next mail on a fresh session, whatever state this one is in
                raise SendError(
                    f"SMTP {exc.code} {exc.message}", permanent=500 <= exc.code < 600, code=exc.code
                ) from exc
            except (aiosmtplib.SMTPException, OSError) as exc:
                self._drop()
                raise SendError(f"SMTP connection failed: {exc!r}", permanent=False) from exc
            except (UnicodeError, ValueError) as exc:
                # An address or message the client cannot put on the wire: no retry will help. The
                # session may be mid-transaction, so it is dropped rather than reused.
                self._drop()
                raise SendError(f"cannot send to {list(mail.recipients)}: {exc}", permanent=True) from exc
            finally:
                client.before_final_dot = None
            self._last_used = time.monotonic()
            if errors:  # some recipients refused, at least one accepted: the mail went out
                log.warning("mail %s: some recipients refused: %s", mail.message_id, errors)

    def _drop(self) -> None:
        if self._client is not None:
            self._client.close()
        self._client = None

    async def close(self) -> None:
        """Say goodbye to the server."""
        client, self._client = self._client, None
        if client is not None and client.is_connected:
            with contextlib.suppress(aiosmtplib.SMTPException, OSError):
                await client.quit()
            client.close()


FailureHook = Callable[[OutboundMail, str], Awaitable[None]]


class Outbox:
    """The stream and its consumer group, for producers and the worker alike."""

    def __init__(self, redis: Any) -> None:
        self.redis = redis

    async def ensure_group(self) -> None:
        """Create the stream and consumer group when missing."""
        try:
            await self.redis.xgroup_create(mail_keys.outbox(), mail_keys.OUTBOX_GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):  # anything but "the group exists already"
                raise

    @staticmethod
    def add(pipe: Any, mail: OutboundMail) -> None:
        """Queue a mail inside the caller's MULTI (with whatever makes it exist)."""
        pipe.xadd(mail_keys.outbox(), mail.fields())


def _backoff(attempt: int) -> float:
    base = min(BACKOFF_MAX_SECONDS, BACKOFF_FIRST_SECONDS * 2 ** max(0, attempt - 1))
    return float(base * random.uniform(0.8, 1.2))


class OutboxWorker:
    """Sends what the outbox holds; one per replica, with a name that survives restarts."""

    def __init__(
        self,
        redis: Any,
        sender: SmtpSender,
        consumer: str,
        *,
        on_failure: FailureHook | None = None,
        batch: int = 20,
    ) -> None:
        self.redis = redis
        self.sender = sender
        self.consumer = consumer
        self.on_failure = on_failure
        self.batch = batch
        self.sent_count = 0
        self._stopping = asyncio.Event()
        self._last_claim = 0.0
        self._marker = CommitMarker(redis)

    def stop(self) -> None:
        """Ask the loop to end after the current mail."""
        self._stopping.set()

    async def run(self) -> None:
        """Send until stopped; Redis or SMTP trouble is retried, never fatal."""
        await Outbox(self.redis).ensure_group()
        try:
            while not self._stopping.is_set():
                try:
                    await self._retry_pending()
                    await self._claim_abandoned()
                    await self._read_new()
                except asyncio.CancelledError:
                    raise
                except Exception:  # the loop must outlive Redis hiccups; the entry stays pending
                    if self._stopping.is_set():
                        break
                    log.exception("outbox worker error; retrying in 1 s")
                    await asyncio.sleep(1)
        finally:
            await self._marker.close()

    async def _read_new(self) -> None:
        reply = await self.redis.xreadgroup(
            mail_keys.OUTBOX_GROUP, self.consumer, {mail_keys.outbox(): ">"}, count=self.batch, block=1000
        )
        for _stream, entries in reply or []:
            for entry_id, fields in entries:
                if self._stopping.is_set():
                    return
                await self._handle(entry_id, fields)

    async def _retry_pending(self) -> None:
        """Entries this consumer read before (an earlier life, or a failed attempt) whose time has come."""
        start = "0"
        while not self._stopping.is_set():
            reply = await self.redis.xreadgroup(
                mail_keys.OUTBOX_GROUP, self.consumer, {mail_keys.outbox(): start}, count=100
            )
            entries = reply[0][1] if reply else []
            if not entries:
                return
            for entry_id, fields in entries:
                if not fields:  # deleted from the stream while pending
                    await self.redis.xack(mail_keys.outbox(), mail_keys.OUTBOX_GROUP, entry_id)
                    continue
                state = await self._attempts(entry_id)
                if state.get("next_at", 0) <= time.time():
                    await self._handle(entry_id, fields)
            start = entries[-1][0]

    async def _claim_abandoned(self) -> None:
        if time.monotonic() - self._last_claim < 30:
            return
        self._last_claim = time.monotonic()
        await self.redis.xautoclaim(
            mail_keys.outbox(),
            mail_keys.OUTBOX_GROUP,
            self.consumer,
            CLAIM_IDLE_MS,
            start_id="0-0",
            count=100,
            justid=True,
        )

    async def _attempts(self, entry_id: str) -> dict[str, Any]:
        raw = await self.redis.hget(mail_keys.outbox_attempts(), entry_id)
        return dict(json.loads(raw)) if raw else {}

    async def _handle(self, entry_id: str, fields: dict[str, str]) -> None:
        mail = OutboundMail.from_fields(fields)
        marker = mail_keys.mail_sent(mail.message_id)
        if await self.redis.exists(marker):  # sent, or its final dot was on the way when a process died
            await self._finish(entry_id, mail, sent_now=False)
            return
        # Across replicas only one sends an entry at a time (an abandoned entry may be claimed twice). A
        # lock under this consumer's own name was left by its previous life, killed mid-send: take it.
        lock = mail_keys.outbox_lock(entry_id)
        if not await self.redis.set(lock, self.consumer, nx=True, ex=mail_keys.OUTBOX_LOCK_SECONDS):
            if await self.redis.get(lock) != self.consumer:
                return
            await self.redis.expire(lock, mail_keys.OUTBOX_LOCK_SECONDS)
        await self._marker.ready()
        marked = False

        async def before_final_dot() -> None:
            nonlocal marked
            await self._marker.mark(marker, f"dot {time.time():.3f}", mail_keys.MAIL_SENT_TTL_SECONDS)
            marked = True

        try:
            await self.sender.send(mail, before_final_dot=before_final_dot)
        except SendError as exc:
            if marked:  # the server answered the dot with a refusal, or the session died after it
                await self._marker.settle()
                await self.redis.delete(marker)
            await self._failed(entry_id, mail, exc)
            return
        finally:
            await self.redis.delete(mail_keys.outbox_lock(entry_id))
        await self._marker.settle()
        await self._finish(entry_id, mail, sent_now=True)

    async def _finish(self, entry_id: str, mail: OutboundMail, *, sent_now: bool) -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.set(mail_keys.mail_sent(mail.message_id), str(time.time()), ex=mail_keys.MAIL_SENT_TTL_SECONDS)
        pipe.xack(mail_keys.outbox(), mail_keys.OUTBOX_GROUP, entry_id)
        pipe.xdel(mail_keys.outbox(), entry_id)
        pipe.hdel(mail_keys.outbox_attempts(), entry_id)
        await pipe.execute()
        if sent_now:
            self.sent_count += 1

    async def _failed(self, entry_id: str, mail: OutboundMail, exc: SendError) -> None:
        state = await self._attempts(entry_id)
        attempts = int(state.get("attempts", 0)) + 1
        if not exc.permanent and attempts < MAX_ATTEMPTS:
            delay = _backoff(attempts)
            log.warning("mail %s: attempt %d failed (%s); retry in %.0f s", mail.message_id, attempts, exc, delay)
            await self.redis.hset(
                mail_keys.outbox_attempts(),
                entry_id,
                json.dumps({"attempts": attempts, "next_at": time.time() + delay, "error": str(exc)}),
            )
            return
        reason = f"{'permanent' if exc.permanent else f'gave up after {attempts} attempts'}: {exc}"
        log.error("mail %s to %s not delivered, %s", mail.message_id, ",".join(mail.recipients), reason)
        pipe = self.redis.pipeline(transaction=True)
        record = {k: v for k, v in mail.fields().items() if k != "data"}
        record.update(error=str(exc), code=str(exc.code or ""), attempts=str(attempts), failed_at=str(time.time()))
        pipe.xadd(mail_keys.outbox_failed(), record, maxlen=mail_keys.MAIL_LOG_MAXLEN, approximate=True)
        pipe.xack(mail_keys.outbox(), mail_keys.OUTBOX_GROUP, entry_id)
        pipe.xdel(mail_keys.outbox(), entry_id)
        pipe.hdel(mail_keys.outbox_attempts(), entry_id)
        await pipe.execute()
        if self.on_failure is not None:
            try:
                await self.on_failure(mail, reason)
            except Exception:  # the failure is recorded in the stream already; the hook is a courtesy
                log.exception("failure hook for %s raised", mail.message_id)
