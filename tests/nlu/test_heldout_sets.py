"""The held-out NLU test set and the sentiment sets stay apart from the training data in data/nlu.

Both sets were written by hand independently of the training data; whoever adds training examples
later must not copy (or re-type) a held-out text, or the evaluation stops measuring anything.
Texts are compared after removing entity annotations, folding traditional to simplified character by
character, lower-casing and dropping punctuation and spaces.

The development set of realistic customer text (dev/customers.yml) is held to a stricter rule: besides
exact copies, no dev text may be a near-duplicate of a training text (character-bigram Jaccard
similarity of the comparison keys at or above NEAR_DUPLICATE), since it is the set that training-data
changes are chosen on. The same stricter rule holds for the problem-report sentiment set
(tests/sentiment/problem_reports.tsv) against the sentiment training files, since sentiment training data
about the same kinds of problems was written after it.
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
DEV_SET = ROOT / "tests" / "nlu" / "dev" / "customers.yml"
SENTIMENT = ROOT / "tests" / "sentiment" / "cs_messages.tsv"
PROBLEM_REPORTS = ROOT / "tests" / "sentiment" / "problem_reports.tsv"
SENTIMENT_TRAIN_DIR = ROOT / "data" / "sentiment"

CONTRACT_INTENTS = {
    "greet", "goodbye", "thank", "affirm", "deny", "bot_challenge", "order_status", "return_exchange",
    "refund_status", "warranty", "repair", "change_address", "cancel_order", "invoice", "payment_issue",
    "product_inquiry", "complaint_product", "complaint_service", "complaint_delivery", "request_human",
    "followup_unresolved", "inform", "out_of_scope",
}  # fmt: skip
BIGGER = {"order_status", "request_human", "followup_unresolved", "out_of_scope"}
NEAR_DUPLICATE = 0.8
DEV_SCRIPT_SHARES = {"zh-CN": (0.35, 0.45), "zh-TW": (0.25, 0.35), "en": (0.25, 0.35)}
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
    for path in sorted(TRAIN_DIR.rglob("*.yml")):
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


def test_problem_reports_shape() -> None:
    rows = sentiment_rows(PROBLEM_REPORTS)
    assert rows and list(rows[0]) == ["label", "locale", "text"]
    labels = Counter(r["label"] for r in rows)
    assert set(labels) == {"negative", "other"}
    assert labels["other"] >= 150 and labels["negative"] >= 100, labels
    assert {r["locale"] for r in rows} == {"zh-CN", "zh-TW", "en"}
    assert all(r["text"].strip() for r in rows)
    assert all(_script(r["text"]) == r["locale"] for r in rows), [r for r in rows if _script(r["text"]) != r["locale"]]
    assert len({key(r["text"]) for r in rows}) == len(rows)


def test_problem_reports_are_disjoint_from_nlu_data_and_the_other_sentiment_set() -> None:
    nlu = set(training_keys()) | {key(text) for _, text in nlu_examples(NLU_TEST)}
    general = {key(r["text"]) for r in sentiment_rows()}
    texts = [r["text"] for r in sentiment_rows(PROBLEM_REPORTS)]
    assert [t for t in texts if key(t) in nlu] == [], "problem reports found in data/nlu or the NLU test set"
    assert [t for t in texts if key(t) in general] == [], "problem reports found in cs_messages.tsv"


def test_problem_reports_are_not_near_sentiment_training_data() -> None:
    texts = [r["text"] for r in sentiment_rows(PROBLEM_REPORTS)]
    training = [r["text"] for path in sorted(SENTIMENT_TRAIN_DIR.glob("*.tsv")) for r in sentiment_rows(path)]
    near = near_duplicates(texts, training, NEAR_DUPLICATE)
    assert near == [], "problem reports near sentiment training texts:\n" + "\n".join(
        f"{s:.2f} {a!r} ~ {b!r}" for s, a, b in near
    )


def test_held_out_sets_are_disjoint_from_sentiment_training_data() -> None:
    train = sentiment_training_keys()
    held_out = [r["text"] for path in (SENTIMENT, PROBLEM_REPORTS) for r in sentiment_rows(path)]
    held_out += [text for _, text in nlu_examples(NLU_TEST)]
    leaked = [f"{text!r} == {train[key(text)]}" for text in held_out if key(text) in train]
    assert leaked == [], "held-out texts found in data/sentiment:\n" + "\n".join(leaked)


def bigrams(text_key: str) -> frozenset[str]:
    """Character bigrams of a comparison key (the key itself when it is one character)."""
    if len(text_key) < 2:
        return frozenset({text_key})
    return frozenset(text_key[i : i + 2] for i in range(len(text_key) - 1))


def near_duplicates(texts: list[str], others: list[str], threshold: float) -> list[tuple[float, str, str]]:
    """Pairs (similarity, text, other) whose bigram Jaccard similarity reaches the threshold."""
    grams = [bigrams(key(o)) for o in others]
    index: dict[str, set[int]] = {}
    for n, gs in enumerate(grams):
        for g in gs:
            index.setdefault(g, set()).add(n)
    found = []
    for text in texts:
        gs = bigrams(key(text))
        candidates = set().union(*(index.get(g, set()) for g in gs))
        for n in candidates:
            similarity = len(gs & grams[n]) / len(gs | grams[n])
            if similarity >= threshold:
                found.append((similarity, text, others[n]))
    return found


def _script(text: str) -> str:
    """ar_engine.evaluate.script_of without importing Rasa: zh-TW when folding changes a character."""
    plain = _ANNOTATION.sub(lambda m: m.group(1), text)
    if "".join(_fold_char(ch) for ch in plain) != plain:
        return "zh-TW"
    return "zh-CN" if re.search(r"[\u3400-\u9fff]", plain) else "en"


def test_dev_set_shape() -> None:
    examples = nlu_examples(DEV_SET)
    assert len(examples) >= 700
    assert {intent for intent, _ in examples} == CONTRACT_INTENTS
    scripts = Counter(_script(text) for _, text in examples)
    for script, (low, high) in DEV_SCRIPT_SHARES.items():
        assert low <= scripts[script] / len(examples) <= high, (script, scripts)
    keys = Counter(key(text) for _, text in examples)
    assert [k for k, n in keys.items() if n > 1] == []


def test_dev_set_is_disjoint_from_training_data() -> None:
    train = training_keys()
    dev = [text for _, text in nlu_examples(DEV_SET)]
    leaked = [f"{text!r} == {train[key(text)]}" for text in dev if key(text) in train]
    assert leaked == [], "dev texts found in data/nlu:\n" + "\n".join(leaked)
    training_texts = [text for path in sorted(TRAIN_DIR.rglob("*.yml")) for _, text in nlu_examples(path)]
    near = near_duplicates(dev, training_texts, NEAR_DUPLICATE)
    assert near == [], "dev texts near training texts:\n" + "\n".join(f"{s:.2f} {a!r} ~ {b!r}" for s, a, b in near)


def test_dev_set_is_disjoint_from_held_out_set() -> None:
    test = [text for _, text in nlu_examples(NLU_TEST)]
    dev = [text for _, text in nlu_examples(DEV_SET)]
    assert near_duplicates(dev, test, NEAR_DUPLICATE) == []
