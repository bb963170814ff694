"""What the bot does with each kind of update from a customer's private chat (one aiogram Router).

Handlers get the connector as workflow data (`connector`); the update gate in front of them has
already made sure the update is new and that the chat's earlier updates are done.
"""

from __future__ import annotations

import re

from aiogram import F, Router
from aiogram.enums import ChatMemberStatus, ChatType, ContentType
from aiogram.filters import Command, CommandStart
from aiogram.types import CallbackQuery, ChatMemberUpdated, Message, ReplyKeyboardRemove, User

from bot.conversations.messages import Attachment
from connectors.telegram import CHANNEL
from connectors.telegram.port import ChatChannel, mask_phone, user_locale

# What the engine gets for the bot's commands: Rasa's "/intent" syntax.
GREET, HUMAN = "/greet", "/request_human"
MEDIA = {
    ContentType.PHOTO,
    ContentType.STICKER,
    ContentType.VOICE,
    ContentType.AUDIO,
    ContentType.VIDEO,
    ContentType.VIDEO_NOTE,
    ContentType.ANIMATION,
    ContentType.DOCUMENT,
    ContentType.LOCATION,
    ContentType.VENUE,
    ContentType.DICE,
    ContentType.POLL,
}
_COMMAND = re.compile(r"^/+(\w*)(@\w+)?")


def build_router() -> Router:
    """The customer-facing handlers, in the order they are tried (a new Router per dispatcher)."""
    router = Router(name="telegram-customers")
    # A customer-service bot talks to customers one to one; groups and channels are ignored.
    router.message.filter(F.chat.type == ChatType.PRIVATE)
    router.edited_message.filter(F.chat.type == ChatType.PRIVATE)
    router.callback_query.filter(F.message.chat.type == ChatType.PRIVATE)
    router.my_chat_member.filter(F.chat.type == ChatType.PRIVATE)
    router.message.register(on_start, CommandStart())
    router.message.register(on_human, Command("human"))
    router.message.register(on_link, Command("link"))
    router.message.register(on_contact, F.contact)
    router.message.register(on_text, F.text)
    router.message.register(on_media, F.content_type.in_(MEDIA))
    router.edited_message.register(on_edited, F.text | F.caption)
    router.callback_query.register(on_button, F.data)
    router.my_chat_member.register(on_membership)
    return router


def _sender(message: Message) -> User:
    # Private-chat messages always have a sender; channel posts (which do not) are filtered out.
    assert message.from_user is not None
    return message.from_user


def _key(message: Message) -> str:
    """A message's identity in Telegram: its chat and id (and, for a correction, when it was edited)."""
    edited = f":edited:{message.edit_date}" if message.edit_date else ""
    return f"{message.chat.id}:{message.message_id}{edited}"


def as_words(text: str) -> str:
    """A typed "/something" that is not one of our commands: the words count, not Rasa's intent syntax."""
    return _COMMAND.sub(lambda m: m.group(1).replace("_", " "), text, count=1).strip()


async def on_start(message: Message, connector: ChatChannel) -> None:
    """Greet in the language of the customer's Telegram app; offer to link a customer profile."""
    user = _sender(message)
    result = await connector.route(
        message.chat.id, user, GREET, display=message.text or "/start", locale=user_locale(user), key=_key(message)
    )
    if result.conversation.mode == "bot" and await connector.linked_customer(user.id) is None:
        await connector.reply_template(message.chat.id, result.conversation, "utter_telegram_share_contact")


async def on_human(message: Message, connector: ChatChannel) -> None:
    """Ask for a human agent."""
    await connector.route(message.chat.id, _sender(message), HUMAN, display=message.text or "/human", key=_key(message))


async def on_link(message: Message, connector: ChatChannel) -> None:
    """Show the "share my phone number" button."""
    conv = await connector.record(message.chat.id, _sender(message), message.text or "/link")
    await connector.reply_template(message.chat.id, conv, "utter_telegram_share_contact")


async def on_contact(message: Message, connector: ChatChannel) -> None:
    """Link the customer to the CRM by the phone number they shared, if it is their own."""
    assert message.contact is not None  # registered with F.contact
    user = _sender(message)
    contact = message.contact
    conv = await connector.record(message.chat.id, user, f"📱 shared phone number {mask_phone(contact.phone_number)}")
    done = ReplyKeyboardRemove(remove_keyboard=True)
    if contact.user_id != user.id:
        # Anyone's contact card can be forwarded; only the button shares the sender's own number.
        await connector.reply_template(message.chat.id, conv, "utter_telegram_contact_not_own", markup=done)
        return
    customers = connector.context.customers
    customer = await customers.find(contact.phone_number)
    if customer is None:
        await connector.reply_template(message.chat.id, conv, "utter_telegram_contact_unknown", markup=done)
        return
    await customers.link_account(customer.id, CHANNEL, str(user.id))
    conv.customer_id = customer.id
    await connector.context.store.update(conv, "customer_id")
    name = customer.masked_name(conv.locale)
    await connector.reply_template(message.chat.id, conv, "utter_telegram_contact_linked", {"name": name}, done)


async def on_text(message: Message, connector: ChatChannel) -> None:
    """A customer's question: through the router to the engine (or to the agent)."""
    assert message.text is not None  # registered with F.text
    text = as_words(message.text) if message.text.startswith("/") else message.text
    if text:
        await connector.route(
            message.chat.id, _sender(message), _limit(text, connector), display=message.text, key=_key(message)
        )


async def on_media(message: Message, connector: ChatChannel) -> None:
    """Photos, stickers, voice, files, locations: recorded; a caption is answered, else acknowledged."""
    user = _sender(message)
    kind, label, attachment = describe(message)
    if message.caption:
        text = _limit(as_words(message.caption), connector)
        shown = f"{label}: {message.caption}"
        await connector.route(message.chat.id, user, text, display=shown, attachments=attachment, key=_key(message))
        return
    conv = await connector.record(message.chat.id, user, label)
    await connector.reply_template(
        message.chat.id, conv, "utter_telegram_media", {"kind": kind, "with_agent": conv.mode != "bot"}
    )


async def on_edited(message: Message, connector: ChatChannel) -> None:
    """A corrected message counts as a new one (a fixed order number deserves an answer); the
    transcript marks it as edited. Edits without text, such as live-location updates, are ignored."""
    original = message.text or message.caption or ""
    text = as_words(original) if original.startswith("/") else original
    if text:
        await connector.route(
            message.chat.id, _sender(message), _limit(text, connector), display=f"✏️ {original}", key=_key(message)
        )


async def on_button(query: CallbackQuery, connector: ChatChannel) -> None:
    """A quick reply pressed: answer the callback query, then send its payload as the customer's message."""
    assert query.data is not None  # registered with F.data
    payload = await connector.payload_of(query.data)
    await query.answer()
    if payload is None:
        return  # a long payload whose digest expired; the button is simply stale
    title = query.data
    message = query.message
    if isinstance(message, Message) and message.reply_markup is not None:
        for row in message.reply_markup.inline_keyboard:
            for button in row:
                if button.callback_data == query.data:
                    title = button.text
    chat_id = message.chat.id if message is not None else query.from_user.id
    await connector.route(chat_id, query.from_user, payload, display=title, key=f"button:{query.id}")


async def on_membership(event: ChatMemberUpdated, connector: ChatChannel) -> None:
    """The customer blocked the bot (Telegram says "kicked") or unblocked it."""
    status = event.new_chat_member.status
    if status == ChatMemberStatus.KICKED:
        await connector.blocked(event.chat.id, "the customer blocked the bot")
    elif status == ChatMemberStatus.MEMBER:
        await connector.unblocked(event.chat.id)


def _limit(text: str, connector: ChatChannel) -> str:
    return text[: connector.max_text_chars]


def describe(message: Message) -> tuple[str, str, tuple[Attachment, ...]]:
    """Kind (for the acknowledgement), transcript label and attachment record of a media message."""
    if message.photo:
        p = message.photo[-1]  # the largest size
        return "photo", f"📷 photo {p.width}×{p.height}", (Attachment("photo.jpg", "image/jpeg", p.file_size or 0),)
    if message.sticker:
        s = message.sticker
        mime = "video/webm" if s.is_video else "application/x-tgsticker" if s.is_animated else "image/webp"
        return "sticker", f"🙂 sticker {s.emoji or ''}".rstrip(), (Attachment("sticker", mime, s.file_size or 0),)
    if message.voice:
        v = message.voice
        mime = v.mime_type or "audio/ogg"
        return "voice", f"🎤 voice message {_duration(v.duration)}", (Attachment("voice.ogg", mime, v.file_size or 0),)
    if message.audio:
        a = message.audio
        name = a.file_name or "audio"
        return "audio", f"🎵 audio {name}", (Attachment(name, a.mime_type or "audio/mpeg", a.file_size or 0),)
    if message.video or message.video_note or message.animation:
        clip = message.video or message.video_note or message.animation
        assert clip is not None
        size = clip.file_size or 0
        return "video", f"🎬 video {_duration(clip.duration)}", (Attachment("video.mp4", "video/mp4", size),)
    if message.document:
        d = message.document
        name = d.file_name or "file"
        label = f"📄 document {name} ({_size(d.file_size)})"
        return "document", label, (Attachment(name, d.mime_type or "application/octet-stream", d.file_size or 0),)
    if message.location:
        loc = message.location
        place = f" {message.venue.title}, {message.venue.address}" if message.venue else ""
        return "location", f"📍 location {loc.latitude:.5f}, {loc.longitude:.5f}{place}", ()
    kind = message.content_type
    return "other", f"❔ {getattr(kind, 'value', kind)} message", ()


def _duration(seconds: int | None) -> str:
    s = seconds or 0
    return f"{s // 60}:{s % 60:02d}"


def _size(size: int | None) -> str:
    if not size:
        return "size unknown"
    return f"{size / 1024:.0f} KB" if size < 1024 * 1024 else f"{size / 1024 / 1024:.1f} MB"
