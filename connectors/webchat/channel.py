"""The web chat channel: a websocket per browser tab, JSON frames, history replayed from Redis."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from bot import keys
from bot.conversations.channels import Channel, ChannelContext
from bot.conversations.messages import InboundMessage, OutboundMessage
from bot.conversations.model import Conversation
from bot.conversations.router import Router
from bot.conversations.store import ConversationStore
from bot.errors import BadInput
from bot.locale import normalise_locale
from bot.settings import Settings
from connectors.webchat import CHANNEL
from connectors.webchat.identity import IdentityVerifier

log = logging.getLogger(__name__)

SESSION_SALT = "autoresponder.webchat.session"
# Frames are parsed up to this size so that a too-long message's error can name its client_id;
# past it (and past uvicorn's 16 MiB websocket limit) they are refused unread.
MAX_PARSED_FRAME_CHARS = 8 * 1024 * 1024
MAX_QUEUED = 20
# Workers outlive their connection to finish queued messages; asyncio keeps only weak references.
_BACKGROUND: set[asyncio.Task[None]] = set()


@dataclass(frozen=True)
class Session:
    """Who a browser is: its visitor id (and so its conversation), and the verified customer, if any."""

    visitor: str
    customer_id: str | None = None


class Sessions:
    """Signed session tokens that tie a browser to its visitor id and verified customer."""

    def __init__(self, secret: str, max_age_seconds: int) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt=SESSION_SALT)
        self.max_age = max_age_seconds

    def issue(self, session: Session) -> str:
        """A new token for the session."""
        data = {"v": session.visitor}
        if session.customer_id:
            data["c"] = session.customer_id
        return self._serializer.dumps(data)

    def verify(self, token: str) -> Session:
        """The session in a token; BadInput with code bad_session or expired_session otherwise."""
        try:
            data = self._serializer.loads(token, max_age=self.max_age)
        except SignatureExpired as exc:
            raise BadInput("expired_session", "session expired; a new conversation was started") from exc
        except BadSignature as exc:
            raise BadInput("bad_session", "session token not valid; a new conversation was started") from exc
        if not isinstance(data, dict) or not isinstance(data.get("v"), str):
            raise BadInput("bad_session", "session token not valid; a new conversation was started")
        customer = data.get("c")
        return Session(str(data["v"]), customer if isinstance(customer, str) and customer else None)


@dataclass
class _Job:
    text: str
    display: str
    client_id: str
    session: Session


class WebchatConnection:
    """One browser connection: reads frames, forwards the conversation's events."""

    def __init__(
        self,
        ws: WebSocket,
        context: ChannelContext,
        sessions: Sessions,
        identities: IdentityVerifier,
        max_chars: int,
    ) -> None:
        self.ws = ws
        self.router: Router = context.router
        self.store: ConversationStore = context.store
        self.customers = context.customers
        self.sessions = sessions
        self.identities = identities
        self.max_chars = max_chars
        self.session: Session | None = None
        self.visitor: str | None = None
        self.conv_id: str | None = None
        self.locale_hint: str | None = None
        self.last_sent_seq: tuple[int, int] = (0, 0)
        self.jobs: asyncio.Queue[_Job | None] = asyncio.Queue(maxsize=MAX_QUEUED)
        self._send_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []

    async def send(self, frame: dict[str, Any]) -> None:
        """Send one frame; a closed socket is not an error here (the client will reconnect)."""
        async with self._send_lock:
            with contextlib.suppress(RuntimeError, WebSocketDisconnect):
                await self.ws.send_text(json.dumps(frame, ensure_ascii=False))

    async def error(self, code: str, message: str, client_id: str | None = None) -> None:
        """Tell the browser what was wrong with its frame; the connection stays open."""
        frame = {"type": "error", "code": code, "message": message}
        if client_id:
            frame["client_id"] = client_id
        await self.send(frame)

    async def run(self) -> None:
        """Serve the connection until the browser leaves."""
        worker = asyncio.create_task(self._work())
        _BACKGROUND.add(worker)
        worker.add_done_callback(_BACKGROUND.discard)
        try:
            while True:
                raw = await self.ws.receive()
                if raw["type"] == "websocket.disconnect":
                    break
                text = raw.get("text")
                if text is None:
                    await self.error("bad_json", "frames must be JSON text, not binary")
                    continue
                await self._frame(text)
        except WebSocketDisconnect:
            pass
        finally:
            for task in self._tasks:
                task.cancel()
            # Let queued messages finish: each is processed once whether the tab stays or not.
            with contextlib.suppress(asyncio.QueueFull):
                self.jobs.put_nowait(None)
            await asyncio.wait({worker}, timeout=0.1)

    async def _frame(self, text: str) -> None:
        if len(text) > MAX_PARSED_FRAME_CHARS:
            await self.error("too_large", f"message longer than {self.max_chars} characters")
            return
        try:
            frame = json.loads(text)
        except ValueError:
            await self.error("bad_json", "frame is not valid JSON")
            return
        if not isinstance(frame, dict):
            await self.error("bad_json", "frame must be a JSON object")
            return
        kind = frame.get("type")
        if kind == "ping":
            await self.send({"type": "pong"})
        elif kind == "hello":
            await self._hello(frame)
        elif kind == "identify":
            await self._identify(frame)
        elif kind in ("message", "button"):
            await self._message(frame, kind)
        else:
            await self.error(
                "unknown_type", f"unknown frame type {kind!r}; expected hello, identify, message, button or ping"
            )

    async def _claim(self, raw: Any) -> str | None:
        """The verified customer id a frame's `identity` names; a bad one is an error frame and a guest."""
        claim = self.identities.check(raw)
        if not claim.valid:
            await self.error("bad_identity", "the customer identity is not signed correctly; continuing as a guest")
        return claim.customer_id

    def _continue(self, session: Session | None, customer_id: str | None) -> Session | None:
        """The session to go on with under this identity, or None when a new conversation must start.

        A guest who logs in keeps the conversation (linked from then on); logging out, or another
        customer on the same browser, starts afresh so that nobody sees another customer's conversation.
        """
        if session is None:
            return None
        if session.customer_id is None or session.customer_id == customer_id:
            return Session(session.visitor, customer_id)
        return None

    async def _hello(self, frame: dict[str, Any]) -> None:
        self.locale_hint = normalise_locale(str(frame.get("locale") or "")) or self.locale_hint
        customer_id = await self._claim(frame.get("identity"))
        token = frame.get("session")
        session: Session | None = None
        if isinstance(token, str) and token:
            try:
                session = self.sessions.verify(token)
            except BadInput as exc:
                await self.error(exc.code, exc.message)
        kept = self._continue(session, customer_id)
        replay_from = frame.get("last_seq") if kept and isinstance(frame.get("last_seq"), str) else None
        await self._welcome(kept or Session(uuid.uuid4().hex, customer_id), replay_from)

    async def _identify(self, frame: dict[str, Any]) -> None:
        """The visitor logged in, out, or as someone else while connected."""
        if self.session is None:
            await self.error("no_session", "send a hello frame first")
            return
        customer_id = await self._claim(frame.get("identity"))
        if customer_id == self.session.customer_id:
            return
        kept = self._continue(self.session, customer_id)
        replay_from = f"{self.last_sent_seq[0]}-{self.last_sent_seq[1]}" if kept else None
        await self._welcome(kept or Session(uuid.uuid4().hex, customer_id), replay_from)

    async def _welcome(self, session: Session, replay_from: str | None) -> None:
        self.session = session
        visitor = self.visitor = session.visitor
        conv, _ = await self.store.find_or_open(CHANNEL, visitor, None)
        if session.customer_id and conv.customer_id is None:
            customer = await self.customers.find(session.customer_id)
            if customer is not None:
                conv.customer_id = customer.id
                await self.store.update(conv, "customer_id")
        self.conv_id = conv.id
        for task in self._tasks:
            task.cancel()
        # Subscribe before reading history so nothing published in between is missed.
        pubsub = self.store.redis.pubsub()
        await pubsub.subscribe(keys.events(conv.id))
        history = await self.store.history(conv.id, after=replay_from)
        if history:
            self.last_sent_seq = _seq_key(history[-1].seq)
        elif replay_from:
            self.last_sent_seq = _seq_key(replay_from)
        await self.send(
            {
                "type": "welcome",
                "session": self.sessions.issue(session),
                "conversation_id": conv.id,
                "mode": conv.mode,
                "locale": conv.locale or self.locale_hint or "zh-CN",
                "history": [e.frame() for e in history],
            }
        )
        self._tasks = [asyncio.create_task(self._forward(pubsub))]

    async def _forward(self, pubsub: Any) -> None:
        try:
            async for item in pubsub.listen():
                if item.get("type") != "message":
                    continue
                frame = json.loads(item["data"])
                seq = frame.get("seq")
                if isinstance(seq, str):
                    key = _seq_key(seq)
                    if key <= self.last_sent_seq:
                        continue  # already replayed with the history
                    self.last_sent_seq = key
                await self.send(frame)
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()

    async def _message(self, frame: dict[str, Any], kind: str) -> None:
        client_id = frame.get("client_id") if isinstance(frame.get("client_id"), str) else None
        if self.session is None:
            await self.error("no_session", "send a hello frame first", client_id)
            return
        field = "payload" if kind == "button" else "text"
        text = frame.get(field)
        if not isinstance(text, str) or not text.strip():
            await self.error("bad_frame", f"{kind} frame needs a non-empty string {field!r}", client_id)
            return
        if len(text) > self.max_chars:
            await self.error("too_large", f"message longer than {self.max_chars} characters", client_id)
            return
        display = str(frame.get("title") or text) if kind == "button" else text
        try:
            self.jobs.put_nowait(
                _Job(
                    text=text,
                    display=display[: self.max_chars],
                    client_id=client_id or uuid.uuid4().hex,
                    session=self.session,
                )
            )
        except asyncio.QueueFull:
            await self.error("rate_limited", "too many messages at once; wait for the answers", client_id)

    async def _work(self) -> None:
        while (job := await self.jobs.get()) is not None:
            metadata: dict[str, Any] = {"client_id": job.client_id, "display_text": job.display}
            if job.session.customer_id:
                metadata["customer_id"] = job.session.customer_id  # verified by the shop's signature
            try:
                await self.router.handle(
                    InboundMessage(
                        channel=CHANNEL,
                        thread_id=job.session.visitor,
                        sender=job.session.visitor,
                        text=job.text,
                        idempotency_key=job.client_id,
                        locale_hint=self.locale_hint,
                        metadata=metadata,
                    ),
                    on_typing=self._typing,
                )
            except Exception:
                log.exception("web chat message failed in conversation %s", self.conv_id)
                await self.error("internal", "the message could not be processed; please send it again", job.client_id)

    async def _typing(self, conv_id: str, on: bool) -> None:
        await self.store.publish(conv_id, {"type": "typing", "on": on})


def _seq_key(seq: str) -> tuple[int, int]:
    ms, _, n = seq.partition("-")
    try:
        return int(ms), int(n or 0)
    except ValueError:
        return (0, 0)


class WebchatChannel(Channel):
    """The web chat widget's channel: one websocket per browser tab."""

    def __init__(self, sessions: Sessions, identities: IdentityVerifier, max_text_chars: int) -> None:
        self.sessions = sessions
        self.identities = identities
        self.max_text_chars = max_text_chars
        self._context: ChannelContext | None = None

    @classmethod
    def name(cls) -> str:
        """The channel name: webchat."""
        return CHANNEL

    @classmethod
    def from_settings(cls, settings: Settings) -> WebchatChannel:
        """Always on; sessions are signed with the app's secret key."""
        sessions = Sessions(settings.secret("secret_key"), settings.session_max_age_days * 86400)
        return cls(sessions, IdentityVerifier(settings.secret("identity_secret")), settings.max_text_chars)

    async def start(self, context: ChannelContext) -> None:
        """Accept sockets from now on."""
        self._context = context

    async def stop(self) -> None:
        """Refuse new sockets."""
        self._context = None

    async def deliver(self, conversation: Conversation, message: OutboundMessage) -> None:
        """Nothing more to do: open sockets get every transcript entry through the conversation's pub/sub,
        and a tab that reconnects replays what it missed."""

    def routes(self) -> APIRouter:
        """The widget's websocket."""
        router = APIRouter()

        @router.websocket("/channels/webchat/ws")
        async def webchat_socket(ws: WebSocket) -> None:
            """The widget's websocket (protocol in the README)."""
            context = self._context
            if context is None:
                await ws.close(code=1013, reason="starting up; try again")
                return
            await ws.accept()
            conn = WebchatConnection(ws, context, self.sessions, self.identities, self.max_text_chars)
            await conn.run()

        return router
