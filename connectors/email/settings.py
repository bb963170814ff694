"""The email channel's settings (AUTORESPONDER_IMAP_*, _SMTP_*, _EMAIL_*); on when an IMAP host is set."""

from __future__ import annotations

from pydantic_settings import BaseSettings

from bot.settings import ENV_CONFIG


class EmailSettings(BaseSettings):
    """The support mailbox (IMAP), the mail server that sends answers (SMTP), and the limits."""

    model_config = ENV_CONFIG

    imap_host: str | None = None
    imap_port: int | None = None
    imap_security: str = "ssl"
    imap_user: str | None = None
    imap_password: str | None = None
    imap_folder: str = "INBOX"
    imap_processed_folder: str | None = None
    imap_poll_seconds: float = 30.0
    smtp_host: str | None = None
    smtp_port: int | None = None
    smtp_security: str = "starttls"
    smtp_user: str | None = None
    smtp_password: str | None = None
    support_address: str | None = None
    email_max_bytes: int = 10 * 1024 * 1024
    email_replies_per_sender_per_hour: int = 5
