"""Routes the engine calls back: the NLG endpoint and the custom-action endpoint."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse
from rasa_sdk.interfaces import ActionExecutionRejection, ActionMissingDomainException, ActionNotFoundException

from bot import metrics
from bot.engine.contract import EngineReply
from bot.engine.nlg import render_nlg
from bot.errors import TemplateError
from bot.web.container import Container
from bot.web.deps import ContainerDep, engine_token
from bot.web.middleware import parsed_json

log = logging.getLogger(__name__)

router = APIRouter(prefix="/webhooks", include_in_schema=False, dependencies=[Depends(engine_token)])


@router.post("/nlg")
async def nlg(request: Request, c: ContainerDep) -> JSONResponse:
    """Rasa's NLG callback: render responses/<name>.yml for the message's channel and locale."""
    with metrics.timed("nlg_callback"):
        return await _nlg(request, c)


async def _nlg(request: Request, c: Container) -> JSONResponse:
    body: Any = await parsed_json(request)
    if not isinstance(body, dict):
        raise HTTPException(status_code=422, detail="an NLG request is a JSON object")
    try:
        reply = (await render_nlg(c.templates, c.customers, body)).to_wire()
    except TemplateError as exc:
        log.error("template error: %s", exc)
        if c.templates.strict:
            raise HTTPException(status_code=500, detail=str(exc)) from exc
        reply = EngineReply(text="…", template="template_error").to_wire()
    return JSONResponse(reply)


@router.post("/actions")
async def actions(request: Request, c: ContainerDep) -> JSONResponse:
    """Rasa's action-server callback, run by rasa-sdk's executor inside the app."""
    with metrics.timed("action_callback"):
        return await _actions(request, c)


async def _actions(request: Request, c: Container) -> JSONResponse:
    body = await parsed_json(request)
    try:
        result = await c.executor.run(body)
    except ActionNotFoundException as exc:
        return JSONResponse({"error": str(exc), "action_name": exc.action_name}, status_code=404)
    except ActionExecutionRejection as exc:
        return JSONResponse({"error": exc.message, "action_name": exc.action_name}, status_code=400)
    except ActionMissingDomainException as exc:
        # The engine names its domain by digest; this process has another one or none: it sends it again.
        return JSONResponse({"error": exc.message, "action_name": exc.action_name}, status_code=449)
    if result is None:
        return JSONResponse({"events": [], "responses": []})
    return JSONResponse(result.model_dump(by_alias=True))
