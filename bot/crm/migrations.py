"""Versioned schema changes of the CRM database, applied in order, each once, in its own transaction.

The database records the version it is at in `schema_version`; `migrate` applies every later step.
A database created before versioning (tables present, no version) is at step 1's state already,
because step 1 creates only the tables that are missing. A new step is appended to `STEPS`, never
edited once released.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    DateTime,
    Engine,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    select,
    text,
)
from sqlalchemy.exc import IntegrityError

from bot.crm.models import Base

log = logging.getLogger(__name__)

_versions = MetaData()
SCHEMA_VERSION = Table(
    "schema_version",
    _versions,
    Column("version", Integer, primary_key=True),
    Column("description", String(200), nullable=False),
)


@dataclass(frozen=True)
class Step:
    """One schema change."""

    version: int
    description: str
    apply: Callable[[Connection], None]


def _initial_tables(conn: Connection) -> None:
    tables = [Base.metadata.tables[name] for name in ("customers", "products", "orders", "tickets")]
    Base.metadata.create_all(conn, tables=tables)


# Step 2's tables as they were when it was released: later changes to `bot.accounts.models` come as
# new steps, so this definition is frozen (tests check that the models still match it).
_accounts = MetaData()
_AGENT_ACCOUNTS = Table(
    "agent_accounts",
    _accounts,
    Column("id", Integer, primary_key=True),
    Column("name", String(80), nullable=False),
    Column("name_key", String(80), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    Column("password_hash", String(255), nullable=False),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("failed_signins", Integer, nullable=False, default=0),
    Column("locked_until", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("last_signin_at", DateTime(timezone=True)),
    sqlite_autoincrement=True,
)
_API_TOKENS = Table(
    "api_tokens",
    _accounts,
    Column("id", Integer, primary_key=True),
    Column("account_id", Integer, ForeignKey("agent_accounts.id"), nullable=False, index=True),
    Column("name", String(80), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_used_at", DateTime(timezone=True)),
    Column("revoked_at", DateTime(timezone=True)),
    sqlite_autoincrement=True,
)
_AUDIT_LOG = Table(
    "audit_log",
    _accounts,
    Column("id", Integer, primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False, index=True),
    Column("actor", String(80)),
    Column("actor_id", Integer),
    Column("role", String(16)),
    Column("action", String(40), nullable=False, index=True),
    Column("conversation_id", String(64), index=True),
    Column("target", String(120)),
    Column("detail", Text, nullable=False, default=""),
    Column("ip", String(64)),
    Column("via", String(16), nullable=False),
    sqlite_autoincrement=True,
)
Index("ix_audit_log_actor", _AUDIT_LOG.c.actor)


def _accounts_and_audit(conn: Connection) -> None:
    _accounts.create_all(conn)
    # Append-only at the database too: an UPDATE or DELETE of an audit row fails, whoever sends it.
    schema = (conn.get_execution_options().get("schema_translate_map") or {}).get(None)
    table = f'"{schema}".audit_log' if schema else "audit_log"
    if conn.dialect.name == "sqlite":
        for verb in ("UPDATE", "DELETE"):
            conn.execute(
                text(
                    f"CREATE TRIGGER audit_log_no_{verb.lower()} BEFORE {verb} ON audit_log "
                    "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"
                )
            )
    elif conn.dialect.name == "postgresql":
        function = f'"{schema}".audit_log_append_only' if schema else "audit_log_append_only"
        conn.execute(
            text(
                f"CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$"
            )
        )
        conn.execute(
            text(
                f"CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON {table} "
                f"FOR EACH ROW EXECUTE FUNCTION {function}()"
            )
        )


STEPS: tuple[Step, ...] = (
    Step(1, "customers, products, orders and service tickets", _initial_tables),
    Step(2, "agent accounts, API tokens and the append-only audit log", _accounts_and_audit),
)


def current_version(conn: Connection) -> int:
    """The version the database is at (0: empty or never versioned)."""
    SCHEMA_VERSION.create(conn, checkfirst=True)
    versions = list(conn.execute(select(SCHEMA_VERSION.c.version)).scalars())
    return max(versions, default=0)


def migrate(engine: Engine) -> list[int]:
    """Apply the pending steps; returns the versions applied (none when another replica was first)."""
    applied: list[int] = []
    for step in STEPS:
        try:
            with engine.begin() as conn:
                if current_version(conn) >= step.version:
                    continue
                step.apply(conn)
                conn.execute(SCHEMA_VERSION.insert().values(version=step.version, description=step.description))
        except IntegrityError:
            # Two replicas starting together: the other one recorded this step first.
            with engine.connect() as conn:
                if current_version(conn) >= step.version:
                    continue
            raise
        applied.append(step.version)
        log.info("CRM schema migrated to version %s: %s", step.version, step.description)
    return applied
