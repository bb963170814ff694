"""Email channel benchmark: mails per second through the whole path, and arrival-to-answer latency with IDLE.

The whole path is real: a mail is APPENDed to dovecot, the app's reader learns of it by IDLE, fetches
and parses it, the router sends it to the Rasa engine (NLU, actions, NLG callbacks), the answer is
committed to the Redis outbox and sent to aiosmtpd. Throughput is measured on a burst of mails
delivered at once; latency on mails delivered one at a time, from the end of the APPEND to the
moment the SMTP server has the answer.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

from tests.connectors.email.lab import lab
from tests.connectors.email.mails import build, new_id
from tests.connectors.email.servers import Smtp, start_dovecot, start_smtp

BURST = int(os.environ.get("BENCH_EMAIL_BURST", "150"))
SINGLES = int(os.environ.get("BENCH_EMAIL_SINGLES", "40"))


def _question(i: int, tag: str) -> tuple[str, bytes]:
    message_id = new_id()
    order = f"DD2024050{(i % 30) + 1:02d}"
    body = f"您好，请问订单 {order} 到哪了？" if i % 2 else f"Hi, where is my order {order}?"
    raw = build(sender=f"{tag}-{i:04d}@mail.test", subject="订单查询", body=body, message_id=message_id)
    return message_id, raw


def _wait_answers(smtp: Smtp, ids: set[str], timeout: float) -> dict[str, float]:
    deadline = time.monotonic() + timeout
    while True:
        seen = {r.header("In-Reply-To").strip("<>"): r.at for r in smtp.handler.snapshot()}
        found = {m: seen[m] for m in ids if m in seen}
        if len(found) == len(ids) or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def main() -> None:
    """Run the benchmark and print a table."""
    dovecot = start_dovecot(["bench"])
    smtp = start_smtp()
    try:
        with tempfile.TemporaryDirectory(prefix="ar-bench-") as folder, lab(Path(folder) / "var") as running:
            app = running.start_app(running.app_env(dovecot, "bench", smtp))
            ready = app.wait_ready()
            warm = [_question(i, "warm") for i in range(5)]
            asyncio.run(dovecot.deliver("bench", *[raw for _, raw in warm]))
            _wait_answers(smtp, {m for m, _ in warm}, 120)

            burst = [_question(i, "burst") for i in range(BURST)]
            started = time.time()
            asyncio.run(dovecot.deliver("bench", *[raw for _, raw in burst]))
            delivered = time.time()
            answered = _wait_answers(smtp, {m for m, _ in burst}, 600)
            elapsed = max(answered.values()) - started
            rate = len(answered) / elapsed

            latencies: list[float] = []
            for i in range(SINGLES):
                message_id, raw = _question(i, "single")
                asyncio.run(dovecot.deliver("bench", raw))
                arrived = time.time()
                got = _wait_answers(smtp, {message_id}, 60)
                if message_id in got:
                    latencies.append(got[message_id] - arrived)
                time.sleep(0.3)
            app.stop()
    finally:
        smtp.stop()
        dovecot.stop()
    print(f"machine: {os.cpu_count()} cores; app ready in {ready:.1f} s; burst APPEND took {delivered - started:.2f} s")
    print("| measure | value |")
    print("|---|---|")
    print(
        f"| throughput, {BURST} mails delivered at once (IMAP → engine → SMTP) | "
        f"{rate:.1f} mails/s ({len(answered)}/{BURST} answered in {elapsed:.1f} s) |"
    )
    if latencies:
        print(
            f"| arrival-to-answer latency with IDLE, {len(latencies)} mails one at a time | "
            f"p50 {statistics.median(latencies) * 1000:.0f} ms, p95 {_percentile(latencies, 0.95) * 1000:.0f} ms, "
            f"max {max(latencies) * 1000:.0f} ms |"
        )


if __name__ == "__main__":
    main()
