"""The Telegram channel (aiogram 3): long polling or a webhook, HTML replies, inline quick replies.

Kept import-free so that the app can mount the webhook route without loading aiogram; the
connector class lives in `connectors.telegram.connector`.
"""

from __future__ import annotations

CHANNEL = "telegram"
WEBHOOK_PATH = "/channels/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
