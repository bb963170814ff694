"""A background round repeated every few seconds (or sooner when woken) for the life of the app."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from abc import ABC, abstractmethod
from typing import Any

log = logging.getLogger(__name__)


class Periodic(ABC):
    """Runs `round(now)` every `interval` seconds until stopped; a failed round is logged and retried."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()

    @abstractmethod
    async def round(self, now: float) -> Any:
        """One round of work."""

    def stop(self) -> None:
        """Ask the loop to end."""
        self._stopping.set()
        self._wake.set()

    def wake(self) -> None:
        """Run the next round now rather than at the end of the interval."""
        self._wake.set()

    async def run(self) -> None:
        """Repeat rounds until stopped."""
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                await self.round(time.time())
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s round failed; retrying", type(self).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)
