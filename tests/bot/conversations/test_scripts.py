"""The router's Redis scripts on a real Redis: a thread's conversation in one lookup, a message accepted
with its conversation fields, its published line and its lease (or accepted into its thread's
conversation read in the same script, the locale chosen there as `resolve_locale` would, the access
marker reported), and an answer committed only while the message is pending. Property-based over the
texts a stranger controls (quotes, braces, any script)."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot import keys
from bot.access.state import OrderAccess, PendingChange
from bot.conversations.inbox import ANSWERED, DELIVERED, PENDING, Accepted, Inbox
from bot.conversations.messages import InboundMessage
from bot.conversations.store import ConversationStore, entry_fields
from bot.locale import locale_choice, resolve_locale
from tests.conftest import TextRedis


def said(sender: str, text: str, key: str | None = None) -> InboundMessage:
    return InboundMessage(channel="rest", thread_id=sender, sender=sender, text=text, idempotency_key=key)


async def published(redis: TextRedis, conv_id: str) -> Any:
    pubsub = redis.pubsub()
    await pubsub.subscribe(keys.events(conv_id))
    await pubsub.get_message(timeout=1)  # the subscription's confirmation
    return pubsub


async def frames(pubsub: Any, count: int) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    while len(got) < count:
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=2)
        assert message is not None, f"only {len(got)} of {count} frames published"
        got.append(json.loads(message["data"]))
    return got


async def in_thread(inbox: Inbox, thread: str, text: str, customer_id: str | None = None) -> Accepted | None:
    """A customer's message accepted into its thread's conversation (no locale hint), as the router does."""
    return await inbox.accept_in_thread(
        said(thread, text),
        entry_fields("customer", text),
        due_in=30,
        locale=locale_choice(text, None),
        customer_id=customer_id,
        owner="me",
    )


async def test_find_reads_a_thread_and_its_conversation_in_one_lookup(redis: TextRedis) -> None:
    store = ConversationStore(redis)
    assert await store.find("rest", "nobody") is None
    opened, new = await store.find_or_open("rest", "dora", "C1")
    found = await store.find("rest", "dora")
    assert new and found is not None and found.id == opened.id and found.customer_id == "C1"
    await redis.delete(keys.conversation(opened.id))  # expired: the thread names a conversation gone
    assert await store.find("rest", "dora") is None
    again, new_again = await store.find_or_open("rest", "dora", None)
    assert new_again and again.id != opened.id


async def test_accept_writes_the_conversation_fields_publishes_the_line_and_takes_the_lease(
    redis: TextRedis,
) -> None:
    store, inbox = ConversationStore(redis), Inbox(redis)
    conv, _ = await store.find_or_open("rest", "erin", None)
    pubsub = await published(redis, conv.id)
    line = entry_fields("customer", "我的订单 DD202405001 到哪了", client_id="c-1")
    conv.customer_id, conv.locale, conv.updated_at = "C9", "zh-CN", 1.5
    accepted = await inbox.accept(
        conv.id,
        said("erin", "我的订单 DD202405001 到哪了", "k1"),
        line,
        due_in=30,
        conversation=conv,
        owner="me",
        publish=True,
    )
    assert accepted.new and accepted.leased and accepted.entry is not None and accepted.record is not None
    assert accepted.record.state == PENDING and accepted.record.seq == accepted.entry.seq
    assert await redis.get(keys.inbox_lease(accepted.message_id)) == "me"
    stored = await store.get(conv.id)
    assert stored is not None and (stored.customer_id, stored.locale, stored.updated_at) == ("C9", "zh-CN", 1.5)
    assert await frames(pubsub, 1) == [json.loads(json.dumps(accepted.entry.frame()))]
    await pubsub.aclose()
    again = await inbox.accept(conv.id, said("erin", "again", "k1"), line, due_in=30, conversation=conv, owner="me")
    assert not again.new and again.message_id == accepted.message_id and not again.leased


async def test_accept_leaves_the_lease_while_an_earlier_message_waits(redis: TextRedis) -> None:
    store, inbox = ConversationStore(redis), Inbox(redis)
    conv, _ = await store.find_or_open("rest", "finn", None)
    first = await inbox.accept(conv.id, said("finn", "一"), entry_fields("customer", "一"), due_in=30)
    second = await inbox.accept(
        conv.id, said("finn", "二"), entry_fields("customer", "二"), due_in=30, conversation=conv, owner="me"
    )
    assert first.new and not first.leased and second.new and not second.leased
    assert not await redis.exists(keys.inbox_lease(second.message_id))


async def test_commit_answers_a_pending_message_once_and_releases_only_its_own_lease(redis: TextRedis) -> None:
    store, inbox = ConversationStore(redis), Inbox(redis)
    conv, _ = await store.find_or_open("rest", "gus", None)
    accepted = await inbox.accept(
        conv.id, said("gus", "你好"), entry_fields("customer", "你好"), due_in=30, conversation=conv, owner="me"
    )
    lines = [entry_fields("bot", "您好", buttons=[{"title": "查订单", "payload": "/order_status"}])]
    pubsub = await published(redis, conv.id)
    committed = await inbox.commit(conv.id, accepted.message_id, lines, delivered=False, owner="me")
    assert committed is not None and [e.text for e in committed] == ["您好"]
    assert await frames(pubsub, 1) == [json.loads(json.dumps(committed[0].frame()))]
    await pubsub.aclose()
    record = await inbox.get(accepted.message_id)
    assert record is not None and record.state == ANSWERED and record.replies == lines
    assert not await redis.exists(keys.inbox_lease(accepted.message_id))
    assert await redis.zscore(keys.inbox_undelivered(), accepted.message_id) is not None
    assert await redis.zscore(keys.inbox_pending(), accepted.message_id) is None
    assert await redis.zcard(keys.inbox_conversation(conv.id)) == 0
    # A second commit (another process that took the message over) writes nothing, and leaves a lease
    # that is not its own.
    await redis.set(keys.inbox_lease(accepted.message_id), "someone else")
    assert await inbox.commit(conv.id, accepted.message_id, lines, delivered=True, owner="me") is None
    assert await redis.get(keys.inbox_lease(accepted.message_id)) == "someone else"
    assert [e.text for e in await store.history(conv.id)] == ["你好", "您好"]


async def test_a_commit_for_a_channel_that_pushes_nothing_is_delivered_at_once(redis: TextRedis) -> None:
    store, inbox = ConversationStore(redis), Inbox(redis)
    conv, _ = await store.find_or_open("rest", "hana", None)
    accepted = await inbox.accept(conv.id, said("hana", "在吗"), entry_fields("customer", "在吗"), due_in=30)
    assert await inbox.commit(conv.id, accepted.message_id, [], delivered=True, owner="me") == []
    record = await inbox.get(accepted.message_id)
    assert record is not None and record.state == DELIVERED
    assert await redis.zscore(keys.inbox_undelivered(), accepted.message_id) is None


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(min_size=1, max_size=200), title=st.text(min_size=1, max_size=30))
async def test_any_text_is_published_as_the_frame_the_transcript_gives(redis: TextRedis, text: str, title: str) -> None:
    store, inbox = ConversationStore(redis), Inbox(redis)
    conv, _ = await store.find_or_open("rest", "fuzz", None)
    pubsub = await published(redis, conv.id)
    accepted = await inbox.accept(
        conv.id, said("fuzz", text), entry_fields("customer", text), due_in=30, conversation=conv, publish=True
    )
    lines = [entry_fields("bot", text, buttons=[{"title": title, "payload": "/x"}])]
    committed = await inbox.commit(conv.id, accepted.message_id, lines, delivered=True, owner="")
    assert accepted.entry is not None and committed is not None
    got = await frames(pubsub, 2)
    await pubsub.aclose()
    history = await store.history(conv.id, after=None)
    by_seq = {e.seq: json.loads(json.dumps(e.frame())) for e in history}
    assert got == [by_seq[accepted.entry.seq], by_seq[committed[0].seq]]


# --- accepting into the thread's conversation, read in the same script ---

# What a stranger may write and what a conversation may hold: any script, order ids, short English.
_WORDS = st.sampled_from(["你好", "訂單", "退货", "發票", "ok", "pls", "where is my order", "DD202405001", "谢谢", "!"])
_TEXTS = st.one_of(st.lists(_WORDS, min_size=1, max_size=4).map(" ".join), st.text(min_size=1, max_size=40))
_CURRENT = st.sampled_from([None, "zh-CN", "zh-TW", "en", "fr", "zh-HK"])
_HINTS = st.sampled_from([None, "en-US", "zh-TW", "zh_Hant", "de", ""])


async def test_accept_in_thread_writes_nothing_for_a_thread_without_a_conversation(redis: TextRedis) -> None:
    inbox = Inbox(redis)
    before = set(await redis.keys("*"))
    msg = said("nobody-yet", "你好", "k")
    got = await inbox.accept_in_thread(
        msg, entry_fields("customer", "你好"), due_in=30, locale=locale_choice("你好", None), customer_id="C1"
    )
    assert got is None and set(await redis.keys("*")) == before


async def test_accept_in_thread_reads_writes_and_returns_the_conversation_in_one_script(redis: TextRedis) -> None:
    store, inbox = ConversationStore(redis), Inbox(redis)
    conv, _ = await store.find_or_open("rest", "ivy", "C7")
    await store.update(replace(conv, locale="zh-TW"), "locale")
    pubsub = await published(redis, conv.id)
    text = "ok DD202405001"  # short English: a zh-TW conversation keeps zh-TW
    accepted = await inbox.accept_in_thread(
        said("ivy", text, "k1"),
        entry_fields("customer", text),
        due_in=30,
        locale=locale_choice(text, "en-US"),
        customer_id="C9",  # the conversation has a customer already: kept
        owner="me",
        publish=True,
    )
    # A conversation opened by this version says at once that nothing of order access waits for it.
    assert accepted is not None and accepted.new and accepted.leased and accepted.access_waits is False
    assert accepted.conversation is not None and accepted.conversation.id == conv.id
    assert (accepted.conversation.locale, accepted.conversation.customer_id) == ("zh-TW", "C7")
    assert accepted.record is not None and accepted.record.conversation_id == conv.id
    stored_record = await inbox.get(accepted.message_id)
    assert stored_record is not None and stored_record.conversation_id == conv.id
    assert await redis.zscore(keys.inbox_conversation(conv.id), accepted.message_id) is not None
    assert await redis.get(keys.inbox_lease(accepted.message_id)) == "me"
    assert [e.text for e in await store.history(conv.id)] == [text]
    assert accepted.entry is not None and await frames(pubsub, 1) == [json.loads(json.dumps(accepted.entry.frame()))]
    await pubsub.aclose()
    # The same key again: told which message it was, with the conversation, and nothing written.
    again = await inbox.accept_in_thread(
        said("ivy", text, "k1"),
        entry_fields("customer", text),
        due_in=30,
        locale=locale_choice(text, None),
        customer_id=None,
        owner="me",
    )
    assert again is not None and not again.new and again.message_id == accepted.message_id
    assert again.conversation is not None and again.conversation.id == conv.id
    assert len(await store.history(conv.id)) == 1


async def test_accept_in_thread_sets_the_customer_of_a_guest_conversation_and_reports_the_access_marker(
    redis: TextRedis,
) -> None:
    store, inbox = ConversationStore(redis), Inbox(redis)
    conv, _ = await store.find_or_open("rest", "jo", None)
    await OrderAccess(redis).ask(conv.id, "DD202405001", "action_order_status", "DD202405001 到哪了")
    accepted = await in_thread(inbox, "jo", "8001", "C3")
    assert accepted is not None and accepted.access_waits is True
    assert accepted.conversation is not None and accepted.conversation.customer_id == "C3"
    # Without a lease (an earlier message still waits), the marker is not vouched for.
    later = await in_thread(inbox, "jo", "再问")
    assert later is not None and later.new and not later.leased and later.access_waits is None


async def test_the_access_marker_comes_with_a_challenge_or_a_change_and_says_so_when_neither_is_left(
    redis: TextRedis,
) -> None:
    store, access = ConversationStore(redis), OrderAccess(redis)
    conv, _ = await store.find_or_open("rest", "kai", None)
    marker = keys.ACCESS_WAITS_FIELD
    await access.propose(conv.id, PendingChange("cancel", "DD202405001"))
    assert await redis.hget(keys.conversation(conv.id), marker) == "1"
    await access.waiting(conv.id)  # a change waits: the marker stays
    assert await redis.hget(keys.conversation(conv.id), marker) == "1"
    await access.take_pending(conv.id)
    await access.waiting(conv.id)
    assert await redis.hget(keys.conversation(conv.id), marker) == "0"
    await access.ask(conv.id, "DD202405001", "action_order_status", "q")
    assert await redis.hget(keys.conversation(conv.id), marker) == "1"
    await access.waiting(conv.id, drop_challenge=True)  # no factor in the message: the challenge goes
    assert await redis.hget(keys.conversation(conv.id), marker) == "0"
    # The next acceptance vouches that nothing waits: the guard need not read.
    accepted = await in_thread(Inbox(redis), "kai", "谢谢")
    assert accepted is not None and accepted.leased and accepted.access_waits is False
    # A conversation without the marker (opened before it existed): not known, so the guard reads itself.
    older, _ = await store.find_or_open("rest", "lee", None)
    await redis.hdel(keys.conversation(older.id), marker)
    accepted = await in_thread(Inbox(redis), "lee", "你好")
    assert accepted is not None and accepted.leased and accepted.access_waits is None
    # A conversation that does not exist (expired) is not brought back as a hash with only the marker.
    await access.ask("gone", "DD202405001", "action_order_status", "q")
    await access.waiting("gone", drop_challenge=True)
    assert not await redis.exists(keys.conversation("gone"))


async def test_a_guest_order_question_is_checked_and_its_challenge_recorded_in_one_script(redis: TextRedis) -> None:
    store, access = ConversationStore(redis), OrderAccess(redis)
    conv, _ = await store.find_or_open("rest", "mo", None)
    assert await access.guest_access(conv.id, "DD202405001", "action_order_status", "DD202405001 到哪了") == "asked"
    challenge = await access.challenge(conv.id)
    assert challenge is not None and (challenge.order_id, challenge.question) == ("DD202405001", "DD202405001 到哪了")
    assert await redis.hget(keys.conversation(conv.id), keys.ACCESS_WAITS_FIELD) == "1"
    await access.verify(conv.id, "DD202405001")
    assert await access.guest_access(conv.id, "DD202405001", "action_order_status", "again") == "verified"
    for _ in range(access.policy.max_failures):
        await access.fail(conv.id, "DD202405002")
    assert await access.guest_access(conv.id, "DD202405002", "action_order_status", "again") == "locked"
    assert await access.challenge(conv.id) is None  # neither a verified nor a locked order asks again


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=_TEXTS, current=_CURRENT, hint=_HINTS)
async def test_the_script_chooses_the_locale_resolve_locale_chooses(
    redis: TextRedis, text: str, current: str | None, hint: str | None
) -> None:
    store, inbox = ConversationStore(redis), Inbox(redis)
    conv, _ = await store.find_or_open("rest", "polyglot", None)
    await store.update(replace(conv, locale=current), "locale")
    accepted = await inbox.accept_in_thread(
        said("polyglot", text),
        entry_fields("customer", text),
        due_in=30,
        locale=locale_choice(text, hint),
        customer_id=None,
    )
    assert accepted is not None and accepted.conversation is not None
    assert accepted.conversation.locale == resolve_locale(text, current, hint)
    stored = await store.get(conv.id)
    assert stored is not None and stored.locale == resolve_locale(text, current, hint)
