"""NLG for the engine: render the response Rasa asks for from responses/, in the channel's variant and the
customer's locale, as a reply of the wire contract."""

from __future__ import annotations

from typing import Any

from bot.crm.directory import AsyncCRM
from bot.engine.contract import Button, EngineReply, MessageMetadata, Prediction
from bot.templates import TemplateRegistry


def _latest_user_event(tracker: dict[str, Any]) -> dict[str, Any]:
    for event in reversed(tracker.get("events") or []):
        if isinstance(event, dict) and event.get("event") == "user":
            return {str(k): v for k, v in event.items()}
    return {}


async def render_nlg(templates: TemplateRegistry, customers: AsyncCRM, body: dict[str, Any]) -> EngineReply:
    """Render one response from the request Rasa sends to an NLG server."""
    name = str(body.get("response") or "")
    tracker = body.get("tracker") or {}
    metadata = MessageMetadata.from_wire(_latest_user_event(tracker).get("metadata"))
    arguments = {k: v for k, v in (body.get("arguments") or {}).items() if k not in ("custom", "response_id")}
    variables: dict[str, Any] = {**(tracker.get("slots") or {}), **arguments}
    customer_id = arguments.get("customer_id") or metadata.customer_id
    variables["name"] = ""
    if customer_id:
        customer = await customers.get(str(customer_id))
        if customer is not None:
            variables["name"] = customer.masked_name(metadata.locale)
            variables["vip"] = customer.vip
    rendered = templates.render(name, metadata.channel, metadata.locale, variables)
    return EngineReply(
        text=rendered.text,
        buttons=tuple(Button(b["title"], b["payload"]) for b in rendered.buttons),
        template=rendered.name,
        template_version=rendered.version,
        text_format=rendered.text_format,
        html=rendered.html,
        prediction=Prediction.from_parse_data(tracker.get("latest_message")),
    )
