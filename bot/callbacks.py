"""Routes the engine calls back: the NLG endpoint and the custom-action endpoint."""

from __future__ import annotations

import asyncio
import hmac
import logging
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from rasa_sdk.executor import ActionExecutor
from rasa_sdk.interfaces import ActionExecutionRejection, ActionNotFoundException

from bot.crm import CRM
from bot.errors import TemplateError
from bot.templates import TemplateRegistry

log = logging.getLogger(__name__)


def _engine_token(request: Request, token: str = Query(default="")) -> None:
    expected: str = request.app.state.engine_token
    if not token or not hmac.compare_digest(token, expected):
        raise HTTPException(status_code=401, detail="missing or wrong engine token")


router = APIRouter(prefix="/webhooks", include_in_schema=False, dependencies=[Depends(_engine_token)])


def _latest_user_event(tracker: dict[str, Any]) -> dict[str, Any]:
    for event in reversed(tracker.get("events") or []):
        if isinstance(event, dict) and event.get("event") == "user":
            return {str(k): v for k, v in event.items()}
    return {}


async def render_nlg(templates: TemplateRegistry, crm: CRM, body: dict[str, Any]) -> dict[str, Any]:
    """Render one response for the engine from the request Rasa sends to an NLG server."""
    name = str(body.get("response") or "")
    tracker = body.get("tracker") or {}
    metadata = _latest_user_event(tracker).get("metadata") or {}
    arguments = {k: v for k, v in (body.get("arguments") or {}).items() if k not in ("custom", "response_id")}
    variables: dict[str, Any] = {**(tracker.get("slots") or {}), **arguments}
    locale = str(metadata.get("locale") or "zh-CN")
    channel = str(metadata.get("channel") or "rest")
    customer_id = arguments.get("customer_id") or metadata.get("customer_id")
    variables["name"] = ""
    if customer_id:
        customer = await asyncio.to_thread(crm.get_customer, str(customer_id))
        if customer is not None:
            variables["name"] = customer.masked_name(locale)
            variables["vip"] = customer.vip
    rendered = templates.render(name, channel, locale, variables)
    reply: dict[str, Any] = {
        "text": rendered.text,
        "buttons": rendered.buttons,
        "ar_template": rendered.name,
        "ar_template_version": rendered.version,
        "ar_format": rendered.text_format,
    }
    if rendered.html:
        reply["ar_html"] = rendered.html
    return reply


@router.post("/nlg")
async def nlg(request: Request) -> JSONResponse:
    """Rasa's NLG callback: render responses/<name>.yml for the message's channel and locale."""
    body = await request.json()
    try:
        reply = await render_nlg(request.app.state.templates, request.app.state.crm, body)
    except TemplateError as exc:
        log.error("template error: %s", exc)
        if request.app.state.templates.strict:
            raise HTTPException(status_code=500, detail=str(exc)) from exc
        reply = {"text": "…", "ar_template": "template_error"}
    return JSONResponse(reply)


@router.post("/actions")
async def actions(request: Request) -> JSONResponse:
    """Rasa's action-server callback, run by rasa-sdk's executor inside the app."""
    executor: ActionExecutor = request.app.state.executor
    body = await request.json()
    try:
        result = await executor.run(body)
    except ActionNotFoundException as exc:
        return JSONResponse({"error": str(exc), "action_name": exc.action_name}, status_code=404)
    except ActionExecutionRejection as exc:
        return JSONResponse({"error": exc.message, "action_name": exc.action_name}, status_code=400)
    if result is None:
        return JSONResponse({"events": [], "responses": []})
    return JSONResponse(result.model_dump(by_alias=True))
