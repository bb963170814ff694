"""Telegram's HTML dialect: escaping plain text, and splitting long replies without breaking markup."""

from __future__ import annotations

import re
from dataclasses import dataclass

from markupsafe import escape

# Telegram refuses a message whose text is longer than this, counted after entity parsing.
MESSAGE_LIMIT = 4096
# One unit of a message: a tag, an entity, or one character of text.
_UNIT = re.compile(r"<[^<>]*>|&(?:#\d+|#x[0-9a-fA-F]+|\w+);|[\s\S]", re.ASCII)
_TAG = re.compile(r"<(/?)([a-zA-Z][\w-]*)[^>]*>")


def to_html(text: str, text_format: str | None) -> str:
    """The text as Telegram HTML: HTML is sent as it is, anything else is escaped whole."""
    return text if text_format == "html" else str(escape(text))


def utf16_len(text: str) -> int:
    """Length as Telegram counts it: UTF-16 code units (an emoji outside the BMP counts twice)."""
    return len(text.encode("utf-16-le")) // 2


@dataclass(frozen=True)
class _Cut:
    end: int  # index of the first unit after the cut
    stack: tuple[tuple[str, str], ...]  # tags open at the cut: (name, opening tag)
    size: int  # length of the message up to the cut


def split_html(html: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Split Telegram HTML into messages of at most `limit` UTF-16 units each.

    Cuts at the last paragraph break in the second half of a message, else at a line break there,
    else between words or after a sentence, else anywhere; never inside a tag or an entity. Tags
    open at a cut are closed at the end of one message and reopened at the start of the next, so
    every message is valid HTML on its own. The raw HTML is measured, which is never less than
    what Telegram counts after parsing it.
    """
    units = _UNIT.findall(html)
    messages: list[str] = []
    stack: tuple[tuple[str, str], ...] = ()
    i = 0
    while i < len(units):
        reopen = "".join(opening for _, opening in stack)
        size = utf16_len(reopen)
        cuts: dict[int, _Cut] = {}  # latest cut of each rank: 3 paragraph, 2 line, 1 word/sentence
        j, current = i, stack
        while j < len(units):
            after = _apply(current, units[j])
            if size + utf16_len(units[j]) + utf16_len(_closing(after)) > limit:
                break
            size += utf16_len(units[j])
            current = after
            j += 1
            rank = _rank(units, j)
            if rank:
                cuts[rank] = _Cut(j, current, size)
        if j == i:
            raise ValueError(f"a tag or entity longer than {limit} characters cannot be sent")
        if j < len(units):
            cut = next((cuts[r] for r in (3, 2, 1) if r in cuts and cuts[r].size >= limit // 2), None)
            if cut is not None:
                j, current = cut.end, cut.stack
        messages.append(reopen + "".join(units[i:j]) + _closing(current))
        stack, i = current, j
        # The next message does not start with the whitespace it was cut at.
        while i < len(units) and units[i].isspace():
            i += 1
    kept = [m.strip() for m in messages if _visible(m)]
    return kept or ([html] if html else [])


def _rank(units: list[str], j: int) -> int:
    """How good a cut right before units[j] is."""
    prev = units[j - 1]
    if prev == "\n":
        return 3 if j >= 2 and units[j - 2] == "\n" else 2
    if prev in (" ", "\t") or prev in "。！？；":
        return 1
    return 0


def _apply(stack: tuple[tuple[str, str], ...], unit: str) -> tuple[tuple[str, str], ...]:
    """The open-tag stack after a unit."""
    match = _TAG.fullmatch(unit)
    if not match:
        return stack
    closing, name = match.group(1), match.group(2).lower()
    if not closing:
        return (*stack, (name, unit))
    for k in range(len(stack) - 1, -1, -1):
        if stack[k][0] == name:
            return stack[:k]
    return stack


def _closing(stack: tuple[tuple[str, str], ...]) -> str:
    return "".join(f"</{name}>" for name, _ in reversed(stack))


def _visible(html: str) -> str:
    return re.sub(r"<[^<>]*>", "", html).strip()
