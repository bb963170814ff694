"""One table from domain errors to HTTP statuses, installed as the app's exception handlers."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bot import metrics
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
from bot.desk.review import ReviewItemNotFound
from bot.desk.reviewed import ReviewFileError
from bot.errors import AutoresponderError, BadInput, EngineUnavailable

log = logging.getLogger(__name__)

# Most specific first: the first matching class decides.
ERROR_STATUS: tuple[tuple[type[AutoresponderError], int, str | None], ...] = (
    (ConversationNotFound, 404, None),
    (ReviewItemNotFound, 404, None),
    (ReviewFileError, 500, None),
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
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(RedisConnectionError, _redis_down)
    app.add_exception_handler(RedisTimeoutError, _redis_down)


async def _redis_down(request: Request, exc: Exception) -> JSONResponse:
    """Redis restarting or unreachable: nothing was accepted; the caller retries (503, not a crash)."""
    method = request.scope.get("method") or "WEBSOCKET"  # the handler also meets web chat sockets
    log.warning("Redis unavailable for %s %s: %s", method, request.url.path, exc.__class__.__name__)
    metrics.DEPENDENCY_ERRORS.labels("redis").inc()
    return JSONResponse(
        {"detail": "storage is unavailable for a moment; try again shortly"},
        status_code=503,
        headers={"Retry-After": "2"},
    )


async def _invalid(request: Request, exc: Exception) -> JSONResponse:
    """422 naming the offending fields, without echoing what was sent (it may not even be encodable, and
    it is the customer's text: it belongs neither in responses nor in logs)."""
    assert isinstance(exc, RequestValidationError)
    detail = [
        {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
        for e in exc.errors()
    ]
    return JSONResponse({"detail": detail}, status_code=422)
