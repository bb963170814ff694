"""The review list's HTTP API (supervisors and admins): what the assistant may have misunderstood, and
the one-click decision on each entry (the right intent, out of scope, or dismissed). Every decision is
written to the audit log."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from bot.desk.review import Reason
from bot.web.auth import SupervisorDep
from bot.web.deps import AccountsDep, ReviewDep
from bot.web.routes.agents import AUTH_RESPONSES, SUPERVISOR

router = APIRouter(prefix="/agent/review", tags=["review"], responses=AUTH_RESPONSES | SUPERVISOR)
# An entry's id: the digest `bot.desk.review.item_id` gives its masked text.
ItemId = Annotated[str, Path(pattern=r"^[0-9a-f]{24}$", description="The entry's id, from the list.")]
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No such entry: decided already or expired."}}
WRITE_FAILED = {"description": "The reviewed examples file cannot be written (AUTORESPONDER_REVIEW_FILE)."}


class AssignIn(BaseModel):
    """The intent the message meant (`out_of_scope` for what the shop does not answer)."""

    model_config = ConfigDict(extra="forbid")

    intent: str = Field(min_length=1, max_length=80)


@router.get("")
async def review_list(
    who: SupervisorDep,
    review: ReviewDep,
    reason: Annotated[Reason | None, Query(description="Only the entries that came in for this reason.")] = None,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    """Entries seen most recently first (masked text, predicted intent and confidence, reasons, count);
    pass `next_offset` as `offset` for the next page."""
    page = await review.page(reason, offset, limit)
    return {"items": [i.to_json() for i in page.items], "total": page.total, "next_offset": page.next_offset}


@router.get("/intents")
async def review_intents(who: SupervisorDep, review: ReviewDep) -> list[dict[str, Any]]:
    """The intents an entry may be assigned, with how many reviewed examples each has already."""
    counts = review.examples.counts()
    return [{"name": name, "reviewed": counts.get(name, 0)} for name in sorted(review.examples.intents)]


@router.post(
    "/{item_id}/assign", responses=NOT_FOUND | {400: {"description": "Not an intent of the domain."}, 500: WRITE_FAILED}
)
async def review_assign(
    item_id: ItemId, body: AssignIn, who: SupervisorDep, review: ReviewDep, accounts: AccountsDep
) -> dict[str, Any]:
    """Assign the right intent: the masked text becomes a reviewed training example and leaves the list."""
    item = await review.assign(item_id, body.intent)
    await accounts.audit(who, "review_assign", target=item.id, detail=f"{item.seen.intent} -> {body.intent}")
    return item.to_json() | {"assigned": body.intent}


@router.post("/{item_id}/dismiss", responses=NOT_FOUND)
async def review_dismiss(
    item_id: ItemId, who: SupervisorDep, review: ReviewDep, accounts: AccountsDep
) -> dict[str, Any]:
    """Take the entry off the list without a training example."""
    item = await review.dismiss(item_id)
    await accounts.audit(who, "review_dismiss", target=item.id, detail=item.seen.intent)
    return item.to_json() | {"dismissed": True}
