"""The agents' HTTP API: the queue, a conversation's whole context, take, answer, hand back."""

from __future__ import annotations

import hmac
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Depends, Header, HTTPException, Request
from pydantic import BaseModel, Field

from bot.agents import AgentDesk, ConversationNotFound, WrongMode

SKILLS = ("logistics", "after_sales", "billing", "complaints", "general")


def _agent_token(request: Request, authorization: str = Header(default="", include_in_schema=False)) -> None:
    expected: str = request.app.state.services.settings.secret("agent_token")
    supplied = authorization[7:] if authorization.startswith("Bearer ") else ""
    if not supplied or not hmac.compare_digest(supplied.encode(), expected.encode()):
        raise HTTPException(401, "missing or wrong token: send Authorization: Bearer $AUTORESPONDER_AGENT_TOKEN")


router = APIRouter(prefix="/agent", tags=["agents"], dependencies=[Depends(_agent_token)])


class TakeIn(BaseModel):
    """Who takes the conversation."""

    agent: str = Field(min_length=1, max_length=80)


class ReplyIn(BaseModel):
    """An agent's answer."""

    agent: str = Field(min_length=1, max_length=80)
    text: str = Field(min_length=1, max_length=20000)


def _desk(request: Request) -> AgentDesk:
    desk: AgentDesk = request.app.state.services.desk
    return desk


async def _guard(coro: Any) -> Any:
    try:
        return await coro
    except ConversationNotFound as exc:
        raise HTTPException(404, str(exc)) from exc
    except WrongMode as exc:
        raise HTTPException(409, str(exc)) from exc


@router.get("/queue")
async def queue(request: Request, skill: str | None = None) -> list[dict[str, Any]]:
    """Waiting conversations, most urgent first (per skill, or all skills)."""
    store = request.app.state.services.store
    out: list[dict[str, Any]] = []
    for s in [skill] if skill else SKILLS:
        out.extend({"conversation_id": cid, **asdict(h)} for cid, h in await store.queue(s))
    return sorted(out, key=lambda e: (-e["priority"], e["queued_at"]))


@router.get("/conversations/{conv_id}")
async def conversation(conv_id: str, request: Request) -> dict[str, Any]:
    """A conversation's state, its customer and its whole transcript."""
    services = request.app.state.services
    conv = await services.store.get(conv_id)
    if conv is None:
        raise HTTPException(404, f"no conversation {conv_id}")
    customer = services.crm.get_customer(conv.customer_id) if conv.customer_id else None
    history = await services.store.history(conv_id, count=2000)
    return {
        "conversation": {**asdict(conv)},
        "customer": (
            {
                "id": customer.id,
                "name": customer.masked_name(conv.locale),
                "vip": customer.vip,
                "locale": customer.locale,
            }
            if customer
            else None
        ),
        "transcript": [e.frame() | {"template": e.template, "template_version": e.template_version} for e in history],
    }


@router.post("/conversations/{conv_id}/take")
async def take(conv_id: str, body: TakeIn, request: Request) -> dict[str, Any]:
    """Take a waiting conversation."""
    conv = await _guard(_desk(request).take(conv_id, body.agent))
    return {"conversation_id": conv.id, "mode": conv.mode, "agent": conv.agent}


@router.post("/conversations/{conv_id}/messages")
async def reply(conv_id: str, body: ReplyIn, request: Request) -> dict[str, Any]:
    """Answer the customer through their own channel (takes the conversation if it was waiting)."""
    entry = await _guard(_desk(request).reply(conv_id, body.agent, body.text))
    return {"seq": entry.seq}


@router.post("/conversations/{conv_id}/handback")
async def hand_back(conv_id: str, request: Request) -> dict[str, Any]:
    """Give the conversation back to the bot."""
    conv = await _guard(_desk(request).hand_back(conv_id))
    return {"conversation_id": conv.id, "mode": conv.mode}
