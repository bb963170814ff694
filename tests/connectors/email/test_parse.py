"""Parsing real-world mail: charsets, RFC 2047, HTML-only bodies, quotes and signatures, attachments."""

from __future__ import annotations

import base64
import time
from pathlib import Path

import pytest

from bot.settings import PROJECT_ROOT
from connectors.email.compose import build_message, reply_subject
from connectors.email.parse import (
    content_key,
    decode_bytes,
    decode_header_value,
    html_to_text,
    parse_mail,
    strip_quotes,
)
from tests.connectors.email.mails import build

MAIL_DATA = PROJECT_ROOT.parent / "shared" / "data" / "mail"


def corpus_files() -> list[Path]:
    """Every message of the shared mail corpora (skip when the folder is absent)."""
    if not MAIL_DATA.is_dir():
        pytest.skip(f"{MAIL_DATA} is absent: the mail corpora are read from ../shared/data/mail")
    return [p for p in sorted(MAIL_DATA.rglob("*")) if p.is_file() and p.suffix not in (".py", ".png", ".wav")]


@pytest.mark.parametrize(
    ("charset", "text"),
    [
        ("gb2312", "请问订单 DD202405001 到哪了？"),
        ("gbk", "我的订单怎么还没到，镕"),  # 镕 is in GBK, not in GB2312
        ("gb18030", "订单查询 𠮷"),
        ("big5", "請問我的訂單到哪裡了？"),
        ("utf-8", "Where is my order? 订单"),
        ("iso-2022-jp", "注文はどこですか"),
    ],
)
def test_bodies_in_every_common_charset(charset: str, text: str) -> None:
    raw = build(sender="a@mail.test", subject=text[:4], body=text, charset=charset)
    mail = parse_mail(raw)
    assert mail.text == text
    assert mail.subject == text[:4]


def test_gb2312_label_on_gbk_text_still_decodes() -> None:
    # Mailers label GBK text "gb2312" all the time; 镕 (GBK only) must survive.
    body = "镕基的订单".encode("gbk")
    raw = (
        b"From: a@mail.test\r\nSubject: =?gb2312?B?"
        + base64.b64encode("订单查询".encode("gbk"))
        + b"?=\r\nContent-Type: text/plain; charset=gb2312\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        + body
    )
    mail = parse_mail(raw)
    assert mail.text == "镕基的订单"
    assert mail.subject == "订单查询"
    assert mail.locale_hint == "zh-CN"


def test_big5_mail_hints_traditional_chinese() -> None:
    mail = parse_mail(build(sender="a@mail.test", subject="查詢", body="我的訂單", charset="big5"))
    assert mail.locale_hint == "zh-TW"


@pytest.mark.parametrize("label", ["x-unknown", "DEFAULT_CHARSET", "utf8", "unknown-8bit", "", "foo-bar-42"])
def test_unknown_or_broken_charset_names_fall_back_to_sniffing(label: str) -> None:
    body = "订单 DD202405001 到哪了".encode()
    raw = (
        f"From: a@mail.test\r\nSubject: x\r\nContent-Type: text/plain; charset={label}\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n"
    ).encode() + body
    assert parse_mail(raw).text == "订单 DD202405001 到哪了"


def test_undeclared_8bit_gbk_is_sniffed() -> None:
    assert decode_bytes("退款进度".encode("gbk"), None) == "退款进度"


def test_rfc2047_headers_in_mixed_charsets() -> None:
    value = "=?gb2312?B?" + base64.b64encode("王先生".encode("gb2312")).decode() + "?= <wang@mail.test>"
    assert decode_header_value(value) == "王先生 <wang@mail.test>"
    assert decode_header_value("=?big5?Q?=B0=DD=C3D?=") == "問題"
    assert decode_header_value("=?bogus-charset?B?" + base64.b64encode(b"order").decode() + "?=") == "order"
    mail = parse_mail(
        build(sender="wang@mail.test", sender_name="王伟", subject="订单到哪了", body="x", charset="gb2312")
    )
    assert mail.sender == "wang@mail.test"
    assert mail.sender_name == "王伟"
    assert mail.subject == "订单到哪了"


def test_raw_8bit_utf8_header_is_decoded() -> None:
    raw = "From: a@mail.test\r\nSubject: 订单查询\r\n\r\nhi".encode()
    assert parse_mail(raw).subject == "订单查询"


def test_html_only_mail_becomes_text_without_quotes_or_styles() -> None:
    html = (
        "<html><head><style>p{color:red}</style><title>t</title></head><body>"
        "<p>Where is my order <b>DD202405002</b>?</p><p>Thanks&nbsp;a lot</p>"
        '<div class="gmail_quote">On Mon, Ann wrote:<blockquote>old text</blockquote></div>'
        "<script>alert(1)</script></body></html>"
    )
    mail = parse_mail(build(sender="a@mail.test", subject="q", body="", html=html))
    assert mail.html_only
    assert mail.text == "Where is my order DD202405002?\n\nThanks\xa0a lot" or mail.text.startswith(
        "Where is my order DD202405002?"
    )
    assert "old text" not in mail.text
    assert "color" not in mail.text
    assert "alert" not in mail.text


def test_html_with_unclosed_head_keeps_the_body() -> None:
    assert "Hello there" in html_to_text("<HTML><HEAD><BODY><P>Hello there</P>")


@pytest.mark.parametrize(
    "quoted",
    [
        "On Mon, 20 May 2024 at 10:00, Demo Shop <support@shop.test> wrote:\n> 您好，请提供订单号\n> 谢谢",
        "在 2024年5月20日 10:00，演示商城客服 <support@shop.test> 写道：\n> 您好，请提供订单号",
        "------------------ 原始邮件 ------------------\n"
        '发件人: "客服" <support@shop.test>\n发送时间: 2024年5月20日\n主题: 回复\n\n您好',
        "-----Original Message-----\nFrom: support@shop.test\nSent: Monday\nTo: me\nSubject: order\n\nHello",
        "From: Demo Shop <support@shop.test>\nSent: Monday, May 20, 2024 10:00 AM\nTo: me\nSubject: RE: order\n\nHello",
        "发件人：客服 <support@shop.test>\n时间：2024年5月20日\n收件人：我\n主题：订单\n\n您好",
        "-- \n王伟\n13800138001",
        "发自我的iPhone",
        "Sent from my iPhone\n\nOn Mon, Ann wrote:\n> hi",
        "在 2024/5/20 10:00, 客服 写道:\n您好，请提供订单号",
    ],
)
def test_only_the_customers_new_words_are_kept(quoted: str) -> None:
    new = "DD202405001 还没到，麻烦再查一下"
    assert strip_quotes(f"{new}\n\n{quoted}") == new


def test_interleaved_reply_keeps_the_answers_between_quotes() -> None:
    text = "On Mon, Ann wrote:\n> Which order?\nDD202405001\n> Anything else?\nNo, thanks"
    assert strip_quotes(text) == "DD202405001\nNo, thanks"


def test_two_line_attribution_is_recognised() -> None:
    text = "Still waiting.\n\nOn Mon, 20 May 2024 at 10:00, Demo Shop <support@shop.test>\nwrote:\n> Your order shipped"
    assert strip_quotes(text) == "Still waiting."


def test_attachments_are_recorded_not_read() -> None:
    from email.mime.application import MIMEApplication
    from email.mime.image import MIMEImage
    from email.mime.multipart import MIMEMultipart
    from email.mime.text import MIMEText

    msg = MIMEMultipart()
    msg["From"] = "a@mail.test"
    msg["Subject"] = "发票"
    msg["Message-ID"] = "<att-1@mail.test>"
    msg.attach(MIMEText("请看附件里的发票", "plain", "utf-8"))
    pdf = MIMEApplication(b"%PDF-1.4 " + b"x" * 3000, "pdf")
    pdf.add_header("Content-Disposition", "attachment", filename=("gb2312", "", "发票.pdf"))
    msg.attach(pdf)
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100
    msg.attach(MIMEImage(png, "png"))
    mail = parse_mail(msg.as_bytes())
    assert mail.text == "请看附件里的发票"
    assert [(a.name, a.content_type) for a in mail.attachments] == [
        ("发票.pdf", "application/pdf"),
        ("part-2", "image/png"),
    ]
    assert mail.attachments[0].size == 3009
    assert mail.attachments[1].size == len(png)


def test_threading_headers_and_keys() -> None:
    raw = build(
        sender="a@mail.test",
        subject="Re: x",
        body="y",
        message_id="m3@x",
        in_reply_to="m2@x",
        references=["m1@x", "m2@x"],
    )
    mail = parse_mail(raw)
    assert (mail.message_id, mail.in_reply_to, mail.references) == ("m3@x", "m2@x", ("m1@x", "m2@x"))
    assert mail.key == "mid:m3@x"
    assert mail.natural_root == "m1@x"
    no_id = build(sender="a@mail.test", subject="x", body="y", message_id="")
    parsed = parse_mail(no_id)
    assert parsed.message_id is None
    assert parsed.key == content_key(no_id) == content_key(no_id.replace(b"\n", b"\r\n"))
    assert parsed.natural_root == parsed.key


def test_empty_and_garbage_input_never_raise() -> None:
    for raw in (b"", b"\x00\xff" * 100, b"From:\r\n\r\n", b"Content-Type: multipart/mixed\r\n\r\n--x\r\n"):
        mail = parse_mail(raw)
        assert mail.sender is None
        assert mail.key.startswith("sha256:")


@pytest.mark.parametrize(
    "subject",
    [
        "Where is my order\x0bDD202405001",  # a vertical tab pasted from a form
        "=?utf-8?b?6K6i5Y2V4oCo5Yiw5ZOq5LqG?=",  # "订单\u2028到哪了": a line separator inside an encoded word
        "=?iso-8859-15?q?order=85status?=",  # NEL
        "=?utf-7?q?hi+2AA-?=",  # UTF-7 decodes to a lone surrogate
        "a\x1cb\x1dc\x1ed\x0ce\x00f",
    ],
)
def test_a_subject_with_odd_line_breaks_or_surrogates_can_be_replied_to(subject: str) -> None:
    # Such a subject made building the reply fail ("Header values may not contain linefeed") or Redis
    # refuse the text, every time the mail was read again: it was never answered.
    raw = (
        b"From: guest@customer.test\r\nTo: support@shop.test\r\nSubject: "
        + subject.encode("latin-1")
        + b"\r\nMessage-ID: <odd@customer.test>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nhello\r\n"
    )
    mail = parse_mail(raw)
    assert mail.subject and mail.subject == mail.subject.strip()
    assert not any(ch in mail.subject for ch in "\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029\x00")
    assert not any("\ud800" <= ch <= "\udfff" for ch in mail.subject)
    mail.subject.encode("utf-8")  # storable
    wire = build_message(
        sender="support@shop.test",
        sender_name="",
        to="guest@customer.test",
        subject=reply_subject(mail.subject),
        text="hi",
        html=None,
        message_id="r1@shop.test",
        in_reply_to=None,
        references=[],
        auto_submitted=None,
        locale=None,
    )
    assert wire.count(b"\r\nSubject: Re: ") == 1
    assert reply_subject("订单\u2028到哪了") == "Re: 订单 到哪了"  # a subject stored before, too


def test_bodies_that_decode_to_lone_surrogates_are_storable() -> None:
    assert decode_bytes(b"hi +2AA-", "utf-7") == "hi \ufffd"
    assert decode_bytes(b"hi \\ud800", "unicode_escape").encode("utf-8")


def test_markup_that_used_to_take_seconds_is_read_at_once() -> None:
    # Stray "<" runs and thousands of tags inside a skipped quote each took time growing with the square
    # of their length (40 KB of "<a": 1.4 s; 280 KB of nested tags in a quote: 14.6 s) on the event loop.
    # Bounds far above what they take now, far below what they took.
    started = time.monotonic()
    assert html_to_text("<p>Hello</p>" + "<a" * 200_000).startswith("Hello\n<a<a")
    assert html_to_text("<p>Hi</p><blockquote>" + "<a>" * 100_000 + "</b>" * 100_000 + "</blockquote>") == "Hi"
    assert html_to_text("<p>a &lt; b and a < b</p>") == "a < b and a < b"
    assert decode_header_value(" ".join(["=?utf-8?b?ICAgICAgICAg?="] * 500) + " x") == "x"
    assert len(decode_header_value(" ".join(["=?utf-8?b?ICAgICAgICAg?="] * 50_000))) < 100  # read 16 KB far
    assert time.monotonic() - started < 10


def test_every_corpus_message_parses_quickly() -> None:
    files = corpus_files()
    assert len(files) > 700
    started = time.monotonic()
    parsed = [parse_mail(p.read_bytes()) for p in files]
    elapsed = time.monotonic() - started
    assert elapsed < 30, f"parsing {len(files)} messages took {elapsed:.1f} s"
    # Text was found in most of them, and a sender in nearly all.
    assert sum(1 for m in parsed if m.text) > 0.9 * len(parsed)
    assert sum(1 for m in parsed if m.sender) > 0.95 * len(parsed)
    # The GB2312 spam with RFC 2047 headers comes out as Chinese, not mojibake.
    gb = parse_mail((MAIL_DATA / "mail-parser" / "mail_test_12").read_bytes())
    assert gb.subject == "代开各地增值税发票"
