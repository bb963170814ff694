"""Every public mail corpus in ../shared/data/mail through the whole stack.

No automatic answer to any bounce, bulk or list mail, complaint report or read receipt; every
ordinary message answered once, handed off, or held back by the per-sender limit; no message
crashes the reader (each one ends with a recorded outcome and the app stays healthy).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter

import httpx
import pytest
from redis import Redis as SyncRedis

from connectors.email import keys as mail_keys
from connectors.email.parse import parse_mail
from tests.connectors.email.conftest import MailStack
from tests.connectors.email.test_loops import classify_like_a_person
from tests.connectors.email.test_parse import MAIL_DATA, corpus_files

pytestmark = pytest.mark.stack

ANSWERED = {"answered", "handed_off", "too_large"}
LIMIT = 5  # AUTORESPONDER_EMAIL_REPLIES_PER_SENDER_PER_HOUR in the mail stack (the default)
MAX_BYTES = 200 * 1024  # AUTORESPONDER_EMAIL_MAX_BYTES in the mail stack


async def test_the_mail_corpora_through_the_whole_stack(mail_stack: MailStack) -> None:
    files = corpus_files()
    mails = []
    for path in files:
        raw = path.read_bytes()
        parsed = parse_mail(raw)
        mails.append(
            (
                str(path.relative_to(MAIL_DATA)),
                raw,
                parsed,
                classify_like_a_person(str(path.relative_to(MAIL_DATA)), raw),
            )
        )
    started = time.monotonic()
    client = await mail_stack.dovecot.client(mail_stack.user)
    try:
        await client.select()
        before = max(await client.uid_search("UID 1:*"), default=0)
        for _, raw, _, _ in mails:
            await client.append(raw)
        uids = [u for u in await client.uid_search("UID 1:*") if u > before]
        assert len(uids) == len(mails)
        # A mail is known by Message-ID, else by a hash of the bytes the app fetches: dovecot stores some
        # bytes differently (NUL), and over AUTORESPONDER_EMAIL_MAX_BYTES only the header is fetched.
        sizes = await client.fetch_sizes(uids)
        for i, uid in enumerate(uids):
            rel, raw, parsed, label = mails[i]
            if parsed.message_id is None:
                fetched = await client.fetch(uid, header_only=sizes[uid] > MAX_BYTES)
                assert fetched is not None
                mails[i] = (rel, raw, parse_mail(fetched, size=sizes[uid]), label)
    finally:
        await client.close()
    keys = {parsed.key for _, _, parsed, _ in mails}
    outcomes: dict[str, dict[str, str]] = {}
    with SyncRedis.from_url(mail_stack.redis_url, decode_responses=True) as redis:
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            pending = [k for k in keys if k not in outcomes]
            for key, value in zip(pending, redis.mget([mail_keys.mail_done(k) for k in pending]), strict=True):
                if value:
                    outcomes[key] = json.loads(value)
            if len(outcomes) == len(keys):
                break
            await asyncio.sleep(1)
        # Answers still in the outbox are sent within moments.
        while redis.xlen("ar:outbox") and time.monotonic() < deadline:  # noqa: ASYNC110  # another process's Redis
            await asyncio.sleep(0.5)
    elapsed = time.monotonic() - started
    await asyncio.sleep(2)
    unprocessed = sorted(rel for rel, _, parsed, _ in mails if parsed.key not in outcomes)
    assert unprocessed == [], f"{len(unprocessed)} corpus mails never got an outcome (a crash or a hang)"
    async with httpx.AsyncClient() as http:
        assert (await http.get(f"{mail_stack.stack.base_url}/healthz", timeout=10)).status_code == 200

    answers_to: Counter[str] = Counter()
    for received in mail_stack.smtp.handler.snapshot():
        answers_to[received.header("In-Reply-To").strip().strip("<>")] += 1
    answered_per_sender: Counter[str] = Counter()
    for outcome_key, outcome in outcomes.items():
        if outcome["status"] in ANSWERED:
            sender = next(p.reply_address for _, _, p, _ in mails if p.key == outcome_key)
            answered_per_sender[str(sender)] += 1

    wrongly_answered, unanswered, doubled = [], [], []
    statuses: Counter[str] = Counter()
    for rel, _, parsed, label in mails:
        outcome = outcomes[parsed.key]
        statuses[f"{label}:{outcome['status']}"] += 1
        count = answers_to[parsed.message_id] if parsed.message_id else None
        if label != "ordinary":
            if outcome["status"] in ANSWERED or count:
                wrongly_answered.append(f"{rel}: {outcome}")
            continue
        if outcome["status"] in ANSWERED:
            if count is not None and count != 1:
                doubled.append(f"{rel}: {count} answers")
        elif outcome["status"] == "to_agent":
            assert count in (None, 0)
        elif outcome.get("reason") == "rate_limited":
            # Held back only once that sender really had its answers for the hour.
            assert answered_per_sender[str(parsed.reply_address)] == LIMIT, rel
        else:
            unanswered.append(f"{rel}: {outcome}")
    print(f"\ncorpus: {len(mails)} mails in {elapsed:.0f} s; outcomes {dict(sorted(statuses.items()))}")
    assert wrongly_answered == [], "bounce, bulk, list, report or robot mail answered"
    assert unanswered == [], "ordinary mail neither answered, handed off nor rate-limited"
    assert doubled == []
    # Mails without a Message-ID have no In-Reply-To to count by: their total must match too.
    no_id = {p.key: str(p.reply_address) for _, _, p, _ in mails if not p.message_id}
    no_id_answered = [k for k in no_id if outcomes[k]["status"] in ANSWERED]
    recipients = {no_id[k] for k in no_id_answered}
    sent_to_them = [
        r for r in mail_stack.smtp.handler.snapshot() if not r.header("In-Reply-To") and r.rcpt_tos[0] in recipients
    ]
    assert len(sent_to_them) == len(no_id_answered)
    assert sum(1 for o in outcomes.values() if o["status"] in ANSWERED) > 100
