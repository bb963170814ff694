"""What the update handlers need of the Telegram channel, so that they do not import the channel class.

Also the two small helpers both use: a Telegram user's locale and a masked phone number.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from aiogram.types import User

from bot.conversations.channels import ChannelContext
from bot.conversations.messages import Attachment
from bot.conversations.model import Conversation
from bot.conversations.router import RouterResult
from bot.crm.records import CustomerInfo, normalise_phone
from bot.locale import normalise_locale

if TYPE_CHECKING:
    from aiogram.types import InlineKeyboardMarkup, ReplyKeyboardMarkup, ReplyKeyboardRemove

    Keyboard = InlineKeyboardMarkup | ReplyKeyboardMarkup | ReplyKeyboardRemove | None


def user_locale(user: User | None) -> str | None:
    """The locale of a Telegram user's app language: zh-Hant → zh-TW, zh → zh-CN, any other → en."""
    if user is None or not user.language_code:
        return None
    return normalise_locale(user.language_code) or "en"


def mask_phone(phone: str) -> str:
    """A phone number with its middle hidden, for transcripts: 138****8001."""
    digits = re.sub(r"\D", "", normalise_phone(phone))
    return digits[:3] + "****" + digits[-4:] if len(digits) >= 8 else "****"


class ChatChannel(Protocol):
    """The Telegram channel as its handlers use it."""

    max_text_chars: int

    @property
    def context(self) -> ChannelContext:
        """The router, store, templates and customer directory."""
        ...

    async def route(
        self,
        chat_id: int,
        user: User,
        text: str,
        *,
        display: str | None = None,
        attachments: Sequence[Attachment] = (),
        locale: str | None = None,
        key: str | None = None,
    ) -> RouterResult:
        """Send a customer's message through the router and deliver the replies."""
        ...

    async def record(self, chat_id: int, user: User, shown: str) -> Conversation:
        """Record a customer message without asking the engine."""
        ...

    async def reply_template(
        self,
        chat_id: int,
        conv: Conversation,
        template: str,
        variables: dict[str, Any] | None = None,
        markup: Keyboard = None,
    ) -> None:
        """Render, record and send an app-side notice."""
        ...

    async def linked_customer(self, user_id: int) -> CustomerInfo | None:
        """The CRM customer linked to a Telegram user."""
        ...

    async def payload_of(self, data: str) -> str | None:
        """The payload behind a pressed button's callback data."""
        ...

    async def blocked(self, chat_id: int, reason: Exception | str) -> None:
        """Remember that the customer blocked the bot."""
        ...

    async def unblocked(self, chat_id: int) -> None:
        """The customer can be written to again."""
        ...
