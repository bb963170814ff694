"""The app's pages and health: the demo page, the widget script, the agent console, /healthz."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
from collections.abc import Awaitable
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response

from bot import metrics
from bot.conversations.model import SKILLS

STATIC = Path(__file__).resolve().parent.parent / "static"
# The agent console runs only its own script and stylesheet and talks only to this app: no inline
# script or style, no other origin, no framing, no form posts (the sign-in form is handled in script).
CONSOLE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
CONSOLE_HEADERS = {
    "Content-Security-Policy": CONSOLE_CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

router = APIRouter()


@router.get("/", include_in_schema=False)
async def demo_page() -> FileResponse:
    """The demo shop page with the widget."""
    return FileResponse(STATIC / "demo.html", media_type="text/html; charset=utf-8")


@router.get("/widget.js", include_in_schema=False)
async def widget() -> FileResponse:
    """The widget script shops embed."""
    return FileResponse(
        STATIC / "widget.js",
        media_type="text/javascript; charset=utf-8",
        headers={"Cache-Control": "no-cache", "Access-Control-Allow-Origin": "*"},
    )


@router.get("/widget.css", include_in_schema=False)
async def widget_style() -> FileResponse:
    """The widget's stylesheet (a file of its own, so shops need no 'unsafe-inline' in their CSP)."""
    return FileResponse(
        STATIC / "widget.css",
        media_type="text/css; charset=utf-8",
        headers={"Cache-Control": "no-cache", "Access-Control-Allow-Origin": "*"},
    )


@router.get("/console", include_in_schema=False)
async def console_page() -> FileResponse:
    """The agent console."""
    return FileResponse(STATIC / "console.html", media_type="text/html; charset=utf-8", headers=CONSOLE_HEADERS)


@router.get("/console.js", include_in_schema=False)
async def console_script() -> FileResponse:
    """The agent console's script."""
    return FileResponse(STATIC / "console.js", media_type="text/javascript; charset=utf-8", headers=CONSOLE_HEADERS)


@router.get("/console.css", include_in_schema=False)
async def console_style() -> FileResponse:
    """The agent console's stylesheet."""
    return FileResponse(STATIC / "console.css", media_type="text/css; charset=utf-8", headers=CONSOLE_HEADERS)


HEALTH_TIMEOUT_SECONDS = 2.0


async def _within(check: Awaitable[object], seconds: float) -> bool:
    """Whether a dependency answers in time (any error, or silence, is "down")."""
    try:
        async with asyncio.timeout(seconds):
            return bool(await check)
    except Exception:  # a health check reports failures, whatever they are
        return False


@router.get("/healthz", tags=["ops"])
async def healthz(request: Request) -> Response:
    """Readiness: 200 when Redis and the engine answer, else 503 naming what is down; within about 2 s."""
    found = getattr(request.app.state, "container", None)
    if found is None:
        return JSONResponse({"redis": False, "engine": False, "starting": True}, status_code=503)
    redis_ok, engine_ok = await asyncio.gather(
        _within(found.redis.ping(), HEALTH_TIMEOUT_SECONDS), _within(found.engine.ready(), HEALTH_TIMEOUT_SECONDS)
    )
    down = [name for name, ok in (("redis", redis_ok), ("engine", engine_ok)) if not ok]
    body = {"redis": redis_ok, "engine": engine_ok, **({"down": down} if down else {})}
    return JSONResponse(body, status_code=503 if down else 200)


@router.get("/livez", tags=["ops"])
async def livez() -> Response:
    """Liveness: the process serves requests (restart it when this fails; Redis or the engine being down
    is not a reason to)."""
    return JSONResponse({"alive": True})


@router.get("/metrics", tags=["ops"], response_class=PlainTextResponse)
async def prometheus_metrics(request: Request) -> Response:
    """Prometheus metrics of this process (text format); with `AUTORESPONDER_METRICS_TOKEN` set, only
    for `Authorization: Bearer <that token>`."""
    expected = getattr(request.app.state, "metrics_token", None)
    if expected:
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {expected}".encode()):
            return JSONResponse({"detail": "a valid metrics token is required"}, status_code=401)
    found = getattr(request.app.state, "container", None)
    if found is not None:
        for skill in SKILLS:
            with contextlib.suppress(Exception):  # a scrape while Redis is down still shows the rest
                metrics.QUEUE_LENGTH.labels(str(skill)).set(await found.store.queue_length(skill))
    return Response(metrics.exposition(), media_type=metrics.CONTENT_TYPE)
