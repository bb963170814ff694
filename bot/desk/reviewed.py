"""The reviewed training examples: `data/nlu/reviewed/reviewed.yml`, written as admins label the review list.

Rasa NLU YAML with one block per intent, intents in alphabetical order and examples in the order they
were added, so that a diff shows only what is new. Adding merges with what the file holds (an admin may
edit it by hand: remove a line, move one to another intent); nothing is ever removed by the app. Texts
are masked again on the way in, so that the file never holds a customer's personal data.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
from collections.abc import Iterable
from pathlib import Path

import yaml

from bot.errors import AutoresponderError, BadInput
from bot.masking import mask

HEADER = """\
# Examples labelled in the agent console (Review). Masked text only: placeholders such as <PHONE> stand
# for what the customer wrote. Edit freely (fix a label, drop a line); the console only ever adds
# lines. `autoresponder train` includes this file; `autoresponder review report` counts it.
"""


class ReviewFileError(AutoresponderError):
    """The reviewed examples file cannot be written: the folder is read-only or missing on this host."""


def read_examples(path: Path) -> dict[str, list[str]]:
    """Intent -> examples in the file (empty when it is missing or holds none)."""
    if not path.exists():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise BadInput(
            "reviewed_file_invalid", f"{path} is not valid YAML ({exc}); fix it by hand, then try again"
        ) from exc
    blocks = data.get("nlu") if isinstance(data, dict) else None
    found: dict[str, list[str]] = {}
    for block in blocks if isinstance(blocks, list) else []:
        if not isinstance(block, dict) or not isinstance(block.get("intent"), str):
            continue
        lines = str(block.get("examples") or "").splitlines()
        texts = [line.strip()[2:].strip() for line in lines if line.strip().startswith("- ")]
        found.setdefault(block["intent"], []).extend(t for t in texts if t)
    return found


def render(examples: dict[str, list[str]]) -> str:
    """The file's text: header, then one block per intent in alphabetical order."""
    blocks = []
    for intent in sorted(examples):
        if examples[intent]:
            lines = "".join(f"    - {text}\n" for text in examples[intent])
            blocks.append(f"- intent: {intent}\n  examples: |\n{lines}")
    body = "nlu:\n" + "".join(blocks) if blocks else "nlu: []\n"
    return f'{HEADER}version: "3.1"\n{body}'


def one_line(text: str) -> str:
    """A text as one example line: masked, whitespace collapsed."""
    return " ".join(mask(text).split())


class ReviewedExamples:
    """The file of reviewed examples, and the intents a label may name (the domain's)."""

    def __init__(self, path: Path, intents: Iterable[str]) -> None:
        self.path = path
        self.intents = frozenset(intents)

    async def add(self, intent: str, text: str) -> bool:
        """Add one example (False when the file has it already under that intent)."""
        try:
            return await asyncio.to_thread(self._add, intent, one_line(text))
        except OSError as exc:
            raise ReviewFileError(
                f"cannot write {self.path} ({exc.strerror}): set AUTORESPONDER_REVIEW_FILE to a writable path"
            ) from exc

    def _add(self, intent: str, line: str) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # One writer at a time (two admins, two replicas on one volume): read, merge and replace under a lock.
        with open(self.path.with_name(f".{self.path.name}.lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            examples = read_examples(self.path)
            if line in examples.get(intent, []):
                return False
            examples.setdefault(intent, []).append(line)
            draft = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            draft.write_text(render(examples), encoding="utf-8")
            os.replace(draft, self.path)
            return True

    def counts(self) -> dict[str, int]:
        """Examples per intent in the file, by intent."""
        return {intent: len(texts) for intent, texts in sorted(read_examples(self.path).items())}


def domain_intents(domain: Path) -> list[str]:
    """The intents the domain file declares (what a label may name)."""
    data = yaml.safe_load(domain.read_text(encoding="utf-8")) or {}
    return [str(i if isinstance(i, str) else next(iter(i))) for i in data.get("intents") or []]
