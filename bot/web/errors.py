"""One table from domain errors to HTTP statuses, installed as the app's exception handlers."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from bot.accounts.records import (
    AccountExists,
    AccountLocked,
    BadAccountInput,
    Forbidden,
    LastAdmin,
    NotAuthenticated,
    TooManyAttempts,
    UnknownAccount,
)
from bot.desk.agents import ConversationNotFound, WrongMode
from bot.errors import AutoresponderError, BadInput, EngineUnavailable

# Most specific first: the first matching class decides.
ERROR_STATUS: tuple[tuple[type[AutoresponderError], int, str | None], ...] = (
    (ConversationNotFound, 404, None),
    (WrongMode, 409, None),
    (BadInput, 400, None),
    (EngineUnavailable, 503, "the assistant engine is unavailable; try again shortly"),
    (NotAuthenticated, 401, None),
    (Forbidden, 403, None),
    (AccountLocked, 423, None),
    (TooManyAttempts, 429, None),
    (UnknownAccount, 404, None),
    (AccountExists, 409, None),
    (LastAdmin, 409, None),
    (BadAccountInput, 400, None),
)


def _headers(exc: Exception) -> dict[str, str]:
    if isinstance(exc, NotAuthenticated):
        return {"WWW-Authenticate": "Bearer"}
    if isinstance(exc, AccountLocked | TooManyAttempts):
        return {"Retry-After": str(exc.retry_after)}
    return {}


def install(app: FastAPI) -> None:
    """Register one handler per entry of the table."""
    for error, status, detail in ERROR_STATUS:

        async def handler(
            request: Request, exc: Exception, status: int = status, detail: str | None = detail
        ) -> JSONResponse:
            return JSONResponse({"detail": detail or str(exc)}, status_code=status, headers=_headers(exc))

        app.add_exception_handler(error, handler)
