"""ASGI middleware of the app: plain ASGI (no per-request task), each looking at only what it must."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

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
