"""The agents' HTTP API: the queue, a conversation's whole context, take, answer, hand back.

Every route acts as the signed-in caller (`bot.web.auth`): the agent's name is the account's, never a
field of the request. Supervisors also see the figures and the team, and take over or reassign
conversations; every action is written to the audit log.
"""

from __future__ import annotations

import html
import re
import time
from collections.abc import Sequence
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field

from bot.accounts.records import Role
from bot.conversations.model import MAX_PRIORITY, SKILLS, Conversation, Handoff, LogEntry, Skill
from bot.crm.records import CustomerInfo, OrderInfo
from bot.desk.sla import SlaPolicy
from bot.web.auth import AgentDep, SupervisorDep
from bot.web.deps import AccountsDep, AssignerDep, CustomersDep, DeskDep, SlaDep, StatsDep, StoreDep

AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "No valid session cookie or API token."},
    403: {"description": "The caller's role may not do this, or a cookie request lacks its CSRF token."},
}
SUPERVISOR: dict[int | str, dict[str, Any]] = {
    403: {"description": "Supervisors and admins only (or a cookie request without its CSRF token)."}
}
router = APIRouter(prefix="/agent", tags=["agents"], responses=AUTH_RESPONSES)


class _Body(BaseModel):
    # An `agent` field from an older client is refused rather than silently believed: the name is the caller's.
    model_config = ConfigDict(extra="forbid")


class ReplyIn(_Body):
    """An agent's answer."""

    text: str = Field(min_length=1, max_length=20000)


def _sla(policy: SlaPolicy, handoff: Handoff | None, now: float) -> dict[str, Any] | None:
    return policy.state(handoff, now) if handoff is not None else None


class NoteIn(_Body):
    """An internal note: seen by agents only, never by the customer."""

    text: str = Field(min_length=1, max_length=5000)


class TransferIn(_Body):
    """Send the conversation to another skill's queue."""

    skill: Skill
    reason: str = Field(default="", max_length=1000, description="Kept as an internal note for the next agent.")


class ReassignIn(_Body):
    """Give the conversation to another agent."""

    agent: str = Field(min_length=1, max_length=80, description="The account name of the agent to give it to.")


class PresenceIn(_Body):
    """Whether the caller takes conversations automatically, which and how many at once."""

    available: bool
    skills: list[Skill] = Field(
        default_factory=lambda: list(SKILLS), min_length=1, description="Skills whose queues this agent takes from."
    )
    capacity: int = Field(default=3, ge=1, le=20, description="Conversations held at once.")


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


async def _cards(customers: CustomersDep, convs: Sequence[Conversation]) -> dict[str, dict[str, Any] | None]:
    """The customer card of each conversation, looked up in the CRM in one go."""
    found = await customers.many(c.customer_id for c in convs if c.customer_id)
    return {c.id: _customer_card(found.get(c.customer_id), c.locale) if c.customer_id else None for c in convs}


@router.get("/queue")
async def queue(
    who: AgentDep, desk: DeskDep, customers: CustomersDep, policy: SlaDep, skill: Skill | None = None
) -> list[dict[str, Any]]:
    """Waiting conversations, most urgent first (per skill, or all skills), with channel and customer."""
    now = time.time()
    waiting = await desk.waiting(skill)
    cards = await _cards(customers, [w.conversation for w in waiting])
    return [
        {
            "conversation_id": w.conversation.id,
            **asdict(w.handoff),
            "top_priority": w.handoff.priority >= MAX_PRIORITY,
            "waited_seconds": max(0.0, now - w.handoff.queued_at),
            "sla": _sla(policy, w.handoff, now),
            "channel": w.conversation.channel,
            "locale": w.conversation.locale,
            "customer": cards[w.conversation.id],
        }
        for w in waiting
    ]


async def _held_list(store: StoreDep, customers: CustomersDep, policy: SlaPolicy, agent: str) -> list[dict[str, Any]]:
    convs = await store.held_by(agent)
    cards = await _cards(customers, convs)
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
            "sla": _sla(policy, conv.handoff, now),
            "customer": cards[conv.id],
        }
        for conv in convs
    ]


@router.get("/conversations")
async def held(who: AgentDep, store: StoreDep, customers: CustomersDep, policy: SlaDep) -> list[dict[str, Any]]:
    """The conversations the caller holds (taken and not handed back), most recently active first."""
    return await _held_list(store, customers, policy, who.name)


@router.get("/team", responses=SUPERVISOR)
async def team(
    who: SupervisorDep,
    accounts: AccountsDep,
    assigner: AssignerDep,
    store: StoreDep,
    customers: CustomersDep,
    policy: SlaDep,
) -> list[dict[str, Any]]:
    """Every enabled account with its role, whether it takes conversations automatically, and what it holds."""
    available = {p.agent: p for p in await assigner.presences.available(time.time())}
    members = []
    for account in await accounts.all():
        if account.disabled:
            continue
        presence = available.get(account.name)
        members.append(
            {
                "agent": account.name,
                "role": str(account.role),
                "available": presence is not None,
                "skills": list(presence.skills) if presence else [],
                "holding": await _held_list(store, customers, policy, account.name),
            }
        )
    return members


@router.get("/conversations/{conv_id}")
async def conversation(
    conv_id: str, who: AgentDep, store: StoreDep, customers: CustomersDep, policy: SlaDep
) -> dict[str, Any]:
    """A conversation's state, its customer, the customer's orders and the whole transcript."""
    conv = await store.get(conv_id)
    if conv is None:
        raise HTTPException(404, f"no conversation {conv_id}")
    customer_id = conv.customer_id
    customer: CustomerInfo | None = None
    orders: list[OrderInfo] = []
    if customer_id:
        customer = await customers.get(customer_id)
        orders = await customers.orders_for(customer_id)
    history = await store.history(conv_id, count=2000)
    notes = await store.notes(conv_id)
    locale = conv.locale or (customer.locale if customer else None)
    return {
        "conversation": {**asdict(conv)},
        "sla": _sla(policy, conv.handoff, time.time()),
        "customer": _customer_card(customer, conv.locale),
        "orders": [_order(o, locale) for o in orders],
        # Internal notes interleaved by time, marked role "note" (agents only).
        "transcript": sorted([_line(e) for e in history] + [_note(e) for e in notes], key=lambda m: m["ts"]),
    }


@router.post("/conversations/{conv_id}/take")
async def take(conv_id: str, who: AgentDep, desk: DeskDep, accounts: AccountsDep) -> dict[str, Any]:
    """Take a waiting conversation (409 when another agent holds it: a supervisor can take it over)."""
    conv = await desk.take(conv_id, who.name)
    await accounts.audit(who, "take", conversation_id=conv.id)
    return {"conversation_id": conv.id, "mode": conv.mode, "agent": conv.agent}


@router.post("/conversations/{conv_id}/takeover", responses=SUPERVISOR)
async def take_over(conv_id: str, who: SupervisorDep, desk: DeskDep, accounts: AccountsDep) -> dict[str, Any]:
    """Take a conversation that another agent holds, or that waits (supervisors)."""
    conv, previous = await desk.give(conv_id, who.name, who.name)
    await accounts.audit(who, "takeover", conversation_id=conv.id, target=previous, detail=f"from {previous or '-'}")
    return {"conversation_id": conv.id, "mode": conv.mode, "agent": conv.agent, "previous": previous}


@router.post(
    "/conversations/{conv_id}/reassign",
    responses=SUPERVISOR | {404: {"description": "No such conversation, or no enabled account of that name."}},
)
async def reassign(
    conv_id: str, body: ReassignIn, who: SupervisorDep, desk: DeskDep, accounts: AccountsDep
) -> dict[str, Any]:
    """Give a waiting or held conversation to an agent (supervisors); the agent must have an enabled account."""
    target = await accounts.get(body.agent)
    if target.disabled:
        raise HTTPException(404, f"the account {target.name} is disabled")
    conv, previous = await desk.give(conv_id, target.name, who.name)
    await accounts.audit(
        who, "reassign", conversation_id=conv.id, target=target.name, detail=f"from {previous or '-'} to {target.name}"
    )
    return {"conversation_id": conv.id, "mode": conv.mode, "agent": conv.agent, "previous": previous}


@router.post("/conversations/{conv_id}/messages")
async def reply(conv_id: str, body: ReplyIn, who: AgentDep, desk: DeskDep, accounts: AccountsDep) -> dict[str, Any]:
    """Answer the customer through their own channel (takes the conversation if it was waiting)."""
    entry = await desk.reply(conv_id, who.name, body.text)
    await accounts.audit(who, "answer", conversation_id=conv_id, detail=f"seq {entry.seq}")
    return {"seq": entry.seq}


@router.post("/conversations/{conv_id}/handback")
async def hand_back(conv_id: str, who: AgentDep, desk: DeskDep, accounts: AccountsDep) -> dict[str, Any]:
    """Give the conversation back to the bot: one the caller holds or a waiting one (supervisors: any)."""
    conv = await desk.hand_back(conv_id, None if who.allows(Role.SUPERVISOR) else who.name)
    await accounts.audit(who, "hand_back", conversation_id=conv.id)
    return {"conversation_id": conv.id, "mode": conv.mode}


@router.get("/stats", responses=SUPERVISOR)
async def stats(
    who: SupervisorDep,
    figures: StatsDep,
    hours: Annotated[float, Query(gt=0, le=24 * 90, description="The window the figures cover.")] = 24,
) -> dict[str, Any]:
    """Service figures for the console: the queue now, first responses and SLA, satisfaction scores."""
    return await figures.compute(hours)


@router.post("/conversations/{conv_id}/notes")
async def add_note(conv_id: str, body: NoteIn, who: AgentDep, desk: DeskDep, accounts: AccountsDep) -> dict[str, Any]:
    """Add an internal note for colleagues (never shown to the customer, on any channel)."""
    entry = await desk.note(conv_id, who.name, body.text)
    await accounts.audit(who, "note", conversation_id=conv_id, detail=f"note {entry.seq}")
    return {"seq": "note-" + entry.seq}


@router.post("/conversations/{conv_id}/transfer")
async def transfer(
    conv_id: str, body: TransferIn, who: AgentDep, desk: DeskDep, accounts: AccountsDep
) -> dict[str, Any]:
    """Send a waiting conversation, or one the caller holds, to another skill's queue, keeping its place."""
    conv = await desk.transfer(conv_id, who.name, body.skill, body.reason.strip())
    await accounts.audit(who, "transfer", conversation_id=conv.id, detail=f"to {body.skill}")
    return {"conversation_id": conv.id, "mode": conv.mode, "skill": conv.handoff.skill if conv.handoff else None}


@router.post("/presence")
async def set_presence(body: PresenceIn, who: AgentDep, assigner: AssignerDep, store: StoreDep) -> dict[str, Any]:
    """Start, renew (a heartbeat: repeat it at least every 45 s) or stop taking conversations automatically."""
    presence = await assigner.presences.set(
        who.name, available=body.available, skills=tuple(dict.fromkeys(body.skills)), capacity=body.capacity
    )
    if presence is not None:
        assigner.wake()
    held = await store.held_by(who.name)
    return {
        "agent": who.name,
        "available": presence is not None,
        "skills": list(presence.skills) if presence else [],
        "capacity": body.capacity,
        "holding": len(held),
    }


@router.get("/presence", responses=SUPERVISOR)
async def presence(who: SupervisorDep, assigner: AssignerDep, store: StoreDep) -> list[dict[str, Any]]:
    """The agents taking conversations automatically now, with their load (supervisors)."""
    agents = await assigner.presences.available(time.time())
    loads = [len(await store.held_by(p.agent)) for p in agents]
    return [
        {"agent": p.agent, "skills": list(p.skills), "capacity": p.capacity, "holding": load}
        for p, load in zip(agents, loads, strict=True)
    ]
