"""Turning raw RFC 5322 bytes into what the router needs: the customer's new words, threading, attachments.

Real mail is messy: charsets mislabelled or unknown, RFC 2047 words in broken encodings, HTML-only
bodies, whole earlier conversations quoted below one new line. Everything here is best effort and
never raises: a mail that cannot be understood still yields a `ParsedMail` (perhaps with empty text),
so the reader can decide on it and move on instead of retrying it forever.
"""

from __future__ import annotations

import codecs
import email.header
import email.utils
import hashlib
import html
import re
from collections import Counter
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from html.parser import HTMLParser
from typing import ClassVar

from bot.conversations.messages import Attachment

# Charset labels seen in real mail, mapped to the codecs that decode what senders actually meant:
# "gb2312" mail routinely contains GBK characters, "big5" mail Microsoft's cp950 extensions,
# "iso-8859-1" Windows-1252 quotes (the same choices as the WHATWG encoding standard).
_CHARSET_CANDIDATES: dict[str, tuple[str, ...]] = {
    "gb2312": ("gb18030",),
    "gb_2312-80": ("gb18030",),
    "csgb2312": ("gb18030",),
    "euc-cn": ("gb18030",),
    "x-euc-cn": ("gb18030",),
    "gbk": ("gb18030",),
    "x-gbk": ("gb18030",),
    "cp936": ("gb18030",),
    "chinese": ("gb18030",),
    "gb18030": ("gb18030",),
    "big5": ("cp950", "big5hkscs"),
    "x-big5": ("cp950", "big5hkscs"),
    "big5-hkscs": ("big5hkscs",),
    "cn-big5": ("cp950", "big5hkscs"),
    "cp950": ("cp950", "big5hkscs"),
    "ks_c_5601-1987": ("cp949",),
    "ks_c_5601": ("cp949",),
    "euc-kr": ("cp949",),
    "korean": ("cp949",),
    "iso-2022-jp": ("iso2022_jp_ext", "iso2022_jp_2"),
    "shift_jis": ("cp932",),
    "x-sjis": ("cp932",),
    "sjis": ("cp932",),
    "iso-8859-1": ("cp1252",),
    "latin1": ("cp1252",),
    "us-ascii": ("utf-8",),
    "ascii": ("utf-8",),
    "utf8": ("utf-8",),
}
# Labels with no meaning: decode by sniffing.
_MEANINGLESS = {"", "unknown-8bit", "x-unknown", "unknown", "default", "x-user-defined", "8bit", "none", "charset"}
_SNIFF_ORDER = ("utf-8", "gb18030", "cp950")

_MSGID = re.compile(r"<([^<>\s]{1,500})>")
_LOCALE_OF_CHARSET = {
    "gb18030": "zh-CN",
    "gbk": "zh-CN",
    "gb2312": "zh-CN",
    "cp950": "zh-TW",
    "big5": "zh-TW",
    "big5hkscs": "zh-TW",
}

REPORT_TYPES = frozenset(
    {
        "message/delivery-status",
        "message/global-delivery-status",
        "message/disposition-notification",
        "message/global-disposition-notification",
        "message/feedback-report",
        "text/rfc822-headers",
    }
)


@dataclass(frozen=True)
class ParsedMail:
    """One inbound mail as the channel sees it."""

    key: str
    message_id: str | None
    in_reply_to: str | None
    references: tuple[str, ...]
    subject: str
    sender: str | None
    sender_name: str
    reply_to: str | None
    recipients: tuple[str, ...]
    return_path: str | None
    headers: dict[str, tuple[str, ...]]
    content_type: str
    report_type: str
    part_types: frozenset[str]
    text: str
    body: str
    html_only: bool
    attachments: tuple[Attachment, ...]
    charset: str | None
    size: int
    defects: int = 0
    notes: tuple[str, ...] = field(default=())

    def header(self, name: str) -> str | None:
        """The first value of a header, decoded, or None when absent."""
        values = self.headers.get(name.lower())
        return values[0] if values else None

    @property
    def reply_address(self) -> str | None:
        """Where an answer goes: Reply-To when it names a usable address, else From."""
        return self.reply_to or self.sender

    @property
    def locale_hint(self) -> str | None:
        """A locale suggested by the charset or Content-Language, used when the text gives no clue."""
        lang = (self.header("content-language") or "").lower()
        if lang.startswith("zh"):
            return "zh-TW" if any(t in lang for t in ("tw", "hk", "hant")) else "zh-CN"
        if lang.startswith("en"):
            return "en"
        label = (self.charset or "").strip().lower()
        codec = (_CHARSET_CANDIDATES.get(label) or (_codec_name(label),))[0]
        return _LOCALE_OF_CHARSET.get(codec)

    @property
    def thread_candidates(self) -> tuple[str, ...]:
        """Message ids this mail answers, most specific last (References, then In-Reply-To)."""
        ids = list(self.references)
        if self.in_reply_to and self.in_reply_to not in ids:
            ids.append(self.in_reply_to)
        return tuple(ids)

    @property
    def natural_root(self) -> str:
        """The thread's root id from the headers alone: first of References, else In-Reply-To, else itself."""
        if self.references:
            return self.references[0]
        if self.in_reply_to:
            return self.in_reply_to
        return self.message_id or self.key


def content_key(raw: bytes) -> str:
    """A stable key for a mail without Message-ID: hash of its bytes with line endings normalised."""
    normalised = raw.replace(b"\r\n", b"\n").rstrip()
    return "sha256:" + hashlib.sha256(normalised).hexdigest()


def _codec_name(label: str) -> str:
    try:
        return codecs.lookup(label).name
    except LookupError:
        return ""


def decode_bytes(data: bytes, charset: str | None) -> str:
    """Decode text bytes whatever their label says: known aliases, then sniffing, never an exception."""
    label = (charset or "").strip().strip("\"'").lower()
    candidates: list[str] = list(_CHARSET_CANDIDATES.get(label, ()))
    if not candidates and label not in _MEANINGLESS and _codec_name(label):
        candidates.append(label)
    for name in (*candidates, *_SNIFF_ORDER):
        try:
            return text_only(data.decode(name))
        except (UnicodeDecodeError, LookupError):
            continue
    # Nothing fits exactly: keep what the declared (or most likely) codec makes of it.
    fallback = candidates[0] if candidates else "utf-8"
    return text_only(data.decode(fallback, errors="replace"))


_SURROGATE = re.compile("[\ud800-\udfff]")
# C0 controls other than the tab, and DEL: nothing a reader sees, and some of them break a header.
_CONTROL = re.compile("[\x00-\x08\x0e-\x1f\x7f]")
# A header's text is read at most this far (a Subject of 150 KB took seconds to unfold).
MAX_HEADER_CHARS = 16_384


def text_only(value: str) -> str:
    """Text as it can be stored and sent on: a lone surrogate (UTF-7, unicode_escape, broken encoded
    words decode to them; Redis and every encoder refuse them) becomes U+FFFD."""
    return _SURROGATE.sub("\ufffd", value) if _SURROGATE.search(value) else value


def one_line(value: str) -> str:
    """A header value on one line: every line break Python knows (CR, LF, VT, FF, the file, group and record
    separators, NEL, U+2028, U+2029) a space, other controls dropped, lone surrogates replaced. An outgoing
    header refuses all of them ("Header values may not contain linefeed"), and a reply's Subject is the
    customer's."""
    joined = " ".join(part.strip() for part in value.splitlines())
    return text_only(_CONTROL.sub("", joined)).strip()


def decode_header_value(raw: str) -> str:
    """A header's text: RFC 2047 words decoded with charset aliases, raw 8-bit bytes sniffed, unfolded."""
    value = raw[:MAX_HEADER_CHARS]
    if any("\udc80" <= ch <= "\udcff" for ch in value):
        # BytesParser keeps undeclared 8-bit header bytes as surrogates; most are UTF-8 or GBK.
        value = decode_bytes(value.encode("ascii", "surrogateescape"), None)
    try:
        parts = email.header.decode_header(value)
    except (ValueError, LookupError, UnicodeError, AssertionError):
        parts = [(value, None)]
    out: list[str] = []
    for chunk, charset in parts:
        if isinstance(chunk, str):
            out.append(chunk)
        elif charset is None:
            # Unencoded runs come back as raw-unicode-escape bytes when encoded words were present.
            out.append(chunk.decode("raw-unicode-escape", errors="replace"))
        else:
            out.append(decode_bytes(chunk, charset))
    return one_line("".join(out))


def _addresses(values: tuple[str, ...]) -> list[tuple[str, str]]:
    """(display name, addr-spec) pairs with a plausible address, lower-cased domain."""
    found: list[tuple[str, str]] = []
    try:
        pairs = email.utils.getaddresses(list(values))
    except (ValueError, IndexError, TypeError):
        pairs = []
    for name, addr in pairs:
        addr = addr.strip().strip("<>").strip()
        if addr.count("@") != 1 or any(ch.isspace() or ch < " " or ch == "\x7f" for ch in addr) or len(addr) > 320:
            continue
        local, domain = addr.split("@")
        if not local or "." not in domain or not local.isascii():
            continue  # a non-ASCII local part needs SMTPUTF8 end to end: not answerable here
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError:
            continue
        found.append((name.strip(), f"{local}@{domain.lower()}"))
    return found


def _msgids(value: str | None) -> list[str]:
    if not value:
        return []
    ids = _MSGID.findall(value)
    if ids:
        return ids
    bare = value.strip()
    return [bare] if bare and not any(ch.isspace() for ch in bare) and len(bare) <= 500 else []


def normalise_msgid(value: str | None) -> str | None:
    """A Message-ID without angle brackets and whitespace, or None."""
    ids = _msgids(value)
    return ids[0] if ids else None


class _HtmlText(HTMLParser):
    """HTML to plain text: block elements become line breaks, quoted earlier messages are dropped."""

    _SKIP: ClassVar[frozenset[str]] = frozenset({"script", "style", "head", "title", "blockquote"})
    _QUOTE_MARKERS = ("gmail_quote", "yahoo_quoted", "moz-cite-prefix", "divrplyfwdmsg", "ms-outlook-mobile-reference")
    _BLOCK: ClassVar[frozenset[str]] = frozenset(
        {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol", "hr", "pre"}
    )
    _VOID: ClassVar[frozenset[str]] = frozenset(
        {"br", "hr", "img", "meta", "link", "input", "area", "base", "col", "embed", "source", "wbr"}
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skip_stack: list[str] = []
        self.skipping: Counter[str] = Counter()  # the tags on skip_stack: a closing tag looks there at once
        self.open_tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._BLOCK:
            self.out.append("\n")
        if tag == "body":
            self.skip_stack.clear()  # an unclosed <head> ends where the body starts
            self.skipping.clear()
        if tag in self._VOID:
            return
        marker = " ".join(f"{v or ''}" for k, v in attrs if k in ("class", "id")).lower()
        if self.skip_stack or tag in self._SKIP or any(m in marker for m in self._QUOTE_MARKERS):
            self.skip_stack.append(tag)
            self.skipping[tag] += 1

    def handle_endtag(self, tag: str) -> None:
        if self.skipping[tag] > 0:
            while self.skip_stack:
                popped = self.skip_stack.pop()
                self.skipping[popped] -= 1
                if popped == tag:
                    break
        if tag in self._BLOCK:
            self.out.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skip_stack:
            self.out.append(re.sub(r"[ \t\r\n\f]+", " ", data))

    def text(self) -> str:
        lines = [line.strip() for line in "".join(self.out).split("\n")]
        return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


# A "<" that opens no tag: no ">" before the next "<" (or the end). Python's HTMLParser reads a run of them
# ("<a<a<a…", "</a</a…") in time that grows with the square of its length (40 KB: 1.4 s); as text they
# cost nothing. Real markup writes such a "<" as "&lt;".
_STRAY_LT = re.compile(r"<(?=[^<>]*(?:<|\Z))")
# An HTML body is read at most this far (the text a customer wrote comes first).
MAX_HTML_CHARS = 2_000_000


def html_to_text(markup: str) -> str:
    """Readable text of an HTML body, without scripts, styles and quoted earlier messages."""
    parser = _HtmlText()
    try:
        parser.feed(_STRAY_LT.sub("&lt;", markup[:MAX_HTML_CHARS]))
        parser.close()
    except (AssertionError, ValueError):  # very broken markup: keep what was read so far
        pass
    return html.unescape(parser.text())


# Lines that start the quoted earlier message or the signature: everything from there on is dropped.
_CUT_LINE = [
    re.compile(
        r"^-{2,}\s*(original message|forwarded message|原始邮件|原始郵件|原邮件|转发邮件|轉寄郵件)\s*-{2,}", re.I
    ),
    re.compile(r"^-{5,}\s*(original|原始)", re.I),
    re.compile(r"^_{10,}\s*$"),
    re.compile(r"^-- ?$"),
    re.compile(r"^(sent from my|sent from mail for|get outlook for|envoyé de mon)\b", re.I),
    re.compile(r"^(发自我的|發自我的|来自我的|來自我的|从我的).{0,40}$"),
]
# Attribution lines ("On … wrote:", "在 … 写道："): dropped with the quote under them; when the quoted
# message follows without ">" markers, everything from the attribution on is dropped.
_ATTRIBUTION = [
    re.compile(r"^.{0,300}\b(wrote|writes|schrieb|a écrit|escribió)\s*:\s*$", re.I),
    re.compile(r"^.{0,300}(写道|寫道)\s*[:：]\s*$"),
]
_HEADER_BLOCK_START = re.compile(r"^\s*\*?(from|发件人|寄件者|發件人|寄件人)\s*\*?\s*[:：]", re.I)
_HEADER_BLOCK_NEXT = re.compile(
    r"^\s*\*?(sent|date|to|subject|cc|发送时间|發送時間|日期|收件人|主题|主題|主旨|寄件日期|时间|時間|抄送)\s*\*?\s*[:：]",
    re.I,
)


def _is_attribution(line: str) -> bool:
    return any(p.match(line) for p in _ATTRIBUTION)


def strip_quotes(text: str) -> str:
    """Only the customer's new words: quoted lines, quoted earlier messages and signatures removed."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    kept: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i].rstrip()
        bare = line.strip()
        span = 0
        if _is_attribution(bare):
            span = 1
        elif (
            i + 1 < len(lines)
            and re.match(r"^(on|在|于|於)\b", bare, re.I)
            and _is_attribution(f"{bare} {lines[i + 1].strip()}")
        ):
            # "On Mon, 1 Jan 2024, Ann <ann@x>\nwrote:" split over two lines by the sender's mailer.
            span = 2
        if span:
            after = next((w.strip() for w in lines[i + span :] if w.strip()), "")
            if after.startswith(">"):
                i += span
                continue
            break
        if any(p.match(bare) for p in _CUT_LINE):
            break
        if _HEADER_BLOCK_START.match(bare):
            window = lines[i + 1 : i + 5]
            if sum(1 for w in window if _HEADER_BLOCK_NEXT.match(w)) >= 2:
                break
        if bare.startswith(">") or bare.startswith("|>"):
            i += 1
            continue
        kept.append(line)
        i += 1
    result = "\n".join(kept)
    return re.sub(r"\n{3,}", "\n\n", result).strip()


def _header_map(msg: Message) -> dict[str, tuple[str, ...]]:
    found: dict[str, list[str]] = {}
    try:
        items = msg.raw_items() if isinstance(msg, EmailMessage) else list(msg.items())
        for name, value in items:
            try:
                decoded = decode_header_value(str(value))
            except Exception:  # a header we cannot decode is kept raw, never fatal
                decoded = str(value)
            found.setdefault(str(name).strip().lower(), []).append(decoded)
    except Exception:  # a malformed header block: what was read so far
        pass
    return {k: tuple(v) for k, v in found.items()}


def _filename(part: Message) -> str | None:
    try:
        name = part.get_filename()
    except Exception:  # broken RFC 2231 parameters
        name = None
    if name is None:
        raw = part.get_param("name")
        name = raw if isinstance(raw, str) else None
    return decode_header_value(name) if name else None


def _payload_bytes(part: Message) -> bytes:
    try:
        payload = part.get_payload(decode=True)
    except Exception:  # broken transfer encoding
        return b""
    return payload if isinstance(payload, bytes) else b""


def _part_charset(part: Message) -> str | None:
    try:
        value = part.get_param("charset")
    except Exception:
        return None
    return value if isinstance(value, str) else None


@dataclass
class _Body:
    plain: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    types: set[str] = field(default_factory=set)
    charset: str | None = None


def _collect(part: Message, body: _Body, depth: int = 0) -> None:
    ctype = part.get_content_type()
    body.types.add(ctype)
    if depth > 20 or ctype in REPORT_TYPES:
        return
    if ctype.startswith("message/"):
        # A forwarded or returned message: recorded as an attachment, its text is not the customer's.
        try:
            size = len(part.as_bytes())
        except Exception:  # an embedded message too broken to serialise
            size = 0
        label = _filename(part) or f"part-{len(body.attachments) + 1}.eml"
        body.attachments.append(Attachment(name=label, content_type=ctype, size=size))
        return
    if part.is_multipart():
        children = part.get_payload()
        if not isinstance(children, list):
            return
        if ctype == "multipart/alternative":
            # One of the alternatives: plain text when it says something, else the richest.
            plain = [c for c in children if isinstance(c, Message) and c.get_content_type() == "text/plain"]
            chosen = [c for c in plain if decode_bytes(_payload_bytes(c), _part_charset(c)).strip()]
            for child in children:
                if isinstance(child, Message):
                    body.types.add(child.get_content_type())
            for child in chosen[:1] or [c for c in children if isinstance(c, Message)][-1:]:
                _collect(child, body, depth + 1)
            return
        for child in children:
            if isinstance(child, Message):
                _collect(child, body, depth + 1)
        return
    disposition = str(part.get("Content-Disposition") or "").split(";")[0].strip().lower()
    name = _filename(part)
    maintype = ctype.split("/")[0]
    if disposition == "attachment" or name or maintype != "text":
        size = len(_payload_bytes(part))
        body.attachments.append(
            Attachment(name=name or f"part-{len(body.attachments) + 1}", content_type=ctype, size=size)
        )
        return
    charset = _part_charset(part)
    text = decode_bytes(_payload_bytes(part), charset)
    if body.charset is None and charset:
        body.charset = charset
    if ctype == "text/html":
        body.html.append(text)
    else:
        body.plain.append(text)


def parse_mail(raw: bytes, *, size: int | None = None) -> ParsedMail:
    """Parse one mail; never raises. `size` is the server's size when only the header was fetched."""
    notes: list[str] = []
    try:
        msg: Message = BytesParser(policy=policy.default).parsebytes(raw)
    except Exception:  # the parser is lenient; this is a last resort
        msg = BytesParser(policy=policy.compat32).parsebytes(b"")
        notes.append("unparseable")
    headers = _header_map(msg)

    def first(name: str) -> str | None:
        values = headers.get(name)
        return values[0] if values else None

    message_id = normalise_msgid(first("message-id"))
    references = tuple(dict.fromkeys(_msgids(" ".join(headers.get("references", ())))))
    in_reply_to = normalise_msgid(first("in-reply-to"))
    from_pairs = _addresses(headers.get("from", ()))
    sender_name, sender = from_pairs[0] if from_pairs else ("", None)
    reply_pairs = _addresses(headers.get("reply-to", ()))
    recipients = tuple(a for _, a in _addresses(headers.get("to", ()) + headers.get("cc", ())))
    return_path: str | None = None
    if "return-path" in headers:
        rp = headers["return-path"][-1].strip()
        found = _addresses((rp,))
        return_path = found[0][1] if found else ("" if rp.strip("<> ") == "" else rp.strip("<> "))

    body = _Body()
    try:
        _collect(msg, body)
    except Exception:  # a MIME tree too broken to walk: no text, but still decided on
        notes.append("mime-walk-failed")
    html_only = not any(t.strip() for t in body.plain) and bool(body.html)
    if html_only:
        full = "\n\n".join(html_to_text(h) for h in body.html)
    else:
        full = "\n\n".join(t for t in body.plain if t.strip())
    full = full.replace("\r\n", "\n").replace("\x00", "")
    try:
        content_type = msg.get_content_type()
        report_type = str(msg.get_param("report-type") or "").lower()
    except Exception:
        content_type, report_type = "text/plain", ""
    defects = len(getattr(msg, "defects", []) or [])
    return ParsedMail(
        key=f"mid:{message_id}" if message_id else content_key(raw),
        message_id=message_id,
        in_reply_to=in_reply_to,
        references=references,
        subject=first("subject") or "",
        sender=sender,
        sender_name=sender_name,
        reply_to=reply_pairs[0][1] if reply_pairs else None,
        recipients=recipients,
        return_path=return_path,
        headers=headers,
        content_type=content_type,
        report_type=report_type,
        part_types=frozenset(body.types),
        text=strip_quotes(full),
        body=full,
        html_only=html_only,
        attachments=tuple(body.attachments),
        charset=body.charset,
        size=size if size is not None else len(raw),
        defects=defects,
        notes=tuple(notes),
    )
