"""The outbox against real Redis and a real SMTP server (aiosmtpd): once, retried, failures visible."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from connectors.email import keys as mail_keys
from connectors.email import outbox as outbox_module
from connectors.email.compose import build_message
from connectors.email.outbox import OutboundMail, Outbox, OutboxWorker, SmtpConfig, SmtpSender
from tests.conftest import TextRedis
from tests.connectors.email import killpoint
from tests.connectors.email.mails import SUPPORT, guest, new_id
from tests.connectors.email.servers import Smtp, client_tls, make_certificate, start_smtp, until


def mail_to(address: str) -> OutboundMail:
    message_id = new_id("shop.test")
    data = build_message(
        sender=SUPPORT,
        sender_name="",
        to=address,
        subject="Re: test",
        text="hello",
        html="<p>hello</p>",
        message_id=message_id,
        in_reply_to=None,
        references=[],
        auto_submitted="auto-replied",
        locale="en",
    )
    return OutboundMail(message_id=message_id, envelope_from=SUPPORT, recipients=(address,), data=data, kind="auto")


async def enqueue(redis: TextRedis, mail: OutboundMail) -> None:
    await Outbox(redis).ensure_group()
    pipe = redis.pipeline(transaction=True)
    Outbox.add(pipe, mail)
    await pipe.execute()


@contextlib.asynccontextmanager
async def running(worker: OutboxWorker) -> AsyncIterator[OutboxWorker]:
    task = asyncio.create_task(worker.run())
    try:
        yield worker
    finally:
        worker.stop()
        await asyncio.wait_for(task, 10)


@pytest.fixture
def server() -> Iterator[Smtp]:
    smtp = start_smtp()
    yield smtp
    smtp.stop()


def sender_for(smtp: Smtp, **kwargs: Any) -> SmtpSender:
    return SmtpSender(SmtpConfig(host="127.0.0.1", port=smtp.port, security="none", **kwargs))


def received_ids(smtp: Smtp) -> list[str]:
    return [r.header("Message-ID").strip("<>") for r in smtp.handler.snapshot()]


async def test_a_queued_mail_is_sent_once_and_acknowledged(redis: TextRedis, server: Smtp) -> None:
    mail = mail_to(guest())
    await enqueue(redis, mail)
    sender = sender_for(server)
    async with running(OutboxWorker(redis, sender, "replica-a")):
        await until(lambda: bool(server.handler.snapshot()), 10, "the mail")
        await asyncio.sleep(1.2)  # a second loop round must not send it again
    await sender.close()
    assert received_ids(server) == [mail.message_id]
    got = server.handler.snapshot()[0]
    assert got.mail_from == SUPPORT
    assert got.rcpt_tos == list(mail.recipients)
    assert await redis.exists(mail_keys.mail_sent(mail.message_id))
    assert await redis.xlen(mail_keys.outbox()) == 0
    assert (await redis.xpending(mail_keys.outbox(), mail_keys.OUTBOX_GROUP))["pending"] == 0


async def test_an_address_with_a_comma_is_one_recipient(redis: TextRedis, server: Smtp) -> None:
    # "sales,ceo"@example.com is one mailbox; the outbox kept recipients comma-joined, so it went out as
    # RCPT TO:<"sales> and <ceo"@example.com> (a submission server adding its own domain to bare names
    # delivered it to the shop's own sales@ and ceo@).
    mail = mail_to('"sales,ceo"@customer.test')
    assert OutboundMail.from_fields(mail.fields()).recipients == ('"sales,ceo"@customer.test',)
    written_before = {**mail.fields(), "to": "a@customer.test,b@customer.test"}
    assert OutboundMail.from_fields(written_before).recipients == ("a@customer.test", "b@customer.test")
    await enqueue(redis, mail)
    sender = sender_for(server)
    async with running(OutboxWorker(redis, sender, "replica-a")):
        await until(lambda: bool(server.handler.snapshot()), 10, "the mail")
    await sender.close()
    assert server.handler.snapshot()[0].rcpt_tos == ['"sales,ceo"@customer.test']


async def test_a_mail_whose_transaction_completed_is_never_sent_again(redis: TextRedis, server: Smtp) -> None:
    mail = mail_to(guest())
    await enqueue(redis, mail)
    # A replica killed between the server's 250 and the acknowledgement left the sent marker behind.
    await redis.set(mail_keys.mail_sent(mail.message_id), "1")
    async with running(OutboxWorker(redis, sender_for(server), "replica-a")):
        await asyncio.sleep(1.5)
    assert server.handler.snapshot() == []
    assert await redis.xlen(mail_keys.outbox()) == 0


async def test_entries_left_pending_by_a_killed_process_are_sent_after_restart(redis: TextRedis, server: Smtp) -> None:
    mine, theirs = mail_to(guest()), mail_to(guest())
    await enqueue(redis, mine)
    await enqueue(redis, theirs)
    # Two replicas read one entry each and died before sending; replica-a in the middle of the transaction.
    read = await redis.xreadgroup(mail_keys.OUTBOX_GROUP, "replica-a", {mail_keys.outbox(): ">"}, count=1)
    await redis.set(mail_keys.outbox_lock(read[0][1][0][0]), "replica-a", ex=mail_keys.OUTBOX_LOCK_SECONDS)
    await redis.xreadgroup(mail_keys.OUTBOX_GROUP, "replica-dead", {mail_keys.outbox(): ">"}, count=1)
    # replica-a comes back under the same name: it takes its own pending entry at once.
    async with running(OutboxWorker(redis, sender_for(server), "replica-a")):
        await until(lambda: mine.message_id in received_ids(server), 10, "replica-a's own pending mail")
    assert theirs.message_id not in received_ids(server)  # not idle long enough to be called abandoned


async def test_entries_of_a_dead_replica_are_claimed_once_idle(
    redis: TextRedis, server: Smtp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(outbox_module, "CLAIM_IDLE_MS", 200)
    theirs = mail_to(guest())
    await enqueue(redis, theirs)
    await redis.xreadgroup(mail_keys.OUTBOX_GROUP, "replica-dead", {mail_keys.outbox(): ">"}, count=1)
    await asyncio.sleep(0.3)
    async with running(OutboxWorker(redis, sender_for(server), "replica-b")):
        await until(lambda: theirs.message_id in received_ids(server), 10, "the abandoned mail")
    assert received_ids(server).count(theirs.message_id) == 1


async def test_temporary_failures_are_retried_with_backoff(
    redis: TextRedis, server: Smtp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(outbox_module, "BACKOFF_FIRST_SECONDS", 0.2)
    refusals = iter(["451 4.3.0 try again later", "421 4.3.2 busy"])
    server.handler.policy = lambda envelope: next(refusals, None)
    mail = mail_to(guest())
    await enqueue(redis, mail)
    async with running(OutboxWorker(redis, sender_for(server), "replica-a")):
        await until(lambda: bool(server.handler.snapshot()), 15, "the mail after two refusals")
    assert server.handler.transactions == 3
    assert received_ids(server) == [mail.message_id]
    assert await redis.hlen(mail_keys.outbox_attempts()) == 0
    assert await redis.xlen(mail_keys.outbox_failed()) == 0


async def test_permanent_failures_are_recorded_and_reported(redis: TextRedis, server: Smtp) -> None:
    server.handler.policy = lambda envelope: "550 5.1.1 mailbox unavailable"
    reported: list[tuple[str, str]] = []

    async def hook(mail: OutboundMail, reason: str) -> None:
        reported.append((mail.message_id, reason))

    mail = mail_to(guest())
    await enqueue(redis, mail)
    async with running(OutboxWorker(redis, sender_for(server), "replica-a", on_failure=hook)):
        await until(lambda: bool(reported), 10, "the failure report")
        await asyncio.sleep(1.2)
    assert server.handler.transactions == 1  # a 5xx is not retried
    failed = await redis.xrange(mail_keys.outbox_failed())
    assert len(failed) == 1
    record = failed[0][1]
    assert record["message_id"] == mail.message_id
    assert record["code"] == "550"
    assert "mailbox unavailable" in record["error"]
    assert reported[0][0] == mail.message_id and reported[0][1].startswith("permanent")
    assert await redis.xlen(mail_keys.outbox()) == 0


async def test_an_address_smtp_cannot_carry_fails_once_and_the_next_mail_still_goes(
    redis: TextRedis, server: Smtp
) -> None:
    good = mail_to(guest())
    bad = OutboundMail(
        message_id=new_id("shop.test"), envelope_from=SUPPORT, recipients=("客户@mail.test",), data=good.data
    )
    await enqueue(redis, bad)
    await enqueue(redis, good)
    async with running(OutboxWorker(redis, sender_for(server), "replica-a")):
        await until(lambda: bool(server.handler.snapshot()), 10, "the good mail")
    assert received_ids(server) == [good.message_id]
    failed = await redis.xrange(mail_keys.outbox_failed())
    assert [f[1]["message_id"] for f in failed] == [bad.message_id]


async def test_giving_up_after_the_last_attempt(
    redis: TextRedis, server: Smtp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(outbox_module, "BACKOFF_FIRST_SECONDS", 0.1)
    monkeypatch.setattr(outbox_module, "MAX_ATTEMPTS", 3)
    server.handler.policy = lambda envelope: "452 4.2.2 mailbox full"
    mail = mail_to(guest())
    await enqueue(redis, mail)
    async with running(OutboxWorker(redis, sender_for(server), "replica-a")):
        await until(lambda: server.handler.transactions >= 3, 15, "three attempts")
        await asyncio.sleep(1.5)
    assert server.handler.transactions == 3
    failed = await redis.xrange(mail_keys.outbox_failed())
    assert [f[1]["attempts"] for f in failed] == ["3"]


async def test_smtp_server_down_then_up(redis: TextRedis, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(outbox_module, "BACKOFF_FIRST_SECONDS", 0.2)
    smtp = start_smtp()
    port = smtp.port
    smtp.stop()  # nothing listens there for now
    mail = mail_to(guest())
    await enqueue(redis, mail)
    sender = SmtpSender(SmtpConfig(host="127.0.0.1", port=port, security="none"))
    async with running(OutboxWorker(redis, sender, "replica-a")):
        await asyncio.sleep(1.0)
        state = await redis.hget(mail_keys.outbox_attempts(), (await redis.xrange(mail_keys.outbox()))[0][0])
        assert state is not None and '"attempts"' in state
        from aiosmtpd.controller import Controller

        from tests.connectors.email.servers import RecordingHandler

        handler = RecordingHandler()
        controller = Controller(handler, hostname="127.0.0.1", port=port)
        controller.start()
        try:
            await until(lambda: bool(handler.snapshot()), 20, "the mail once the server is back")
        finally:
            controller.stop()
    await sender.close()


@pytest.fixture(scope="module")
def certificate() -> Iterator[tuple[Path, Path]]:
    with tempfile.TemporaryDirectory() as folder:
        yield make_certificate(Path(folder))


@pytest.mark.parametrize("security", ["starttls", "ssl"])
async def test_sends_over_starttls_and_tls(redis: TextRedis, certificate: tuple[Path, Path], security: str) -> None:
    cert, key = certificate
    smtp = start_smtp(tls_cert=cert, tls_key=key, implicit_tls=security == "ssl")
    try:
        sender = SmtpSender(
            SmtpConfig(host="127.0.0.1", port=smtp.port, security=security, tls_context=client_tls(cert))
        )
        mail = mail_to(guest())
        await sender.send(mail)
        await sender.close()
        assert received_ids(smtp) == [mail.message_id]
    finally:
        smtp.stop()


@pytest.mark.parametrize("moment", killpoint.MOMENTS)
async def test_a_process_killed_at_any_point_of_the_transaction_sends_the_mail_exactly_once(
    redis: TextRedis, redis_server: str, server: Smtp, moment: str
) -> None:
    mail = mail_to(guest())
    await enqueue(redis, mail)
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.connectors.email.killpoint", redis_server, str(server.port), moment
    )
    try:
        assert await asyncio.wait_for(child.wait(), 60) == -signal.SIGKILL
    finally:
        if child.returncode is None:  # it never reached its moment: do not leave it running
            child.kill()
            await child.wait()
    await asyncio.sleep(0.5)  # what the dead process's sockets held reaches the servers
    # Before the dot the server drops the unfinished transaction; from the dot on it delivers.
    assert received_ids(server) == ([] if moment == "body_sent" else [mail.message_id])
    assert await redis.exists(mail_keys.mail_sent(mail.message_id)) == (moment != "body_sent")
    # The same replica comes back and finishes its pending entry: sent if it was not, never twice.
    async with running(OutboxWorker(redis, sender_for(server), "replica-k")):
        await until(lambda: bool(received_ids(server)), 10, "the mail")
        await asyncio.sleep(1.5)  # the entry is finished, and a second send would show up by now
    assert received_ids(server) == [mail.message_id]
    assert await redis.xlen(mail_keys.outbox()) == 0
    assert (await redis.xpending(mail_keys.outbox(), mail_keys.OUTBOX_GROUP))["pending"] == 0
