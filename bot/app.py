"""The app's web server: channels, engine callbacks, widget, demo page and agent console."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from rasa_sdk.executor import ActionExecutor
from redis.asyncio import Redis

import actions
from actions.deps import ActionServices, configure
from bot import agent_api, callbacks
from bot.agents import AgentDesk
from bot.assign import Assigner
from bot.crm import CRM
from bot.csat import CsatPolicy
from bot.engine_client import EngineClient
from bot.errors import AutoresponderError, EngineUnavailable
from bot.router import Router
from bot.services import Services
from bot.settings import PROJECT_ROOT, Settings
from bot.sla import SlaPolicy, SlaWatcher
from bot.store import ConversationStore
from bot.templates import TemplateRegistry
from connectors import enabled_connectors, rest, webchat
from connectors.base import Connector
from connectors.telegram import webhook as telegram_webhook

log = logging.getLogger(__name__)
STATIC = Path(__file__).resolve().parent / "static"
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


def create_app(settings: Settings, *, engine_token: str) -> FastAPI:
    """Build the app; connections are opened in the lifespan, not here."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if not settings.redis_url:
            raise AutoresponderError("AUTORESPONDER_REDIS_URL is not set; start the stack with `autoresponder up`")
        redis = Redis.from_url(settings.redis_url, decode_responses=True)
        await redis.ping()
        crm = CRM.from_url(settings.resolved_crm_url)
        crm.create_schema()
        if crm.seed_demo():
            log.info("demo CRM seeded at %s", settings.resolved_crm_url)
        executor = ActionExecutor()
        executor.register_package(actions)
        configure(
            ActionServices(
                crm=crm, followup_limit=settings.followup_limit, sentiment_threshold=settings.sentiment_threshold
            )
        )
        engine = EngineClient(settings.resolved_engine_url, engine_token, settings.engine_timeout_seconds)
        hours = settings.hours()
        store = ConversationStore(redis, first_response_seconds=settings.sla_first_response_minutes * 60, hours=hours)
        templates = TemplateRegistry.from_dir(PROJECT_ROOT / "responses", strict=settings.strict_templates)
        csat = CsatPolicy(
            enabled=settings.csat_enabled,
            low_score=settings.csat_low_score,
            window_seconds=settings.csat_window_hours * 3600,
        )
        sla = SlaPolicy(
            first_response=settings.sla_first_response_minutes * 60,
            escalate_after=settings.sla_escalate_after_minutes * 60,
            hours=hours,
        )
        router = Router(store, crm, engine, templates=templates, csat=csat, hours=hours)
        connectors = enabled_connectors(settings)
        services = Services(
            settings=settings,
            redis=redis,
            store=store,
            router=router,
            crm=crm,
            templates=templates,
            engine=engine,
            desk=AgentDesk(store, templates, engine, connectors, crm=crm, csat=csat),
            connectors=connectors,
        )
        app.state.services = services
        app.state.settings = settings
        app.state.engine_token = engine_token
        app.state.rest_token = settings.secret("rest_token")
        app.state.templates = templates
        app.state.crm = crm
        app.state.executor = executor
        app.state.store = store
        app.state.engine = engine
        app.state.router = router
        app.state.sessions = webchat.Sessions(settings.secret("secret_key"), settings.session_max_age_days * 86400)
        app.state.sla = sla
        watcher = SlaWatcher(store, sla, interval=settings.sla_check_seconds)
        watching = asyncio.create_task(watcher.run(), name="sla-watcher")
        assigner = Assigner(store, services.desk, interval=settings.assign_interval_seconds)
        app.state.assigner = assigner
        assigning = asyncio.create_task(assigner.run(), name="assigner")
        started: list[Connector] = []
        try:
            for connector in connectors.values():
                await connector.start(services)
                started.append(connector)
                log.info("channel %s started", connector.name())
            yield
        finally:
            watcher.stop()
            assigner.stop()
            await watching
            await assigning
            for connector in reversed(started):
                await connector.stop()
            await engine.close()
            await redis.aclose()
            crm.close()

    app = FastAPI(
        title="autoresponder",
        version="0.1.0",
        description="Omnichannel customer-service auto-responder. The REST channel is for company apps; "
        "the web chat widget talks over the websocket at /channels/webchat/ws.",
        lifespan=lifespan,
    )
    app.include_router(rest.router)
    app.include_router(webchat.router)
    app.include_router(callbacks.router)
    app.include_router(agent_api.router)
    app.include_router(telegram_webhook.router)

    @app.exception_handler(EngineUnavailable)
    async def _engine_down(request: Request, exc: EngineUnavailable) -> JSONResponse:
        return JSONResponse({"detail": "the assistant engine is unavailable; try again shortly"}, status_code=503)

    @app.get("/", include_in_schema=False)
    async def demo_page() -> FileResponse:
        return FileResponse(STATIC / "demo.html", media_type="text/html; charset=utf-8")

    @app.get("/widget.js", include_in_schema=False)
    async def widget() -> FileResponse:
        return FileResponse(
            STATIC / "widget.js",
            media_type="text/javascript; charset=utf-8",
            headers={"Cache-Control": "no-cache", "Access-Control-Allow-Origin": "*"},
        )

    @app.get("/console", include_in_schema=False)
    async def console_page() -> FileResponse:
        return FileResponse(STATIC / "console.html", media_type="text/html; charset=utf-8", headers=CONSOLE_HEADERS)

    @app.get("/console.js", include_in_schema=False)
    async def console_script() -> FileResponse:
        return FileResponse(STATIC / "console.js", media_type="text/javascript; charset=utf-8", headers=CONSOLE_HEADERS)

    @app.get("/console.css", include_in_schema=False)
    async def console_style() -> FileResponse:
        return FileResponse(STATIC / "console.css", media_type="text/css; charset=utf-8", headers=CONSOLE_HEADERS)

    @app.get("/healthz", tags=["ops"])
    async def healthz(request: Request) -> Response:
        """Liveness and readiness: Redis reachable and the engine answering."""
        redis_ok = bool(await request.app.state.store.redis.ping())
        engine_ok = await request.app.state.engine.ready()
        status = 200 if redis_ok and engine_ok else 503
        return JSONResponse({"redis": redis_ok, "engine": engine_ok}, status_code=status)

    return app
