"""Masking customers' personal data out of a text before it is kept for review or training.

`mask` is a pure function: order ids, email addresses, phone numbers, any other run of seven or more
digits (tracking numbers, ID cards, bank cards), street addresses and names introduced as names ("我叫…",
"my name is …") become placeholders such as `<PHONE>`. Digits of every script count as digits
(full-width `１３８…` included), and so do the `@` and `.` of full-width email addresses. Details the
caller knows belong to the customer (the names the CRM has) are masked wherever they appear.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

ORDER_ID = "<ORDER_ID>"
EMAIL = "<EMAIL>"
PHONE = "<PHONE>"
NUMBER = "<NUMBER>"
ADDRESS = "<ADDRESS>"
NAME = "<NAME>"
PLACEHOLDERS = (ORDER_ID, EMAIL, PHONE, NUMBER, ADDRESS, NAME)

# Characters that end the run around an "@": whitespace, CJK text and CJK or full-width punctuation
# and brackets ("请发到 a@b.com，谢谢"). Everything else next to an "@" is taken to be part of the address.
_EMAIL_STOP = r"\s\u3000-\u303f\u3400-\u9fff\uf900-\ufaff\uff01\uff08\uff09\uff0c\uff1a\uff1b\uff1f<>()\[\]"
_EMAIL = re.compile(rf"[^{_EMAIL_STOP}@＠]+[@＠][^{_EMAIL_STOP}]+")
# Our order ids (DD202405001), in any case and with full-width letters or digits.
_ORDER = re.compile(r"[DdＤｄ][DdＤｄ][-\s]?\d{6,}")
# A run of digits, possibly grouped by spaces, dashes or dots (138 1234 5678, 021-6543-2100), with an
# optional + country code; masked when it holds seven or more digits.
_DIGITS = re.compile(r"[+＋]?\d(?:[\d\s\-－.．()（）]*\d)?")
_MOBILE = re.compile(r"^(?:86)?1[3-9]\d{9}$")
# Street addresses: a road, street or lane with its house number, and what follows it (building, room).
_HOUSE = r"(?:\d+|[一二三四五六七八九十百零〇]+)"
_ADDRESS_ZH = re.compile(
    rf"[\u4e00-\u9fff]{{1,6}}(?:路|街|道|巷|弄|胡同|大道){_HOUSE}[号號]"
    rf"(?:[\u4e00-\u9fff]{{0,8}}?{_HOUSE}(?:号楼|號樓|栋|棟|幢|座|单元|單元|楼|樓|层|層|室|号|號))*"
)
_ADDRESS_EN = re.compile(
    r"\b\d+[A-Za-z]?\s+(?:[A-Z][A-Za-z]+\s+){1,3}"
    r"(?:Street|St|Road|Rd|Avenue|Ave|Lane|Ln|Drive|Dr|Boulevard|Blvd|Way|Court|Ct|Place|Pl)\b\.?"
)
# Names the customer gives as names; the surname-and-title form (王先生) is what replies use already.
_NAME_ZH = re.compile(
    r"(我叫|我的名字是|我的名字叫|名字是|姓名[:：]?|收件人[:：]?|收货人[:：]?|联系人[:：]?)\s*[\u4e00-\u9fff]{2,3}"
)
_NAME_EN = re.compile(r"(?i:(my name is|this is|i am|i'm|name:))(\s+)[A-Z][a-z]+(?:\s+[A-Z][a-z]+)?")


def _digits(match: re.Match[str]) -> str:
    found = match.group(0)
    digits = "".join(str(int(c)) for c in found if c.isdecimal())
    if len(digits) < 7:
        return found
    return PHONE if _MOBILE.match(digits) or found.lstrip().startswith(("+", "＋")) else NUMBER


def _known(text: str, known: Iterable[str]) -> str:
    # Longest first, so that a full name goes before a part of it.
    for value in sorted({k.strip() for k in known if k and len(k.strip()) >= 2}, key=len, reverse=True):
        text = re.sub(re.escape(value), NAME, text, flags=re.IGNORECASE)
    return text


def mask(text: str, known: Iterable[str] = ()) -> str:
    """`text` with personal data replaced by placeholders; `known`: the customer's names (CRM)."""
    text = _known(text, known)
    text = _EMAIL.sub(EMAIL, text)
    text = _ORDER.sub(ORDER_ID, text)
    text = _ADDRESS_ZH.sub(ADDRESS, text)
    text = _ADDRESS_EN.sub(ADDRESS, text)
    text = _NAME_ZH.sub(lambda m: m.group(1) + NAME, text)
    text = _NAME_EN.sub(lambda m: m.group(1) + m.group(2) + NAME, text)
    return _DIGITS.sub(_digits, text)
