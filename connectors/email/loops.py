"""Loop and storm protection (RFC 3834): which mail must never get an automatic answer, and how many may.

Checked before anything else, on the headers and MIME structure only, so a bounce or a mailing-list
digest never reaches the engine. The per-sender limit lives in Redis (a sorted set of answered mail
keys per address, so that re-processing the same mail after a crash does not count it twice).
"""

from __future__ import annotations

import re
import time
from enum import StrEnum
from typing import Any

from connectors.email import keys as mail_keys
from connectors.email.parse import ParsedMail


class Suppressed(StrEnum):
    """Why a mail gets no automatic answer; recorded with the mail's outcome."""

    AUTO_SUBMITTED = "auto_submitted"  # Auto-Submitted other than "no" (vacation replies, other robots)
    PRECEDENCE = "precedence"  # Precedence: bulk / list / junk / auto_reply
    MAILING_LIST = "mailing_list"  # List-Id, List-Unsubscribe, List-Post …
    SYSTEM_SENDER = "system_sender"  # mailer-daemon, postmaster, no-reply …
    NULL_RETURN_PATH = "null_return_path"  # Return-Path: <> (bounces and other notifications)
    DELIVERY_REPORT = "delivery_report"  # multipart/report; report-type=delivery-status, message/delivery-status
    READ_RECEIPT = "read_receipt"  # message/disposition-notification
    ABUSE_REPORT = "abuse_report"  # ARF: message/feedback-report
    AUTO_REPLY_HEADER = "auto_reply_header"  # X-Autoreply, X-Autorespond, X-Loop naming us …
    AUTO_REPLY_SUBJECT = (
        "auto_reply_subject"  # "Automatic reply:", "自动回复", "Undeliverable:" from robots without headers
    )
    ROBOT_RECIPIENT = "robot_recipient"  # sent to a bounce-processing or list-robot address, not to people
    OWN_ADDRESS = "own_address"  # from the support address itself
    NO_SENDER = "no_sender"  # no usable address to answer to
    RATE_LIMITED = "rate_limited"  # the sender already got the configured number of answers this hour


_BULK_PRECEDENCE = {"bulk", "list", "junk", "auto_reply", "auto-reply"}
_LIST_HEADERS = ("list-id", "list-unsubscribe", "list-post", "list-help", "list-subscribe", "list-owner")
_SYSTEM_LOCAL = re.compile(
    r"^(mailer-daemon|mailer_daemon|maildaemon|postmaster|no[-_.]?reply|do[-_.]?not[-_.]?reply|noreply[-+.].*|"
    r"bounces?([-+=.].*)?|abuse|listserv|majordomo|owner-.+|.+-owner|.+-request|.+-bounces?)$",
    re.I,
)
# Subjects robots use when they set none of the headers above (old Exchange, qmail, Chinese webmail bounces).
_ROBOT_SUBJECT = re.compile(
    r"^\s*(auto(matic)?[ -]?(reply|response|antwort)\b|auto:|out of (the )?office\b|autoreply\b|"
    r"自动回复|自動回覆|自動回復|自动答复|"
    r"undeliverable:|undelivered mail returned to sender|delivery status notification|returned mail\b|"
    r"mail delivery failed|delivery failure|failure notice\b|non[- ]?delivery|系统退信|退信)",
    re.I,
)
_REPORT_OF_TYPE = {
    "delivery-status": Suppressed.DELIVERY_REPORT,
    "global-delivery-status": Suppressed.DELIVERY_REPORT,
    "disposition-notification": Suppressed.READ_RECEIPT,
    "global-disposition-notification": Suppressed.READ_RECEIPT,
    "feedback-report": Suppressed.ABUSE_REPORT,
}
_PART_REPORT = {
    "message/delivery-status": Suppressed.DELIVERY_REPORT,
    "message/global-delivery-status": Suppressed.DELIVERY_REPORT,
    "message/disposition-notification": Suppressed.READ_RECEIPT,
    "message/global-disposition-notification": Suppressed.READ_RECEIPT,
    "message/feedback-report": Suppressed.ABUSE_REPORT,
}


def is_system_address(address: str | None) -> bool:
    """True for mailer-daemon, postmaster, no-reply and list-robot style addresses."""
    if not address or "@" not in address:
        return False
    return bool(_SYSTEM_LOCAL.match(address.split("@", 1)[0]))


def suppression(mail: ParsedMail, support_address: str | None) -> Suppressed | None:
    """The reason this mail must get no automatic answer, or None when it may get one."""
    auto = (mail.header("auto-submitted") or "").split(";")[0].strip().lower()
    if auto and auto != "no":
        return Suppressed.AUTO_SUBMITTED
    precedence = (mail.header("precedence") or "").strip().lower()
    if precedence in _BULK_PRECEDENCE:
        return Suppressed.PRECEDENCE
    if any(mail.header(h) is not None for h in _LIST_HEADERS):
        return Suppressed.MAILING_LIST
    report = _REPORT_OF_TYPE.get(mail.report_type) if mail.content_type == "multipart/report" else None
    if report is None:
        report = next((_PART_REPORT[t] for t in sorted(mail.part_types) if t in _PART_REPORT), None)
    if report is not None:
        return report
    if mail.return_path == "":
        return Suppressed.NULL_RETURN_PATH
    if any(mail.header(h) is not None for h in ("x-autoreply", "x-autorespond", "x-autoresponder", "x-auto-response")):
        return Suppressed.AUTO_REPLY_HEADER
    if _ROBOT_SUBJECT.match(mail.subject):
        return Suppressed.AUTO_REPLY_SUBJECT
    own = (support_address or "").strip().lower()
    loop_marks = [v.strip().lower() for v in mail.headers.get("x-loop", ())]
    if own and own in loop_marks:
        return Suppressed.AUTO_REPLY_HEADER
    addresses = [a for a in (mail.sender, mail.reply_to, mail.return_path) if a]
    if own and any(a.lower() == own for a in addresses):
        return Suppressed.OWN_ADDRESS
    if any(is_system_address(a) for a in addresses):
        return Suppressed.SYSTEM_SENDER
    if mail.recipients and all(is_system_address(a) for a in mail.recipients):
        return Suppressed.ROBOT_RECIPIENT
    if mail.reply_address is None:
        return Suppressed.NO_SENDER
    return None


class ReplyRateLimit:
    """At most `limit` automatic answers per sender address in a sliding hour."""

    WINDOW_SECONDS = 3600

    def __init__(self, redis: Any, limit: int) -> None:
        self.redis = redis
        self.limit = limit

    async def allowed(self, address: str, mail_key: str, now: float | None = None) -> bool:
        """True when another answer to this address is allowed (a mail already counted stays allowed)."""
        now = time.time() if now is None else now
        key = mail_keys.mail_rate(address)
        await self.redis.zremrangebyscore(key, "-inf", now - self.WINDOW_SECONDS)
        if await self.redis.zscore(key, mail_key) is not None:
            return True
        return int(await self.redis.zcard(key)) < self.limit

    def record(self, pipe: Any, address: str, mail_key: str, now: float | None = None) -> None:
        """Count an answer inside the caller's MULTI, with the outbox entry it belongs to."""
        key = mail_keys.mail_rate(address)
        pipe.zadd(key, {mail_key: time.time() if now is None else now})
        pipe.expire(key, self.WINDOW_SECONDS * 2)
