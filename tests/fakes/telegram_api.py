"""A fake Telegram Bot API server on loopback that speaks the real HTTP protocol.

aiogram talks to it exactly as to api.telegram.org or a self-hosted telegram-bot-api
(`POST /bot<token>/<method>` with form fields, `{"ok": ..., "result": ...}` answers, error codes
with `parameters.retry_after`), through `TelegramAPIServer.from_base(fake.base_url)`. It runs in
its own thread with its own event loop, so the app (another process) and synchronous tests can
use it at any time.

What it implements: getMe, getUpdates (long polling with offsets confirming updates, filtered by
allowed_updates, 409 while a webhook is set), setWebhook / deleteWebhook / getWebhookInfo (updates
pushed to the webhook with the secret-token header), sendMessage (validates Telegram's HTML dialect
and the 4096-character limit, 403 for chats that blocked the bot), sendChatAction,
answerCallbackQuery (unknown or twice-answered queries are refused), setMyCommands. Faults can be
injected per method: any status with a description and `retry_after`, or a dropped connection.

It is stricter than Telegram in one respect: a bare `&` or `>` in HTML is refused, so that
escaping mistakes cannot hide.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import itertools
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

ALLOWED_TAGS = {
    "b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler", "a", "code", "pre",
    "blockquote", "tg-emoji",
}  # fmt: skip
_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)((?:\s+[a-zA-Z-]+(?:\s*=\s*(?:\"[^\"]*\"|'[^']*'|[^\s>]+))?)*)\s*>")
_ENTITY = re.compile(r"&(lt|gt|amp|quot|#\d+|#x[0-9a-fA-F]+);")
_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")
UPDATE_TYPES = (
    "message", "edited_message", "channel_post", "edited_channel_post", "callback_query", "my_chat_member",
    "chat_member", "inline_query", "chosen_inline_result", "poll", "poll_answer", "chat_join_request",
)  # fmt: skip


class TelegramHTMLError(ValueError):
    """Text that Telegram would refuse with "can't parse entities"."""


def parse_html(text: str) -> str:
    """The visible text of Telegram HTML, or TelegramHTMLError with Telegram's kind of message."""
    out: list[str] = []
    stack: list[str] = []
    pos = 0
    while pos < len(text):
        ch = text[pos]
        if ch == "<":
            m = _TAG.match(text, pos)
            if not m:
                raise TelegramHTMLError(f"Unexpected '<' at byte offset {pos}")
            closing, name = m.group(1), m.group(2).lower()
            if name not in ALLOWED_TAGS:
                raise TelegramHTMLError(f'Unsupported start tag "{name}" at byte offset {pos}')
            if closing:
                if not stack or stack[-1] != name:
                    expected = stack[-1] if stack else "nothing"
                    raise TelegramHTMLError(f'Unmatched end tag at byte offset {pos}, expected "</{expected}>"')
                stack.pop()
            else:
                stack.append(name)
            pos = m.end()
        elif ch == "&":
            m = _ENTITY.match(text, pos)
            if not m:
                raise TelegramHTMLError(f"Unescaped '&' at byte offset {pos}")
            out.append(html.unescape(m.group(0)))
            pos = m.end()
        elif ch == ">":
            raise TelegramHTMLError(f"Unescaped '>' at byte offset {pos}")
        else:
            out.append(ch)
            pos += 1
    if stack:
        raise TelegramHTMLError(f'Can\'t find end tag corresponding to start tag "{stack[-1]}"')
    return "".join(out)


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, as Telegram counts."""
    return len(text.encode("utf-16-le")) // 2


class _ApiError(Exception):
    def __init__(self, code: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.retry_after = retry_after


@dataclass(frozen=True)
class TgUser:
    """A Telegram user (a customer) for building updates."""

    id: int
    first_name: str = "Test"
    language_code: str | None = "zh-hans"
    username: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The Bot API's User object."""
        data: dict[str, Any] = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        if self.language_code:
            data["language_code"] = self.language_code
        if self.username:
            data["username"] = self.username
        return data


@dataclass
class Call:
    """One request the fake received."""

    method: str
    params: dict[str, Any]
    at: float
    status: int = 200


@dataclass
class Fault:
    """An injected failure for the next calls of a method."""

    status: int  # 0: drop the connection without an answer
    description: str
    retry_after: int | None = None
    times: int = 1


@dataclass
class _State:
    updates: list[dict[str, Any]] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    sent: list[dict[str, Any]] = field(default_factory=list)
    faults: dict[str, list[Fault]] = field(default_factory=dict)
    blocked: set[int] = field(default_factory=set)
    open_queries: set[str] = field(default_factory=set)
    handed_out: dict[int, int] = field(default_factory=dict)
    webhook_url: str = ""
    webhook_secret: str | None = None
    webhook_allowed: list[str] | None = None
    commands: list[Any] = field(default_factory=list)


class FakeBotAPI:
    """The fake server; `start()` it, point aiogram at `base_url`, `stop()` it."""

    def __init__(self, token: str, bot_username: str = "demo_shop_bot") -> None:
        self.token = token
        self.bot_id = int(token.split(":", 1)[0])
        self.bot_username = bot_username
        self.port = 0
        self._state = _State()
        self._lock = threading.Lock()
        self._update_ids = itertools.count(100_000)
        self._message_ids = itertools.count(1)
        self._query_ids = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._new_update: asyncio.Event | None = None
        self._closing = False
        self._client: aiohttp.ClientSession | None = None

    # --- running ---

    @property
    def base_url(self) -> str:
        """What AUTORESPONDER_TELEGRAM_API_BASE (TelegramAPIServer.from_base) points at."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeBotAPI:
        """Serve on a free loopback port in a background thread."""
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self._startup())
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._shutdown())
            loop.close()

        self._thread = threading.Thread(target=run, name="fake-telegram-bot-api", daemon=True)
        self._thread.start()
        ready.wait(10)
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        """Stop serving and join the thread."""
        if self._loop is None or self._thread is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(15)

    async def _startup(self) -> None:
        self._new_update = asyncio.Event()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        sockets = getattr(server, "sockets", None) or []
        self.port = int(sockets[0].getsockname()[1])
        self._client = aiohttp.ClientSession()

    async def _shutdown(self) -> None:
        self._closing = True
        if self._new_update is not None:
            self._new_update.set()
        if self._client is not None:
            await self._client.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def _run(self, coro: Any, timeout: float = 120) -> Any:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    # --- the protocol ---

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        params = await _params(request)
        call = Call(method=method, params=params, at=time.monotonic())
        with self._lock:
            self._state.calls.append(call)
        if request.match_info["token"] != self.token:
            call.status = 401
            return _error(401, "Unauthorized")
        fault = self._take_fault(method)
        if fault is not None:
            call.status = fault.status
            if fault.status == 0:
                # A network failure: the connection closes without an answer.
                assert request.transport is not None
                request.transport.close()
                raise asyncio.CancelledError
            return _error(fault.status, fault.description, fault.retry_after)
        handler = getattr(self, f"_m_{method.lower()}", None)
        if handler is None:
            call.status = 404
            return _error(404, "Not Found")
        try:
            result = await handler(params)
        except _ApiError as exc:
            call.status = exc.code
            return _error(exc.code, exc.description, exc.retry_after)
        return web.json_response({"ok": True, "result": result})

    def _take_fault(self, method: str) -> Fault | None:
        with self._lock:
            queue = self._state.faults.get(method.lower())
            if not queue:
                return None
            fault = queue[0]
            fault.times -= 1
            if fault.times <= 0:
                queue.pop(0)
            return fault

    def _bot_user(self) -> dict[str, Any]:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": "Demo Shop",
            "username": self.bot_username,
            "can_join_groups": False,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    async def _m_getme(self, params: dict[str, Any]) -> Any:
        return self._bot_user()

    async def _m_getupdates(self, params: dict[str, Any]) -> Any:
        if self._state.webhook_url:
            raise _ApiError(409, "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook")
        offset = int(params.get("offset") or 0)
        limit = max(1, min(100, int(params.get("limit") or 100)))
        wait = float(params.get("timeout") or 0)
        allowed = params.get("allowed_updates")
        deadline = time.monotonic() + wait
        assert self._new_update is not None
        while True:
            self._new_update.clear()
            with self._lock:
                if offset:
                    # Updates before the offset are confirmed: Telegram forgets them.
                    self._state.updates = [u for u in self._state.updates if u["update_id"] >= offset]
                if allowed:
                    self._state.updates = [u for u in self._state.updates if _kind(u) in allowed]
                pending = self._state.updates[:limit]
                for u in pending:
                    self._state.handed_out[u["update_id"]] = self._state.handed_out.get(u["update_id"], 0) + 1
            remaining = deadline - time.monotonic()
            if pending or remaining <= 0 or self._closing:
                return pending
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._new_update.wait(), remaining)

    async def _m_setwebhook(self, params: dict[str, Any]) -> Any:
        url = str(params.get("url") or "")
        secret = params.get("secret_token")
        if secret is not None and not _SECRET.fullmatch(str(secret)):
            raise _ApiError(400, "Bad Request: secret token contains unallowed characters")
        if not url.startswith(("http://", "https://")):
            raise _ApiError(400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook")
        with self._lock:
            self._state.webhook_url = url
            self._state.webhook_secret = str(secret) if secret is not None else None
            self._state.webhook_allowed = params.get("allowed_updates")
        return True

    async def _m_deletewebhook(self, params: dict[str, Any]) -> Any:
        with self._lock:
            self._state.webhook_url = ""
            self._state.webhook_secret = None
            if str(params.get("drop_pending_updates")).lower() == "true":
                self._state.updates.clear()
        return True

    async def _m_getwebhookinfo(self, params: dict[str, Any]) -> Any:
        with self._lock:
            return {
                "url": self._state.webhook_url,
                "has_custom_certificate": False,
                "pending_update_count": 0 if self._state.webhook_url else len(self._state.updates),
            }

    async def _m_setmycommands(self, params: dict[str, Any]) -> Any:
        with self._lock:
            self._state.commands = list(params.get("commands") or [])
        return True

    async def _m_sendchataction(self, params: dict[str, Any]) -> Any:
        chat_id = int(params["chat_id"])
        if chat_id in self._state.blocked:
            raise _ApiError(403, "Forbidden: bot was blocked by the user")
        return True

    async def _m_answercallbackquery(self, params: dict[str, Any]) -> Any:
        query_id = str(params.get("callback_query_id") or "")
        with self._lock:
            if query_id not in self._state.open_queries:
                raise _ApiError(
                    400, "Bad Request: query is too old and response timeout expired or query ID is invalid"
                )
            self._state.open_queries.discard(query_id)
        return True

    async def _m_sendmessage(self, params: dict[str, Any]) -> Any:
        chat_id = int(params["chat_id"])
        text = str(params.get("text") or "")
        if chat_id in self._state.blocked:
            raise _ApiError(403, "Forbidden: bot was blocked by the user")
        parse_mode = params.get("parse_mode")
        visible = text
        if parse_mode == "HTML":
            try:
                visible = parse_html(text)
            except TelegramHTMLError as exc:
                raise _ApiError(400, f"Bad Request: can't parse entities: {exc}") from exc
        elif parse_mode:
            raise _ApiError(400, f"Bad Request: unsupported parse_mode {parse_mode!r} in this fake")
        visible = visible.strip()
        if not visible:
            raise _ApiError(400, "Bad Request: message text is empty")
        if utf16_len(visible) > 4096:
            raise _ApiError(400, "Bad Request: message is too long")
        markup = params.get("reply_markup")
        if isinstance(markup, dict):
            for row in markup.get("inline_keyboard") or []:
                for button in row:
                    if len(str(button.get("callback_data", "")).encode()) > 64:
                        raise _ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
        message: dict[str, Any] = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private", "first_name": "Test"},
            "from": self._bot_user(),
            "text": visible,
        }
        if isinstance(markup, dict) and "inline_keyboard" in markup:
            message["reply_markup"] = markup
        record = {**message, "raw": text, "parse_mode": parse_mode, "sent_markup": markup}
        with self._lock:
            self._state.sent.append(record)
        return message

    # --- what tests do: updates in ---

    def push(self, update: dict[str, Any], copies: int = 1) -> int:
        """Queue an update (polling) or post it to the webhook; returns its update_id.

        `update` is the update without its id, e.g. `{"message": {...}}`. In webhook mode the
        call returns once the app answered the webhook request. `copies` > 1 delivers the same
        update (same update_id) several times, as Telegram does when an answer got lost.
        """
        update_id = int(update.get("update_id") or next(self._update_ids))
        full = {**update, "update_id": update_id}
        with self._lock:
            webhook = self._state.webhook_url
            if not webhook:
                self._state.updates.extend([full] * copies)
        if webhook:
            for _ in range(copies):
                status = self._run(self._post_webhook(full, self._state.webhook_secret))
                if status != 200:
                    raise AssertionError(f"the webhook answered {status} to update {update_id}")
        else:
            assert self._loop is not None and self._new_update is not None
            self._loop.call_soon_threadsafe(self._new_update.set)
        return update_id

    async def _post_webhook(self, update: dict[str, Any], secret: str | None) -> int:
        assert self._client is not None
        headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret is not None else {}
        async with self._client.post(self._state.webhook_url, json=update, headers=headers) as resp:
            await resp.read()
            return resp.status

    def handed_out(self, update_id: int) -> int:
        """How many times getUpdates returned an update."""
        with self._lock:
            return self._state.handed_out.get(update_id, 0)

    def message(self, user: TgUser, **content: Any) -> dict[str, Any]:
        """A `message` update from a customer's private chat."""
        return {"message": self._message(user, content)}

    def _message(self, user: TgUser, content: dict[str, Any], chat_type: str = "private") -> dict[str, Any]:
        chat: dict[str, Any] = {"id": user.id, "type": chat_type, "first_name": user.first_name}
        if chat_type != "private":
            chat = {"id": -abs(user.id), "type": chat_type, "title": "A group"}
        return {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": chat,
            "from": user.as_dict(),
            **content,
        }

    def text(self, user: TgUser, text: str) -> dict[str, Any]:
        """A text message update; a leading /command carries its bot_command entity."""
        content: dict[str, Any] = {"text": text}
        command = re.match(r"/\S+", text)
        if command:
            content["entities"] = [{"type": "bot_command", "offset": 0, "length": utf16_len(command.group(0))}]
        return self.message(user, **content)

    def group_text(self, user: TgUser, text: str) -> dict[str, Any]:
        """A message in a group the bot is in."""
        return {"message": self._message(user, {"text": text}, chat_type="group")}

    def photo(self, user: TgUser, caption: str | None = None) -> dict[str, Any]:
        """A photo (three sizes, as Telegram sends), with an optional caption."""
        sizes = [
            {"file_id": f"photo-{w}", "file_unique_id": f"u{w}", "width": w, "height": w * 3 // 4, "file_size": w * 60}
            for w in (90, 320, 1280)
        ]
        return self.message(user, photo=sizes, **({"caption": caption} if caption else {}))

    def sticker(self, user: TgUser, emoji: str = "👍") -> dict[str, Any]:
        """A sticker."""
        sticker = {
            "file_id": "sticker-1", "file_unique_id": "s1", "type": "regular", "width": 512, "height": 512,
            "is_animated": False, "is_video": False, "emoji": emoji, "file_size": 20_000,
        }  # fmt: skip
        return self.message(user, sticker=sticker)

    def voice(self, user: TgUser, duration: int = 7) -> dict[str, Any]:
        """A voice message."""
        voice = {"file_id": "voice-1", "file_unique_id": "v1", "duration": duration, "mime_type": "audio/ogg"}
        return self.message(user, voice=voice)

    def document(self, user: TgUser, name: str = "invoice.pdf", size: int = 87_000) -> dict[str, Any]:
        """A file."""
        document = {
            "file_id": "doc-1", "file_unique_id": "d1", "file_name": name, "mime_type": "application/pdf",
            "file_size": size,
        }  # fmt: skip
        return self.message(user, document=document)

    def location(self, user: TgUser, latitude: float = 31.2304, longitude: float = 121.4737) -> dict[str, Any]:
        """A location."""
        return self.message(user, location={"latitude": latitude, "longitude": longitude})

    def contact(self, user: TgUser, phone: str, contact_user_id: int | None) -> dict[str, Any]:
        """A shared contact: the user's own (`contact_user_id == user.id`) or someone else's."""
        contact: dict[str, Any] = {"phone_number": phone, "first_name": user.first_name}
        if contact_user_id is not None:
            contact["user_id"] = contact_user_id
        return self.message(user, contact=contact)

    def edited(self, user: TgUser, message_id: int, **content: Any) -> dict[str, Any]:
        """An `edited_message` update for an earlier message of the user."""
        message = self._message(user, content)
        message["message_id"] = message_id
        message["edit_date"] = int(time.time())
        return {"edited_message": message}

    def press(self, user: TgUser, sent: dict[str, Any], data: str) -> dict[str, Any]:
        """A `callback_query` update: the user pressed the inline button with `data` under a sent message."""
        query_id = f"{self.bot_id}{next(self._query_ids):06d}"
        with self._lock:
            self._state.open_queries.add(query_id)
        message = {k: v for k, v in sent.items() if k not in ("raw", "parse_mode", "sent_markup")}
        return {
            "callback_query": {
                "id": query_id,
                "from": user.as_dict(),
                "message": message,
                "chat_instance": str(user.id * 7),
                "data": data,
            }
        }

    def membership(self, user: TgUser, status: str) -> dict[str, Any]:
        """A `my_chat_member` update: "kicked" when the user blocks the bot, "member" when they unblock it."""
        old = "member" if status == "kicked" else "kicked"
        with self._lock:
            if status == "kicked":
                self._state.blocked.add(user.id)
            else:
                self._state.blocked.discard(user.id)

        def member(s: str) -> dict[str, Any]:
            data: dict[str, Any] = {"status": s, "user": self._bot_user()}
            if s == "kicked":
                data["until_date"] = 0
            return data

        return {
            "my_chat_member": {
                "chat": {"id": user.id, "type": "private", "first_name": user.first_name},
                "from": user.as_dict(),
                "date": int(time.time()),
                "old_chat_member": member(old),
                "new_chat_member": member(status),
            }
        }

    # --- what tests do: faults and state ---

    def fail_next(
        self, method: str, status: int, description: str = "", *, retry_after: int | None = None, times: int = 1
    ) -> None:
        """Make the next `times` calls of `method` fail (status 0: the connection is dropped)."""
        text = description or {
            0: "", 429: f"Too Many Requests: retry after {retry_after}", 500: "Internal Server Error",
            502: "Bad Gateway", 403: "Forbidden: bot was blocked by the user",
        }.get(status, "Error")  # fmt: skip
        with self._lock:
            self._state.faults.setdefault(method.lower(), []).append(Fault(status, text, retry_after, times))

    def block(self, user_id: int, blocked: bool = True) -> None:
        """Make sending to a user fail with 403 (they blocked the bot), without an update."""
        with self._lock:
            (self._state.blocked.add if blocked else self._state.blocked.discard)(user_id)

    def post_to_webhook(self, update: dict[str, Any], secret: str | None) -> int:
        """Post an update to the registered webhook with the given secret header (None: without)."""
        full = {"update_id": next(self._update_ids), **update}
        return int(self._run(self._post_webhook(full, secret)))

    @property
    def webhook(self) -> tuple[str, str | None]:
        """The URL and secret token of the registered webhook ("" when none)."""
        with self._lock:
            return self._state.webhook_url, self._state.webhook_secret

    def calls(self, method: str | None = None) -> list[Call]:
        """Requests received so far, optionally of one method."""
        with self._lock:
            calls = list(self._state.calls)
        return [c for c in calls if method is None or c.method.lower() == method.lower()]

    def sent(self, chat_id: int) -> list[dict[str, Any]]:
        """Messages the bot sent to a chat, oldest first."""
        with self._lock:
            return [m for m in self._state.sent if m["chat"]["id"] == chat_id]

    def wait_sent(self, chat_id: int, count: int = 1, timeout: float = 60) -> list[dict[str, Any]]:
        """Wait until the bot sent at least `count` messages to the chat; return them all."""

        def enough() -> list[dict[str, Any]] | None:
            sent = self.sent(chat_id)
            return sent if len(sent) >= count else None

        found: list[dict[str, Any]] = wait_for(enough, timeout, f"{count} message(s) to chat {chat_id}")
        return found

    def pending_updates(self) -> int:
        """Updates not yet confirmed by a getUpdates offset."""
        with self._lock:
            return len(self._state.updates)


def wait_for(probe: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll `probe` until it returns something truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _kind(update: dict[str, Any]) -> str:
    return next((k for k in UPDATE_TYPES if k in update), "unknown")


async def _params(request: web.Request) -> dict[str, Any]:
    """Method parameters from the query string and a JSON, urlencoded or multipart body."""
    raw: dict[str, Any] = dict(request.query)
    if request.can_read_body:
        if request.content_type == "application/json":
            body = await request.json()
            if isinstance(body, dict):
                raw.update(body)
        else:
            form = await request.post()
            raw.update({k: v for k, v in form.items() if isinstance(v, str)})
    params: dict[str, Any] = {}
    for key, value in raw.items():
        if isinstance(value, str) and value[:1] in "[{":
            with contextlib.suppress(ValueError):
                value = json.loads(value)
        params[key] = value
    return params


def _error(code: int, description: str, retry_after: int | None = None) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if retry_after is not None:
        body["parameters"] = {"retry_after": retry_after}
    return web.json_response(body, status=code)


@contextlib.contextmanager
def running(token: str) -> Iterator[FakeBotAPI]:
    """A started fake, stopped afterwards."""
    fake = FakeBotAPI(token).start()
    try:
        yield fake
    finally:
        fake.stop()
