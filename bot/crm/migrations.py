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

from sqlalchemy import Column, Connection, Engine, Integer, MetaData, String, Table, select
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


STEPS: tuple[Step, ...] = (Step(1, "customers, products, orders and service tickets", _initial_tables),)


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
