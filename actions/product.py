"""Product questions: what the catalogue says about the product the customer names."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from actions.deps import latest_text, message_locale, services
from bot.crm.records import ProductInfo
from bot.locale import to_simplified


def match_product(products: list[ProductInfo], text: str) -> ProductInfo | None:
    """The product whose name (any locale) or model code the text mentions."""
    haystack = to_simplified(text).lower()
    for product in products:
        names = [product.name_zh_cn, to_simplified(product.name_zh_tw), product.name_en, product.sku.split("-")[-1]]
        keys = {n.lower() for n in names} | {n.split()[-1].lower() for n in names if " " in n}
        if any(key and key in haystack for key in keys if len(key) >= 2):
            return product
    return None


class ActionProductInquiry(Action):
    """Answer with the product's price and warranty, or list the catalogue."""

    def name(self) -> str:
        """Action name in the domain."""
        return "action_product_inquiry"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        """The named product's facts, or the catalogue when none is named."""
        locale = message_locale(tracker)
        products = await services().shop.products()
        mentioned = " ".join([latest_text(tracker), *map(str, tracker.get_latest_entity_values("product"))])
        product = match_product(products, mentioned)
        if product is None:
            dispatcher.utter_message(
                response="utter_product_catalogue", products=", ".join(p.name(locale) for p in products)
            )
        else:
            dispatcher.utter_message(
                response="utter_product_info",
                product=product.name(locale),
                price=f"{product.price:.2f}",
                warranty_months=product.warranty_months,
            )
        return []
