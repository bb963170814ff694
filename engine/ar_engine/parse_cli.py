"""Parse texts with a trained model: one JSON line per input line (used by `autoresponder parse`)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from typing import Any


def _summary(parsed: dict[str, Any]) -> dict[str, Any]:
    intent = parsed.get("intent") or {}
    return {
        "text": parsed.get("original_text", parsed.get("text")),
        "intent": intent.get("name"),
        "confidence": round(float(intent.get("confidence") or 0.0), 4),
        "entities": [
            {"entity": e.get("entity"), "value": e.get("value"), "start": e.get("start"), "end": e.get("end")}
            for e in parsed.get("entities") or []
        ],
        "sentiment": (parsed.get("sentiment") or {}).get("score"),
        "ranking": [
            {"intent": r.get("name"), "confidence": round(float(r.get("confidence") or 0.0), 4)}
            for r in (parsed.get("intent_ranking") or [])[:3]
        ],
    }


async def _run(model: str) -> None:
    from rasa.core.agent import Agent

    agent = Agent.load(model)
    for line in sys.stdin:
        text = line.rstrip("\n")
        if not text.strip():
            continue
        parsed = await agent.parse_message(text)
        parsed["original_text"] = text
        sys.stdout.write(json.dumps(_summary(parsed), ensure_ascii=False) + "\n")
        sys.stdout.flush()


def main() -> None:
    """Entry point: `python -m ar_engine.parse_cli --model PATH < texts`."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    logging.disable(logging.WARNING)
    asyncio.run(_run(args.model))


if __name__ == "__main__":
    main()
