"""Exactly once under SIGKILL: 300 mails, the app killed at random moments and restarted, one answer each.

Redis and the engine stay up (they are other processes); only the app dies, at random points of
its work: while starting, while the engine answers, between the outbox commit and the IMAP flag,
in the middle of an SMTP transaction. Answers are counted on the SMTP server.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis import Redis as SyncRedis

from tests.connectors.email.lab import lab
from tests.connectors.email.mails import build, new_id
from tests.connectors.email.servers import Dovecot, Smtp, start_dovecot, start_smtp

pytestmark = pytest.mark.stack

MAILS = 300
KILLS = 6
NO_ID_EVERY = 25  # every 25th mail has no Message-ID: deduplicated by a hash of its content


@pytest.fixture
def crash_servers() -> Iterator[tuple[Dovecot, Smtp]]:
    dovecot = start_dovecot(["crash"])
    smtp = start_smtp()
    yield dovecot, smtp
    smtp.stop()
    dovecot.stop()


def questions() -> list[tuple[str, str, bytes]]:
    """(recipient of the answer, order id, raw mail): one sender per mail, varied wording and charsets."""
    rng = random.Random(20240501)
    out = []
    for i in range(MAILS):
        order = f"DD2024050{rng.randint(1, 30):02d}"
        sender = f"crash-{i:03d}@mail.test"
        kind = i % 3
        if kind == 0:
            subject, body, charset = "订单查询", f"您好，请问订单 {order} 到哪了？", "gb2312"
        elif kind == 1:
            subject, body, charset = "Order", f"Hi, where is my order {order}?", "utf-8"
        else:
            subject, body, charset = "物流", f"{order} 的物流状态是什么", "utf-8"
        message_id = "" if i % NO_ID_EVERY == 0 else new_id()
        out.append(
            (sender, order, build(sender=sender, subject=subject, body=body, charset=charset, message_id=message_id))
        )
    return out


def test_sigkill_at_random_moments_every_mail_gets_exactly_one_answer(
    tmp_path: Path, crash_servers: tuple[Dovecot, Smtp]
) -> None:
    dovecot, smtp = crash_servers
    mails = questions()
    started = time.monotonic()
    with lab(tmp_path / "var") as running:
        asyncio.run(dovecot.deliver("crash", *[raw for _, _, raw in mails]))
        env = running.app_env(dovecot, "crash", smtp)
        rng = random.Random()
        kills: list[float] = []
        progress: list[int] = []
        for round_ in range(KILLS):
            app = running.start_app(env)
            # Every third kill while starting (Redis, IMAP login, the lease, the first fetch); the others
            # while working, between fetch, engine, commit, flag and SMTP, wherever they fall. Each round
            # may answer at most its share of the mails left: the kill comes at its random moment or as
            # soon as that share is answered, whichever is first, so that every kill lands while work is
            # left however fast the machine answers (a fast start answers mails before a "starting" kill).
            answered = len(smtp.handler.snapshot())
            limit = answered + max(1, (MAILS - answered) // (KILLS - round_ + 1))
            starting = round_ % 3 == 0
            delay = rng.uniform(0.5, 4.0) if starting else app.wait_ready() + rng.uniform(0.5, 8.0)
            while time.monotonic() - app.started < delay and len(smtp.handler.snapshot()) < limit:
                time.sleep(rng.uniform(0.005, 0.03))
            app.kill()
            kills.append(round(time.monotonic() - app.started, 1))
            progress.append(len(smtp.handler.snapshot()))
        assert progress[-1] < MAILS, "the kills should land while work is left; the mailbox was done already"
        final = running.start_app(env)
        final.wait_ready()
        deadline = time.monotonic() + 400
        while len(smtp.handler.snapshot()) < MAILS and time.monotonic() < deadline:
            time.sleep(0.5)
        time.sleep(3)  # a duplicate would show up now
        received = smtp.handler.snapshot()
        with SyncRedis.from_url(running.redis_url, decode_responses=True) as redis:
            outbox_left = redis.xlen("ar:outbox")
            done = sum(1 for _ in redis.scan_iter("ar:mail:done:*", count=1000))
        final.stop()
    per_recipient = Counter(r.rcpt_tos[0] for r in received)
    missing = [s for s, _, _ in mails if per_recipient[s] == 0]
    doubled = {s: n for s, n in per_recipient.items() if n > 1}
    print(
        f"\ncrash test: {MAILS} mails, SIGKILL after {kills} s (answers so far: {progress}), "
        f"{len(received)} answers, {time.monotonic() - started:.0f} s in all"
    )
    assert missing == [], f"{len(missing)} mails never answered"
    twice = {s: [r.header("Message-ID") for r in received if r.rcpt_tos[0] == s] for s in doubled}
    # The same Message-ID twice: an outbox entry re-sent; two Message-IDs: a mail processed twice.
    assert doubled == {}, f"mails answered more than once: {twice}"
    assert len(received) == MAILS
    assert done == MAILS
    assert outbox_left == 0
    # Each answer is about the order its mail asked for, and threaded to it when it had a Message-ID.
    by_recipient = {r.rcpt_tos[0]: r for r in received}
    for sender, order, raw in mails:
        answer = by_recipient[sender]
        assert order in answer.text()
        has_id = b"Message-ID:" in raw
        assert bool(answer.header("In-Reply-To")) == has_id
