"""Settings, read once from `AUTORESPONDER_*` environment variables and an optional `.env` file."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.hours import BusinessHours, ScheduleError

PROJECT_ROOT = Path(__file__).resolve().parent.parent


ENV_CONFIG = SettingsConfigDict(env_prefix="AUTORESPONDER_", env_file=".env", env_file_encoding="utf-8", extra="ignore")


class Settings(BaseSettings):
    """The app's core settings; each channel reads its own (`connectors/*/settings.py`) the same way."""

    model_config = ENV_CONFIG

    http_host: str = "127.0.0.1"
    http_port: int = 8000
    public_url: str | None = Field(
        default=None, description="Base URL customers reach the app at (default http://HOST:PORT)."
    )
    redis_url: str | None = None
    # The engine's bind address: loopback unless the app reaches it from another host (a container, a pod).
    engine_host: str = "127.0.0.1"
    # Where the engine calls the app back (NLG, actions); unset: http://127.0.0.1:HTTP_PORT.
    callback_url: str | None = None
    # Redis Sentinel: "host:port,host:port,…" of the sentinels and the name of the service they watch. When
    # set, the app asks them for the current primary (and follows a fail-over); the database number and
    # password still come from redis_url when it is given (its host is then ignored).
    redis_sentinels: str | None = None
    redis_sentinel_service: str = "autoresponder"
    # Replicas that must have a customer's message and its answer before the customer is told so (Redis
    # WAIT); 1 with a primary and a replica, so that a fail-over loses nothing that was acknowledged.
    redis_min_replicas: int = 0
    rest_token: str | None = None
    # Bearer token Prometheus must send to read /metrics; unset: /metrics is open like /healthz (it holds
    # counts and timings, no customer data).
    metrics_token: str | None = None
    crm_url: str | None = None
    # Load the demo shop (customers C202405001…, orders DD202405001…) into an empty CRM at `autoresponder up`.
    demo_data: bool = True
    engine_port: int | None = None
    engine_url: str | None = None
    engine_token: str | None = None
    secret_key: str | None = None
    # The per-shop secret the shop's backend signs logged-in customers' ids with (web chat identity).
    identity_secret: str | None = None
    var_dir: Path = PROJECT_ROOT / "var"
    model_dir: Path = PROJECT_ROOT / "models"
    engine_dir: Path = PROJECT_ROOT / "engine"
    max_text_chars: int = 5000
    # Any request body past this is refused (413) while it streams, with or without Content-Length.
    max_body_bytes: int = 1024 * 1024
    # Days the engine keeps a conversation's tracker (its every text) after the last message.
    tracker_ttl_days: float = 30.0
    # Events of a conversation's latest session the engine reads per turn (about 10 per turn; the state,
    # slots included, is carried over): a turn's cost stays flat however long the conversation gets. The
    # policies read the last few turns (the longest rule, a run of follow-ups); each event in the window
    # costs every turn (read, and the rule policy's states): 150 made turn 200 1.29x turn 4, 80 about 1.1x.
    tracker_window_events: int = 80
    # Redis connections the app's pool may open (web chat sockets share one pub/sub connection).
    redis_max_connections: int = 50
    # Web chat connections (sockets and HTTP polls) at once: from one client address, and in all.
    webchat_max_per_ip: int = 50
    # permessage-deflate on web chat sockets (zlib buffers per socket; chat frames are small).
    webchat_compression: bool = False
    webchat_max_connections: int = 5000
    session_max_age_days: int = 30
    dedupe_ttl_seconds: int = 7 * 24 * 3600
    engine_timeout_seconds: float = 60.0
    # Engine processes (Sanic workers of `rasa run`), each with the model loaded (about 1 GB each); they
    # share the port, the Redis tracker store and the Redis lock store.
    engine_workers: int = Field(default=1, ge=1, le=32)
    strict_templates: bool = False
    log_level: str = "info"
    # Agent sign-in: sessions end after this long idle, or this long after sign-in whatever happens;
    # attempts per client address and per account name in a window; wrong passwords in a row that
    # lock an account, and for how long.
    session_idle_minutes: float = 30.0
    session_max_hours: float = 12.0
    signin_ip_limit: int = 30
    signin_account_limit: int = 10
    signin_window_seconds: float = 300.0
    signin_lock_after: int = 5
    signin_lock_minutes: float = 15.0
    # A guest's second factor (bot.access): wrong answers that lock an order for the conversation, and for how long.
    guest_factor_attempts: int = 3
    guest_lock_minutes: int = 30
    # ...and wrong answers for one order across every guest's conversations that lock it for every guest.
    guest_order_factor_attempts: int = Field(default=10, ge=1)
    # Handoff thresholds (read by the engine-side decision through the action endpoint).
    followup_limit: int = 3
    sentiment_threshold: float = 0.5
    # Agent desk service levels: an agent's first answer is due this many minutes after a handoff; a
    # handoff still unanswered this many minutes after that is escalated to top priority.
    # When agents are at work ("mon-fri 09:00-18:00; sat 10:00-16:00"; empty: always), in which time
    # zone, and closed dates (comma-separated ISO dates). SLA timers count only open time.
    business_hours: str = ""
    timezone: str = "Asia/Shanghai"
    holidays: str = ""
    # How often the recovery pass looks for messages nobody is answering (a crashed process, the engine down).
    recovery_interval_seconds: float = 2.0
    # How often waiting conversations are given to available agents (automatic assignment).
    assign_interval_seconds: float = 3.0
    sla_first_response_minutes: float = 30.0
    sla_escalate_after_minutes: float = 60.0
    sla_check_seconds: float = 15.0
    # Satisfaction survey when an agent hands back: on/off, the score at or below which a supervisor
    # gets the conversation back as a follow-up, and how long an answer to the survey counts.
    csat_enabled: bool = True
    csat_low_score: int = 2
    csat_window_hours: float = 24.0
    # The review list (console: "Review"): messages answered below this confidence (or by the fallback)
    # or that led to a follow-up or a handoff; how many entries it keeps; where assigned examples go.
    review_enabled: bool = True
    review_confidence_threshold: float = Field(default=0.6, ge=0.0, le=1.0)
    review_max_items: int = Field(default=2000, ge=10)
    review_file: Path = PROJECT_ROOT / "data" / "nlu" / "reviewed" / "reviewed.yml"

    @model_validator(mode="after")
    def _readable_schedule(self) -> Settings:
        """A business-hours setting that cannot be read stops the app at start, saying why."""
        self.hours()
        return self

    def hours(self) -> BusinessHours:
        """The business hours these settings describe."""
        try:
            return BusinessHours.parse(self.business_hours, self.timezone, self.holidays.split(","))
        except ScheduleError as exc:
            raise ValueError(f"AUTORESPONDER_BUSINESS_HOURS / _TIMEZONE / _HOLIDAYS: {exc}") from exc

    @property
    def base_url(self) -> str:
        """URL of the app as customers and the engine reach it."""
        return (self.public_url or f"http://{self.http_host}:{self.http_port}").rstrip("/")

    @property
    def secure_cookies(self) -> bool:
        """Whether the app is reached over https, so that cookies must be marked Secure."""
        return self.base_url.startswith("https://")

    @property
    def resolved_engine_port(self) -> int:
        """Engine port: explicit, or the app's port plus one so two stacks can sit side by side."""
        return self.engine_port or self.http_port + 1

    @property
    def resolved_engine_url(self) -> str:
        """Base URL of the engine's HTTP API."""
        return (self.engine_url or f"http://127.0.0.1:{self.resolved_engine_port}").rstrip("/")

    @property
    def resolved_callback_url(self) -> str:
        """Where the engine reaches the app's NLG and action endpoints: explicit (a load balancer or a
        service in front of several app replicas), else this app on loopback."""
        return (self.callback_url or f"http://127.0.0.1:{self.http_port}").rstrip("/")

    @property
    def resolved_crm_url(self) -> str:
        """Database URL of the CRM: SQLite under var/ unless configured."""
        return self.crm_url or f"sqlite:///{self.var_dir / 'crm.sqlite3'}"

    def secret(self, name: str, explicit: str | None = None) -> str:
        """A persistent random secret under var/ (created on first use) unless set explicitly."""
        explicit = explicit or {
            "rest_token": self.rest_token,
            "secret_key": self.secret_key,
            "identity_secret": self.identity_secret,
        }.get(name)
        if explicit:
            return explicit
        path = self.var_dir / "secrets" / name
        if path.exists():
            if path.stat().st_mode & 0o077:
                path.chmod(0o600)  # a copy made by hand may have lost its mode
            return path.read_text().strip()
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        path.parent.chmod(0o700)
        value = secrets.token_urlsafe(24)
        # Written whole to a file only the owner can read, then linked into place: of two processes starting
        # together one wins, the other reads the winner's (link fails when the name exists).
        draft = path.with_name(f".{name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(value)
        try:
            os.link(draft, path)
        except FileExistsError:
            value = path.read_text().strip()
        finally:
            draft.unlink()
        return value


def write_secret(path: Path, value: str) -> None:
    """Write a secret file readable by its owner only, from the first byte (no world-readable moment)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(value)
    path.chmod(0o600)
