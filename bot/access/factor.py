"""Reading a guest's second factor (the last 4 digits of the order's phone number, or its email address)
and checking it against the CRM in constant time; reading a confirmation word."""

from __future__ import annotations

import hmac
import re
import unicodedata
from dataclasses import dataclass

from bot.crm.records import CustomerInfo, normalise_phone

_ORDER_ID = re.compile(r"DD\s*\d{3,}", re.IGNORECASE)
_EMAIL = re.compile(r"[^\s@<>()\[\],;:\"'，。：；]+@[^\s@<>()\[\],;:\"'，。：；]+\.[A-Za-z]{2,}")
_DIGITS = re.compile(r"\+?\d[\d\s\-]*\d|\d")
# An answer is a short line; a longer message is a new question, not a factor.
MAX_ANSWER_CHARS = 120

# Words (and button payloads) that confirm a change; anything else leaves the order as it is.
CONFIRM_PAYLOAD = "/affirm"
KEEP_PAYLOAD = "/deny"
_CONFIRM_WORDS = ("确认", "確認", "确定", "確定", "yes", "confirm", "ok", "y", CONFIRM_PAYLOAD)
_NEGATIONS = ("不", "no", "not", "don't", "dont")


@dataclass(frozen=True)
class Factor:
    """What a guest offered as proof: `kind` is "phone" (4 digits or a whole number) or "email"."""

    kind: str
    value: str


def _first_line(text: str) -> str:
    for line in unicodedata.normalize("NFKC", text).splitlines():
        if line.strip():
            return line.strip()
    return ""


def parse_factor(text: str) -> Factor | None:
    """The factor a message gives, or None when it is clearly not an answer (a new question)."""
    line = _first_line(text)
    if not line or len(line) > MAX_ANSWER_CHARS or _ORDER_ID.search(line):
        return None
    if m := _EMAIL.search(line):
        return Factor("email", m.group(0).strip(".").lower())
    numbers = [re.sub(r"[\s\-]", "", m.group(0)) for m in _DIGITS.finditer(line)]
    candidates = [n for n in numbers if len(n.lstrip("+")) in (4, 11, 13)]
    if len(candidates) != 1:
        return None
    number = candidates[0]
    return Factor("phone", number if len(number) == 4 else normalise_phone(number))


def check_factor(factor: Factor, customer: CustomerInfo) -> bool:
    """Whether the factor is the customer's, compared in constant time (no timing hint of how close it was)."""
    if factor.kind == "email":
        expected, given = customer.email.strip().lower(), factor.value
    elif factor.kind == "phone" and len(factor.value) == 4:
        expected, given = customer.phone[-4:], factor.value
    elif factor.kind == "phone":
        expected, given = customer.phone, factor.value
    else:
        return False
    if not expected:
        return False
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass"))


def is_confirmation(text: str) -> bool:
    """A reply that confirms a change: a confirm button, or a line starting with 确认 / 確認 / yes."""
    line = _first_line(text).lower()
    if line == CONFIRM_PAYLOAD:
        return True
    if line.startswith(_NEGATIONS):
        return False
    word = re.split(r"[\s,，。.!！、]+", line, maxsplit=1)[0] if line else ""
    return any(word == w or (w in ("确认", "確認", "确定", "確定") and word.startswith(w)) for w in _CONFIRM_WORDS)
