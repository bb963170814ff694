"""The CRM's tables (SQLAlchemy 2.0 declarative mapping); nothing outside `bot.crm` uses them."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import BigInteger, Date, DateTime, Dialect, ForeignKey, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on SQLite (no time zones) as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Refuse naive datetimes: a silent guess at their zone would shift every date shown."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"{value!r} has no time zone; pass an aware datetime (e.g. tzinfo=UTC)")
        utc = value.astimezone(UTC)
        # SQLite stores the text as given; keep one zone there so that ordering by it works.
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Give back UTC whatever the backend returned."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base of the CRM tables."""


class Customer(Base):
    """A customer row (internal: callers get `CustomerInfo`)."""

    __tablename__ = "customers"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    surname: Mapped[str] = mapped_column(String(16))
    surname_en: Mapped[str] = mapped_column(String(32))
    given_name: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(8))  # 先生 / 女士
    email: Mapped[str] = mapped_column(String(254), unique=True)
    phone: Mapped[str] = mapped_column(String(20), unique=True)  # normalised, see normalise_phone
    vip: Mapped[bool] = mapped_column(default=False)
    vip_level: Mapped[int] = mapped_column(default=0)
    locale: Mapped[str] = mapped_column(String(16), default="zh-CN")
    # Telegram ids exceed 32 bits.
    telegram_user_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)


class Product(Base):
    """A product row (internal: callers get `ProductInfo`)."""

    __tablename__ = "products"

    sku: Mapped[str] = mapped_column(String(32), primary_key=True)
    name_zh_cn: Mapped[str] = mapped_column(String(100))
    name_zh_tw: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(100))
    warranty_months: Mapped[int]
    # Money as integer cents: exact on every backend, and SQLite has no decimal type.
    price_cents: Mapped[int]


class Order(Base):
    """An order row (internal: callers get `OrderInfo`)."""

    __tablename__ = "orders"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), index=True)
    status: Mapped[str] = mapped_column(String(16))
    product_sku: Mapped[str] = mapped_column(ForeignKey("products.sku"))
    quantity: Mapped[int]
    amount_cents: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    carrier: Mapped[str | None] = mapped_column(String(8))
    tracking_number: Mapped[str | None] = mapped_column(String(40))
    eta: Mapped[date | None] = mapped_column(Date)
    ordered_at: Mapped[datetime] = mapped_column(UTCDateTime)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    shipped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    refund_status: Mapped[str | None] = mapped_column(String(16))
    refund_amount_cents: Mapped[int | None]
    refunded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancel_reason: Mapped[str | None] = mapped_column(String(200))
    shipping_city: Mapped[str] = mapped_column(String(64))
    shipping_address: Mapped[str] = mapped_column(String(200))

    product: Mapped[Product] = relationship(lazy="joined", innerjoin=True)


class Ticket(Base):
    """A service ticket row (internal: callers get `TicketInfo`)."""

    __tablename__ = "tickets"
    # Without AUTOINCREMENT SQLite may reuse the highest id after a delete, and ticket numbers
    # are built from the id, so they must never repeat.
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(primary_key=True)
    # Filled in the same transaction once the id is known, hence nullable.
    number: Mapped[str | None] = mapped_column(String(32), unique=True)
    customer_id: Mapped[str | None] = mapped_column(ForeignKey("customers.id"), index=True)
    order_id: Mapped[str | None] = mapped_column(ForeignKey("orders.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    description: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="open")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
