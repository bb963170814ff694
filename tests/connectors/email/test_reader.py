"""The mailbox reader against a real dovecot and Redis: UIDs, flags or moves, IDLE or polling, outages, lease."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator

import pytest

from connectors.email import keys as mail_keys
from connectors.email import reader as reader_module
from connectors.email.errors import RetryLater
from connectors.email.imap import ImapClient, ImapConfig, Selected
from connectors.email.parse import parse_mail
from connectors.email.processor import Outcome
from connectors.email.reader import PROCESSED_KEYWORD, MailboxReader
from tests.conftest import TextRedis
from tests.connectors.email.mails import build, guest
from tests.connectors.email.servers import Dovecot, start_dovecot, until


class Recorder:
    """A stand-in for the processor: records what the reader hands over."""

    def __init__(self, fail_first: int = 0) -> None:
        self.calls: list[tuple[int, str | None, int, int]] = []
        self.fail_first = fail_first

    async def __call__(self, raw: bytes, size: int, uid: int) -> Outcome:
        mail = parse_mail(raw, size=size)
        self.calls.append((uid, mail.message_id, len(raw), size))
        if self.fail_first > 0:
            self.fail_first -= 1
            raise RetryLater("engine down (simulated)")
        return Outcome("answered", reply_message_id=f"r{uid}@shop.test", mail_key=mail.key)

    def ids(self) -> list[str | None]:
        return [c[1] for c in self.calls]


@contextlib.asynccontextmanager
async def reading(reader: MailboxReader) -> AsyncIterator[MailboxReader]:
    task = asyncio.create_task(reader.run())
    try:
        yield reader
    finally:
        reader.stop()
        await asyncio.wait_for(task, 15)


def make_reader(config: ImapConfig, redis: TextRedis, recorder: Recorder, **kwargs: object) -> MailboxReader:
    options: dict[str, object] = {"identity": "test-host:1", "max_bytes": 100_000, "poll_seconds": 1.0}
    options.update(kwargs)
    return MailboxReader(config, redis, recorder, **options)  # type: ignore[arg-type]


def mails(n: int) -> tuple[list[bytes], list[str]]:
    ids = [f"{guest().split('@')[0]}@customer.test" for _ in range(n)]
    return [build(sender=guest(), subject=f"q{i}", body="hello", message_id=m) for i, m in enumerate(ids)], ids


async def test_new_mail_is_processed_by_uid_and_flagged(dovecot: Dovecot, redis: TextRedis) -> None:
    raws, ids = mails(3)
    await dovecot.deliver("reader", *raws[:2])
    recorder = Recorder()
    config = dovecot.config("reader")
    async with reading(make_reader(config, redis, recorder)) as reader:
        await until(lambda: len(recorder.calls) == 2, 15, "the two waiting mails")
        assert reader.mode == "idle"
        started = time.monotonic()
        await dovecot.deliver("reader", raws[2])
        await until(lambda: len(recorder.calls) == 3, 10, "the mail that arrived during IDLE")
        assert time.monotonic() - started < 3
        await asyncio.sleep(0.5)
    assert recorder.ids() == ids
    state = await redis.hgetall(mail_keys.mail_uid(config.mailbox_id))
    assert int(state["last_uid"]) == max(c[0] for c in recorder.calls)
    client = await dovecot.client("reader")
    try:
        await client.select()
        assert await client.uid_search("UID 1:*", f"UNKEYWORD {PROCESSED_KEYWORD}") == []
        assert await client.uid_search("UID 1:*", "UNSEEN") == []
        assert len(await client.uid_search("UID 1:*", "ANSWERED")) == 3
    finally:
        await client.close()
    # A restart processes nothing again.
    again = Recorder()
    async with reading(make_reader(config, redis, again)):
        await asyncio.sleep(1.5)
    assert again.calls == []


async def test_processed_mail_can_be_moved_to_a_folder(dovecot: Dovecot, redis: TextRedis) -> None:
    raws, _ids = mails(2)
    await dovecot.deliver("movebox", *raws)
    recorder = Recorder()
    async with reading(make_reader(dovecot.config("movebox"), redis, recorder, processed_folder="已处理")):
        await until(lambda: len(recorder.calls) == 2, 15, "both mails")
        await asyncio.sleep(0.5)
    client = await dovecot.client("movebox")
    try:
        assert (await client.select()).exists == 0
        assert (await client.select("已处理")).exists == 2  # a Chinese name, in IMAP's modified UTF-7
    finally:
        await client.close()


async def test_oversized_mail_is_fetched_header_only(dovecot: Dovecot, redis: TextRedis) -> None:
    big = build(sender=guest(), subject="big", body="x" * 5000, message_id="big-1@customer.test")
    await dovecot.deliver("reader2", big)
    recorder = Recorder()
    async with reading(make_reader(dovecot.config("reader2"), redis, recorder, max_bytes=1000)):
        await until(lambda: len(recorder.calls) == 1, 15, "the big mail")
    _uid, message_id, fetched, size = recorder.calls[0]
    assert message_id == "big-1@customer.test"
    assert size > 5000
    assert fetched < 1000


async def test_uidvalidity_change_rescans_the_folder(dovecot: Dovecot, redis: TextRedis) -> None:
    raws, ids = mails(2)
    client = await dovecot.client("reader2")
    await client.ensure_folder("Support")
    await client.close()
    await dovecot.deliver("reader2", *raws, folder="Support")
    config = dovecot.config("reader2", folder="Support")
    first = Recorder()
    async with reading(make_reader(config, redis, first)):
        await until(lambda: len(first.calls) == 2, 15, "the first scan")
    validity = (await redis.hgetall(mail_keys.mail_uid(config.mailbox_id)))["uidvalidity"]
    # The folder is recreated (a restore, a server migration): same mails, new UIDVALIDITY, UIDs renumbered.
    client = await dovecot.client("reader2")
    await client.imap.delete('"Support"')
    await client.ensure_folder("Support")
    await client.close()
    await dovecot.deliver("reader2", *raws, folder="Support")
    second = Recorder()
    async with reading(make_reader(config, redis, second)):
        await until(lambda: len(second.calls) == 2, 15, "the rescan")
    assert second.ids() == ids  # handed over again; the processor recognises them by Message-ID
    state = await redis.hgetall(mail_keys.mail_uid(config.mailbox_id))
    assert state["uidvalidity"] != validity


@pytest.fixture
def own_dovecot() -> Iterator[Dovecot]:
    server = start_dovecot(["outage"])
    yield server
    server.stop()


async def test_reconnects_after_the_server_goes_away(own_dovecot: Dovecot, redis: TextRedis) -> None:
    recorder = Recorder()
    async with reading(make_reader(own_dovecot.config("outage"), redis, recorder)) as reader:
        await until(lambda: reader.sessions == 1 and reader.mode == "idle", 10, "the first session")
        await asyncio.to_thread(own_dovecot.restart, 1.5)
        raws, ids = mails(1)
        await own_dovecot.deliver("outage", *raws)
        await until(lambda: recorder.ids() == ids, 30, "the mail after the outage")
        assert reader.sessions >= 2


async def test_polls_when_the_server_has_no_idle(redis: TextRedis) -> None:
    server = start_dovecot(["poll"], idle=False)
    try:
        recorder = Recorder()
        async with reading(make_reader(server.config("poll"), redis, recorder, poll_seconds=1.0)) as reader:
            await until(lambda: reader.mode != "starting", 10, "the session")
            assert reader.mode == "poll"
            raws, ids = mails(1)
            await server.deliver("poll", *raws)
            await until(lambda: recorder.ids() == ids, 5, "the polled mail")
    finally:
        server.stop()


async def test_a_mail_that_cannot_be_processed_now_is_retried(
    dovecot: Dovecot, redis: TextRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reader_module, "RETRY_FIRST_SECONDS", 0.3)
    raws, ids = mails(1)
    await dovecot.deliver("retry", *raws)
    recorder = Recorder(fail_first=2)
    config = dovecot.config("retry")
    async with reading(make_reader(config, redis, recorder)):
        await until(lambda: len(recorder.calls) == 3, 15, "two failures and a success")
        await asyncio.sleep(0.5)
    assert recorder.ids() == ids * 3
    client = await dovecot.client("retry")
    try:
        await client.select()
        assert await client.uid_search("UID 1:*", f"UNKEYWORD {PROCESSED_KEYWORD}") == []
    finally:
        await client.close()


async def test_one_replica_reads_a_mailbox(dovecot: Dovecot, redis: TextRedis) -> None:
    config = dovecot.config("lease")
    first, second = Recorder(), Recorder()
    a = make_reader(config, redis, first, identity="host-a:8000")
    b = make_reader(config, redis, second, identity="host-b:8000")
    async with reading(a):
        await until(lambda: a.sessions == 1, 10, "replica a's session")
        async with reading(b):
            raws, _ids = mails(2)
            await dovecot.deliver("lease", *raws)
            await until(lambda: len(first.calls) == 2, 10, "replica a to read")
            await asyncio.sleep(1)
            assert second.calls == []
            assert b.sessions == 0
    # A replica restarted under the same identity takes its own stale lease back at once.
    assert await redis.set(mail_keys.mail_lease(config.mailbox_id), "host-c:8000#dead", px=60_000)
    c_again = make_reader(config, redis, Recorder(), identity="host-c:8000")
    started = time.monotonic()
    async with reading(c_again):
        await until(lambda: c_again.sessions == 1, 10, "the takeover")
    assert time.monotonic() - started < 5


async def test_a_mail_that_always_breaks_the_processor_is_given_up_and_holds_nothing_back(
    dovecot: Dovecot, redis: TextRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    # On a server that keeps no keyword of ours (Exchange without a processed folder), a mail that breaks
    # the processor every time must neither be retried for ever nor make the mails after it be fetched
    # again and again while it waits: they are processed once, and it is given up after MAX_FAILURES,
    # marked read but not answered.
    monkeypatch.setattr(reader_module, "RETRY_FIRST_SECONDS", 0.2)
    monkeypatch.setattr(reader_module, "MAX_FAILURES", 3)
    select = ImapClient.select

    async def without_keywords(self: ImapClient) -> Selected:
        selected = await select(self)
        return Selected(selected.uidvalidity, selected.exists, frozenset({"\\Seen", "\\Answered"}))

    monkeypatch.setattr(ImapClient, "select", without_keywords)
    raws, ids = mails(4)
    poison = ids[0]

    class Breaks(Recorder):
        async def __call__(self, raw: bytes, size: int, uid: int) -> Outcome:
            outcome = await super().__call__(raw, size, uid)
            if self.calls[-1][1] == poison:
                raise RuntimeError("a mail the processor cannot handle (simulated)")
            return outcome

    await dovecot.deliver("poison", *raws)
    recorder = Breaks()
    async with reading(make_reader(dovecot.config("poison"), redis, recorder, poll_seconds=0.2)) as reader:
        await until(lambda: reader.failed == 1, 20, "the poison mail given up")
        await asyncio.sleep(1.0)  # a few more rounds: nothing is fetched again
    assert recorder.ids().count(poison) == 3
    assert sorted(map(str, recorder.ids())) == sorted([poison] * 3 + ids[1:])
    client = await dovecot.client("poison")
    try:
        await client.select()
        assert await client.uid_search("UID 1:*", "UNSEEN") == []
        assert await client.uid_search("UID 1:*", "UNANSWERED") == [1]
    finally:
        await client.close()
