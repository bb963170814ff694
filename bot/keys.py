"""Every Redis key pattern and TTL of the app. Nothing else builds key strings."""

from __future__ import annotations

import hashlib

PREFIX = "ar"


def digest(value: str) -> str:
    """A value that may be a customer's contact detail (an email address, a phone number, a sender id),
    as it appears in key names: hashed, so that `KEYS`, `MONITOR` or a dump name nobody (privacy at rest)."""
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:32]


SEEN_TTL_SECONDS = 7 * 24 * 3600
# An update being processed holds its key this long (Telegram's update gate); a crash mid-way frees it
# for the retry soon. The message inside is deduplicated by the inbox, which waits for a live answer.
CLAIM_TTL_SECONDS = 30
CONVERSATION_TTL_SECONDS = 90 * 24 * 3600


# A conversation's hash is this and its id (the store's lookup script builds it from a thread's value).
CONVERSATION_PREFIX = f"{PREFIX}:conv:"


def conversation(conv_id: str) -> str:
    """Hash: channel, thread, customer, mode, locale, handoff fields, timestamps."""
    return f"{CONVERSATION_PREFIX}{conv_id}"


# A field of the conversation's hash (bot.access): "1", set in the same step as an order-access challenge
# or a change waiting for the customer is recorded; "0", set by a read that finds neither. While it is
# "0", nothing of the kind waits for the conversation's next message. Absent (a new conversation, or
# one from before the marker existed): not known, so the guard reads the state itself.
ACCESS_WAITS_FIELD = "access_waits"


def transcript(conv_id: str) -> str:
    """Stream: the conversation's messages; entry ids double as the web chat's seq numbers."""
    return f"{PREFIX}:conv:{conv_id}:log"


def notes(conv_id: str) -> str:
    """Stream: agents' internal notes on a conversation. Kept apart from the transcript, which
    customers' channels replay, so that no channel can ever show a note to a customer."""
    return f"{PREFIX}:conv:{conv_id}:notes"


EVENTS_PREFIX = CONVERSATION_PREFIX
EVENTS_SUFFIX = ":events"


def events(conv_id: str) -> str:
    """Pub/sub channel: frames for everyone watching the conversation (web chat, agents)."""
    return f"{EVENTS_PREFIX}{conv_id}{EVENTS_SUFFIX}"


def thread(channel: str, thread_id: str) -> str:
    """String: the open conversation id of a channel thread (web chat visitor, REST sender, mail thread)."""
    return f"{PREFIX}:thread:{channel}:{digest(thread_id)}"


def handoff_queue(skill: str) -> str:
    """Sorted set of conversation ids waiting for an agent, by priority then wait time."""
    return f"{PREFIX}:handoff:{skill}"


def handoff_entry(conv_id: str) -> str:
    """Hash: reason, skill, priority, summary and queued-at of a conversation's handoff."""
    return f"{PREFIX}:handoff:entry:{conv_id}"


def sla_timers() -> str:
    """Sorted set: conversations with a handoff whose first answer is outstanding, by when to check them next."""
    return f"{PREFIX}:sla:timers"


# The agent statistics read these capped streams over a window (stream ids are timestamps).
STATS_MAXLEN = 100_000


def stats_first_responses() -> str:
    """Stream: one entry per handoff's first agent answer (seconds waited, target met, skill, channel)."""
    return f"{PREFIX}:stats:first_response"


def stats_sla() -> str:
    """Stream: first-response targets missed and escalations."""
    return f"{PREFIX}:stats:sla"


def stats_csat() -> str:
    """Stream: satisfaction surveys sent and scores given."""
    return f"{PREFIX}:stats:csat"


# An agent who stops sending heartbeats (closed the console) is offline after this long.
PRESENCE_TTL_SECONDS = 45


def agents_available() -> str:
    """Sorted set: agents taking conversations automatically, by their last heartbeat."""
    return f"{PREFIX}:agents:available"


def agent_presence(agent: str) -> str:
    """Hash with TTL: an available agent's skills, capacity, last heartbeat and last assignment."""
    return f"{PREFIX}:agent:presence:{agent}"


def assign_lock(agent: str) -> str:
    """String with TTL: one app replica is assigning conversations to this agent right now."""
    return f"{PREFIX}:assign:lock:{agent}"


def agent_conversations(agent: str) -> str:
    """Set: ids of the conversations an agent holds (added on take, removed on hand back)."""
    return f"{PREFIX}:agent:conversations:{agent}"


def seen(channel: str, key: str) -> str:
    """String with TTL: a dedupe key already accepted (value: the message id; inbox keys: sender-scoped)."""
    return f"{PREFIX}:seen:{channel}:{digest(key)}"


# An accepted message's record outlives its answer long enough for a channel's retry to find it.
INBOX_RECORD_TTL_SECONDS = 7 * 24 * 3600


def inbox_message(message_id: str) -> str:
    """Hash with TTL: an accepted customer message, its state (pending/answered/delivered) and its answer."""
    return f"{PREFIX}:inbox:msg:{message_id}"


def inbox_pending() -> str:
    """Sorted set: accepted messages not answered yet, by when to look at them next (recovery, retries)."""
    return f"{PREFIX}:inbox:pending"


def inbox_undelivered() -> str:
    """Sorted set: answered messages whose answer is not yet handed to a pushing channel, by answer time."""
    return f"{PREFIX}:inbox:undelivered"


def inbox_conversation(conv_id: str) -> str:
    """Sorted set: a conversation's accepted, unanswered messages by acceptance time (answered in order)."""
    return f"{PREFIX}:inbox:conv:{conv_id}"


def inbox_lease(message_id: str) -> str:
    """String with TTL: which process is answering a message right now (renewed while it works)."""
    return f"{PREFIX}:inbox:lease:{message_id}"


# The engine's stores take an alphanumeric prefix and add ":tracker:", ":trackerstate:" and ":lock:"
# themselves (engine/ar_engine/tracker_store.py, engine/ar_engine/lock_store.py), so their keys are the ones below.
RASA_KEY_PREFIX = PREFIX


def rasa_tracker(conv_id: str) -> str:
    """List with TTL (AUTORESPONDER_TRACKER_TTL_DAYS): the engine's events of a conversation, one JSON each."""
    return f"{RASA_KEY_PREFIX}:tracker:{conv_id}"


def rasa_tracker_state(conv_id: str) -> str:
    """Hash with the tracker's TTL: where the latest session starts in the events, and the state after them."""
    return f"{RASA_KEY_PREFIX}:trackerstate:{conv_id}"


def rasa_lock(conv_id: str) -> str:
    """Sorted set with TTL: the engine's waiting tickets for a conversation (one message at a time, in order)."""
    return f"{RASA_KEY_PREFIX}:lock:{conv_id}"


def rasa_lock_sequence(conv_id: str) -> str:
    """Counter with TTL: the last ticket the engine issued for a conversation's lock."""
    return f"{RASA_KEY_PREFIX}:lockseq:{conv_id}"


def agent_session(digest: str) -> str:
    """Hash with TTL (the idle timeout): a signed-in agent's session, keyed by the SHA-256 of its cookie."""
    return f"{PREFIX}:session:{digest}"


def account_sessions(account_id: int) -> str:
    """Set: the session digests of an account, so that disabling it or a new password ends them all."""
    return f"{PREFIX}:account:{account_id}:sessions"


def signin_attempts_ip(ip: str) -> str:
    """Counter with TTL (the rate-limit window): sign-in attempts from one address."""
    return f"{PREFIX}:signin:ip:{ip}"


def signin_attempts_name(key: str) -> str:
    """Counter with TTL (the rate-limit window): sign-in attempts for one account name, existing or not."""
    return f"{PREFIX}:signin:name:{key}"


# A guest's proof that an order is theirs (bot.access): asked for, counted, locked, remembered.
CHALLENGE_TTL_SECONDS = 15 * 60
VERIFIED_TTL_SECONDS = 24 * 3600
CHANGE_TTL_SECONDS = 15 * 60


def access_challenge(conv_id: str) -> str:
    """Hash with TTL: the second factor a guest was asked for (order id, waiting action, original question)."""
    return f"{PREFIX}:access:{conv_id}:challenge"


def access_failures(conv_id: str, order_id: str) -> str:
    """Counter with TTL (the lock time): wrong second factors given for one order in one conversation."""
    return f"{PREFIX}:access:{conv_id}:failures:{order_id}"


def access_lock(conv_id: str, order_id: str) -> str:
    """String with TTL: an order locked for a conversation after too many wrong second factors."""
    return f"{PREFIX}:access:{conv_id}:lock:{order_id}"


def access_order_failures(order_id: str) -> str:
    """Counter with TTL (the lock time): wrong second factors given for one order in any guest's conversation."""
    return f"{PREFIX}:access:order:{order_id}:failures"


def access_order_lock(order_id: str) -> str:
    """String with TTL: an order locked for every guest after too many wrong second factors across conversations."""
    return f"{PREFIX}:access:order:{order_id}:lock"


def access_verified(conv_id: str) -> str:
    """Set with TTL: order ids whose owner a guest proved to be in this conversation."""
    return f"{PREFIX}:access:{conv_id}:verified"


def pending_change(conv_id: str) -> str:
    """Hash with TTL: a change to an order waiting for its new address or the customer's confirmation."""
    return f"{PREFIX}:access:{conv_id}:change"


# The review list of messages the assistant may have misunderstood (bot.desk.review): entries live this long
# after they were last seen, and the list keeps this many at most (the oldest go first).
REVIEW_TTL_SECONDS = 30 * 24 * 3600
# A conversation's latest understood message, kept for a follow-up or handoff that shows it was not.
REVIEW_LAST_TTL_SECONDS = 24 * 3600


def review_items() -> str:
    """Sorted set: ids of the review list's entries (digests of their masked text), by when last seen."""
    return f"{PREFIX}:review:items"


def review_reason(reason: str) -> str:
    """Sorted set: the entries that came in for one reason (low_confidence, fallback, …), by when last seen."""
    return f"{PREFIX}:review:reason:{reason}"


def review_item(item_id: str) -> str:
    """Hash with TTL: one entry (masked text, locale, channel, prediction, reasons, count, times)."""
    return f"{PREFIX}:review:item:{item_id}"


def review_decided() -> str:
    """Sorted set: entries an admin assigned or dismissed, by when, so that they do not come back meanwhile."""
    return f"{PREFIX}:review:decided"


def review_last(conv_id: str) -> str:
    """Hash with TTL: a conversation's latest understood message, masked, with its prediction."""
    return f"{PREFIX}:review:last:{conv_id}"


def replication_probe() -> str:
    """A counter written before WAIT, so that WAIT covers every write made before it (no customer data)."""
    return f"{PREFIX}:replication:probe"
