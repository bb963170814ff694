"""The CRM's one async façade: every repository call the event loop makes, run in a worker thread.

The repository is synchronous SQLAlchemy; calling it on the event loop would stall every other
conversation while a query runs. Everything async (the router, the desk, channels, routes, actions)
goes through this class, which also implements the conversation core's `CustomerDirectory` port.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from bot.crm.records import CustomerInfo, OrderInfo, OrderStatus, ProductInfo, TicketInfo, customer_key
from bot.crm.repository import CRM


class AsyncCRM:
    """The CRM for async callers."""

    def __init__(self, crm: CRM) -> None:
        self.sync = crm

    # --- customers (the CustomerDirectory port) ---

    async def find(self, identifier: str) -> CustomerInfo | None:
        """The customer named by a customer id, an email address or a phone number."""
        if customer_key(identifier) is None:  # names nobody: no query, no thread hop (every REST sender)
            return None
        return await asyncio.to_thread(self.sync.find_customer, identifier)

    async def get(self, customer_id: str) -> CustomerInfo | None:
        """The customer with this id."""
        return await asyncio.to_thread(self.sync.get_customer, customer_id)

    async def masked_name(self, customer_id: str | None, locale: str | None) -> str:
        """Surname and title in the locale (王先生, Mr. Wang), or "" for a guest or an unknown id."""
        if not customer_id:
            return ""
        customer = await self.get(customer_id)
        return customer.masked_name(locale) if customer is not None else ""

    async def many(self, customer_ids: Iterable[str]) -> dict[str, CustomerInfo]:
        """Several customers by id in one worker-thread hop; unknown ids are left out."""
        ids = sorted(set(customer_ids))

        def load() -> dict[str, CustomerInfo]:
            found = {cid: self.sync.get_customer(cid) for cid in ids}
            return {cid: c for cid, c in found.items() if c is not None}

        return await asyncio.to_thread(load) if ids else {}

    async def find_by_account(self, channel: str, account: str) -> CustomerInfo | None:
        """The customer linked to an account on a channel (a Telegram user id); None when none is."""
        if channel != "telegram" or not account.isdigit():
            return None  # the CRM links Telegram accounts only
        return await asyncio.to_thread(self.sync.find_customer_by_telegram, int(account))

    async def link_account(self, customer_id: str, channel: str, account: str) -> CustomerInfo:
        """Link a channel account to a customer, moving the link from anyone else who had it."""
        if channel != "telegram" or not account.isdigit():
            raise ValueError(f"the CRM cannot link {channel} accounts")
        return await asyncio.to_thread(self.sync.link_telegram, customer_id, int(account))

    # --- orders, products, tickets ---

    async def order(self, order_id: str) -> OrderInfo | None:
        """The order with this id."""
        return await asyncio.to_thread(self.sync.get_order, order_id)

    async def orders_for(self, customer_id: str) -> list[OrderInfo]:
        """A customer's orders, newest first."""
        return await asyncio.to_thread(self.sync.orders_for, customer_id)

    async def products(self) -> list[ProductInfo]:
        """Every product."""
        return await asyncio.to_thread(self.sync.list_products)

    async def cancel_order(self, order_id: str, reason: str) -> OrderInfo:
        """Mark an order cancelled."""
        return await asyncio.to_thread(self.sync.cancel_order, order_id, reason)

    async def update_order_address(
        self, order_id: str, address: str, city: str | None = None, *, only_in: frozenset[OrderStatus] | None = None
    ) -> OrderInfo:
        """Store a new shipping address (only in the statuses `only_in`, when given)."""
        return await asyncio.to_thread(lambda: self.sync.update_order_address(order_id, address, city, only_in=only_in))

    async def cancel_with_refund(self, order_id: str, reason: str, *, only_in: frozenset[OrderStatus]) -> OrderInfo:
        """Cancel an order and record its refund in one transaction."""
        return await asyncio.to_thread(lambda: self.sync.cancel_with_refund(order_id, reason, only_in=only_in))

    async def create_ticket(self, customer_id: str | None, order_id: str | None, kind: str, description: str) -> str:
        """Open a service ticket and return its number."""
        return await asyncio.to_thread(self.sync.create_ticket, customer_id, order_id, kind, description)

    async def ticket(self, number: str) -> TicketInfo | None:
        """The ticket with this number."""
        return await asyncio.to_thread(self.sync.get_ticket, number)
