"""The Telegram connector: the bot's life cycle (polling or webhook), sending, and agent delivery."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import html
import logging
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import PRODUCTION, TelegramAPIServer
from aiogram.enums import ChatAction, ParseMode
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramUnauthorizedError,
)
from aiogram.types import (
    ErrorEvent,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    Update,
    User,
)
from aiogram.utils.token import TokenValidationError, validate_token
from fastapi import APIRouter
from markupsafe import escape
from pydantic import ValidationError

from bot import keys
from bot.conversations.channels import Channel, ChannelContext
from bot.conversations.messages import Attachment, InboundMessage, OutboundMessage
from bot.conversations.router import RouterResult, TypingHook
from bot.errors import AutoresponderError, BadInput
from connectors.telegram import CHANNEL, WEBHOOK_PATH
from connectors.telegram import keys as tg_keys
from connectors.telegram.formatting import split_html, to_html
from connectors.telegram.handlers import build_router
from connectors.telegram.middlewares import RetryMiddleware, UpdateGate
from connectors.telegram.port import user_locale
from connectors.telegram.settings import TelegramSettings
from connectors.telegram.webhook import webhook_routes

if TYPE_CHECKING:
    from bot.conversations.model import Conversation, LogEntry
    from bot.crm.records import CustomerInfo
    from bot.settings import Settings

log = logging.getLogger(__name__)

MODES = ("polling", "webhook")
# A template button with this payload becomes Telegram's "share my phone number" keyboard button.
CONTACT_PAYLOAD = "telegram:request_contact"
# Telegram limits callback data to 64 bytes; longer payloads travel as this prefix plus a digest.
CALLBACK_LIMIT = 64
_HASHED = "cb:"
# How often the "typing…" indicator is renewed (Telegram shows it for 5 s).
TYPING_EVERY = 4.5
RESTART_DELAYS = (1.0, 2.0, 5.0, 10.0, 30.0)
# What Telegram accepts as a webhook secret token.
SECRET_CHARS = re.compile(r"[A-Za-z0-9_-]{1,256}")
Keyboard = InlineKeyboardMarkup | ReplyKeyboardMarkup | ReplyKeyboardRemove | None


class TelegramConfigError(AutoresponderError):
    """The Telegram settings are inconsistent; the message says which one to fix."""


class TelegramConnector(Channel):
    """Customers write to the company's Telegram bot; replies go back as HTML with inline buttons."""

    variant = "telegram"

    def __init__(
        self,
        token: str,
        *,
        mode: str = "polling",
        api_base: str | None = None,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        retry: RetryMiddleware | None = None,
        max_text_chars: int = 5000,
    ) -> None:
        if mode not in MODES:
            raise TelegramConfigError(f"AUTORESPONDER_TELEGRAM_MODE is {mode!r}; set it to polling or webhook")
        try:
            validate_token(token)
        except TokenValidationError as exc:
            raise TelegramConfigError(
                "AUTORESPONDER_TELEGRAM_TOKEN is not a bot token (123456789:AA…); copy it from @BotFather"
            ) from exc
        if mode == "webhook" and not (webhook_url and webhook_secret):
            raise TelegramConfigError("webhook mode needs the app's public URL and a webhook secret")
        if webhook_secret is not None and not SECRET_CHARS.fullmatch(webhook_secret):
            raise TelegramConfigError(
                "AUTORESPONDER_TELEGRAM_WEBHOOK_SECRET may only hold A-Z, a-z, 0-9, _ and -, up to 256 characters"
            )
        self.token = token
        self.mode = mode
        self.api_base = api_base
        self.webhook_url = webhook_url
        self.webhook_secret = webhook_secret
        self.retry = retry or RetryMiddleware()
        self.max_text_chars = max_text_chars
        self._context: ChannelContext | None = None
        self._bot: Bot | None = None
        self._dp: Dispatcher | None = None
        self._gate: UpdateGate | None = None
        self._task: asyncio.Task[None] | None = None
        self._polling = False

    @classmethod
    def name(cls) -> str:
        """The channel name: telegram."""
        return CHANNEL

    @classmethod
    def from_settings(cls, settings: Settings, own: TelegramSettings | None = None) -> TelegramConnector | None:
        """On when AUTORESPONDER_TELEGRAM_TOKEN is set."""
        own = own or TelegramSettings()
        if not own.telegram_token:
            return None
        mode = own.telegram_mode.strip().lower()
        webhook = mode == "webhook"
        return cls(
            own.telegram_token,
            mode=mode,
            api_base=own.telegram_api_base,
            webhook_url=settings.base_url + WEBHOOK_PATH if webhook else None,
            webhook_secret=settings.secret("telegram_webhook_secret", own.telegram_webhook_secret) if webhook else None,
            max_text_chars=settings.max_text_chars,
        )

    def routes(self) -> APIRouter:
        """The webhook Telegram posts to (answers 404 in polling mode)."""
        return webhook_routes(self)

    # --- life cycle ---

    @property
    def context(self) -> ChannelContext:
        """What the channel works with (set by start)."""
        if self._context is None:
            raise AutoresponderError("the Telegram connector is not started")
        return self._context

    @property
    def bot(self) -> Bot:
        """The aiogram Bot (set by start)."""
        if self._bot is None:
            raise AutoresponderError("the Telegram connector is not started")
        return self._bot

    @property
    def dispatcher(self) -> Dispatcher:
        """The aiogram Dispatcher (set by start)."""
        if self._dp is None:
            raise AutoresponderError("the Telegram connector is not started")
        return self._dp

    async def start(self, context: ChannelContext) -> None:
        """Build the bot and dispatcher, then poll or register the webhook in the background."""
        self._context = context
        api = TelegramAPIServer.from_base(self.api_base) if self.api_base else PRODUCTION
        session = AiohttpSession(api=api)
        session.middleware(self.retry)
        self._bot = Bot(self.token, session=session)
        self._gate = UpdateGate(context.store)
        # The connector reaches the handlers as workflow data (aiogram's dependency injection).
        self._dp = Dispatcher(disable_fsm=True, connector=self)
        self._dp.update.outer_middleware(self._gate)
        self._dp.errors.register(self.on_error)
        self._dp.include_router(build_router())
        self._task = asyncio.create_task(self._run(), name="telegram-channel")

    async def _run(self) -> None:
        """Register the webhook, or poll; restart with a growing delay when Telegram cannot be reached."""
        failures = 0
        while True:
            try:
                allowed = self.dispatcher.resolve_used_update_types()
                if self.mode == "webhook":
                    assert self.webhook_url is not None  # checked in __init__
                    await self.bot.set_webhook(
                        self.webhook_url, secret_token=self.webhook_secret, allowed_updates=allowed
                    )
                    log.info("telegram webhook set to %s", self.webhook_url)
                    return
                # A webhook left over from webhook mode makes getUpdates fail with 409 Conflict.
                await self.bot.delete_webhook(drop_pending_updates=False)
                self._polling = True
                try:
                    await self.dispatcher.start_polling(
                        self.bot, handle_signals=False, close_bot_session=False, allowed_updates=allowed
                    )
                finally:
                    self._polling = False
                return
            except TelegramUnauthorizedError:
                log.error("Telegram refused the bot token: check AUTORESPONDER_TELEGRAM_TOKEN (from @BotFather)")
                return
            except TelegramBadRequest as exc:
                # Trying again would not help: Telegram refuses the settings themselves.
                log.error("Telegram refused the channel's set-up (%s); check AUTORESPONDER_PUBLIC_URL (HTTPS)", exc)
                return
            except TelegramAPIError as exc:
                delay = RESTART_DELAYS[min(failures, len(RESTART_DELAYS) - 1)]
                failures += 1
                log.warning("telegram channel could not start (%s); trying again in %.0f s", exc, delay)
                await asyncio.sleep(delay)

    async def stop(self) -> None:
        """Stop polling, let updates in progress finish (10 s at most), close the HTTP session."""
        if self._polling and self._dp is not None:
            await self._dp.stop_polling()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._gate is not None:
            try:
                async with asyncio.timeout(10):
                    await self._gate.wait_idle()
            except TimeoutError:
                log.warning("telegram updates still in progress at shutdown")
        if self._bot is not None:
            await self._bot.session.close()

    # --- webhook ---

    def check_secret(self, supplied: str | None) -> bool:
        """Whether a webhook request carries the secret token given to setWebhook."""
        expected = self.webhook_secret
        return bool(self.mode == "webhook" and expected and supplied) and hmac.compare_digest(
            str(supplied).encode(), str(expected).encode()
        )

    async def feed_webhook(self, payload: dict[str, Any]) -> None:
        """Process one update Telegram posted to the webhook (the secret is checked by the route)."""
        try:
            update = Update.model_validate(payload, context={"bot": self.bot})
        except ValidationError as exc:
            raise BadInput("bad_update", f"not a Telegram update: {exc.error_count()} errors") from exc
        await self.dispatcher.feed_update(self.bot, update)

    # --- inbound ---

    async def linked_customer(self, user_id: int) -> CustomerInfo | None:
        """The CRM customer this Telegram user shared their phone number as, if any."""
        return await self.context.customers.find_by_account(CHANNEL, str(user_id))

    async def conversation(
        self, chat_id: int, user: User | None, *, locale: str | None = None, customer_id: str | None = None
    ) -> Conversation:
        """The chat's conversation, with its customer and a locale filled in (`locale` overrides)."""
        store = self.context.store
        conv, _ = await store.find_or_open(CHANNEL, str(chat_id), customer_id)
        wanted = locale or conv.locale or user_locale(user) or "zh-CN"
        if (customer_id and not conv.customer_id) or wanted != conv.locale:
            conv.customer_id = conv.customer_id or customer_id
            conv.locale = wanted
            await store.update(conv, "customer_id", "locale")
        return conv

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
        """Send a customer's message through the router and deliver the bot's replies.

        `key` identifies the message in Telegram (chat and message id, or the button press): a message
        Telegram delivers again after a crash is answered once, by whoever gets to it first.

        A new conversation starts in the language of the customer's Telegram app, and `locale`
        sets it: commands like /start say nothing about the customer's language, the app does.
        """
        await self.unblocked(chat_id)
        customer = await self.linked_customer(user.id)
        await self.conversation(chat_id, user, locale=locale, customer_id=customer.id if customer else None)
        metadata: dict[str, Any] = {"telegram_user_id": user.id}
        if display is not None:
            metadata["display_text"] = display
        if customer is not None:
            metadata["customer_id"] = customer.id
        result = await self.context.router.handle(
            InboundMessage(
                channel=CHANNEL,
                thread_id=str(chat_id),
                sender=f"telegram:{user.id}",
                text=text,
                idempotency_key=key,
                attachments=tuple(attachments),
                locale_hint=user_locale(user),
                metadata=metadata,
                pushes_replies=True,
            ),
            on_typing=self.typing(chat_id),
        )
        # An answer another process committed (a duplicate's, most often) is pushed by that process, or by
        # the recovery pass.
        await self.send_entries(chat_id, result.to_push())
        await self.context.router.delivered(result)
        return result

    async def record(self, chat_id: int, user: User, shown: str) -> Conversation:
        """Put a customer message in the transcript without asking the engine (media, contacts)."""
        await self.unblocked(chat_id)
        customer = await self.linked_customer(user.id)
        conv = await self.conversation(chat_id, user, customer_id=customer.id if customer else None)
        await self.context.store.append(conv.id, "customer", shown)
        return conv

    async def reply_template(
        self,
        chat_id: int,
        conv: Conversation,
        template: str,
        variables: dict[str, Any] | None = None,
        markup: Keyboard = None,
    ) -> None:
        """Render an app-side notice for Telegram, record it as the bot's, and send it."""
        rendered = self.context.templates.render(template, CHANNEL, conv.locale or "zh-CN", variables or {})
        entry = await self.context.store.append_rendered(conv.id, "bot", rendered)
        await self.send_entries(chat_id, [entry], markup)

    def typing(self, chat_id: int) -> TypingHook:
        """The router's typing hook for a chat: "typing…" renewed until the replies are ready."""
        task: asyncio.Task[None] | None = None

        async def hook(conv_id: str, on: bool) -> None:
            nonlocal task
            if on and task is None:
                task = asyncio.create_task(self._keep_typing(chat_id))
            elif not on and task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                task = None

        return hook

    async def _keep_typing(self, chat_id: int) -> None:
        while True:
            try:
                await self.bot.send_chat_action(chat_id, ChatAction.TYPING)
            except TelegramAPIError as exc:
                log.info("telegram typing indicator not shown in chat %s: %s", chat_id, exc)
                return
            await asyncio.sleep(TYPING_EVERY)

    # --- outbound ---

    async def send_entries(self, chat_id: int, entries: Sequence[LogEntry], markup: Keyboard = None) -> None:
        """Send bot replies from the router or the templates, each with its quick replies (or `markup`)."""
        for entry in entries:
            keyboard = markup or await self.keyboard(entry.buttons)
            await self.send_html(chat_id, to_html(entry.text, entry.text_format), keyboard)

    async def send_html(self, chat_id: int, text: str, markup: Keyboard = None) -> None:
        """Send Telegram HTML, split into messages of 4096 characters; the keyboard goes with the last."""
        parts = split_html(text)
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            try:
                await self.bot.send_message(
                    chat_id, part, parse_mode=ParseMode.HTML, reply_markup=markup if last else None
                )
            except TelegramBadRequest as exc:
                if "parse entities" not in str(exc):
                    raise
                # Our HTML should always parse; if it ever does not, the customer still gets the words.
                log.error("telegram refused the HTML of a reply (%s); sending it as plain text", exc)
                plain = html.unescape(re.sub(r"<[^<>]*>", "", part))
                await self.bot.send_message(chat_id, plain, parse_mode=None, reply_markup=markup if last else None)

    async def keyboard(self, buttons: Sequence[dict[str, str]]) -> Keyboard:
        """Quick replies as an inline keyboard, one button a row; the contact button as a reply keyboard."""
        if not buttons:
            return None
        contact = [b for b in buttons if b.get("payload") == CONTACT_PAYLOAD]
        if contact:
            return ReplyKeyboardMarkup(
                keyboard=[[KeyboardButton(text=contact[0]["title"], request_contact=True)]],
                resize_keyboard=True,
                one_time_keyboard=True,
            )
        rows = [
            [InlineKeyboardButton(text=b["title"], callback_data=await self.callback_data(b["payload"]))]
            for b in buttons
            if b.get("title") and b.get("payload")
        ]
        return InlineKeyboardMarkup(inline_keyboard=rows) if rows else None

    async def callback_data(self, payload: str) -> str:
        """The button's callback data: the payload itself, or a digest kept in Redis when it is too long."""
        if len(payload.encode()) <= CALLBACK_LIMIT and not payload.startswith(_HASHED):
            return payload
        digest = hashlib.sha256(payload.encode()).hexdigest()[:32]
        await self.context.redis.set(
            tg_keys.telegram_callback(digest), payload, ex=tg_keys.TELEGRAM_CALLBACK_TTL_SECONDS
        )
        return _HASHED + digest

    async def payload_of(self, data: str) -> str | None:
        """The payload behind a pressed button's callback data (None: an expired long payload)."""
        if not data.startswith(_HASHED):
            return data
        stored = await self.context.redis.get(tg_keys.telegram_callback(data.removeprefix(_HASHED)))
        return str(stored) if stored else None

    async def deliver(self, conversation: Conversation, message: OutboundMessage) -> None:
        """Send an agent's answer or a notice (agent joined, bot back) to the customer's chat.

        A customer who blocked the bot is skipped; a failure after the retries is written into the
        transcript for the agent instead of failing the agent's request.
        """
        chat_id = int(conversation.thread_id)
        store = self.context.store
        if await self.context.redis.exists(tg_keys.telegram_blocked(str(chat_id))):
            await store.append(conversation.id, "system", "Telegram: not delivered, the customer has blocked the bot.")
            return
        text = to_html(message.text, message.text_format)
        if message.role == "agent" and message.agent_name:
            text = f"👤 <b>{escape(message.agent_name)}</b>\n{text}"
        try:
            await self.send_html(chat_id, text, await self.keyboard(message.buttons))
        except TelegramForbiddenError as exc:
            await self.blocked(chat_id, exc)
        except TelegramAPIError as exc:
            log.error("telegram delivery to chat %s failed: %s", chat_id, exc)
            await store.append(conversation.id, "system", f"Telegram: not delivered ({exc.message}).")

    # --- blocked customers and errors ---

    async def blocked(self, chat_id: int, reason: Exception | str) -> None:
        """Remember that a customer blocked the bot (403), once, in Redis and in the transcript."""
        store = self.context.store
        newly = await self.context.redis.set(
            tg_keys.telegram_blocked(str(chat_id)), "1", nx=True, ex=keys.CONVERSATION_TTL_SECONDS
        )
        if newly:
            log.warning("telegram chat %s blocked the bot: %s", chat_id, reason)
            conv = await self.conversation(chat_id, None)
            await store.append(conv.id, "system", "Telegram: the customer has blocked the bot.")

    async def unblocked(self, chat_id: int) -> None:
        """A customer who writes (or restarts the bot) can be written to again."""
        await self.context.redis.delete(tg_keys.telegram_blocked(str(chat_id)))

    async def on_error(self, event: ErrorEvent) -> bool:
        """The channel's one error hook: 403 marks the chat blocked; anything else is logged and the
        customer asked to send the message again."""
        exc = event.exception
        chat = _chat_of(event.update)
        if isinstance(exc, TelegramForbiddenError) and chat is not None:
            await self.blocked(chat, exc)
            return True
        log.error("telegram update %s failed", event.update.update_id, exc_info=exc)
        if chat is not None:
            try:
                conv = await self.conversation(chat, None)
                await self.reply_template(chat, conv, "utter_telegram_error")
            except (TelegramAPIError, AutoresponderError) as notice_exc:
                log.error("telegram error notice not sent to chat %s: %s", chat, notice_exc)
        return True


def _chat_of(update: Update) -> int | None:
    """The private chat an update belongs to, if any."""
    message = update.message or update.edited_message
    if message is not None:
        return message.chat.id
    if update.callback_query is not None:
        return update.callback_query.from_user.id
    if update.my_chat_member is not None:
        return update.my_chat_member.chat.id
    return None
