"""Typed dependencies for routes: the container's parts, and the bearer tokens that guard them."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Query, Request

from bot.conversations.store import ConversationStore
from bot.crm.directory import AsyncCRM
from bot.desk.agents import AgentDesk
from bot.desk.assign import Assigner
from bot.desk.sla import SlaPolicy
from bot.desk.stats import DeskStats
from bot.templates import TemplateRegistry
from bot.web.container import Container


def container(request: Request) -> Container:
    """The app's container; 503 while the app is still starting."""
    found = getattr(request.app.state, "container", None)
    if not isinstance(found, Container):
        raise HTTPException(503, "the app is starting; try again shortly")
    return found


ContainerDep = Annotated[Container, Depends(container)]


def _store(c: ContainerDep) -> ConversationStore:
    return c.store


def _desk(c: ContainerDep) -> AgentDesk:
    return c.desk


def _customers(c: ContainerDep) -> AsyncCRM:
    return c.customers


def _sla(c: ContainerDep) -> SlaPolicy:
    return c.sla


def _assigner(c: ContainerDep) -> Assigner:
    return c.assigner


def _stats(c: ContainerDep) -> DeskStats:
    return c.stats


def _templates(c: ContainerDep) -> TemplateRegistry:
    return c.templates


StoreDep = Annotated[ConversationStore, Depends(_store)]
DeskDep = Annotated[AgentDesk, Depends(_desk)]
CustomersDep = Annotated[AsyncCRM, Depends(_customers)]
SlaDep = Annotated[SlaPolicy, Depends(_sla)]
AssignerDep = Annotated[Assigner, Depends(_assigner)]
StatsDep = Annotated[DeskStats, Depends(_stats)]
TemplatesDep = Annotated[TemplateRegistry, Depends(_templates)]


def _matches(supplied: str, expected: str) -> bool:
    return bool(supplied and expected) and hmac.compare_digest(supplied.encode(), expected.encode())


def agent_token(request: Request, authorization: str = Header(default="", include_in_schema=False)) -> None:
    """The agent API's bearer token."""
    expected: str = request.app.state.agent_token
    supplied = authorization[7:] if authorization.startswith("Bearer ") else ""
    if not _matches(supplied, expected):
        raise HTTPException(401, "missing or wrong token: send Authorization: Bearer $AUTORESPONDER_AGENT_TOKEN")


def engine_token(request: Request, token: str = Query(default="")) -> None:
    """The token the engine's callbacks carry."""
    expected: str = request.app.state.engine_token
    if not _matches(token, expected):
        raise HTTPException(status_code=401, detail="missing or wrong engine token")
