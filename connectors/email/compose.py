"""Composing outgoing mail: threaded, text and HTML, RFC 3834 headers, a fresh Message-ID."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate

from connectors.email.parse import one_line

# At most this many ids in References: the root and the latest ones (RFC 5322 §3.6.4 allows trimming).
MAX_REFERENCES = 20
_REPLY_PREFIX = re.compile(r"^\s*((re|aw|sv|antw|vs|odp|回复|回覆|答复|答覆)\s*(\[\d+\])?\s*[:：]\s*)+", re.I)
_DEFAULT_SUBJECT = {"zh-CN": "您的来信", "zh-TW": "您的來信", "en": "Your message"}


def bare_subject(subject: str) -> str:
    """The subject without the reply prefixes mailers add (Re:, AW:, 回复: …)."""
    return _REPLY_PREFIX.sub("", subject or "").strip()


def reply_subject(subject: str, locale: str | None = None) -> str:
    """The subject with exactly one "Re:" in front, whatever reply prefixes it already carried, on one line
    (a thread's subject stored before its reading made it one)."""
    bare = bare_subject(one_line(subject or ""))
    return f"Re: {bare or _DEFAULT_SUBJECT.get(locale or 'en', _DEFAULT_SUBJECT['en'])}"


def new_message_id(domain: str) -> str:
    """A globally unique Message-ID (without angle brackets) in the support address's domain."""
    return f"{uuid.uuid4().hex}.ar@{domain}"


def domain_of(address: str | None) -> str:
    """The domain of an address, or a placeholder for ids when none is configured."""
    if address and "@" in address:
        return address.rsplit("@", 1)[1].strip().lower() or "autoresponder.invalid"
    return "autoresponder.invalid"


def thread_references(references: Sequence[str], parent: str | None) -> list[str]:
    """References of a reply: the parent's References plus the parent, trimmed keeping the root."""
    refs = [r for r in references if r]
    if parent and parent not in refs:
        refs.append(parent)
    if len(refs) > MAX_REFERENCES:
        refs = [refs[0], *refs[-(MAX_REFERENCES - 1) :]]
    return refs


def build_message(
    *,
    sender: str,
    sender_name: str,
    to: str,
    subject: str,
    text: str,
    html: str | None,
    message_id: str,
    in_reply_to: str | None,
    references: Sequence[str],
    auto_submitted: str | None,
    locale: str | None,
) -> bytes:
    """The wire bytes (CRLF, 7-bit safe) of one outgoing mail."""
    msg = EmailMessage(policy=policy.SMTP)
    msg["From"] = Address(display_name=sender_name, addr_spec=sender) if sender_name else sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = formatdate(localtime=False, usegmt=True)
    msg["Message-ID"] = f"<{message_id}>"
    if in_reply_to:
        msg["In-Reply-To"] = f"<{in_reply_to}>"
    if references:
        msg["References"] = " ".join(f"<{r}>" for r in references)
    if auto_submitted:
        # RFC 3834: mark the answer as automatic so that well-behaved responders stay silent.
        msg["Auto-Submitted"] = auto_submitted
        # Microsoft's equivalent: no out-of-office or read receipts in reply to this.
        msg["X-Auto-Response-Suppress"] = "All"
    # Our own loop mark: a mail carrying it that comes back to the mailbox is never answered.
    msg["X-Loop"] = sender
    msg.set_content(text, cte="quoted-printable" if text.isascii() else "base64")
    if html:
        msg.add_alternative(html, subtype="html", cte="base64")
    if locale:  # after the content: set_content() drops Content-* headers
        msg["Content-Language"] = locale
    return msg.as_bytes(policy=policy.SMTP)


def wrap_html(body_html: str, locale: str | None) -> str:
    """A minimal HTML document around the HTML part of a reply."""
    lang = locale or "en"
    return (
        f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8"></head>'
        f'<body style="font-family: sans-serif; line-height: 1.5">{body_html}</body></html>'
    )
