"""ASGI middleware of the app: plain ASGI (no per-request task), each looking at only what it must."""

from __future__ import annotations

import json
import time
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot import metrics, safejson
from bot.errors import BadInput

# The API docs pages run Swagger UI and ReDoc from the app's own files (fastapi-offline). This policy
# keeps every request they make on the app, so that a logo or font from a CDN is never fetched (the
# docs work on a network without internet); their inline bootstrap script and style need 'unsafe-inline'.
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; "
    "frame-ancestors 'none'"
)


class DocsPolicy:
    """Adds DOCS_CSP to the responses of the docs pages."""

    def __init__(self, app: ASGIApp, paths: tuple[str, ...] = ("/docs", "/redoc")) -> None:
        self.app = app
        self.paths = paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass everything through; add the header to the docs pages' response start."""
        if scope["type"] != "http" or scope.get("path") not in self.paths:
            await self.app(scope, receive, send)
            return

        async def with_policy(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"content-security-policy", DOCS_CSP.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_policy)


class PublicCors:
    """Cross-origin access for the widget's HTTP transport: any shop's page may call these routes.

    They carry no cookie (the session token is in the request), so `*` is safe; preflight requests are
    answered here, and every response (errors included) carries the header so the widget can read it.
    """

    def __init__(self, app: ASGIApp, prefix: str = "/channels/webchat/http/") -> None:
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer preflights; add the header to responses under the prefix."""
        if scope["type"] != "http" or not str(scope.get("path", "")).startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        if scope.get("method") == "OPTIONS":
            await send(
                {
                    "type": "http.response.start",
                    "status": 204,
                    "headers": [
                        (b"access-control-allow-origin", b"*"),
                        (b"access-control-allow-methods", b"GET, POST"),
                        (b"access-control-allow-headers", b"content-type"),
                        (b"access-control-max-age", b"86400"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return

        async def with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", []), (b"access-control-allow-origin", b"*")]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_cors)


PARSED_JSON = "autoresponder.parsed_json"


async def parsed_json(request: Request) -> Any:
    """The request's JSON body as BodyGuard parsed and checked it (parsed here when it did not run)."""
    if PARSED_JSON in request.scope:
        return request.scope[PARSED_JSON]
    return await request.json()


class BodyGuard:
    """Request bodies read with a cap while they stream (Content-Length or not), and JSON checked once.

    A body over `max_bytes` gets 413 before the route runs; a JSON body (application/json, or text/plain
    on the web chat's HTTP transport) that `bot.safejson` refuses (invalid, NaN, too deep, lone
    surrogates) gets 400 with the reason. The route then reads the same bytes as if nothing happened.
    """

    def __init__(self, app: ASGIApp, max_bytes: int = 1024 * 1024) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Buffer, check, replay."""
        if scope["type"] != "http" or scope.get("method") in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await _refuse(send, 413, "too_large", f"request body over {self.max_bytes} bytes")
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await _refuse(send, 413, "too_large", f"request body over {self.max_bytes} bytes")
                return
            chunks.append(chunk)
            more = bool(message.get("more_body"))
        body = b"".join(chunks)
        kind = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        path = str(scope.get("path", ""))
        checks_json = kind == b"application/json" or (
            kind == b"text/plain" and path.startswith("/channels/webchat/http/")
        )
        if body and checks_json:
            try:
                scope[PARSED_JSON] = safejson.loads(body)  # routes read it with parsed_json(), not again
            except BadInput as exc:
                await _refuse(send, 422, exc.code, exc.message)  # a malformed body, as the contract says
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _refuse(send: Send, status: int, code: str, message: str) -> None:
    body = json.dumps({"detail": message, "code": code}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


class RequestMetrics:
    """Times every HTTP request into the request histogram, labelled by the route's template
    (`/agent/conversations/{conv_id}`), never the raw path, so a stranger cannot create series."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass through; observe the duration and status class when the response starts."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500  # an exception before the response started is answered as a 500 further out

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            metrics.HTTP.labels(scope.get("method", ""), route, metrics.status_class(status)).observe(
                time.perf_counter() - start
            )
