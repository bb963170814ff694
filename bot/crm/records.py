"""The CRM's records: what the rest of the app sees of customers, products, orders and tickets.

Frozen dataclasses and enums with no database behind them, so that any layer may use them; the
repository (`bot.crm.repository`) builds them from rows.
"""

from __future__ import annotations

import calendar
import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from enum import StrEnum

from bot.errors import AutoresponderError
from bot.locale import normalise_locale, to_simplified, to_traditional

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


class OrderStatusError(CRMError):
    """A change was asked for an order whose status no longer allows it (it changed meanwhile)."""


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


def normalise_id(identifier: str) -> str:
    """Canonical form of a typed order, customer or ticket id: full-width folded, spaces dropped, upper case."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", identifier)).upper()


def customer_key(identifier: str) -> tuple[str, str] | None:
    """What a typed identifier can find a customer by, as (field, value): ("email", lower-cased address),
    ("id", canonical id) or ("phone", digits); None when it can name no customer (no lookup needed)."""
    text = unicodedata.normalize("NFKC", identifier).strip()
    if not text:
        return None
    if "@" in text:
        return "email", text.lower()
    if re.fullmatch(r"[Cc]\s*\d+", text):
        return "id", normalise_id(text)
    phone = normalise_phone(text)
    return ("phone", phone) if phone.isdigit() else None


def normalise_phone(phone: str) -> str:
    """Canonical form of a mainland mobile number: digits only, without the +86 / 0086 / 86 prefix."""
    digits = re.sub(r"[\s\-().]", "", unicodedata.normalize("NFKC", phone))
    for prefix in ("+86", "0086", "86"):
        rest = digits.removeprefix(prefix)
        # A bare 86... string is only a country code when what remains is a full mobile number.
        if rest != digits and len(rest) == 11 and rest.startswith("1"):
            return rest
    return digits


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
