"""The composition root: builds the app's object graph once; the app, the tests and the benchmarks use it.

`build` wires the parts from settings and the three external systems (Redis, the CRM, the engine),
which callers pass in so that tests can hand over a Redis of their own or a stub engine. `running`
opens those systems the way the app does, starts the background work and the channels, and closes
everything again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlparse

from rasa_sdk.executor import ActionExecutor
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool

import actions
import connectors
from actions.deps import ActionServices, configure
from bot.access.guard import GuardInterceptor
from bot.access.state import AccessPolicy, OrderAccess
from bot.accounts.directory import Accounts
from bot.accounts.repository import AccountRepository
from bot.accounts.service import AccountService, LockPolicy
from bot.accounts.sessions import Sessions, SignInLimits
from bot.conversations.channels import Channel, ChannelContext, Channels
from bot.conversations.events import EventHub
from bot.conversations.ports import Engine
from bot.conversations.recovery import Recovery
from bot.conversations.router import Router
from bot.conversations.store import ConversationStore
from bot.crm.directory import AsyncCRM
from bot.crm.repository import CRM
from bot.desk.agents import AgentDesk
from bot.desk.assign import Assigner
from bot.desk.csat import CsatPolicy, SurveyInterceptor
from bot.desk.notices import AfterHoursNotice
from bot.desk.review import ReviewListener, ReviewQueue
from bot.desk.reviewed import ReviewedExamples, domain_intents
from bot.desk.sla import SlaClock, SlaPolicy, SlaWatcher
from bot.desk.stats import DeskStats
from bot.engine.client import EngineClient
from bot.errors import AutoresponderError
from bot.hours import BusinessHours
from bot.settings import PROJECT_ROOT, Settings
from bot.templates import TemplateRegistry

log = logging.getLogger(__name__)


@dataclass
class Container:
    """Every long-lived part of the app, built once."""

    settings: Settings
    redis: Any
    crm: CRM
    customers: AsyncCRM
    engine: Engine
    templates: TemplateRegistry
    store: ConversationStore
    router: Router
    channels: Channels
    desk: AgentDesk
    sla: SlaPolicy
    csat: CsatPolicy
    hours: BusinessHours
    watcher: SlaWatcher
    assigner: Assigner
    stats: DeskStats
    executor: ActionExecutor
    events: EventHub
    recovery: Recovery
    accounts: Accounts
    account_service: AccountService
    review: ReviewQueue
    engine_token: str = ""
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def channel_context(self) -> ChannelContext:
        """What channels are started with."""
        return ChannelContext(
            router=self.router,
            store=self.store,
            templates=self.templates,
            customers=self.customers,
            redis=self.redis,
            events=self.events,
        )


def build(
    settings: Settings,
    *,
    redis: Redis,
    crm: CRM,
    engine: Engine,
    channels: Iterable[Channel] = (),
    engine_token: str = "",
    hours: BusinessHours | None = None,
    accounts: AccountRepository | None = None,
) -> Container:
    """Wire the app's parts; nothing is started and no connection is opened here.

    The agent accounts live in the CRM's database unless another repository is given.
    """
    hours = hours or settings.hours()
    templates = TemplateRegistry.from_dir(
        PROJECT_ROOT / "responses", strict=settings.strict_templates, variants=connectors.variants()
    )
    customers = AsyncCRM(crm)
    store = ConversationStore(redis, min_replicas=settings.redis_min_replicas)
    sla = SlaPolicy(
        first_response=settings.sla_first_response_minutes * 60,
        escalate_after=settings.sla_escalate_after_minutes * 60,
        hours=hours,
    )
    csat = CsatPolicy(
        enabled=settings.csat_enabled,
        low_score=settings.csat_low_score,
        window_seconds=settings.csat_window_hours * 3600,
    )
    registry = Channels(channels, store)
    access = OrderAccess(
        redis,
        AccessPolicy(
            max_failures=settings.guest_factor_attempts,
            lock_seconds=settings.guest_lock_minutes * 60,
            order_max_failures=settings.guest_order_factor_attempts,
        ),
    )
    examples = ReviewedExamples(settings.review_file, domain_intents(PROJECT_ROOT / "domain.yml"))
    review = ReviewQueue(redis, examples, max_items=settings.review_max_items)
    router = Router(
        store,
        customers,
        engine,
        templates,
        interceptors=[SurveyInterceptor(store, templates, csat), GuardInterceptor(access, customers, store, templates)],
        listeners=[SlaClock(sla), AfterHoursNotice(templates, hours, registry)],
        answer_listeners=[ReviewListener(review, settings.review_confidence_threshold)]
        if settings.review_enabled
        else [],
    )
    desk = AgentDesk(store, templates, engine, registry, customers, csat=csat)
    account_directory = Accounts(accounts or AccountRepository(crm.bind))
    account_service = AccountService(
        account_directory,
        Sessions(redis, idle_seconds=settings.session_idle_minutes * 60, max_seconds=settings.session_max_hours * 3600),
        SignInLimits(
            redis,
            per_ip=settings.signin_ip_limit,
            per_name=settings.signin_account_limit,
            window_seconds=settings.signin_window_seconds,
        ),
        LockPolicy(after=settings.signin_lock_after, seconds=settings.signin_lock_minutes * 60),
    )
    executor = ActionExecutor()
    executor.register_package(actions)
    configure(
        ActionServices(
            crm=crm,
            access=access,
            followup_limit=settings.followup_limit,
            sentiment_threshold=settings.sentiment_threshold,
        )
    )
    return Container(
        settings=settings,
        redis=redis,
        crm=crm,
        customers=customers,
        engine=engine,
        templates=templates,
        store=store,
        router=router,
        channels=registry,
        desk=desk,
        sla=sla,
        csat=csat,
        hours=hours,
        watcher=SlaWatcher(store, sla, interval=settings.sla_check_seconds),
        assigner=Assigner(store, desk, interval=settings.assign_interval_seconds),
        stats=DeskStats(store, sla),
        executor=executor,
        events=EventHub(redis.pubsub),
        recovery=Recovery(router, registry, interval=settings.recovery_interval_seconds),
        accounts=account_directory,
        account_service=account_service,
        review=review,
        engine_token=engine_token,
    )


def connect_redis(settings: Settings) -> Redis:
    """The app's Redis client: a bounded pool that waits for a free connection rather than failing, short
    timeouts so that a dead Redis is noticed, and health checks so that connections broken by a restart
    are replaced instead of failing a request. With sentinels configured, the pool asks them for the
    primary and follows a fail-over (a command on a demoted primary fails once, as a connection error)."""
    options: dict[str, Any] = {
        "decode_responses": True,
        "max_connections": settings.redis_max_connections,
        "timeout": 5,
        "socket_connect_timeout": 2,
        "socket_timeout": 10,
        "health_check_interval": 15,
    }
    if settings.redis_sentinels:
        return _sentinel_client(settings, options)
    assert settings.redis_url
    return Redis(connection_pool=BlockingConnectionPool.from_url(settings.redis_url, **options))


class _BlockingSentinelPool(SentinelConnectionPool, BlockingConnectionPool):
    """Sentinel's pool (it finds the primary) with the blocking pool's bound (callers wait for a free
    connection instead of failing)."""


def sentinel_addresses(spec: str) -> list[tuple[str, int]]:
    """ "host:port,host:port" as (host, port) pairs; a bad entry is a configuration error."""
    found: list[tuple[str, int]] = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        host, _, port = part.rpartition(":")
        if not host or not port.isdigit():
            raise AutoresponderError(f"AUTORESPONDER_REDIS_SENTINELS: {part!r} is not host:port")
        found.append((host.strip("[]"), int(port)))
    if not found:
        raise AutoresponderError("AUTORESPONDER_REDIS_SENTINELS names no sentinel")
    return found


def _sentinel_client(settings: Settings, options: dict[str, Any]) -> Redis:
    assert settings.redis_sentinels
    if settings.redis_url:
        parsed = urlparse(settings.redis_url)
        options["db"] = int((parsed.path or "/0").lstrip("/") or 0)
        if parsed.password:
            options["password"] = unquote(parsed.password)
        if parsed.username:
            options["username"] = unquote(parsed.username)
    sentinel = Sentinel(  # type: ignore[no-untyped-call]
        sentinel_addresses(settings.redis_sentinels),
        sentinel_kwargs={"socket_connect_timeout": 2, "socket_timeout": 2},
    )
    client: Redis = sentinel.master_for(
        settings.redis_sentinel_service, connection_pool_class=_BlockingSentinelPool, **options
    )
    return client


async def close_redis(redis: Redis) -> None:
    """Close the client's pool, and the sentinels' connections when it asks sentinels for the primary."""
    manager = getattr(redis.connection_pool, "sentinel_manager", None)
    await redis.aclose()
    for sentinel in getattr(manager, "sentinels", []):
        await sentinel.aclose()


@asynccontextmanager
async def running(settings: Settings, *, engine_token: str, channels: Iterable[Channel]) -> AsyncIterator[Container]:
    """Open Redis, the CRM and the engine client, start the desk's background work and the channels;
    stop and close them all on the way out."""
    if not settings.redis_url and not settings.redis_sentinels:
        raise AutoresponderError("AUTORESPONDER_REDIS_URL is not set; start the stack with `autoresponder up`")
    redis = connect_redis(settings)
    await redis.ping()
    crm = CRM.from_url(settings.resolved_crm_url)
    crm.create_schema()  # the demo data, if wanted, is loaded by `autoresponder up`, not by every replica
    engine = EngineClient(settings.resolved_engine_url, engine_token, settings.engine_timeout_seconds)
    container = build(settings, redis=redis, crm=crm, engine=engine, channels=channels, engine_token=engine_token)
    await container.events.start()
    container._tasks = [
        asyncio.create_task(container.watcher.run(), name="sla-watcher"),
        asyncio.create_task(container.assigner.run(), name="assigner"),
        asyncio.create_task(container.recovery.run(), name="recovery"),
    ]
    started: list[Channel] = []
    try:
        context = container.channel_context()
        for channel in container.channels:
            await channel.start(context)
            started.append(channel)
            log.info("channel %s started", channel.name())
        yield container
    finally:
        container.watcher.stop()
        container.assigner.stop()
        container.recovery.stop()
        for task in container._tasks:
            await task
        for channel in reversed(started):
            await channel.stop()
        await container.events.stop()
        await engine.close()
        await close_redis(redis)
        crm.close()
