"""Composing answers: one "Re:", threading headers, RFC 3834 marks, text and HTML parts."""

from __future__ import annotations

import email
from email import policy
from email.message import EmailMessage

import pytest

from connectors.email.compose import MAX_REFERENCES, bare_subject, build_message, reply_subject, thread_references


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("订单查询", "Re: 订单查询"),
        ("Re: 订单查询", "Re: 订单查询"),
        ("RE: Re: re: where is my order", "Re: where is my order"),
        ("回复：回复: 订单", "Re: 订单"),
        ("Aw: Fwd: parcel", "Re: Fwd: parcel"),
        ("Re[2]: parcel", "Re: parcel"),
        ("", "Re: Your message"),
    ],
)
def test_reply_subject_has_one_re(subject: str, expected: str) -> None:
    assert reply_subject(subject) == expected


def test_empty_subject_in_chinese() -> None:
    assert reply_subject("  ", "zh-CN") == "Re: 您的来信"
    assert bare_subject("回复: RE: 订单") == "订单"
    assert bare_subject("") == ""


def test_references_keep_the_root_and_the_latest() -> None:
    refs = [f"m{i}@x" for i in range(40)]
    trimmed = thread_references(refs, "parent@x")
    assert len(trimmed) == MAX_REFERENCES
    assert trimmed[0] == "m0@x"
    assert trimmed[-1] == "parent@x"
    assert thread_references(["a@x"], "a@x") == ["a@x"]
    assert thread_references([], None) == []


def test_built_message_is_threaded_marked_and_has_both_parts() -> None:
    raw = build_message(
        sender="support@shop.test",
        sender_name="演示商城客服",
        to="wang.wei@example.com",
        subject="Re: 订单 DD202405001 到哪了",
        text="尊敬的王先生，您好：\n\n运单号：SF1234567890123",
        html="<p>尊敬的王先生，您好：</p><p>运单号：SF1234567890123</p>",
        message_id="abc.ar@shop.test",
        in_reply_to="q1@customer.test",
        references=["root@customer.test", "q1@customer.test"],
        auto_submitted="auto-replied",
        locale="zh-CN",
    )
    assert b"\r\n" in raw
    assert all(b < 128 for b in raw), "7-bit clean on the wire"
    msg = email.message_from_bytes(raw, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    assert msg["Message-ID"] == "<abc.ar@shop.test>"
    assert msg["In-Reply-To"] == "<q1@customer.test>"
    assert msg["References"] == "<root@customer.test> <q1@customer.test>"
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["X-Auto-Response-Suppress"] == "All"
    assert msg["X-Loop"] == "support@shop.test"
    assert msg["Content-Language"] == "zh-CN"
    assert msg["Subject"] == "Re: 订单 DD202405001 到哪了"
    assert str(msg["From"]) == "演示商城客服 <support@shop.test>"
    assert msg.get_content_type() == "multipart/alternative"
    plain, html = msg.get_body(("plain",)), msg.get_body(("html",))
    assert plain is not None and "SF1234567890123" in plain.get_content()
    assert html is not None and "<p>" in html.get_content()


def test_agent_answers_are_not_marked_automatic() -> None:
    raw = build_message(
        sender="support@shop.test",
        sender_name="",
        to="a@mail.test",
        subject="Re: x",
        text="Hello",
        html=None,
        message_id="m@shop.test",
        in_reply_to=None,
        references=[],
        auto_submitted=None,
        locale="en",
    )
    msg = email.message_from_bytes(raw, policy=policy.default)
    assert msg["Auto-Submitted"] is None
    assert msg["In-Reply-To"] is None
    assert msg.get_content_type() == "text/plain"
