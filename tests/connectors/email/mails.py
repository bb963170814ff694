"""Building test mails the way real mailers write them: any charset, RFC 2047 headers, threads."""

from __future__ import annotations

import uuid
from email.header import Header
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import formatdate

SUPPORT = "support@shop.test"


def new_id(domain: str = "customer.test") -> str:
    """A fresh Message-ID without brackets."""
    return f"{uuid.uuid4().hex}@{domain}"


def guest() -> str:
    """A sender address no CRM customer has, unique per call (keeps the per-sender limit out of the way)."""
    return f"guest-{uuid.uuid4().hex[:12]}@mail.test"


def build(
    *,
    sender: str,
    subject: str,
    body: str,
    charset: str = "utf-8",
    message_id: str | None = None,
    in_reply_to: str | None = None,
    references: list[str] | None = None,
    headers: dict[str, str] | None = None,
    html: str | None = None,
    to: str = SUPPORT,
    sender_name: str | None = None,
) -> bytes:
    """One mail as bytes; `message_id=""` leaves the Message-ID out."""
    text = MIMEText(body, "plain", charset)
    msg: MIMEText | MIMEMultipart
    if html is not None:
        msg = MIMEMultipart("alternative")
        if body:
            msg.attach(text)
        msg.attach(MIMEText(html, "html", charset))
    else:
        msg = text
    msg["From"] = f"{Header(sender_name, charset).encode()} <{sender}>" if sender_name else sender
    msg["To"] = to
    msg["Subject"] = Header(subject, charset).encode() if not subject.isascii() else subject
    msg["Date"] = formatdate(localtime=True)
    mid = new_id() if message_id is None else message_id
    if mid:
        msg["Message-ID"] = f"<{mid}>"
    if in_reply_to:
        msg["In-Reply-To"] = f"<{in_reply_to}>"
    if references:
        msg["References"] = " ".join(f"<{r}>" for r in references)
    for name, value in (headers or {}).items():
        msg[name] = value
    return msg.as_bytes()
