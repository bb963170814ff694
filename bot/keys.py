"""Every Redis key pattern and TTL of the app. Nothing else builds key strings."""

from __future__ import annotations

PREFIX = "ar"

SEEN_TTL_SECONDS = 7 * 24 * 3600
# A message being processed holds its key this long; a crash mid-way frees it for the retry.
CLAIM_TTL_SECONDS = 180
CONVERSATION_TTL_SECONDS = 90 * 24 * 3600


def conversation(conv_id: str) -> str:
    """Hash: channel, thread, customer, mode, locale, handoff fields, timestamps."""
    return f"{PREFIX}:conv:{conv_id}"


def transcript(conv_id: str) -> str:
    """Stream: the conversation's messages; entry ids double as the web chat's seq numbers."""
    return f"{PREFIX}:conv:{conv_id}:log"


def events(conv_id: str) -> str:
    """Pub/sub channel: frames for everyone watching the conversation (web chat, agents)."""
    return f"{PREFIX}:conv:{conv_id}:events"


def thread(channel: str, thread_id: str) -> str:
    """String: the open conversation id of a channel thread (web chat visitor, REST sender, mail thread)."""
    return f"{PREFIX}:thread:{channel}:{thread_id}"


def handoff_queue(skill: str) -> str:
    """Sorted set of conversation ids waiting for an agent, by priority then wait time."""
    return f"{PREFIX}:handoff:{skill}"


def handoff_entry(conv_id: str) -> str:
    """Hash: reason, skill, priority, summary and queued-at of a conversation's handoff."""
    return f"{PREFIX}:handoff:entry:{conv_id}"


def seen(channel: str, key: str) -> str:
    """String with TTL: an idempotency key already processed (value: conversation id)."""
    return f"{PREFIX}:seen:{channel}:{key}"


def conv_lock(conv_id: str) -> str:
    """Lock serialising one conversation's messages across app replicas."""
    return f"{PREFIX}:lock:conv:{conv_id}"


def rasa_tracker_prefix() -> str:
    """Prefix under which Rasa's Redis tracker store keeps trackers."""
    return f"{PREFIX}:rasa:tracker:"


def rasa_lock_prefix() -> str:
    """Prefix under which Rasa's Redis lock store keeps its locks."""
    return f"{PREFIX}:rasa:lock"
