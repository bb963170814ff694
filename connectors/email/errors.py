"""Errors of the email channel, children of the app's root exception."""

from __future__ import annotations

from bot.errors import AutoresponderError


class MailError(AutoresponderError):
    """Root of the email channel's errors."""


class MailConfigError(MailError):
    """The email settings are incomplete or contradictory; the message names the setting to fix."""


class ImapError(MailError):
    """The IMAP server refused a command or the connection broke; the reader reconnects with backoff."""


class LeaseLost(MailError):
    """Another replica took the mailbox lease; this one stops reading until it can take it back."""


class RetryLater(MailError):
    """A mail could not be processed now (engine down, claim held elsewhere); it stays unflagged for a retry."""


class SendError(MailError):
    """An SMTP transaction failed; `permanent` tells whether a retry can help (5xx) or not."""

    def __init__(self, message: str, *, permanent: bool, code: int | None = None) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.code = code
