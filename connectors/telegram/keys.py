"""The Telegram channel's Redis keys (under the app's prefix); nothing else builds them."""

from __future__ import annotations

from bot.keys import PREFIX

TELEGRAM_CALLBACK_TTL_SECONDS = 30 * 24 * 3600


def telegram_blocked(chat_id: str) -> str:
    """String: set while a Telegram chat has blocked the bot; cleared when the customer writes again."""
    return f"{PREFIX}:telegram:blocked:{chat_id}"


def telegram_callback(digest: str) -> str:
    """String with TTL: a quick-reply payload too long for Telegram's 64-byte callback data."""
    return f"{PREFIX}:telegram:callback:{digest}"
