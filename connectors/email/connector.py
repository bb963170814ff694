"""The email channel: IMAP in, SMTP out, wired into the app's lifespan and the agent desk."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from typing import TYPE_CHECKING, Any

from bot import keys
from connectors.base import Connector, OutboundMessage
from connectors.email.errors import MailConfigError
from connectors.email.imap import ImapConfig
from connectors.email.outbox import OutboundMail, Outbox, OutboxWorker, SmtpConfig, SmtpSender
from connectors.email.processor import CHANNEL, MailProcessor, Outcome, thread_state
from connectors.email.reader import MailboxReader

if TYPE_CHECKING:
    from bot.services import Services
    from bot.settings import Settings
    from bot.store import Conversation

log = logging.getLogger(__name__)

# Console notices that make no sense as a mail of their own: the agent's answer follows right away.
# Console-side events a mail customer would only find noisy: someone joined, someone else takes over.
NOT_MAILED = frozenset({"utter_agent_joined", "utter_transfer"})
_DEFAULT_IMAP_PORT = {"ssl": 993, "starttls": 143, "none": 143}
_DEFAULT_SMTP_PORT = {"ssl": 465, "starttls": 587, "none": 25}


class EmailConnector(Connector):
    """Reads the support mailbox and answers by mail; on when AUTORESPONDER_IMAP_HOST is set."""

    def __init__(
        self,
        settings: Settings,
        *,
        imap_tls: ssl.SSLContext | None = None,
        smtp_tls: ssl.SSLContext | None = None,
    ) -> None:
        self.settings = settings
        support = settings.support_address or (settings.imap_user if "@" in (settings.imap_user or "") else None)
        missing = [
            name
            for name, value in (
                ("AUTORESPONDER_IMAP_USER", settings.imap_user),
                ("AUTORESPONDER_IMAP_PASSWORD", settings.imap_password),
                ("AUTORESPONDER_SMTP_HOST", settings.smtp_host),
                ("AUTORESPONDER_SUPPORT_ADDRESS", support),
            )
            if not value
        ]
        if missing:
            raise MailConfigError(
                f"the email channel is on (AUTORESPONDER_IMAP_HOST is set) but {', '.join(missing)} unset"
            )
        assert settings.imap_host and settings.imap_user and settings.imap_password and settings.smtp_host and support
        self.support_address = support.strip().lower()
        self.imap = ImapConfig(
            host=settings.imap_host,
            port=settings.imap_port or _DEFAULT_IMAP_PORT.get(settings.imap_security, 993),
            user=settings.imap_user,
            password=settings.imap_password,
            security=settings.imap_security,
            folder=settings.imap_folder,
            tls_context=imap_tls,
        )
        self.smtp = SmtpConfig(
            host=settings.smtp_host,
            port=settings.smtp_port or _DEFAULT_SMTP_PORT.get(settings.smtp_security, 587),
            security=settings.smtp_security,
            user=settings.smtp_user,
            password=settings.smtp_password,
            tls_context=smtp_tls,
        )
        # Names this replica in the mailbox lease and the outbox consumer group; stable across restarts.
        self.identity = f"{socket.gethostname()}:{settings.http_port}"
        self.services: Services | None = None
        self.processor: MailProcessor | None = None
        self.reader: MailboxReader | None = None
        self.worker: OutboxWorker | None = None
        self.sender: SmtpSender | None = None
        self._tasks: list[asyncio.Task[None]] = []

    @classmethod
    def name(cls) -> str:
        """Channel name in conversations, keys and templates."""
        return CHANNEL

    @classmethod
    def from_settings(cls, settings: Settings) -> EmailConnector | None:
        """The connector when AUTORESPONDER_IMAP_HOST is set, else None."""
        if not settings.imap_host:
            return None
        return cls(settings)

    async def start(self, services: Services) -> None:
        """Start the mailbox reader and the outbox worker in the background."""
        self.services = services
        self.processor = MailProcessor(
            services,
            support_address=self.support_address,
            max_bytes=self.settings.email_max_bytes,
            replies_per_hour=self.settings.email_replies_per_sender_per_hour,
        )
        await Outbox(services.redis).ensure_group()
        self.sender = SmtpSender(self.smtp)
        self.worker = OutboxWorker(services.redis, self.sender, self.identity, on_failure=self._undelivered)
        self.reader = MailboxReader(
            self.imap,
            services.redis,
            self._process,
            identity=self.identity,
            max_bytes=self.settings.email_max_bytes,
            processed_folder=self.settings.imap_processed_folder,
            poll_seconds=self.settings.imap_poll_seconds,
        )
        self._tasks = [
            asyncio.create_task(self.reader.run(), name="email-reader"),
            asyncio.create_task(self.worker.run(), name="email-outbox"),
        ]

    async def _process(self, raw: bytes, size: int, uid: int) -> Outcome:
        assert self.processor is not None
        return await self.processor.process(raw, size=size, uid=uid)

    async def stop(self) -> None:
        """Stop reading and sending; a mail being processed is finished or left for the next start."""
        if self.reader is not None:
            self.reader.stop()
        if self.worker is not None:
            self.worker.stop()
        if self._tasks:
            _done, pending = await asyncio.wait(self._tasks, timeout=10)
            for task in pending:
                task.cancel()
            for task in pending:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self.sender is not None:
            await self.sender.close()

    async def deliver(self, conversation: Conversation, message: OutboundMessage) -> None:
        """An agent's answer or a notice, as a mail in the conversation's thread (through the outbox)."""
        if message.template in NOT_MAILED:
            return
        services, processor = self.services, self.processor
        if services is None or processor is None:
            raise MailConfigError("the email channel is not started")
        redis: Any = services.redis
        state = await thread_state(redis, conversation.id)
        if state is None:
            log.warning("conversation %s has no mail thread; message not mailed", conversation.id)
            return
        locale = conversation.locale or "zh-CN"
        if message.role == "agent":
            kind = "agent"
            rendered = services.templates.render(
                "email_agent_reply", CHANNEL, locale, {"body": message.text, "agent_name": message.agent_name or ""}
            )
        elif processor.is_letter(message.template):  # a notice written as a whole letter (the survey)
            kind = "notice"
            mail = processor.outbound_mail(None, conversation, state, message.text, message.html or "", kind=kind)
            await self._queue(redis, mail, state.root)
            return
        else:
            kind = "notice"
            rendered = services.templates.render(
                "email_reply",
                CHANNEL,
                locale,
                {"name": await processor.customer_name(conversation), "body": message.text},
            )
        mail = processor.outbound_mail(None, conversation, state, rendered.text, rendered.html or "", kind=kind)
        await self._queue(redis, mail, state.root)

    @staticmethod
    async def _queue(redis: Any, mail: OutboundMail, root: str) -> None:
        """Into the outbox, with the Message-ID → thread entry that threads the customer's reply to it."""
        pipe = redis.pipeline(transaction=True)
        Outbox.add(pipe, mail)
        pipe.set(keys.mail_thread(mail.message_id), root, ex=keys.MAIL_DONE_TTL_SECONDS)
        await pipe.execute()

    async def _undelivered(self, mail: OutboundMail, reason: str) -> None:
        """Put a permanent delivery failure where agents look: the conversation's transcript."""
        if self.services is not None and mail.conversation_id:
            await self.services.store.append(
                mail.conversation_id,
                "system",
                f"Email to {', '.join(mail.recipients)} could not be delivered ({reason}).",
            )
