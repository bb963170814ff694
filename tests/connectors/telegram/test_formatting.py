"""Telegram HTML: plain text escaped, long replies split into messages Telegram accepts."""

from __future__ import annotations

import random

import pytest

from connectors.telegram.formatting import MESSAGE_LIMIT, split_html, to_html, utf16_len
from tests.fakes.telegram_api import TelegramHTMLError, parse_html


def test_plain_text_is_escaped_and_html_is_kept() -> None:
    assert to_html("a <b> & c", "text") == "a &lt;b&gt; &amp; c"
    assert to_html("a <b> & c", None) == "a &lt;b&gt; &amp; c"
    assert to_html("<b>DD1</b> &amp;", "html") == "<b>DD1</b> &amp;"
    with pytest.raises(TelegramHTMLError):
        parse_html("a & c")  # what an unescaped reply would get from Telegram


def test_a_short_reply_is_one_message() -> None:
    assert split_html("<b>hello</b> world") == ["<b>hello</b> world"]


def test_long_text_is_cut_at_the_last_paragraph_break_in_the_second_half() -> None:
    paragraphs = ["第一段" * 500, "第二段" * 500, "第三段" * 500]  # 1500 characters each
    parts = split_html("\n\n".join(paragraphs))
    assert parts == ["\n\n".join(paragraphs[:2]), paragraphs[2]]


def test_a_line_break_is_preferred_to_a_space_and_a_space_to_a_hard_cut() -> None:
    text = "x" * 3000 + "\n" + "y y " * 400 + "z" * 1000
    first, *_rest = split_html(text)
    assert first == "x" * 3000
    words = split_html("word " * 1000)
    assert all(p.endswith("word") for p in words)
    hard = split_html("字" * 5000)
    assert [len(p) for p in hard] == [4096, 904]


def test_tags_open_at_a_cut_are_closed_and_reopened() -> None:
    text = "<b>bold <i>" + "斜体" * 3000 + "</i> end</b>"
    parts = split_html(text)
    assert len(parts) == 2
    assert parts[0].startswith("<b>bold <i>")
    assert parts[0].endswith("</i></b>")
    assert parts[1].startswith("<b><i>")
    assert parts[1].endswith("</i> end</b>")
    for part in parts:
        parse_html(part)  # valid on its own


def test_entities_are_never_cut_and_emoji_count_twice() -> None:
    parts = split_html("&amp;" * 2000)
    assert all(p.count("&") == p.count("&amp;") for p in parts)
    emoji = split_html("😀" * 3000)  # 6000 UTF-16 units
    assert [utf16_len(p) for p in emoji] == [4096, 1904]


def test_every_part_fits_and_parses_and_nothing_is_lost() -> None:
    rng = random.Random(4096)
    pieces = ["订单", "DD202405001", " ", "\n", "\n\n", "<b>粗</b>", "<code>SF123</code>", "&lt;", "&amp;", "😀", "。"]
    for _ in range(30):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 3000)))
        parts = split_html(text)
        for part in parts:
            assert utf16_len(part) <= MESSAGE_LIMIT
            parse_html(part)
        visible = "".join(parse_html(p) for p in parts)
        assert "".join(visible.split()) == "".join(parse_html(text).split())
