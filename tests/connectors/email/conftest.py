"""Fixtures for the email tests: dovecot and aiosmtpd on loopback, and a whole stack with the email channel on."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from redis import Redis as SyncRedis

from connectors.email import keys as mail_keys
from tests.conftest import RunningStack, start_stack
from tests.connectors.email.mails import SUPPORT
from tests.connectors.email.servers import PASSWORD, Dovecot, Received, Smtp, start_dovecot, start_smtp, wait_until

# Mailboxes of the package's dovecot: one for the stack, the others for component tests.
USERS = ["support", "reader", "reader2", "client", "imapops", "retry", "lease", "movebox", "poison"]


@pytest.fixture(scope="package")
def dovecot() -> Iterator[Dovecot]:
    """A real IMAP server (dovecot) with IDLE, plain on loopback."""
    server = start_dovecot(USERS)
    yield server
    server.stop()


@pytest.fixture(scope="package")
def smtp() -> Iterator[Smtp]:
    """A real SMTP server (aiosmtpd) that records what it accepts."""
    server = start_smtp()
    yield server
    server.stop()


@dataclass
class MailStack:
    """The whole product reading the `support` mailbox and answering through the recording SMTP server."""

    stack: RunningStack
    dovecot: Dovecot
    smtp: Smtp
    redis_url: str
    user: str = "support"

    async def send(self, *raw: bytes) -> None:
        """Deliver mails into the support mailbox."""
        await self.dovecot.deliver(self.user, *raw)

    def answers(self, message_id: str) -> list[Received]:
        """Answers the SMTP server received for a customer's Message-ID."""
        return self.smtp.handler.replies_to(message_id)

    def wait_answer(self, message_id: str, timeout: float = 90) -> Received:
        """The one answer to a mail (fails when none comes)."""
        wait_until(lambda: bool(self.answers(message_id)), timeout, f"an answer to <{message_id}>")
        return self.answers(message_id)[0]

    def outcome(self, message_id: str) -> dict[str, str] | None:
        """The recorded outcome of an inbound mail (status, reason, conversation), or None when unprocessed."""
        import json

        with SyncRedis.from_url(self.redis_url, decode_responses=True) as client:
            raw = client.get(mail_keys.mail_done(f"mid:{message_id}"))
        return dict(json.loads(str(raw))) if raw else None

    def wait_outcome(self, message_id: str, timeout: float = 90) -> dict[str, str]:
        """The outcome once the mail is processed."""
        wait_until(lambda: self.outcome(message_id) is not None, timeout, f"<{message_id}> to be processed")
        found = self.outcome(message_id)
        assert found is not None
        return found


@pytest.fixture(scope="package")
def mail_stack(tmp_path_factory: pytest.TempPathFactory, dovecot: Dovecot, smtp: Smtp) -> Iterator[MailStack]:
    """`autoresponder up` with AUTORESPONDER_IMAP_HOST set: the email channel reads dovecot, answers via aiosmtpd."""
    env = {
        "AUTORESPONDER_IMAP_HOST": "127.0.0.1",
        "AUTORESPONDER_IMAP_PORT": str(dovecot.port),
        "AUTORESPONDER_IMAP_SECURITY": "none",
        "AUTORESPONDER_IMAP_USER": "support",
        "AUTORESPONDER_IMAP_PASSWORD": PASSWORD,
        "AUTORESPONDER_IMAP_POLL_SECONDS": "2",
        "AUTORESPONDER_SMTP_HOST": "127.0.0.1",
        "AUTORESPONDER_SMTP_PORT": str(smtp.port),
        "AUTORESPONDER_SMTP_SECURITY": "none",
        "AUTORESPONDER_SUPPORT_ADDRESS": SUPPORT,
        "AUTORESPONDER_EMAIL_MAX_BYTES": str(200 * 1024),
    }
    with start_stack(tmp_path_factory, env) as running:
        found = re.search(r"Redis\s*:\s*(redis://\S+)", running.log.read_text(errors="replace"))
        assert found, "the stack did not print its Redis URL"
        deadline = time.monotonic() + 30
        redis_url = found.group(1)
        with SyncRedis.from_url(redis_url, decode_responses=True) as client:
            # Ready when the reader holds the mailbox lease (it has connected and selected the folder).
            while not client.keys("ar:mail:uid:*") and time.monotonic() < deadline:
                time.sleep(0.2)
        yield MailStack(running, dovecot, smtp, redis_url)
