"""The embedded CRM: customers, products, orders and service tickets in a SQL database.

SQLite by default, PostgreSQL in production, through synchronous SQLAlchemy 2.0. Async callers
(web routes, connectors, actions) run these methods in a worker thread (`asyncio.to_thread`), which
is why every method opens its own short session. Reads return frozen dataclasses, never ORM objects,
so nothing outside this module can lazy-load or mutate rows by accident.
"""

from __future__ import annotations

import calendar
import re
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from sqlalchemy import (
    BigInteger,
    Date,
    DateTime,
    Dialect,
    Engine,
    ForeignKey,
    String,
    Text,
    create_engine,
    event,
    func,
    make_url,
    select,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    mapped_column,
    relationship,
    sessionmaker,
)
from sqlalchemy.types import TypeDecorator

from bot.errors import AutoresponderError
from bot.locale import normalise_locale, to_simplified, to_traditional

__all__ = [
    "CARRIERS",
    "CRM",
    "SHOP_TZ",
    "CRMError",
    "CustomerInfo",
    "OrderInfo",
    "OrderStatus",
    "ProductInfo",
    "RefundStatus",
    "TicketInfo",
    "UnknownCustomerError",
    "UnknownOrderError",
    "carrier_name",
    "normalise_id",
    "normalise_phone",
]

# The demo shop sells in mainland China: purchase dates, warranty dates and ticket numbers are
# calendar dates in its time zone, not in UTC. A fixed offset (China has no DST) avoids needing
# the tz database, which Windows installs lack.
SHOP_TZ = timezone(timedelta(hours=8), "CST")

CARRIERS: dict[str, dict[str, str]] = {
    "SF": {"zh-CN": "顺丰速运", "zh-TW": "順豐速運", "en": "SF Express"},
    "YTO": {"zh-CN": "圆通速递", "zh-TW": "圓通速遞", "en": "YTO Express"},
    "ZTO": {"zh-CN": "中通快递", "zh-TW": "中通快遞", "en": "ZTO Express"},
    "JD": {"zh-CN": "京东物流", "zh-TW": "京東物流", "en": "JD Logistics"},
    "EMS": {"zh-CN": "中国邮政 EMS", "zh-TW": "中國郵政 EMS", "en": "China Post EMS"},
}

_TITLES_EN = {"先生": "Mr.", "女士": "Ms."}


class OrderStatus(StrEnum):
    """Every status an order can have; the values are stored in the database and used by templates."""

    PAID = "paid"  # paid, waiting to be shipped: the address can still change, cancelling is free
    SHIPPED = "shipped"  # handed to a carrier, on time
    DELAYED = "delayed"  # in transit and past its ETA
    DELIVERED = "delivered"
    RETURNED = "returned"  # goods are back at the warehouse; the refund follows
    REFUNDING = "refunding"  # refund approved, money not yet back (e.g. refund without a return)
    REFUNDED = "refunded"
    CANCELLED = "cancelled"


class RefundStatus(StrEnum):
    """Where a refund stands; `None` on an order means no refund was ever started."""

    PROCESSING = "processing"
    COMPLETED = "completed"


class CRMError(AutoresponderError):
    """Root of the errors this module raises."""


class UnknownCustomerError(CRMError, LookupError):
    """A write named a customer id that is not in the CRM."""


class UnknownOrderError(CRMError, LookupError):
    """A write named an order id that is not in the CRM."""


def _locale_key(locale: str | None, fallback: str | None = None) -> str:
    """One of bot.locale.LOCALES for a tag; unknown tags fall back, then to the shop's zh-CN."""
    return normalise_locale(locale) or normalise_locale(fallback) or "zh-CN"


def carrier_name(code: str, locale: str | None = None) -> str:
    """Display name of a carrier code in a locale; unknown codes are shown as they are."""
    names = CARRIERS.get(code.upper())
    return names[_locale_key(locale)] if names else code


def _add_months(day: date, months: int) -> date:
    """`day` plus whole calendar months, clamped to the month's end (31 Jan + 1 month = 29 Feb)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _cents(amount: Decimal) -> int:
    return int((amount * 100).to_integral_value())


def _money(cents: int | None) -> Decimal | None:
    return None if cents is None else Decimal(cents).scaleb(-2)


def normalise_id(identifier: str) -> str:
    """Canonical form of a typed order, customer or ticket id: full-width folded, spaces dropped, upper case."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", identifier)).upper()


def normalise_phone(phone: str) -> str:
    """Canonical form of a mainland mobile number: digits only, without the +86 / 0086 / 86 prefix."""
    digits = re.sub(r"[\s\-().]", "", unicodedata.normalize("NFKC", phone))
    for prefix in ("+86", "0086", "86"):
        rest = digits.removeprefix(prefix)
        # A bare 86... string is only a country code when what remains is a full mobile number.
        if rest != digits and len(rest) == 11 and rest.startswith("1"):
            return rest
    return digits


# --- database mapping -------------------------------------------------------------------------


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


# --- what callers get -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CustomerInfo:
    """A customer as the rest of the app sees it."""

    id: str
    surname: str
    surname_en: str
    given_name: str
    title: str
    email: str
    phone: str
    vip: bool
    vip_level: int
    locale: str
    telegram_user_id: int | None

    def masked_name(self, locale: str | None = None) -> str:
        """Surname plus title in the locale: 王先生 / 陳女士 / Mr. Wang (no or unknown locale: the customer's)."""
        key = _locale_key(locale, self.locale)
        if key == "en":
            title = _TITLES_EN.get(self.title)
            return f"{title} {self.surname_en}" if title else self.surname_en
        # Surnames are stored as the customer wrote them; the reply may be in the other script.
        name = self.surname + self.title
        return to_traditional(name) if key == "zh-TW" else to_simplified(name)

    @property
    def masked_phone(self) -> str:
        """The phone number with its middle digits hidden, safe to echo back: 138****8001."""
        return self.phone[:3] + "****" + self.phone[-4:] if len(self.phone) >= 8 else "****"


@dataclass(frozen=True, slots=True)
class ProductInfo:
    """A product with its names and warranty."""

    sku: str
    name_zh_cn: str
    name_zh_tw: str
    name_en: str
    warranty_months: int
    price: Decimal

    def name(self, locale: str | None = None) -> str:
        """The product's name in a locale."""
        key = _locale_key(locale)
        return {"zh-CN": self.name_zh_cn, "zh-TW": self.name_zh_tw, "en": self.name_en}[key]

    def __str__(self) -> str:
        # A template that prints the product without choosing a locale gets the shop's language,
        # not a dataclass repr; prefer name(locale).
        return self.name_zh_cn


@dataclass(frozen=True, slots=True)
class OrderInfo:
    """An order as the rest of the app sees it; datetimes are aware UTC, `eta` a shop-local date."""

    id: str
    customer_id: str
    status: OrderStatus
    product: ProductInfo
    quantity: int
    amount: Decimal
    currency: str
    carrier: str | None
    tracking_number: str | None
    eta: date | None
    ordered_at: datetime
    paid_at: datetime | None
    shipped_at: datetime | None
    delivered_at: datetime | None
    refund_status: RefundStatus | None
    refund_amount: Decimal | None
    refunded_at: datetime | None
    cancelled_at: datetime | None
    cancel_reason: str | None
    shipping_city: str
    shipping_address: str

    def carrier_name(self, locale: str | None = None) -> str | None:
        """The carrier's display name in a locale, or None before shipping."""
        return carrier_name(self.carrier, locale) if self.carrier else None

    def product_name(self, locale: str | None = None) -> str:
        """The product's name in a locale."""
        return self.product.name(locale)

    @property
    def purchase_date(self) -> date:
        """The day of purchase in the shop's calendar; the warranty runs from it."""
        return self.ordered_at.astimezone(SHOP_TZ).date()

    @property
    def warranty_months(self) -> int:
        """The product's warranty length."""
        return self.product.warranty_months

    @property
    def warranty_until(self) -> date:
        """The day the warranty ends, itself still covered: the purchase date plus the warranty months."""
        return _add_months(self.purchase_date, self.product.warranty_months)

    def in_warranty(self, on: date) -> bool:
        """Whether the warranty still covers the day `on` (callers pass today; no clock in here)."""
        return self.purchase_date <= on <= self.warranty_until


@dataclass(frozen=True, slots=True)
class TicketInfo:
    """A service ticket."""

    number: str
    customer_id: str | None
    order_id: str | None
    kind: str
    description: str
    status: str
    created_at: datetime


def _customer_info(row: Customer) -> CustomerInfo:
    return CustomerInfo(
        id=row.id,
        surname=row.surname,
        surname_en=row.surname_en,
        given_name=row.given_name,
        title=row.title,
        email=row.email,
        phone=row.phone,
        vip=row.vip,
        vip_level=row.vip_level,
        locale=row.locale,
        telegram_user_id=row.telegram_user_id,
    )


def _product_info(row: Product) -> ProductInfo:
    price = _money(row.price_cents)
    assert price is not None  # the column is NOT NULL
    return ProductInfo(
        sku=row.sku,
        name_zh_cn=row.name_zh_cn,
        name_zh_tw=row.name_zh_tw,
        name_en=row.name_en,
        warranty_months=row.warranty_months,
        price=price,
    )


def _order_info(row: Order) -> OrderInfo:
    amount = _money(row.amount_cents)
    assert amount is not None  # the column is NOT NULL
    return OrderInfo(
        id=row.id,
        customer_id=row.customer_id,
        status=OrderStatus(row.status),
        product=_product_info(row.product),
        quantity=row.quantity,
        amount=amount,
        currency=row.currency,
        carrier=row.carrier,
        tracking_number=row.tracking_number,
        eta=row.eta,
        ordered_at=row.ordered_at,
        paid_at=row.paid_at,
        shipped_at=row.shipped_at,
        delivered_at=row.delivered_at,
        refund_status=RefundStatus(row.refund_status) if row.refund_status else None,
        refund_amount=_money(row.refund_amount_cents),
        refunded_at=row.refunded_at,
        cancelled_at=row.cancelled_at,
        cancel_reason=row.cancel_reason,
        shipping_city=row.shipping_city,
        shipping_address=row.shipping_address,
    )


def _ticket_info(row: Ticket) -> TicketInfo:
    assert row.number is not None  # set in the transaction that created the row
    return TicketInfo(
        number=row.number,
        customer_id=row.customer_id,
        order_id=row.order_id,
        kind=row.kind,
        description=row.description,
        status=row.status,
        created_at=row.created_at,
    )


def _enable_sqlite_foreign_keys(dbapi_connection: Any, _record: Any) -> None:
    # SQLite ignores REFERENCES unless asked, per connection.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _utcnow() -> datetime:
    return datetime.now(UTC)


class CRM:
    """Customers, orders and tickets behind a small synchronous API.

    Build it with `CRM.from_url(settings.crm_url)`; nothing connects until the first call.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        schema: str | None = None,
        clock: Callable[[], datetime] = _utcnow,
        shop_tz: tzinfo = SHOP_TZ,
    ) -> None:
        """Use `engine`; `schema` puts the tables in a PostgreSQL schema, `clock` dates new rows."""
        self._engine = engine
        # One map for DDL and queries alike, so a shared database can hold several CRMs (tests do).
        self._bind = engine.execution_options(schema_translate_map={None: schema}) if schema else engine
        self._sessions = sessionmaker(self._bind, expire_on_commit=False)
        self._clock = clock
        self._shop_tz = shop_tz

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        schema: str | None = None,
        clock: Callable[[], datetime] = _utcnow,
    ) -> CRM:
        """A CRM on a database URL: `sqlite:///var/crm.sqlite3`, `postgresql+psycopg://user@host/db`."""
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite":
            database = parsed.database or ""
            # A fresh checkout has no var/ folder; SQLite would fail with "unable to open database file".
            if database and database != ":memory:" and not database.startswith("file:"):
                Path(database).parent.mkdir(parents=True, exist_ok=True)
        # pre_ping: PostgreSQL restarts and idle timeouts would otherwise surface as errors on a reply.
        engine = create_engine(parsed, pool_pre_ping=True)
        if parsed.get_backend_name() == "sqlite":
            event.listen(engine, "connect", _enable_sqlite_foreign_keys)
        return cls(engine, schema=schema, clock=clock)

    def __enter__(self) -> Self:
        """Use the CRM in a `with` block that closes it."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the CRM."""
        self.close()

    def close(self) -> None:
        """Close every pooled connection."""
        self._engine.dispose()

    @contextmanager
    def _transaction(self) -> Iterator[Session]:
        with self._sessions.begin() as session:
            yield session

    # --- schema and demo data ---

    def create_schema(self) -> None:
        """Create the tables that do not exist yet (existing tables and rows are left alone)."""
        Base.metadata.create_all(self._bind)

    def seed_demo(self) -> bool:
        """Load the demo customers, products and orders if the CRM has no customers; True if it did."""
        # Imported here: the seed is a few hundred lines nobody needs unless seeding.
        from bot.crm_seed import SEED_CUSTOMERS, SEED_ORDERS, SEED_PRODUCTS

        try:
            with self._transaction() as session:
                if session.scalar(select(func.count()).select_from(Customer)):
                    return False
                known = set(session.scalars(select(Product.sku)))
                prices: dict[str, int] = {}
                for p in SEED_PRODUCTS:
                    prices[p.sku] = _cents(p.price)
                    if p.sku not in known:
                        session.add(
                            Product(
                                sku=p.sku,
                                name_zh_cn=p.name_zh_cn,
                                name_zh_tw=p.name_zh_tw,
                                name_en=p.name_en,
                                warranty_months=p.warranty_months,
                                price_cents=prices[p.sku],
                            )
                        )
                session.add_all(
                    Customer(
                        id=c.id,
                        surname=c.surname,
                        surname_en=c.surname_en,
                        given_name=c.given_name,
                        title=c.title,
                        email=c.email.lower(),
                        phone=normalise_phone(c.phone),
                        vip=c.vip_level > 0,
                        vip_level=c.vip_level,
                        locale=c.locale,
                    )
                    for c in SEED_CUSTOMERS
                )
                session.flush()  # customers and products before the orders that reference them
                session.add_all(
                    Order(
                        id=o.id,
                        customer_id=o.customer_id,
                        status=OrderStatus(o.status).value,
                        product_sku=o.sku,
                        quantity=o.quantity,
                        amount_cents=prices[o.sku] * o.quantity,
                        currency="CNY",
                        carrier=o.carrier,
                        tracking_number=o.tracking_number,
                        eta=o.eta,
                        ordered_at=o.ordered_at,
                        paid_at=o.paid_at,
                        shipped_at=o.shipped_at,
                        delivered_at=o.delivered_at,
                        refund_status=RefundStatus(o.refund_status).value if o.refund_status else None,
                        refund_amount_cents=(prices[o.sku] * o.quantity if o.refund_status else None),
                        refunded_at=o.refunded_at,
                        cancelled_at=o.cancelled_at,
                        cancel_reason=o.cancel_reason,
                        shipping_city=o.city,
                        shipping_address=o.address,
                    )
                    for o in SEED_ORDERS
                )
        except IntegrityError:
            # Two replicas starting together both saw an empty table; the one that lost the race
            # finds the rows the other wrote. Anything else is a real error.
            with self._sessions() as session:
                if session.scalar(select(func.count()).select_from(Customer)):
                    return False
            raise
        return True

    # --- customers ---

    def get_customer(self, customer_id: str) -> CustomerInfo | None:
        """The customer with this id (any case, spaces ignored), or None."""
        with self._sessions() as session:
            row = session.get(Customer, normalise_id(customer_id))
            return _customer_info(row) if row else None

    def find_customer(self, identifier: str) -> CustomerInfo | None:
        """The customer named by a customer id, an email address or a phone number, or None."""
        text = unicodedata.normalize("NFKC", identifier).strip()
        if not text:
            return None
        with self._sessions() as session:
            if "@" in text:
                stmt = select(Customer).where(func.lower(Customer.email) == text.lower())
            elif re.fullmatch(r"[Cc]\s*\d+", text):
                stmt = select(Customer).where(Customer.id == normalise_id(text))
            else:
                phone = normalise_phone(text)
                if not phone.isdigit():
                    return None
                stmt = select(Customer).where(Customer.phone == phone)
            row = session.scalars(stmt).first()
            return _customer_info(row) if row else None

    def find_customer_by_telegram(self, user_id: int) -> CustomerInfo | None:
        """The customer linked to this Telegram user id, or None."""
        with self._sessions() as session:
            row = session.scalars(select(Customer).where(Customer.telegram_user_id == user_id)).first()
            return _customer_info(row) if row else None

    def link_telegram(self, customer_id: str, user_id: int) -> CustomerInfo:
        """Link a Telegram user to a customer, moving the link if another customer had it."""
        with self._transaction() as session:
            row = session.get(Customer, normalise_id(customer_id))
            if row is None:
                raise UnknownCustomerError(f"No customer {customer_id!r} in the CRM; look it up with find_customer()")
            for other in session.scalars(
                select(Customer).where(Customer.telegram_user_id == user_id, Customer.id != row.id)
            ):
                other.telegram_user_id = None
            session.flush()  # release the unique value before taking it
            row.telegram_user_id = user_id
            return _customer_info(row)

    # --- products and orders ---

    def list_products(self) -> list[ProductInfo]:
        """Every product, by SKU."""
        with self._sessions() as session:
            return [_product_info(p) for p in session.scalars(select(Product).order_by(Product.sku))]

    def get_order(self, order_id: str) -> OrderInfo | None:
        """The order with this id (any case, spaces and full-width digits tolerated), or None."""
        with self._sessions() as session:
            row = session.get(Order, normalise_id(order_id))
            return _order_info(row) if row else None

    def orders_for(self, customer_id: str) -> list[OrderInfo]:
        """A customer's orders, newest first (empty for an unknown customer)."""
        stmt = (
            select(Order)
            .where(Order.customer_id == normalise_id(customer_id))
            .order_by(Order.ordered_at.desc(), Order.id.desc())
        )
        with self._sessions() as session:
            return [_order_info(row) for row in session.scalars(stmt)]

    def _order_row(self, session: Session, order_id: str) -> Order:
        row = session.get(Order, normalise_id(order_id))
        if row is None:
            raise UnknownOrderError(f"No order {order_id!r} in the CRM; order ids look like DD202405001")
        return row

    def update_order_address(self, order_id: str, address: str, city: str | None = None) -> OrderInfo:
        """Store a new shipping address (and city, when given); whether that is allowed is decided elsewhere."""
        with self._transaction() as session:
            row = self._order_row(session, order_id)
            row.shipping_address = address.strip()
            if city is not None:
                row.shipping_city = city.strip()
            return _order_info(row)

    def cancel_order(self, order_id: str, reason: str) -> OrderInfo:
        """Mark an order cancelled with a reason; refunds and eligibility are decided elsewhere."""
        with self._transaction() as session:
            row = self._order_row(session, order_id)
            row.status = OrderStatus.CANCELLED.value
            row.cancel_reason = reason.strip()[:200]
            row.cancelled_at = self._clock()
            return _order_info(row)

    # --- tickets ---

    def create_ticket(self, customer_id: str | None, order_id: str | None, kind: str, description: str) -> str:
        """Open a service ticket (kind: repair, return, complaint, ...) and return its number, T20240501-0001."""
        with self._transaction() as session:
            customer = normalise_id(customer_id) if customer_id else None
            order = normalise_id(order_id) if order_id else None
            if customer and session.get(Customer, customer) is None:
                raise UnknownCustomerError(f"No customer {customer_id!r}; pass None for a guest's ticket")
            if order and session.get(Order, order) is None:
                raise UnknownOrderError(f"No order {order_id!r}; pass None when the order is unknown")
            created = self._clock()
            row = Ticket(
                customer_id=customer,
                order_id=order,
                kind=kind,
                description=description,
                status="open",
                created_at=created,
            )
            session.add(row)
            session.flush()  # the database assigns the id the number is built from
            # The id comes from one sequence, so numbers are unique and increase across replicas.
            row.number = f"T{created.astimezone(self._shop_tz):%Y%m%d}-{row.id:04d}"
            return row.number

    def get_ticket(self, number: str) -> TicketInfo | None:
        """The ticket with this number, or None."""
        with self._sessions() as session:
            row = session.scalars(select(Ticket).where(Ticket.number == normalise_id(number))).first()
            return _ticket_info(row) if row else None
