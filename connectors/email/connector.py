"""The email channel: IMAP in, SMTP out, wired into the app's lifespan and the agent desk."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from typing import TYPE_CHECKING, Any

from bot.conversations.channels import Channel, ChannelContext
from bot.conversations.messages import OutboundMessage
from connectors.email import keys as mail_keys
from connectors.email.errors import MailConfigError
from connectors.email.imap import ImapConfig
from connectors.email.outbox import OutboundMail, Outbox, OutboxWorker, SmtpConfig, SmtpSender
from connectors.email.processor import CHANNEL, MailProcessor, Outcome, thread_state
from connectors.email.reader import MailboxReader
from connectors.email.settings import EmailSettings

if TYPE_CHECKING:
    from bot.conversations.model import Conversation
    from bot.settings import Settings

log = logging.getLogger(__name__)

# Console notices that make no sense as a mail of their own: the agent's answer follows right away.
# Console-side events a mail customer would only find noisy: someone joined, someone else takes over.
NOT_MAILED = frozenset({"utter_agent_joined", "utter_transfer"})
_DEFAULT_IMAP_PORT = {"ssl": 993, "starttls": 143, "none": 143}
_DEFAULT_SMTP_PORT = {"ssl": 465, "starttls": 587, "none": 25}


class EmailConnector(Channel):
    """Reads the support mailbox and answers by mail; on when AUTORESPONDER_IMAP_HOST is set."""

    variant = "email"
    live = False

    def __init__(
        self,
        settings: Settings,
        mail: EmailSettings,
        *,
        imap_tls: ssl.SSLContext | None = None,
        smtp_tls: ssl.SSLContext | None = None,
    ) -> None:
        self.settings = mail
        self.max_text_chars = settings.max_text_chars
        support = mail.support_address or (mail.imap_user if "@" in (mail.imap_user or "") else None)
        missing = [
            name
            for name, value in (
                ("AUTORESPONDER_IMAP_USER", mail.imap_user),
                ("AUTORESPONDER_IMAP_PASSWORD", mail.imap_password),
                ("AUTORESPONDER_SMTP_HOST", mail.smtp_host),
                ("AUTORESPONDER_SUPPORT_ADDRESS", support),
            )
            if not value
        ]
        if missing:
            raise MailConfigError(
                f"the email channel is on (AUTORESPONDER_IMAP_HOST is set) but {', '.join(missing)} unset"
            )
        assert mail.imap_host and mail.imap_user and mail.imap_password and mail.smtp_host and support
        self.support_address = support.strip().lower()
        self.imap = ImapConfig(
            host=mail.imap_host,
            port=mail.imap_port or _DEFAULT_IMAP_PORT.get(mail.imap_security, 993),
            user=mail.imap_user,
            password=mail.imap_password,
            security=mail.imap_security,
            folder=mail.imap_folder,
            tls_context=imap_tls,
        )
        self.smtp = SmtpConfig(
            host=mail.smtp_host,
            port=mail.smtp_port or _DEFAULT_SMTP_PORT.get(mail.smtp_security, 587),
            security=mail.smtp_security,
            user=mail.smtp_user,
            password=mail.smtp_password,
            tls_context=smtp_tls,
        )
        # Names this replica in the mailbox lease and the outbox consumer group; stable across restarts.
        self.identity = f"{socket.gethostname()}:{settings.http_port}"
        self.context: ChannelContext | None = None
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
    def from_settings(cls, settings: Settings, own: EmailSettings | None = None) -> EmailConnector | None:
        """The connector when AUTORESPONDER_IMAP_HOST is set, else None."""
        own = own or EmailSettings()
        if not own.imap_host:
            return None
        return cls(settings, own)

    async def start(self, context: ChannelContext) -> None:
        """Start the mailbox reader and the outbox worker in the background."""
        self.context = context
        self.processor = MailProcessor(
            context,
            support_address=self.support_address,
            max_bytes=self.settings.email_max_bytes,
            replies_per_hour=self.settings.email_replies_per_sender_per_hour,
            max_text_chars=self.max_text_chars,
        )
        await Outbox(context.redis).ensure_group()
        self.sender = SmtpSender(self.smtp)
        self.worker = OutboxWorker(context.redis, self.sender, self.identity, on_failure=self._undelivered)
        self.reader = MailboxReader(
            self.imap,
            context.redis,
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
        context, processor = self.context, self.processor
        if context is None or processor is None:
            raise MailConfigError("the email channel is not started")
        redis: Any = context.redis
        state = await thread_state(redis, conversation.id)
        if state is None:
            log.warning("conversation %s has no mail thread; message not mailed", conversation.id)
            return
        locale = conversation.locale or "zh-CN"
        if message.role == "agent":
            kind = "agent"
            rendered = context.templates.render(
                "email_agent_reply", CHANNEL, locale, {"body": message.text, "agent_name": message.agent_name or ""}
            )
        elif processor.is_letter(message.template):  # a notice written as a whole letter (the survey)
            kind = "notice"
            mail = processor.outbound_mail(None, conversation, state, message.text, message.html or "", kind=kind)
            await self._queue(redis, mail, state.root)
            return
        else:
            kind = "notice"
            rendered = context.templates.render(
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
        pipe.set(mail_keys.mail_thread(mail.message_id), root, ex=mail_keys.MAIL_DONE_TTL_SECONDS)
        await pipe.execute()

    async def _undelivered(self, mail: OutboundMail, reason: str) -> None:
        """Put a permanent delivery failure where agents look: the conversation's transcript."""
        if self.context is not None and mail.conversation_id:
            await self.context.store.append(
                mail.conversation_id,
                "system",
                f"Email to {', '.join(mail.recipients)} could not be delivered ({reason}).",
            )
