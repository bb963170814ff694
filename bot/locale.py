"""Locales: detecting the customer's script and converting between simplified and traditional."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from opencc import OpenCC

LOCALES = ("zh-CN", "zh-TW", "en")
_HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_LATIN_WORD = re.compile(r"[A-Za-z]{2,}")
# Order ids, emails, phone numbers and URLs say nothing about the customer's language.
_NEUTRAL = re.compile(r"\b[A-Za-z]{1,3}\d{5,}\b|\S+@\S+|https?://\S+|\+?\d[\d\s-]{5,}\d")


@lru_cache(maxsize=4)
def _converter(config: str) -> OpenCC:
    return OpenCC(config)


def to_traditional(text: str) -> str:
    """Simplified to traditional Chinese (Taiwan standard with phrases)."""
    return str(_converter("s2twp").convert(text))


def to_simplified(text: str) -> str:
    """Traditional to simplified Chinese."""
    return str(_converter("t2s").convert(text))


def normalise_locale(value: str | None) -> str | None:
    """Map a browser or Telegram language tag to one of LOCALES, or None."""
    if not value:
        return None
    tag = value.replace("_", "-").lower()
    if tag.startswith("zh"):
        if any(part in tag for part in ("tw", "hk", "mo", "hant")):
            return "zh-TW"
        return "zh-CN"
    if tag.startswith("en"):
        return "en"
    return None


def detect_locale(text: str) -> str | None:
    """The locale a message is written in, or None when it gives no clue (an order id alone)."""
    stripped = _NEUTRAL.sub(" ", text)
    han = _HAN.findall(stripped)
    if han:
        chars = "".join(han)
        # Any character that only exists in traditional script marks the message as zh-TW.
        return "zh-TW" if to_simplified(chars) != chars else "zh-CN"
    if _LATIN_WORD.search(stripped):
        return "en"
    return None


@dataclass(frozen=True)
class LocaleChoice:
    """The locale to answer one message in, for whatever locale its conversation had so far.

    Worked out from the message alone, before the conversation is read, so that the script accepting the
    message can pick the locale in the same step as it reads the conversation (bot.conversations.inbox).
    `by_current`: the answer when the conversation's locale is one of LOCALES or "" (none yet);
    `detected`: what the message is written in ("": no clue), which any other stored value yields to.
    """

    by_current: dict[str, str]
    detected: str

    def choose(self, current: str | None) -> str:
        """The locale to answer in when the conversation's locale was `current`."""
        known = self.by_current.get(current or "")
        if known is not None:
            return known
        return self.detected or str(current)


def locale_choice(text: str, hint: str | None) -> LocaleChoice:
    """What the message is written in, else what the conversation used, else the hint: for each case."""
    detected = detect_locale(text)
    # A short English fragment ("ok", "DD... pls") from a Chinese speaker keeps Chinese;
    # a real English sentence (three words or more) switches.
    short_latin = _HAN.search(text) is None and len(_LATIN_WORD.findall(text)) < 3
    by_current = {"": detected or normalise_locale(hint) or "zh-CN"}
    for current in LOCALES:
        keeps_chinese = detected == "en" and current in ("zh-CN", "zh-TW") and short_latin
        by_current[current] = current if keeps_chinese else detected or current
    return LocaleChoice(by_current, detected or "")


def resolve_locale(text: str, current: str | None, hint: str | None) -> str:
    """The locale to answer in: what the message is written in, else what the conversation used."""
    return locale_choice(text, hint).choose(current)
