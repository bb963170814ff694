"""Loop and storm protection (RFC 3834): what never gets an automatic answer, and how many answers a sender gets."""

from __future__ import annotations

import email
import email.utils
import re
from email import policy

import pytest

from connectors.email.loops import ReplyRateLimit, Suppressed, is_system_address, suppression
from connectors.email.parse import parse_mail
from tests.conftest import TextRedis
from tests.connectors.email.mails import SUPPORT, build
from tests.connectors.email.test_parse import MAIL_DATA, corpus_files

QUESTION = "请问订单 DD202405001 到哪了？"


def verdict(**kwargs: object) -> Suppressed | None:
    defaults: dict[str, object] = {"sender": "customer@mail.test", "subject": "订单", "body": QUESTION}
    defaults.update(kwargs)
    return suppression(parse_mail(build(**defaults)), SUPPORT)  # type: ignore[arg-type]


def test_an_ordinary_question_may_be_answered() -> None:
    assert verdict() is None
    assert verdict(headers={"Auto-Submitted": "no"}) is None
    assert verdict(headers={"Precedence": "first-class"}) is None


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({"Auto-Submitted": "auto-replied"}, Suppressed.AUTO_SUBMITTED),
        ({"Auto-Submitted": "auto-generated; owner-email=x@y"}, Suppressed.AUTO_SUBMITTED),
        ({"Auto-Submitted": "Auto-Notified"}, Suppressed.AUTO_SUBMITTED),
        ({"Precedence": "bulk"}, Suppressed.PRECEDENCE),
        ({"Precedence": "LIST"}, Suppressed.PRECEDENCE),
        ({"Precedence": "junk"}, Suppressed.PRECEDENCE),
        ({"List-Id": "<news.shop.test>"}, Suppressed.MAILING_LIST),
        ({"List-Unsubscribe": "<mailto:leave@shop.test>"}, Suppressed.MAILING_LIST),
        ({"Return-Path": "<>"}, Suppressed.NULL_RETURN_PATH),
        ({"X-Autoreply": "yes"}, Suppressed.AUTO_REPLY_HEADER),
        ({"X-Loop": SUPPORT}, Suppressed.AUTO_REPLY_HEADER),
    ],
)
def test_robot_headers_are_never_answered(headers: dict[str, str], reason: Suppressed) -> None:
    assert verdict(headers=headers) is reason


@pytest.mark.parametrize(
    "sender",
    [
        "MAILER-DAEMON@mx.mail.test",
        "postmaster@mail.test",
        "no-reply@shop.test",
        "noreply@mail.test",
        "donotreply@x.test",
    ],
)
def test_system_senders_are_never_answered(sender: str) -> None:
    assert verdict(sender=sender) is Suppressed.SYSTEM_SENDER
    assert is_system_address(sender)
    assert not is_system_address("replyto.me@mail.test")


def test_our_own_address_is_never_answered() -> None:
    assert verdict(sender=SUPPORT) is Suppressed.OWN_ADDRESS
    assert verdict(sender="Support@Shop.Test") is Suppressed.OWN_ADDRESS
    assert verdict(headers={"Reply-To": SUPPORT}) is Suppressed.OWN_ADDRESS


@pytest.mark.parametrize(
    "subject", ["自动回复：我休假了", "Automatic reply: out of office", "Out of Office: back Monday"]
)
def test_vacation_replies_without_headers_are_recognised_by_subject(subject: str) -> None:
    assert verdict(subject=subject) is Suppressed.AUTO_REPLY_SUBJECT


def test_delivery_reports_read_receipts_and_arf_by_mime_type() -> None:
    def report(report_type: str, part: str) -> bytes:
        return (
            "From: someone@mail.test\r\nSubject: report\r\nMIME-Version: 1.0\r\n"
            f'Content-Type: multipart/report; report-type={report_type}; boundary="b"\r\n\r\n'
            f"--b\r\nContent-Type: text/plain\r\n\r\nhuman part\r\n--b\r\nContent-Type: {part}\r\n\r\n"
            "Reporting-MTA: dns; mx.mail.test\r\n\r\n--b--\r\n"
        ).encode()

    cases = [
        ("delivery-status", "message/delivery-status", Suppressed.DELIVERY_REPORT),
        ("disposition-notification", "message/disposition-notification", Suppressed.READ_RECEIPT),
        ("feedback-report", "message/feedback-report", Suppressed.ABUSE_REPORT),
    ]
    for report_type, part, reason in cases:
        assert suppression(parse_mail(report(report_type, part)), SUPPORT) is reason


def test_no_usable_sender() -> None:
    raw = b"Subject: hello\r\nMessage-ID: <x@y>\r\n\r\nwhere is my order"
    assert suppression(parse_mail(raw), SUPPORT) is Suppressed.NO_SENDER


async def test_rate_limit_counts_answers_per_sender_per_hour(redis: TextRedis) -> None:
    limit = ReplyRateLimit(redis, 2)
    for key in ("m1", "m2"):
        assert await limit.allowed("a@mail.test", key, now=1000.0)
        pipe = redis.pipeline(transaction=True)
        limit.record(pipe, "a@mail.test", key, now=1000.0)
        await pipe.execute()
    assert not await limit.allowed("a@mail.test", "m3", now=1001.0)
    # A mail counted already (re-processed after a crash) is still allowed: no double counting.
    assert await limit.allowed("a@mail.test", "m1", now=1001.0)
    assert await limit.allowed("b@mail.test", "m4", now=1001.0)
    # An hour later the window has moved on.
    assert await limit.allowed("a@mail.test", "m3", now=1000.0 + 3601)


def classify_like_a_person(rel: str, raw: bytes) -> str:
    """The corpus label from its source plus the headers named in RFC 3834, read independently of the code."""
    if rel.startswith("flufl-bounce/"):
        # flufl.bounce's own test table says groupwise_03 is "not a bounce but has confused groupwise".
        return "ordinary" if rel.endswith("groupwise_03.txt") else "bounce"
    if rel.startswith(("flanker/bounce/", "flanker/complaints/")) or rel == "flanker/disposition-notification.eml":
        return "report"
    msg = email.message_from_bytes(raw, policy=policy.compat32)
    if msg.get_content_type() == "multipart/report":
        return "report"

    def h(name: str) -> str:
        return str(msg.get(name, "") or "").strip().lower()

    if h("auto-submitted") not in ("", "no"):
        return "auto"
    if h("precedence") in ("bulk", "list", "junk"):
        return "bulk"
    if msg.get("List-Id") is not None or msg.get("List-Unsubscribe") is not None:
        return "list"
    if msg.get("Return-Path") is not None and h("return-path").strip("<> ") == "":
        return "bounce"
    _, addr = email.utils.parseaddr(str(msg.get("From", "")))
    if addr.count("@") != 1 or " " in addr or not addr.split("@")[0].isascii():
        return "no-sender"
    for header in ("From", "Return-Path", "Reply-To"):
        _, a = email.utils.parseaddr(str(msg.get(header, "")))
        if re.match(r"(mailer-daemon|postmaster|no-?reply|do-not-reply|owner-[^@]*|[^@]*-bounces?)@", a, re.I):
            return "robot"
    return "ordinary"


def test_corpus_bounces_bulk_reports_are_all_suppressed_and_ordinary_mail_is_not() -> None:
    silent: list[str] = []
    wrongly_silent: list[str] = []
    for path in corpus_files():
        rel = str(path.relative_to(MAIL_DATA))
        raw = path.read_bytes()
        label = classify_like_a_person(rel, raw)
        reason = suppression(parse_mail(raw), SUPPORT)
        if label == "ordinary" and reason is not None:
            wrongly_silent.append(f"{rel}: {reason}")
        if label != "ordinary" and reason is None:
            silent.append(rel)
    assert silent == [], "bounce, bulk, list or report mail that would be answered"
    # Ordinary mail is answered, except where the extra robot heuristics (sent *to* a list-bounce address) apply.
    assert wrongly_silent == []
