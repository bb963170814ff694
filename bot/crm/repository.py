"""The CRM repository: customers, products, orders and service tickets in a SQL database.

SQLite by default, PostgreSQL in production, through synchronous SQLAlchemy 2.0. Async callers use
the façade in `bot.crm.directory`, which runs these methods in a worker thread; that is why every
method opens its own short session. Reads return the frozen records of `bot.crm.records`, never
ORM objects, so nothing outside this package can lazy-load or mutate rows by accident.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, tzinfo
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from sqlalchemy import Engine, create_engine, event, func, make_url, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bot.crm.migrations import migrate
from bot.crm.models import Customer, Order, Product, Ticket
from bot.crm.records import (
    SHOP_TZ,
    CustomerInfo,
    OrderInfo,
    OrderStatus,
    OrderStatusError,
    ProductInfo,
    RefundStatus,
    TicketInfo,
    UnknownCustomerError,
    UnknownOrderError,
    customer_key,
    normalise_id,
    normalise_phone,
)


def _cents(amount: Decimal) -> int:
    return int((amount * 100).to_integral_value())


def _money(cents: int | None) -> Decimal | None:
    return None if cents is None else Decimal(cents).scaleb(-2)


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

    @property
    def bind(self) -> Engine:
        """The engine queries run on (with the schema map), for the accounts tables in the same database."""
        return self._bind

    def create_schema(self) -> list[int]:
        """Bring the schema to the current version (`bot.crm.migrations`); existing rows are left alone.

        Returns the versions applied now."""
        return migrate(self._bind)

    def seed_demo(self) -> bool:
        """Load the demo customers, products and orders if the CRM has no customers; True if it did."""
        # Imported here: the seed is a few hundred lines nobody needs unless seeding.
        from bot.crm.seed import SEED_CUSTOMERS, SEED_ORDERS, SEED_PRODUCTS

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
        key = customer_key(identifier)
        if key is None:
            return None
        field, value = key
        with self._sessions() as session:
            if field == "email":
                stmt = select(Customer).where(func.lower(Customer.email) == value)
            elif field == "id":
                stmt = select(Customer).where(Customer.id == value)
            else:
                stmt = select(Customer).where(Customer.phone == value)
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

    def _order_row(self, session: Session, order_id: str, *, lock: bool = False) -> Order:
        # lock: SELECT ... FOR UPDATE where the backend has it, so that a status check holds until commit.
        row = session.get(Order, normalise_id(order_id), with_for_update=lock)
        if row is None:
            raise UnknownOrderError(f"No order {order_id!r} in the CRM; order ids look like DD202405001")
        return row

    def update_order_address(
        self, order_id: str, address: str, city: str | None = None, *, only_in: frozenset[OrderStatus] | None = None
    ) -> OrderInfo:
        """Store a new shipping address (and city, when given); `only_in`: refuse (OrderStatusError) in
        other statuses, checked in the same transaction as the write."""
        with self._transaction() as session:
            row = self._order_row(session, order_id, lock=only_in is not None)
            if only_in is not None and row.status not in only_in:
                raise OrderStatusError(f"order {row.id} is {row.status}; its address can no longer change")
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

    def cancel_with_refund(self, order_id: str, reason: str, *, only_in: frozenset[OrderStatus]) -> OrderInfo:
        """Cancel an order and record its full refund (processing) in one transaction; refused with
        OrderStatusError unless the order is in one of `only_in` when the transaction reads it."""
        with self._transaction() as session:
            row = self._order_row(session, order_id, lock=True)
            if row.status not in only_in:
                raise OrderStatusError(f"order {row.id} is {row.status}; it can no longer be cancelled")
            row.status = OrderStatus.CANCELLED.value
            row.cancel_reason = reason.strip()[:200]
            row.cancelled_at = self._clock()
            row.refund_status = RefundStatus.PROCESSING.value
            row.refund_amount_cents = row.amount_cents
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
