"""The email channel's Redis keys and their lifetimes (under the app's prefix); nothing else builds them."""

from __future__ import annotations

from bot.keys import CONVERSATION_TTL_SECONDS, PREFIX, digest

# Processed-mail markers and the message-id → thread map outlive conversations' default dedupe period:
# a mailbox can hand back old mail (UIDVALIDITY change, a restore) long after a week.
MAIL_DONE_TTL_SECONDS = CONVERSATION_TTL_SECONDS
MAIL_SENT_TTL_SECONDS = 30 * 24 * 3600
# One reader per mailbox: the lease is renewed every third of its life.
MAIL_LEASE_SECONDS = 15
OUTBOX_GROUP = "mailers"
OUTBOX_LOCK_SECONDS = 120
MAIL_LOG_MAXLEN = 100_000


def outbox() -> str:
    """Stream (consumer group OUTBOX_GROUP): composed mails waiting for SMTP, with envelope and message id."""
    return f"{PREFIX}:outbox"


def outbox_attempts() -> str:
    """Hash: outbox entry id → JSON {attempts, next_at, error} of entries waiting for a retry."""
    return f"{PREFIX}:outbox:attempts"


def outbox_lock(entry_id: str) -> str:
    """String with TTL: a replica is sending this outbox entry right now."""
    return f"{PREFIX}:outbox:lock:{entry_id}"


def outbox_failed() -> str:
    """Stream: outbox entries that failed permanently (5xx, or retries exhausted), for people to see."""
    return f"{PREFIX}:outbox:failed"


def mail_sent(message_id: str) -> str:
    """String with TTL: the SMTP transaction of this outgoing Message-ID completed; never send it again."""
    return f"{PREFIX}:mail:sent:{digest(message_id)}"


def mail_done(mail_key: str) -> str:
    """String (JSON outcome) with TTL: this inbound mail was processed and its answer, if any, is in the outbox."""
    return f"{PREFIX}:mail:done:{digest(mail_key)}"


def mail_uid(mailbox: str) -> str:
    """Hash: uidvalidity and last_uid (every UID up to it is processed) of a mailbox folder."""
    return f"{PREFIX}:mail:uid:{mailbox}"


def mail_lease(mailbox: str) -> str:
    """String with TTL: which replica reads the mailbox."""
    return f"{PREFIX}:mail:lease:{mailbox}"


def mail_thread(message_id: str) -> str:
    """String with TTL: the thread root of a message id seen or sent in a mail thread."""
    return f"{PREFIX}:mail:msgid:{digest(message_id)}"


def mail_conversation(conv_id: str) -> str:
    """Hash: threading state of an email conversation (root, last message id, references, subject, address)."""
    return f"{PREFIX}:mail:conv:{conv_id}"


def mail_rate(address: str) -> str:
    """Sorted set: keys of mails automatically answered to this address, by time (rate limit)."""
    return f"{PREFIX}:mail:rate:{digest(address.lower())}"


def mail_log() -> str:
    """Stream (capped): one entry per processed inbound mail with its outcome."""
    return f"{PREFIX}:mail:log"
