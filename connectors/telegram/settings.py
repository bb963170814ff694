"""The Telegram channel's settings (AUTORESPONDER_TELEGRAM_*); the channel is on when a token is set."""

from __future__ import annotations

from pydantic_settings import BaseSettings

from bot.settings import ENV_CONFIG


class TelegramSettings(BaseSettings):
    """Bot token, polling or webhook, the webhook's secret, and the Bot API server."""

    model_config = ENV_CONFIG

    telegram_token: str | None = None
    telegram_mode: str = "polling"
    telegram_webhook_secret: str | None = None
    telegram_api_base: str | None = None
