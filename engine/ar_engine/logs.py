"""Quiet logging for the engine-side command-line tools (evaluation, benchmarks)."""

from __future__ import annotations

import logging


def quiet_structlog() -> None:
    """Rasa 3.6 logs every parse through structlog at debug level; keep only warnings and errors."""
    from rasa.utils.log_utils import configure_structlog

    configure_structlog(logging.WARNING)
