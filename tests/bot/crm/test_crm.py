"""The embedded CRM against SQLite and against a real PostgreSQL on loopback.

Every test runs on both backends; the PostgreSQL runs skip (saying why) when no server answers on
127.0.0.1:5432, or on the URL in AUTORESPONDER_TEST_POSTGRES_URL.
"""

from __future__ import annotations

import dataclasses
import os
import re
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import OperationalError

from bot.crm.records import (
    CARRIERS,
    SHOP_TZ,
    CustomerInfo,
    OrderInfo,
    OrderStatus,
    OrderStatusError,
    RefundStatus,
    UnknownCustomerError,
    UnknownOrderError,
)
from bot.crm.repository import CRM
from bot.crm.seed import DEMO_AS_OF

POSTGRES_URL = os.environ.get(
    "AUTORESPONDER_TEST_POSTGRES_URL",
    "postgresql+psycopg://postgres@127.0.0.1:5432/test",
)
CUSTOMER_IDS = [f"C2024050{n:02d}" for n in range(1, 21)]
ORDER_IDS = [f"DD2024050{n:02d}" for n in range(1, 31)]
# A moment whose shop-local date (UTC+8) is already the next day: ticket numbers must use the shop's.
FIXED_NOW = datetime(2024, 5, 31, 17, 30, tzinfo=UTC)

MakeCRM = Callable[..., CRM]


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str | None]]:
    """(URL, schema) of an empty database: a SQLite file, or a throwaway schema in PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'crm.sqlite3'}", None
        return
    admin = create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
    try:
        with admin.connect():
            pass
    except OperationalError as exc:
        admin.dispose()
        where = make_url(POSTGRES_URL).render_as_string(hide_password=True)
        pytest.skip(
            f"PostgreSQL not reachable at {where} ({exc.orig}); start one there or point "
            "AUTORESPONDER_TEST_POSTGRES_URL at a database the tests may create schemas in"
        )
    schema = f"crm_test_{uuid.uuid4().hex[:12]}"
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield POSTGRES_URL, schema
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def make_crm(database: tuple[str, str | None]) -> Iterator[MakeCRM]:
    """Open CRMs on the test database (several may share it); all are closed at teardown."""
    url, schema = database
    opened: list[CRM] = []

    def make(clock: Callable[[], datetime] = lambda: FIXED_NOW) -> CRM:
        crm = CRM.from_url(url, schema=schema, clock=clock)
        opened.append(crm)
        return crm

    yield make
    for crm in opened:
        crm.close()


@pytest.fixture
def crm(make_crm: MakeCRM) -> CRM:
    """A CRM with the demo data loaded."""
    crm = make_crm()
    crm.create_schema()
    assert crm.seed_demo() is True
    return crm


def all_orders(crm: CRM) -> list[OrderInfo]:
    return [order for customer_id in CUSTOMER_IDS for order in crm.orders_for(customer_id)]


def customer(crm: CRM, customer_id: str) -> CustomerInfo:
    found = crm.get_customer(customer_id)
    assert found is not None, customer_id
    return found


def order(crm: CRM, order_id: str) -> OrderInfo:
    found = crm.get_order(order_id)
    assert found is not None, order_id
    return found


# --- seeding ---


def test_seeding_is_idempotent_across_instances(make_crm: MakeCRM) -> None:
    first = make_crm()
    first.create_schema()
    assert first.seed_demo() is True
    first.cancel_order("DD202405005", "changed my mind")

    assert first.seed_demo() is False
    second = make_crm()  # as after a restart
    second.create_schema()  # existing tables and rows survive
    assert second.seed_demo() is False

    assert len(all_orders(second)) == len(ORDER_IDS)
    # A re-seed would have put the demo status back.
    assert order(second, "DD202405005").status is OrderStatus.CANCELLED


def test_contract_ids_exist(crm: CRM) -> None:
    assert [customer(crm, cid).id for cid in CUSTOMER_IDS] == CUSTOMER_IDS
    assert [order(crm, oid).id for oid in ORDER_IDS] == ORDER_IDS
    assert sorted(o.id for o in all_orders(crm)) == ORDER_IDS  # nothing else, no order twice


def test_order_nn_belongs_to_customer_nn(crm: CRM) -> None:
    for n in range(1, 21):
        assert order(crm, f"DD2024050{n:02d}").customer_id == f"C2024050{n:02d}"
    later_owners = {order(crm, f"DD2024050{n}").customer_id for n in range(21, 31)}
    assert later_owners <= set(CUSTOMER_IDS)
    assert len(later_owners) >= 5  # spread over customers, not piled on one


def test_vip_flags(crm: CRM) -> None:
    for vip in ("C202405003", "C202405010"):
        assert customer(crm, vip).vip is True
        assert customer(crm, vip).vip_level >= 1
    for regular in ("C202405001", "C202405002"):
        assert customer(crm, regular).vip is False
        assert customer(crm, regular).vip_level == 0


def test_dd202405001_is_shipped_with_carrier_and_tracking(crm: CRM) -> None:
    first = order(crm, "DD202405001")
    assert first.status is OrderStatus.SHIPPED
    assert first.carrier == "SF"
    assert first.tracking_number == "SF1234567890123"
    assert first.eta == date(2024, 5, 21)
    assert first.carrier_name("zh-CN") == "顺丰速运"
    assert first.carrier_name("zh-TW") == "順豐速運"
    assert first.carrier_name("en-US") == "SF Express"

    second = order(crm, "DD202405002")
    assert second.status is OrderStatus.SHIPPED
    assert second.carrier not in (None, "SF")
    assert second.tracking_number
    assert second.tracking_number != first.tracking_number


def test_every_status_is_present(crm: CRM) -> None:
    assert {o.status for o in all_orders(crm)} == set(OrderStatus)
    assert {
        "paid",
        "shipped",
        "delivered",
        "delayed",
        "returned",
        "refunded",
        "cancelled",
    } <= {s.value for s in OrderStatus}


def test_orders_on_the_road_have_carrier_tracking_and_eta(crm: CRM) -> None:
    orders = all_orders(crm)
    by_status = {status: [o for o in orders if o.status is status] for status in OrderStatus}
    on_the_road = by_status[OrderStatus.SHIPPED] + by_status[OrderStatus.DELAYED] + by_status[OrderStatus.DELIVERED]
    # Each check lists the orders breaking it, so a failure names them.
    assert [o.id for o in on_the_road if o.carrier not in CARRIERS or not o.tracking_number or not o.eta] == []
    assert [o.id for o in on_the_road if not o.shipped_at] == []
    assert [o.id for o in by_status[OrderStatus.SHIPPED] if not (o.eta and o.eta > DEMO_AS_OF)] == []
    assert [o.id for o in by_status[OrderStatus.DELAYED] if not (o.eta and o.eta < DEMO_AS_OF)] == []
    assert [o.id for o in by_status[OrderStatus.DELIVERED] if not o.delivered_at] == []
    assert [o.id for o in by_status[OrderStatus.SHIPPED] + by_status[OrderStatus.DELAYED] if o.delivered_at] == []
    assert [o.id for o in by_status[OrderStatus.PAID] if not o.paid_at or o.carrier or o.shipped_at] == []
    tracking = [o.tracking_number for o in orders if o.tracking_number]
    assert len(tracking) == len(set(tracking))


def test_refunds_and_cancellations_are_consistent(crm: CRM) -> None:
    orders = all_orders(crm)
    refunded = [o for o in orders if o.status is OrderStatus.REFUNDED]
    in_progress = [o for o in orders if o.status in (OrderStatus.REFUNDING, OrderStatus.RETURNED)]
    cancelled = [o for o in orders if o.status is OrderStatus.CANCELLED]
    assert [o.id for o in refunded if o.refund_status is not RefundStatus.COMPLETED or not o.refunded_at] == []
    assert [o.id for o in refunded if o.refund_amount != o.amount] == []
    assert [o.id for o in in_progress if o.refund_status is not RefundStatus.PROCESSING or o.refunded_at] == []
    assert [o.id for o in cancelled if not o.cancel_reason or not o.cancelled_at or o.shipped_at] == []
    # One cancelled before paying, one paid and refunded: both answers to "where is my money?".
    assert {o.refund_status for o in cancelled} == {None, RefundStatus.COMPLETED}


def test_customers_have_contact_details(crm: CRM) -> None:
    customers = [customer(crm, cid) for cid in CUSTOMER_IDS]
    for c in customers:
        assert c.surname, c.id
        assert c.given_name, c.id
        assert c.surname_en.isascii(), c.id
        assert c.title in ("先生", "女士"), c.id
        assert re.fullmatch(r"[a-z.]+@example\.(com|net)", c.email), c.email
        assert re.fullmatch(r"1\d{10}", c.phone), c.phone
    assert len({c.email for c in customers}) == len({c.phone for c in customers}) == 20
    assert {c.locale for c in customers} == {"zh-CN", "zh-TW", "en"}


def test_money_and_times(crm: CRM) -> None:
    four = order(crm, "DD202405004")  # two power banks
    assert four.quantity == 2
    assert four.amount == Decimal("318.00") == 2 * four.product.price
    assert four.currency == "CNY"

    first = order(crm, "DD202405001")
    assert first.ordered_at == datetime(2024, 5, 16, 10, 12, tzinfo=SHOP_TZ)
    assert first.ordered_at.utcoffset() == timedelta(0)  # aware UTC on both backends
    assert first.purchase_date == date(2024, 5, 16)


def test_warranty_runs_from_the_purchase_date(crm: CRM) -> None:
    earbuds = order(crm, "DD202405001")
    assert earbuds.product.sku == "EARBUDS-X1"
    assert earbuds.warranty_months == 12
    assert earbuds.warranty_until == date(2025, 5, 16)
    assert earbuds.in_warranty(date(2025, 5, 16))
    assert not earbuds.in_warranty(date(2025, 5, 17))
    assert earbuds.product_name("zh-TW") == "無線藍牙耳機 X1"
    assert earbuds.product_name("en") == "Wireless Earbuds X1"

    vacuum = order(crm, "DD202405003")
    assert vacuum.warranty_months == 36
    assert vacuum.warranty_until == date(2027, 5, 8)
    assert {p.warranty_months for p in crm.list_products()} == {12, 24, 36}


# --- look-ups ---


@pytest.mark.parametrize(
    "identifier",
    [
        "C202405001",
        "c202405001",
        "  C202405001 ",
        "wang.wei@example.com",
        "Wang.Wei@Example.COM",
        "13800138001",
        "138 0013 8001",
        "138-0013-8001",
        "+86 13800138001",
        "+86-138-0013-8001",
        "8613800138001",
        "0086 138 0013 8001",
        "１３８００１３８００１",  # typed with a full-width IME
    ],
)
def test_find_customer(crm: CRM, identifier: str) -> None:
    found = crm.find_customer(identifier)
    assert found is not None
    assert found.id == "C202405001"


@pytest.mark.parametrize(
    "identifier",
    [
        "C209912999",
        "nobody@example.com",
        "13900000000",
        "+86 139 0000 0000",
        "",
        "   ",
        "hello",
        "86",
    ],
)
def test_find_customer_unknown(crm: CRM, identifier: str) -> None:
    assert crm.find_customer(identifier) is None


def test_unknown_ids_return_none(crm: CRM) -> None:
    assert crm.get_customer("C209912999") is None
    assert crm.get_order("DD209912999") is None
    assert crm.get_order("") is None
    assert crm.orders_for("C209912999") == []
    assert crm.find_customer_by_telegram(987654321) is None
    assert crm.get_ticket("T20240101-9999") is None


def test_get_order_tolerates_how_people_type_ids(crm: CRM) -> None:
    for typed in (" dd202405001 ", "DD 2024 05001", "ＤＤ２０２４０５００１"):
        assert order(crm, typed).id == "DD202405001"


def test_orders_for_is_newest_first(crm: CRM) -> None:
    orders = crm.orders_for("C202405001")
    assert [o.id for o in orders] == ["DD202405001", "DD202405021"]
    for c in CUSTOMER_IDS:
        times = [o.ordered_at for o in crm.orders_for(c)]
        assert times == sorted(times, reverse=True), c


def test_masked_names(crm: CRM) -> None:
    wang, li = customer(crm, "C202405001"), customer(crm, "C202405002")
    assert [wang.masked_name(loc) for loc in ("zh-CN", "zh-TW", "en")] == [
        "王先生",
        "王先生",
        "Mr. Wang",
    ]
    assert [li.masked_name(loc) for loc in ("zh-CN", "zh-TW", "en")] == [
        "李女士",
        "李女士",
        "Ms. Li",
    ]
    # Surnames are stored in the customer's own script and written in the reply's script.
    zhang_tw = customer(crm, "C202405014")
    assert zhang_tw.surname == "張"
    assert [zhang_tw.masked_name(loc) for loc in ("zh-CN", "zh-TW", "en")] == [
        "张女士",
        "張女士",
        "Ms. Zhang",
    ]
    assert customer(crm, "C202405005").masked_name("zh-HK") == "陳女士"
    # Without a locale, the customer's own one.
    assert zhang_tw.masked_name() == "張女士"
    assert customer(crm, "C202405020").masked_name() == "Mr. He"
    assert wang.masked_phone == "138****8001"


def test_results_are_values_not_rows(crm: CRM) -> None:
    first = order(crm, "DD202405001")
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.status = OrderStatus.CANCELLED  # type: ignore[misc]  # the point: it is frozen
    assert order(crm, "DD202405001") == first


def test_usable_from_worker_threads(crm: CRM) -> None:
    # Async callers go through asyncio.to_thread: pooled connections hop between threads.
    crm.get_order("DD202405001")
    with ThreadPoolExecutor(max_workers=4) as pool:
        found = list(pool.map(crm.get_order, ORDER_IDS * 2))
    assert [o.id for o in found if o] == ORDER_IDS * 2


# --- writes ---


def test_link_telegram(crm: CRM) -> None:
    telegram_id = 7_123_456_789  # beyond 32 bits, as real ids are
    linked = crm.link_telegram("C202405001", telegram_id)
    assert linked.telegram_user_id == telegram_id
    assert crm.find_customer_by_telegram(telegram_id) == linked

    # One Telegram account belongs to one customer: linking elsewhere moves it.
    crm.link_telegram("c202405002", telegram_id)
    moved = crm.find_customer_by_telegram(telegram_id)
    assert moved is not None
    assert moved.id == "C202405002"
    assert customer(crm, "C202405001").telegram_user_id is None

    with pytest.raises(UnknownCustomerError):
        crm.link_telegram("C209912999", 1)


def test_update_order_address(crm: CRM) -> None:
    updated = crm.update_order_address("dd202405005", "成都市锦江区春熙路 1 号", city="成都市")
    assert updated.shipping_address == "成都市锦江区春熙路 1 号"
    assert order(crm, "DD202405005") == updated
    kept_city = crm.update_order_address("DD202405005", "成都市青羊区宽窄巷子 8 号")
    assert kept_city.shipping_city == "成都市"
    assert kept_city.shipping_address == "成都市青羊区宽窄巷子 8 号"
    with pytest.raises(UnknownOrderError):
        crm.update_order_address("DD209912999", "x")


def test_cancel_order(crm: CRM) -> None:
    cancelled = crm.cancel_order("DD202405013", "不想要了")
    assert cancelled.status is OrderStatus.CANCELLED
    assert cancelled.cancel_reason == "不想要了"
    assert cancelled.cancelled_at == FIXED_NOW
    assert order(crm, "DD202405013") == cancelled
    assert order(crm, "DD202405005").status is OrderStatus.PAID  # only that order
    with pytest.raises(UnknownOrderError):
        crm.cancel_order("DD209912999", "x")


def test_cancel_with_refund_records_the_refund_in_the_same_transaction(crm: CRM) -> None:
    paid = frozenset({OrderStatus.PAID})
    cancelled = crm.cancel_with_refund("DD202405013", "customer request", only_in=paid)
    assert (cancelled.status, cancelled.cancelled_at) == (OrderStatus.CANCELLED, FIXED_NOW)
    assert (cancelled.refund_status, cancelled.refund_amount) == (RefundStatus.PROCESSING, cancelled.amount)
    assert order(crm, "DD202405013") == cancelled
    # Not in an allowed status any more (cancelled, or shipped meanwhile): nothing is written.
    for order_id in ("DD202405013", "DD202405001"):
        before = order(crm, order_id)
        with pytest.raises(OrderStatusError):
            crm.cancel_with_refund(order_id, "again", only_in=paid)
        assert order(crm, order_id) == before


def test_an_address_change_limited_to_some_statuses(crm: CRM) -> None:
    paid = frozenset({OrderStatus.PAID})
    assert crm.update_order_address("DD202405005", "新地址 1 号", only_in=paid).shipping_address == "新地址 1 号"
    before = order(crm, "DD202405001")
    with pytest.raises(OrderStatusError):
        crm.update_order_address("DD202405001", "新地址 2 号", only_in=paid)
    assert order(crm, "DD202405001") == before


def test_ticket_numbers_are_unique_and_increase(crm: CRM) -> None:
    numbers = [
        crm.create_ticket("C202405001", "DD202405001", "repair", "左耳没有声音"),
        crm.create_ticket(None, None, "complaint", "guest complaint"),
        crm.create_ticket("c202405003", None, "complaint", "快递太慢"),
    ]
    for number in numbers:
        # FIXED_NOW is 31 May in UTC but 1 June in the shop.
        assert re.fullmatch(r"T20240601-\d{4,}", number), number
    sequence = [int(n.split("-")[1]) for n in numbers]
    assert sequence == sorted(set(sequence))  # increasing, no repeats

    ticket = crm.get_ticket(numbers[0])
    assert ticket is not None
    assert (ticket.customer_id, ticket.order_id, ticket.kind) == (
        "C202405001",
        "DD202405001",
        "repair",
    )
    assert (ticket.description, ticket.status) == ("左耳没有声音", "open")
    assert ticket.created_at == FIXED_NOW
    guest = crm.get_ticket(numbers[1])
    assert guest is not None
    assert guest.customer_id is None
    vip = crm.get_ticket(numbers[2])
    assert vip is not None
    assert vip.customer_id == "C202405003"


def test_ticket_numbers_increase_across_instances_and_days(make_crm: MakeCRM) -> None:
    first = make_crm(clock=lambda: FIXED_NOW)
    first.create_schema()
    first.seed_demo()
    a = first.create_ticket(None, None, "complaint", "a")
    b = make_crm(clock=lambda: FIXED_NOW + timedelta(days=1)).create_ticket(None, None, "complaint", "b")
    assert a.startswith("T20240601-")
    assert b.startswith("T20240602-")
    assert int(b.split("-")[1]) > int(a.split("-")[1])


def test_ticket_for_unknown_customer_or_order_is_refused(crm: CRM) -> None:
    with pytest.raises(UnknownCustomerError, match="None for a guest"):
        crm.create_ticket("C209912999", None, "complaint", "x")
    with pytest.raises(UnknownOrderError):
        crm.create_ticket("C202405001", "DD209912999", "repair", "x")


# --- construction ---


def test_from_url_creates_the_sqlite_folder(tmp_path: Path) -> None:
    path = tmp_path / "var" / "nested" / "crm.sqlite3"
    with CRM.from_url(f"sqlite:///{path}") as crm:
        assert path.parent.is_dir()
        crm.create_schema()
        assert crm.seed_demo() is True
    assert path.is_file()


def test_from_url_does_not_connect() -> None:
    # Port 1 on loopback refuses connections: only a call that needs the database may fail.
    crm = CRM.from_url("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2")
    with pytest.raises(OperationalError):
        crm.get_order("DD202405001")
    crm.close()
