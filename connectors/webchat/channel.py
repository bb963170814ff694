"""The web chat channel: the widget's connection (a websocket, or HTTP where a shop's policy forbids one),
JSON frames, history replayed from Redis.

Both transports speak the same frames (README, "Websocket protocol"); the websocket keeps one connection
per tab, the HTTP transport posts frames and long-polls for what follows, stateless, so any app replica
can answer any request.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, HTTPException, Query, Request, WebSocket, WebSocketDisconnect
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from pydantic import BaseModel, Field, ValidationError

from bot import metrics, safejson
from bot.conversations.channels import Channel, ChannelContext, ClientSeq
from bot.conversations.events import RESYNC
from bot.conversations.messages import InboundMessage, OutboundMessage
from bot.conversations.model import Conversation, is_seq
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


FrameSink = Callable[[dict[str, Any]], Awaitable[None]]


class WebchatConnection:
    """One browser's frames: hello, identify, messages; with `live`, also forwards the conversation's events."""

    def __init__(
        self,
        sink: FrameSink,
        context: ChannelContext,
        sessions: Sessions,
        identities: IdentityVerifier,
        max_chars: int,
        *,
        live: bool = True,
    ) -> None:
        self.sink = sink
        self.live = live
        self.events = context.events
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
        """Send one frame, in order."""
        async with self._send_lock:
            await self.sink(frame)

    async def error(self, code: str, message: str, client_id: str | None = None) -> None:
        """Tell the browser what was wrong with its frame; the connection stays open."""
        frame = {"type": "error", "code": code, "message": message}
        if client_id:
            frame["client_id"] = client_id
        await self.send(frame)

    async def run(self, ws: WebSocket) -> None:
        """Serve a websocket until the browser leaves."""
        worker = _spawn(self._work())
        try:
            while True:
                raw = await ws.receive()
                if raw["type"] == "websocket.disconnect":
                    break
                text = raw.get("text")
                if text is None:
                    await self.error("bad_json", "frames must be JSON text, not binary")
                    continue
                await self.text_frame(text)
        except WebSocketDisconnect:
            pass
        finally:
            self.close()
            # Let queued messages finish: each is processed once whether the tab stays or not.
            with contextlib.suppress(asyncio.QueueFull):
                self.jobs.put_nowait(None)
            await asyncio.wait({worker}, timeout=0.1)

    def close(self) -> None:
        """Stop forwarding the conversation's events."""
        for task in self._tasks:
            task.cancel()
        self._tasks = []

    async def text_frame(self, text: str) -> None:
        """One frame as the websocket received it."""
        if len(text) > MAX_PARSED_FRAME_CHARS:
            await self.error("too_large", f"message longer than {self.max_chars} characters")
            return
        try:
            frame = safejson.loads(text)
        except BadInput as exc:
            await self.error(exc.code, exc.message)
            return
        await self.frame(frame)

    async def frame(self, frame: Any) -> None:
        """One parsed frame, whatever the transport."""
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

    def resume(self, session: Session) -> None:
        """Continue a session an earlier request opened (the HTTP transport: one request at a time)."""
        self.session = session
        self.visitor = session.visitor

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
        self.close()
        welcomed = asyncio.Event()
        if self.live:
            # Subscribed before the history is read, so nothing published in between is missed; frames
            # are forwarded only after the welcome, and those the history already held are skipped.
            subscribed = asyncio.Event()
            self._tasks = [asyncio.create_task(self._forward(conv.id, subscribed, welcomed))]
            await subscribed.wait()
        if replay_from is not None and not is_seq(replay_from):
            replay_from = None  # a malformed last_seq replays everything rather than failing
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
        welcomed.set()

    async def _forward(self, conv_id: str, subscribed: asyncio.Event, welcomed: asyncio.Event) -> None:
        async with self.events.subscribe(conv_id) as sub:
            subscribed.set()
            await welcomed.wait()
            while True:
                frame = await sub.get()
                if frame is RESYNC:
                    # Frames were lost (Redis restarted, or this socket fell behind): read them back.
                    after = f"{self.last_sent_seq[0]}-{self.last_sent_seq[1]}"
                    for entry in await self.store.history(conv_id, after=after):
                        await self._forward_one(entry.frame())
                    continue
                await self._forward_one(frame)

    async def _forward_one(self, frame: dict[str, Any]) -> None:
        seq = frame.get("seq")
        if isinstance(seq, str):
            key = _seq_key(seq)
            if key <= self.last_sent_seq:
                return  # already replayed with the history
            self.last_sent_seq = key
        await self.send(frame)

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
        job = _Job(
            text=text, display=display[: self.max_chars], client_id=client_id or uuid.uuid4().hex, session=self.session
        )
        if not self.live:
            _spawn(self._process(job))  # the HTTP request returns; the answer comes with the next poll
            return
        try:
            self.jobs.put_nowait(job)
        except asyncio.QueueFull:
            await self.error("rate_limited", "too many messages at once; wait for the answers", client_id)

    async def _work(self) -> None:
        while (job := await self.jobs.get()) is not None:
            await self._process(job)

    async def _process(self, job: _Job) -> None:
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


def _spawn(coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
    """A task that outlives its request or socket (asyncio keeps only weak references to tasks)."""
    task = asyncio.create_task(coro)
    _BACKGROUND.add(task)
    task.add_done_callback(_BACKGROUND.discard)
    return task


def _seq_key(seq: str) -> tuple[int, int]:
    ms, _, n = seq.partition("-")
    try:
        return int(ms), int(n or 0)
    except ValueError:
        return (0, 0)


class Admission:
    """How many web chat connections (sockets, long polls) are open, in all and per client address."""

    def __init__(self, per_ip: int, total: int) -> None:
        self.per_ip = per_ip
        self.total = total
        self._by_ip: dict[str, int] = {}
        self._open = 0

    def refusal(self, ip: str) -> str | None:
        """Why a new connection from `ip` is refused now, or None (and then it is counted)."""
        if self._open >= self.total:
            return "the chat is busy; please try again in a minute"
        if self._by_ip.get(ip, 0) >= self.per_ip:
            return "too many chat connections from your address"
        self._open += 1
        self._by_ip[ip] = self._by_ip.get(ip, 0) + 1
        metrics.WEBCHAT_CONNECTIONS.inc()
        return None

    def leave(self, ip: str) -> None:
        """A counted connection closed."""
        self._open -= 1
        metrics.WEBCHAT_CONNECTIONS.dec()
        left = self._by_ip.get(ip, 1) - 1
        if left:
            self._by_ip[ip] = left
        else:
            self._by_ip.pop(ip, None)

    @property
    def open(self) -> int:
        """Connections open now."""
        return self._open


class WebchatChannel(Channel):
    """The web chat widget's channel: one websocket per browser tab."""

    def __init__(
        self,
        sessions: Sessions,
        identities: IdentityVerifier,
        max_text_chars: int,
        admission: Admission | None = None,
    ) -> None:
        self.sessions = sessions
        self.identities = identities
        self.max_text_chars = max_text_chars
        self.admission = admission or Admission(per_ip=50, total=5000)
        self._context: ChannelContext | None = None

    @classmethod
    def name(cls) -> str:
        """The channel name: webchat."""
        return CHANNEL

    @classmethod
    def from_settings(cls, settings: Settings) -> WebchatChannel:
        """Always on; sessions are signed with the app's secret key."""
        sessions = Sessions(settings.secret("secret_key"), settings.session_max_age_days * 86400)
        admission = Admission(settings.webchat_max_per_ip, settings.webchat_max_connections)
        identities = IdentityVerifier(settings.secret("identity_secret"))
        return cls(sessions, identities, settings.max_text_chars, admission)

    async def start(self, context: ChannelContext) -> None:
        """Accept sockets from now on."""
        self._context = context

    async def stop(self) -> None:
        """Refuse new sockets."""
        self._context = None

    async def deliver(self, conversation: Conversation, message: OutboundMessage) -> None:
        """Nothing more to do: open sockets get every transcript entry through the conversation's pub/sub,
        and a tab that reconnects replays what it missed."""

    def _started(self) -> ChannelContext:
        if self._context is None:
            raise HTTPException(503, "the app is starting; try again shortly")
        return self._context

    def routes(self) -> APIRouter:
        """The widget's websocket, and the HTTP transport for pages whose policy allows no websocket."""
        router = APIRouter(tags=["web chat"])

        @router.websocket("/channels/webchat/ws")
        async def webchat_socket(ws: WebSocket) -> None:
            """The widget's websocket (protocol in the README)."""
            context = self._context
            if context is None:
                await ws.close(code=1013, reason="starting up; try again")
                return
            ip = ws.client.host if ws.client else "?"
            refused = self.admission.refusal(ip)
            await ws.accept()
            if refused is not None:
                # Accepted first, so that the browser gets the reason (a refused handshake is only "1006").
                await ws.close(code=1013, reason=refused)
                return
            try:
                await self._serve_socket(ws, context)
            finally:
                self.admission.leave(ip)

        def collecting(context: ChannelContext) -> tuple[WebchatConnection, list[dict[str, Any]]]:
            frames: list[dict[str, Any]] = []

            async def collect(frame: dict[str, Any]) -> None:
                frames.append(frame)

            conn = WebchatConnection(collect, context, self.sessions, self.identities, self.max_text_chars, live=False)
            return conn, frames

        @router.post("/channels/webchat/http/hello", response_model=FramesOut, openapi_extra=_body_of(HelloIn))
        async def http_hello(request: Request) -> FramesOut:
            """The HTTP transport's hello: the same frame as on the websocket; answers with the welcome.

            The body is JSON, sent as text/plain or application/json (text/plain spares the preflight).
            """
            body = await _parsed(request, HelloIn)
            conn, frames = collecting(self._started())
            await conn.frame({"type": "hello", **body.model_dump()})
            return FramesOut(frames=frames)

        @router.post("/channels/webchat/http/frames", response_model=FramesOut, openapi_extra=_body_of(FramesIn))
        async def http_frames(request: Request) -> FramesOut:
            """Frames of a session (message, button, identify, ping); messages are answered through the poll."""
            body = await _parsed(request, FramesIn)
            conn, frames = collecting(self._started())
            conn.resume(self._session(body.session))
            for frame in body.frames:
                if isinstance(frame, dict) and frame.get("type") == "hello":
                    await conn.error("bad_frame", "send hello to /channels/webchat/http/hello")
                    continue
                await conn.frame(frame)
            return FramesOut(frames=frames)

        @router.get("/channels/webchat/http/poll", response_model=FramesOut)
        async def http_poll(
            request: Request,
            session: str = Query(max_length=4096, description="The session token of the welcome."),
            after: Annotated[ClientSeq | None, Query(description="Last seq seen.")] = None,
            mode: str | None = Query(default=None, max_length=16, description="The mode the widget shows now."),
            wait: float = Query(default=25, ge=0, le=30, description="Seconds to wait for something new."),
        ) -> FramesOut:
            """What happened after `after`: transcript messages, a mode change, typing (long-poll)."""
            context = self._started()
            visitor = self._session(session).visitor
            ip = request.client.host if request.client else "?"
            refused = self.admission.refusal(ip)
            if refused is not None:
                raise HTTPException(429, refused, headers={"Retry-After": "5"})
            try:
                return await poll(context, visitor, request, after, mode, wait)
            finally:
                self.admission.leave(ip)

        async def poll(
            context: ChannelContext, visitor: str, request: Request, after: str | None, mode: str | None, wait: float
        ) -> FramesOut:
            conv = await context.store.find(CHANNEL, visitor)
            if conv is None:
                raise HTTPException(404, "no conversation for this session; send hello again")
            deadline = time.monotonic() + wait
            async with context.events.subscribe(conv.id) as sub:
                while True:
                    frames: list[dict[str, Any]] = [
                        e.frame() for e in await context.store.history(conv.id, after=after, count=200)
                    ]
                    current = await context.store.get(conv.id)
                    if current is not None and mode is not None and current.mode != mode:
                        frames.append({"type": "mode", "mode": current.mode, "agent_name": current.agent})
                    left = deadline - time.monotonic()
                    if frames or left <= 0 or await request.is_disconnected():
                        return FramesOut(frames=frames)
                    try:
                        async with asyncio.timeout(min(left, 5.0)):
                            event = await sub.get()
                    except TimeoutError:
                        continue
                    if event.get("type") == "typing":
                        return FramesOut(frames=[event])

        return router

    async def _serve_socket(self, ws: WebSocket, context: ChannelContext) -> None:
        async def to_socket(frame: dict[str, Any]) -> None:
            # A closed socket is not an error here: the browser reconnects and replays what it missed.
            with contextlib.suppress(RuntimeError, WebSocketDisconnect):
                await ws.send_text(json.dumps(frame, ensure_ascii=False))

        conn = WebchatConnection(to_socket, context, self.sessions, self.identities, self.max_text_chars)
        await conn.run(ws)

    def _session(self, token: str) -> Session:
        try:
            return self.sessions.verify(token)
        except BadInput as exc:
            raise HTTPException(401, exc.code) from exc


M = TypeVar("M", bound=BaseModel)
# The widget's frames are small; a body past this is refused before it is parsed.
MAX_HTTP_BODY = 64 * 1024


async def _parsed(request: Request, model: type[M]) -> M:
    """The JSON body as `model`, whatever the Content-Type; 413 when too large, 422 when malformed."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_HTTP_BODY:
            raise HTTPException(413, f"request body over {MAX_HTTP_BODY} bytes")
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        raise HTTPException(422, exc.errors(include_url=False, include_input=False)) from exc


def _body_of(model: type[BaseModel]) -> dict[str, Any]:
    """The request body's schema for the OpenAPI document (the route reads the body itself)."""
    return {"requestBody": {"content": {"application/json": {"schema": model.model_json_schema()}}, "required": True}}


class HelloIn(BaseModel):
    """The HTTP transport's hello (the websocket's hello frame without its type)."""

    session: str | None = Field(default=None, max_length=4096)
    locale: str | None = Field(default=None, max_length=35)
    last_seq: str | None = Field(default=None, max_length=64)
    identity: dict[str, Any] | None = None


class FramesIn(BaseModel):
    """Frames of an open session, for the HTTP transport."""

    session: str = Field(max_length=4096)
    frames: list[Any] = Field(max_length=20)


class FramesOut(BaseModel):
    """Frames for the widget, as the websocket would have sent them."""

    frames: list[dict[str, Any]]
