"""The app's web server: the channels' routes, the engine callbacks, the agent API, pages and health."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from bot.settings import Settings
from bot.web import container, errors
from bot.web.middleware import BodyGuard, DocsPolicy, PublicCors, RequestMetrics
from bot.web.routes import admin, agents, auth, callbacks, pages, review
from connectors import HasRoutes, enabled_channels


def create_app(settings: Settings, *, engine_token: str) -> FastAPI:
    """Build the app; connections are opened in the lifespan, not here."""
    channels = enabled_channels(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with container.running(settings, engine_token=engine_token, channels=channels.values()) as built:
            app.state.container = built
            try:
                yield
            finally:
                app.state.container = None

    # Swagger UI and ReDoc from the fastapi-offline package: /docs and /redoc need no CDN.
    app = FastAPIOffline(
        title="autoresponder",
        version="0.1.0",
        description="Omnichannel customer-service auto-responder. The REST channel is for company apps; "
        "the web chat widget talks over the websocket at /channels/webchat/ws.",
        lifespan=lifespan,
    )
    app.state.container = None
    app.state.engine_token = engine_token
    app.state.metrics_token = settings.metrics_token
    errors.install(app)
    app.add_middleware(BodyGuard, max_bytes=settings.max_body_bytes)
    app.add_middleware(DocsPolicy)
    app.add_middleware(PublicCors)  # its header also reaches the guard's refusals
    app.add_middleware(RequestMetrics)  # outermost: every request is timed, refusals included
    for channel in channels.values():
        if isinstance(channel, HasRoutes):
            app.include_router(channel.routes())
    app.include_router(callbacks.router)
    app.include_router(auth.router)
    app.include_router(agents.router)
    app.include_router(review.router)
    app.include_router(admin.router)
    app.include_router(pages.router)
    return app
