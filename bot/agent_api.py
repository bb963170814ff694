"""The agents' HTTP API: the queue, a conversation's whole context, take, answer, hand back."""

from __future__ import annotations

import asyncio
import hmac
import html
import re
import statistics
import time
from collections.abc import Iterable
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request
from pydantic import BaseModel, Field

from bot import keys
from bot.agents import AgentDesk, ConversationNotFound, WrongMode
from bot.assign import Assigner
from bot.crm import CRM, CustomerInfo, OrderInfo
from bot.csat import SCALE
from bot.sla import SlaPolicy
from bot.store import MAX_PRIORITY, SKILLS, Conversation, Handoff, LogEntry, Skill


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


def _sla(request: Request, handoff: Handoff | None, now: float) -> dict[str, Any] | None:
    policy: SlaPolicy = request.app.state.sla
    return policy.state(handoff, now) if handoff is not None else None


class NoteIn(BaseModel):
    """An internal note: seen by agents only, never by the customer."""

    agent: str = Field(min_length=1, max_length=80)
    text: str = Field(min_length=1, max_length=5000)


class TransferIn(BaseModel):
    """Send the conversation to another skill's queue."""

    agent: str = Field(min_length=1, max_length=80, description="The agent transferring it.")
    skill: Skill
    reason: str = Field(default="", max_length=1000, description="Kept as an internal note for the next agent.")


class PresenceIn(BaseModel):
    """Whether an agent takes conversations automatically, which and how many at once."""

    agent: str = Field(min_length=1, max_length=80)
    available: bool
    skills: list[Skill] = Field(
        default_factory=lambda: list(SKILLS), min_length=1, description="Skills whose queues this agent takes from."
    )
    capacity: int = Field(default=3, ge=1, le=20, description="Conversations held at once.")


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


def _customers(crm: CRM, ids: Iterable[str]) -> dict[str, CustomerInfo]:
    found = {cid: crm.get_customer(cid) for cid in ids}
    return {cid: c for cid, c in found.items() if c is not None}


def _customer_card(customer: CustomerInfo | None, locale: str | None) -> dict[str, Any] | None:
    """What agents see of a customer: the masked name, never the full name, phone or address."""
    if customer is None:
        return None
    return {
        "id": customer.id,
        "name": customer.masked_name(locale),
        "vip": customer.vip,
        "vip_level": customer.vip_level,
        "locale": customer.locale,
    }


def _order(order: OrderInfo, locale: str | None) -> dict[str, Any]:
    return {
        "id": order.id,
        "status": str(order.status),
        "product": order.product_name(locale),
        "quantity": order.quantity,
        "carrier": order.carrier_name(locale),
        "tracking_number": order.tracking_number,
        "amount": str(order.amount),
        "currency": order.currency,
        "purchase_date": order.purchase_date.isoformat(),
    }


_TAG = re.compile(r"<[^>]*>")


def _line(entry: LogEntry) -> dict[str, Any]:
    """A transcript line for agents; `display_text` is the text without markup (Telegram replies are HTML)."""
    display = html.unescape(_TAG.sub("", entry.text)) if entry.text_format == "html" else entry.text
    return entry.frame() | {
        "display_text": display,
        "template": entry.template,
        "template_version": entry.template_version,
    }


def _note(entry: LogEntry) -> dict[str, Any]:
    """An internal note as a transcript line; its seq is prefixed so that it never equals a message's."""
    return entry.frame() | {"seq": "note-" + entry.seq, "display_text": entry.text, "template": None}


async def _cards(request: Request, convs: list[Conversation]) -> dict[str, dict[str, Any] | None]:
    """The customer card of each conversation, looked up in the CRM in one go."""
    crm: CRM = request.app.state.services.crm
    customers = await asyncio.to_thread(_customers, crm, {c.customer_id for c in convs if c.customer_id})
    return {c.id: _customer_card(customers.get(c.customer_id), c.locale) if c.customer_id else None for c in convs}


@router.get("/queue")
async def queue(request: Request, skill: str | None = None) -> list[dict[str, Any]]:
    """Waiting conversations, most urgent first (per skill, or all skills), with channel and customer."""
    store = request.app.state.services.store
    now = time.time()
    queued = [entry for s in ([skill] if skill else SKILLS) for entry in await store.queue(s)]
    convs = await store.get_many([cid for cid, _ in queued])
    waiting = [(convs[cid], handoff) for cid, handoff in queued if cid in convs]
    cards = await _cards(request, [conv for conv, _ in waiting])
    out = [
        {
            "conversation_id": conv.id,
            **asdict(handoff),
            "top_priority": handoff.priority >= MAX_PRIORITY,
            "waited_seconds": max(0.0, now - handoff.queued_at),
            "sla": _sla(request, handoff, now),
            "channel": conv.channel,
            "locale": conv.locale,
            "customer": cards[conv.id],
        }
        for conv, handoff in waiting
    ]
    return sorted(out, key=lambda e: (-e["priority"], e["queued_at"]))


@router.get("/conversations")
async def held(
    request: Request, agent: Annotated[str, Query(min_length=1, max_length=80, description="The agent's name.")]
) -> list[dict[str, Any]]:
    """The conversations an agent holds (taken and not handed back), most recently active first."""
    convs: list[Conversation] = await request.app.state.services.store.held_by(agent)
    cards = await _cards(request, convs)
    now = time.time()
    return [
        {
            "conversation_id": conv.id,
            "channel": conv.channel,
            "mode": conv.mode,
            "agent": conv.agent,
            "locale": conv.locale,
            "updated_at": conv.updated_at,
            "handoff": asdict(conv.handoff) if conv.handoff else None,
            "sla": _sla(request, conv.handoff, now),
            "customer": cards[conv.id],
        }
        for conv in convs
    ]


@router.get("/conversations/{conv_id}")
async def conversation(conv_id: str, request: Request) -> dict[str, Any]:
    """A conversation's state, its customer, the customer's orders and the whole transcript."""
    services = request.app.state.services
    conv = await services.store.get(conv_id)
    if conv is None:
        raise HTTPException(404, f"no conversation {conv_id}")
    customer_id = conv.customer_id
    customer: CustomerInfo | None = None
    orders: list[OrderInfo] = []
    if customer_id:
        customer = await asyncio.to_thread(services.crm.get_customer, customer_id)
        orders = await asyncio.to_thread(services.crm.orders_for, customer_id)
    history = await services.store.history(conv_id, count=2000)
    notes = await services.store.notes(conv_id)
    locale = conv.locale or (customer.locale if customer else None)
    return {
        "conversation": {**asdict(conv)},
        "sla": _sla(request, conv.handoff, time.time()),
        "customer": _customer_card(customer, conv.locale),
        "orders": [_order(o, locale) for o in orders],
        # Internal notes interleaved by time, marked role "note" (agents only).
        "transcript": sorted([_line(e) for e in history] + [_note(e) for e in notes], key=lambda m: m["ts"]),
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


def _percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


@router.get("/stats")
async def stats(
    request: Request,
    hours: Annotated[float, Query(gt=0, le=24 * 90, description="The window the figures cover.")] = 24,
) -> dict[str, Any]:
    """Service figures for the console: the queue now, first responses and SLA, satisfaction scores."""
    services = request.app.state.services
    store = services.store
    policy: SlaPolicy = request.app.state.sla
    now = time.time()
    since = now - hours * 3600
    waiting: dict[str, int] = {}
    overdue = escalated = 0
    oldest = 0.0
    for skill in SKILLS:
        queued = await store.queue(skill)
        waiting[skill] = len(queued)
        for _, handoff in queued:
            state = policy.state(handoff, now)
            overdue += state["state"] in ("overdue", "escalated")
            escalated += bool(handoff.escalated_at)
            oldest = max(oldest, now - handoff.queued_at)
    firsts = await store.events_since(keys.stats_first_responses(), since)
    waits = [float(e.get("waited") or 0) for e in firsts]
    met = sum(1 for e in firsts if e.get("met") == "1")
    sla_events = await store.events_since(keys.stats_sla(), since)
    csat = await store.events_since(keys.stats_csat(), since)
    scores = [int(e["score"]) for e in csat if e.get("event") == "score" and e.get("score", "").isdigit()]
    asked = sum(1 for e in csat if e.get("event") == "asked")
    return {
        "window_hours": hours,
        "queue": {
            "waiting": sum(waiting.values()),
            "by_skill": waiting,
            "overdue": overdue,
            "escalated": escalated,
            "oldest_wait_seconds": round(oldest, 1),
        },
        "first_response": {
            "target_seconds": policy.first_response,
            "count": len(waits),
            "median_seconds": statistics.median(waits) if waits else None,
            "p90_seconds": _percentile(waits, 0.9),
            "within_target": round(met / len(firsts), 3) if firsts else None,
            "breached": sum(1 for e in sla_events if e.get("event") == "breached"),
            "escalated": sum(1 for e in sla_events if e.get("event") == "escalated"),
        },
        "csat": {
            "surveys": asked,
            "responses": len(scores),
            "response_rate": round(len(scores) / asked, 3) if asked else None,
            "average": round(sum(scores) / len(scores), 2) if scores else None,
            "distribution": {str(n): scores.count(n) for n in SCALE},
            "low": sum(1 for e in csat if e.get("event") == "score" and e.get("low") == "1"),
        },
    }


@router.post("/conversations/{conv_id}/notes")
async def add_note(conv_id: str, body: NoteIn, request: Request) -> dict[str, Any]:
    """Add an internal note for colleagues (never shown to the customer, on any channel)."""
    entry = await _guard(_desk(request).note(conv_id, body.agent, body.text))
    return {"seq": "note-" + entry.seq}


@router.post("/conversations/{conv_id}/transfer")
async def transfer(conv_id: str, body: TransferIn, request: Request) -> dict[str, Any]:
    """Send a waiting conversation, or one this agent holds, to another skill's queue, keeping its place."""
    conv = await _guard(_desk(request).transfer(conv_id, body.agent, body.skill, body.reason.strip()))
    return {"conversation_id": conv.id, "mode": conv.mode, "skill": conv.handoff.skill if conv.handoff else None}


@router.post("/presence")
async def set_presence(body: PresenceIn, request: Request) -> dict[str, Any]:
    """Start, renew (a heartbeat: repeat it at least every 45 s) or stop taking conversations automatically."""
    assigner: Assigner = request.app.state.assigner
    presence = await assigner.presences.set(
        body.agent, available=body.available, skills=tuple(dict.fromkeys(body.skills)), capacity=body.capacity
    )
    if presence is not None:
        assigner.wake()
    held = await request.app.state.services.store.held_by(body.agent)
    return {
        "agent": body.agent,
        "available": presence is not None,
        "skills": list(presence.skills) if presence else [],
        "capacity": body.capacity,
        "holding": len(held),
    }


@router.get("/presence")
async def presence(request: Request) -> list[dict[str, Any]]:
    """The agents taking conversations automatically now, with their load."""
    assigner: Assigner = request.app.state.assigner
    store = request.app.state.services.store
    agents = await assigner.presences.available(time.time())
    loads = [len(await store.held_by(p.agent)) for p in agents]
    return [
        {"agent": p.agent, "skills": list(p.skills), "capacity": p.capacity, "holding": load}
        for p, load in zip(agents, loads, strict=True)
    ]
