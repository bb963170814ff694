"""The held-out NLU test set and the sentiment set stay apart from the training data in data/nlu.

Both sets were written by hand independently of the training data; whoever adds training examples
later must not copy (or re-type) a held-out text, or the evaluation stops measuring anything.
Texts are compared after removing entity annotations, folding traditional to simplified character by
character, lower-casing and dropping punctuation and spaces.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from collections import Counter
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
TRAIN_DIR = ROOT / "data" / "nlu"
NLU_TEST = ROOT / "tests" / "nlu" / "test_nlu.yml"
SENTIMENT = ROOT / "tests" / "sentiment" / "cs_messages.tsv"
SENTIMENT_TRAIN_DIR = ROOT / "data" / "sentiment"

CONTRACT_INTENTS = {
    "greet", "goodbye", "thank", "affirm", "deny", "bot_challenge", "order_status", "return_exchange",
    "refund_status", "warranty", "repair", "change_address", "cancel_order", "invoice", "payment_issue",
    "product_inquiry", "complaint_product", "complaint_service", "complaint_delivery", "request_human",
    "followup_unresolved", "inform", "out_of_scope",
}  # fmt: skip
BIGGER = {"order_status", "request_human", "followup_unresolved", "out_of_scope"}
_ANNOTATION = re.compile(r"\[([^\]]+)\](?:\([^)]*\)|\{[^}]*\})")


@lru_cache(maxsize=1)
def _t2s() -> Any:  # OpenCC ships no type information
    from opencc import OpenCC

    return OpenCC("t2s")


@lru_cache(maxsize=16384)
def _fold_char(ch: str) -> str:
    converted = _t2s().convert(ch)
    return converted if len(converted) == 1 else ch


def key(text: str) -> str:
    """Comparison key: plain text, simplified script, lower case, letters/digits/CJK only."""
    plain = _ANNOTATION.sub(lambda m: m.group(1), text)
    folded = "".join(_fold_char(ch) for ch in plain).lower()
    return "".join(ch for ch in folded if unicodedata.category(ch)[0] in "LN")


def nlu_examples(path: Path) -> list[tuple[str, str]]:
    """(intent, text) pairs of one Rasa NLU YAML file."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    out = []
    for item in data.get("nlu") or []:
        if "intent" not in item:
            continue
        for line in str(item.get("examples") or "").splitlines():
            line = line.strip()
            if line.startswith("- "):
                out.append((item["intent"], line[2:].strip()))
    return out


def training_keys() -> dict[str, str]:
    keys = {}
    for path in sorted(TRAIN_DIR.glob("*.yml")):
        for intent, text in nlu_examples(path):
            keys[key(text)] = f"{path.name}: {text} [{intent}]"
    return keys


def sentiment_rows(path: Path = SENTIMENT) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))


def sentiment_training_keys() -> dict[str, str]:
    """Texts of any sentiment training file (data/sentiment/*.tsv with a `text` column)."""
    keys = {}
    for path in sorted(SENTIMENT_TRAIN_DIR.glob("*.tsv")):
        for row in sentiment_rows(path):
            if row.get("text"):
                keys[key(row["text"])] = f"{path.name}: {row['text']}"
    return keys


def test_nlu_test_set_covers_every_contract_intent() -> None:
    counts = Counter(intent for intent, _ in nlu_examples(NLU_TEST))
    assert set(counts) == CONTRACT_INTENTS
    for intent, n in counts.items():
        assert n >= (25 if intent in BIGGER else 18), (intent, n)
    assert sum(counts.values()) >= 460


def test_nlu_test_set_has_no_duplicates() -> None:
    keys = Counter(key(text) for _, text in nlu_examples(NLU_TEST))
    assert [k for k, n in keys.items() if n > 1] == []


def test_nlu_test_set_is_disjoint_from_training_data() -> None:
    train = training_keys()
    leaked = [f"{text!r} == {train[key(text)]}" for _, text in nlu_examples(NLU_TEST) if key(text) in train]
    assert leaked == [], "held-out texts found in data/nlu:\n" + "\n".join(leaked)


def test_sentiment_set_shape() -> None:
    rows = sentiment_rows()
    assert rows and list(rows[0]) == ["label", "locale", "text"]
    assert len(rows) >= 330
    assert {r["label"] for r in rows} == {"negative", "other"}
    assert {r["locale"] for r in rows} == {"zh-CN", "zh-TW", "en"}
    assert all(r["text"].strip() for r in rows)
    share = sum(r["label"] == "negative" for r in rows) / len(rows)
    assert 0.3 <= share <= 0.5, share
    assert len({key(r["text"]) for r in rows}) == len(rows)


def test_sentiment_set_is_disjoint_from_nlu_data() -> None:
    train = training_keys()
    test = {key(text) for _, text in nlu_examples(NLU_TEST)}
    leaked = [r["text"] for r in sentiment_rows() if key(r["text"]) in train or key(r["text"]) in test]
    assert leaked == [], leaked


def test_held_out_sets_are_disjoint_from_sentiment_training_data() -> None:
    train = sentiment_training_keys()
    held_out = [r["text"] for r in sentiment_rows()] + [text for _, text in nlu_examples(NLU_TEST)]
    leaked = [f"{text!r} == {train[key(text)]}" for text in held_out if key(text) in train]
    assert leaked == [], "held-out texts found in data/sentiment:\n" + "\n".join(leaked)
