"""Kept-alive connections to the app's action and NLG endpoints.

Rasa 3.6 opens a new aiohttp `ClientSession` (and so a new TCP connection) for every request it makes
to an endpoint (`EndpointConfig.request` does `async with self.session() as session`): two to four per
customer message, each paying a connect, a session set-up and a close. Under load that was 8 % of the
engine's event loop. `install()` makes `EndpointConfig.session()` hand out one session per endpoint and
event loop, kept open for the process's life, through a context manager that does not close it; Rasa's
request code, its headers, authentication and timeout are unchanged.
"""

from __future__ import annotations

import asyncio
import weakref
from types import TracebackType
from typing import Any

import aiohttp

_ATTRIBUTE = "_ar_sessions"
# An idle connection is dropped before the app's server drops it (uvicorn's keep-alive timeout is 5 s):
# a request written on a connection the server is closing would fail the turn for nothing.
KEEPALIVE_SECONDS = 2.0
_original: Any = None


class _Kept:
    """`async with endpoint.session() as session`: the endpoint's open session, not closed on exit."""

    def __init__(self, endpoint: Any) -> None:
        self.endpoint = endpoint

    async def __aenter__(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        sessions: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aiohttp.ClientSession]
        sessions = self.endpoint.__dict__.setdefault(_ATTRIBUTE, weakref.WeakKeyDictionary())
        session = sessions.get(loop)
        if session is None or session.closed:
            session = _kept_session(self.endpoint)
            sessions[loop] = session
        return session

    async def __aexit__(
        self, kind: type[BaseException] | None, value: BaseException | None, trace: TracebackType | None
    ) -> None:
        return None


def _kept_session(endpoint: Any) -> aiohttp.ClientSession:
    """A session as Rasa's `EndpointConfig.session()` makes it (headers, basic auth, timeout), kept alive."""
    from rasa.utils.endpoints import DEFAULT_REQUEST_TIMEOUT

    basic = endpoint.basic_auth
    return aiohttp.ClientSession(
        headers=endpoint.headers,
        auth=aiohttp.BasicAuth(basic["username"], basic["password"]) if basic else None,
        timeout=aiohttp.ClientTimeout(total=DEFAULT_REQUEST_TIMEOUT),
        connector=aiohttp.TCPConnector(keepalive_timeout=KEEPALIVE_SECONDS),
    )


def session(self: Any) -> _Kept:
    """The endpoint's kept-alive session (see the module docstring)."""
    return _Kept(self)


async def close_all(endpoints: list[Any]) -> None:
    """Close the sessions kept for these endpoints on the running loop (at shutdown, and in tests)."""
    loop = asyncio.get_running_loop()
    for endpoint in endpoints:
        found = endpoint.__dict__.get(_ATTRIBUTE, {}).pop(loop, None)
        if found is not None:
            await found.close()


def install() -> None:
    """Make `EndpointConfig.session()` reuse one session per endpoint and event loop."""
    global _original
    from rasa.utils.endpoints import EndpointConfig

    if _original is None:
        _original = EndpointConfig.session
        EndpointConfig.session = session  # type: ignore[assignment,method-assign]  # same use: `async with`


def uninstall() -> None:
    """Give `EndpointConfig.session()` back to Rasa (tests that must not keep sessions open)."""
    global _original
    from rasa.utils.endpoints import EndpointConfig

    if _original is not None:
        EndpointConfig.session = _original  # type: ignore[method-assign]
        _original = None
