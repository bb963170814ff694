"""Typed dependencies for routes: the container's parts and the engine callbacks' token (callers: `bot.web.auth`)."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Query, Request

from bot.accounts.directory import Accounts
from bot.conversations.store import ConversationStore
from bot.crm.directory import AsyncCRM
from bot.desk.agents import AgentDesk
from bot.desk.assign import Assigner
from bot.desk.review import ReviewQueue
from bot.desk.sla import SlaPolicy
from bot.desk.stats import DeskStats
from bot.templates import TemplateRegistry
from bot.web.container import Container


async def container(request: Request) -> Container:
    """The app's container; 503 while the app is still starting.

    This and the other dependencies here are `async def` although they do no I/O: FastAPI runs a plain
    `def` dependency in its thread pool, two thread hops per dependency per request.
    """
    found = getattr(request.app.state, "container", None)
    if not isinstance(found, Container):
        raise HTTPException(503, "the app is starting; try again shortly")
    return found


ContainerDep = Annotated[Container, Depends(container)]


async def _store(c: ContainerDep) -> ConversationStore:
    return c.store


async def _desk(c: ContainerDep) -> AgentDesk:
    return c.desk


async def _customers(c: ContainerDep) -> AsyncCRM:
    return c.customers


async def _sla(c: ContainerDep) -> SlaPolicy:
    return c.sla


async def _assigner(c: ContainerDep) -> Assigner:
    return c.assigner


async def _stats(c: ContainerDep) -> DeskStats:
    return c.stats


async def _templates(c: ContainerDep) -> TemplateRegistry:
    return c.templates


async def _accounts(c: ContainerDep) -> Accounts:
    return c.accounts


async def _review(c: ContainerDep) -> ReviewQueue:
    return c.review


StoreDep = Annotated[ConversationStore, Depends(_store)]
DeskDep = Annotated[AgentDesk, Depends(_desk)]
CustomersDep = Annotated[AsyncCRM, Depends(_customers)]
SlaDep = Annotated[SlaPolicy, Depends(_sla)]
AssignerDep = Annotated[Assigner, Depends(_assigner)]
StatsDep = Annotated[DeskStats, Depends(_stats)]
TemplatesDep = Annotated[TemplateRegistry, Depends(_templates)]
AccountsDep = Annotated[Accounts, Depends(_accounts)]
ReviewDep = Annotated[ReviewQueue, Depends(_review)]


def _matches(supplied: str, expected: str) -> bool:
    return bool(supplied and expected) and hmac.compare_digest(supplied.encode(), expected.encode())


async def engine_token(request: Request, token: str = Query(default="")) -> None:
    """The token the engine's callbacks carry."""
    expected: str = request.app.state.engine_token
    if not _matches(token, expected):
        raise HTTPException(status_code=401, detail="missing or wrong engine token")
