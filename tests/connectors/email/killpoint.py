"""A child process for the kill-point tests: runs an outbox worker that SIGKILLs itself at one moment.

    python -m tests.connectors.email.killpoint REDIS_URL SMTP_PORT MOMENT

MOMENT is where in the SMTP transaction the process dies:
  body_sent   the whole message is in the kernel, the final dot is not (nor the sent marker)
  dot_sent    the marker and the final dot are in the kernel, the server's reply is not read
  reply_read  the server's 250 is read, the entry is not yet acknowledged in Redis
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from typing import Any

from aiosmtplib.protocol import SMTPProtocol
from redis.asyncio import Redis

from connectors.email import outbox
from connectors.email.outbox import OutboxWorker, SmtpConfig, SmtpSender

MOMENTS = ("body_sent", "dot_sent", "reply_read")


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def arm(moment: str) -> None:
    if moment == "body_sent":
        original_mark = outbox.CommitMarker.mark

        async def mark(self: outbox.CommitMarker, *args: Any) -> None:
            die()
            await original_mark(self, *args)

        outbox.CommitMarker.mark = mark  # type: ignore[method-assign, assignment]  # a test patch with *args
    elif moment == "dot_sent":
        original_write = SMTPProtocol.write

        def write(self: SMTPProtocol, data: bytes) -> None:
            original_write(self, data)
            if data == b".\r\n":
                die()

        SMTPProtocol.write = write  # type: ignore[method-assign]
    elif moment == "reply_read":
        original_finish = OutboxWorker._finish

        async def finish(self: OutboxWorker, entry_id: str, mail: Any, *, sent_now: bool) -> None:
            if sent_now:
                die()
            await original_finish(self, entry_id, mail, sent_now=sent_now)

        OutboxWorker._finish = finish  # type: ignore[method-assign]
    else:
        raise SystemExit(f"unknown moment {moment!r}; one of {', '.join(MOMENTS)}")


async def main(redis_url: str, smtp_port: int) -> None:
    redis = Redis.from_url(redis_url, decode_responses=True)
    sender = SmtpSender(SmtpConfig(host="127.0.0.1", port=smtp_port, security="none"))
    await OutboxWorker(redis, sender, "replica-k").run()


if __name__ == "__main__":
    arm(sys.argv[3])
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
