"""Evaluate a trained model on held-out data: intents per script, entities, sentiment.

Run by `autoresponder eval` in the engine environment; writes metrics.json and a confusion-matrix PNG.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import logging
import os
import re
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ar_engine.handoff import COMPLAINTS
from ar_engine.logs import quiet_structlog
from ar_engine.normalizer import to_simplified_same_length

_HAN = re.compile(r"[\u3400-\u9fff]")
FALLBACK_OK = {"out_of_scope", "nlu_fallback"}


def script_of(text: str) -> str:
    """zh-TW when a traditional-only character appears, zh-CN for other Chinese, else en."""
    if to_simplified_same_length(text) != text:
        return "zh-TW"
    return "zh-CN" if _HAN.search(text) else "en"


def f1_scores(gold: Sequence[str], pred: Sequence[str]) -> dict[str, dict[str, float]]:
    """Precision, recall and F1 per label."""
    labels = sorted(set(gold) | set(pred))
    out = {}
    for label in labels:
        tp = sum(1 for g, p in zip(gold, pred, strict=False) if g == label and p == label)
        fp = sum(1 for g, p in zip(gold, pred, strict=False) if g != label and p == label)
        fn = sum(1 for g, p in zip(gold, pred, strict=False) if g == label and p != label)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        out[label] = {"precision": precision, "recall": recall, "f1": f1, "support": sum(1 for g in gold if g == label)}
    return out


def surface(text: str, entity: dict[str, Any]) -> str:
    """What the customer wrote for an entity, case-folded: the span when known, else the value.

    Extraction is scored on the customer's own words (a traditional "智慧手錶" stays traditional
    although the extractor saw the folded text); mapping to the catalogue is the synonym mapper's job.
    """
    start, end = entity.get("start"), entity.get("end")
    if isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(text):
        return text[start:end].casefold()
    return str(entity.get("value")).casefold()


def entity_f1(gold: Iterable[tuple[str, str, str]], pred: Iterable[tuple[str, str, str]]) -> dict[str, float]:
    """Exact-match F1 of (example, entity, value) triples."""
    g, p = set(gold), set(pred)
    tp = len(g & p)
    precision = tp / len(p) if p else 0.0
    recall = tp / len(g) if g else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "support": len(g)}


def confusion_png(
    gold: Sequence[str], pred: Sequence[str], path: Path, title: str = "Intent confusion matrix (held-out test set)"
) -> None:
    """Write a confusion-matrix heat map."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    labels = sorted(set(gold) | set(pred))
    index = {label: i for i, label in enumerate(labels)}
    matrix = np.zeros((len(labels), len(labels)), dtype=int)
    for g, p in zip(gold, pred, strict=False):
        matrix[index[g], index[p]] += 1
    fig, ax = plt.subplots(figsize=(12, 10))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(labels)))
    ax.set_yticks(range(len(labels)))
    ax.set_xticklabels(labels, rotation=90, fontsize=8)
    ax.set_yticklabels(labels, fontsize=8)
    for i in range(len(labels)):
        for j in range(len(labels)):
            if matrix[i, j]:
                ax.text(
                    j,
                    i,
                    str(matrix[i, j]),
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if matrix[i, j] > matrix.max() / 2 else "black",
                )
    ax.set_xlabel("predicted")
    ax.set_ylabel("expected")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def classifier_best(parsed: dict[str, Any]) -> tuple[str, float]:
    """The classifier's best intent and its confidence, also when the fallback replaced it (threshold studies)."""
    for entry in parsed.get("intent_ranking") or []:
        if entry.get("name") != "nlu_fallback":
            return str(entry.get("name")), float(entry.get("confidence") or 0.0)
    return "nlu_fallback", 0.0


async def evaluate_nlu(
    agent: Any, test_file: Path, out: Path, png: str = "intent_confusion_matrix.png", title: str | None = None
) -> dict[str, Any]:
    """Parse every example of a test file and score intents, scripts, entities and wrong answers.

    `wrong_answer` is the share of messages given a wrong intent that is not a fallback (the customer
    gets a wrong FAQ answer); `out_of_scope.recall` counts a fallback as a correct outcome.
    """
    from rasa.shared.nlu.training_data.loading import load_data

    data = load_data(str(test_file))
    gold: list[str] = []
    pred: list[str] = []
    scripts: list[str] = []
    gold_entities: list[tuple[str, str, str]] = []
    pred_entities: list[tuple[str, str, str]] = []
    errors = []
    confidences: list[float] = []
    best: list[str] = []
    latencies = []
    for n, example in enumerate(data.intent_examples):
        text = example.get("text")
        started = time.perf_counter()
        parsed = await agent.parse_message(text)
        latencies.append(time.perf_counter() - started)
        expected = example.get("intent")
        predicted = (parsed.get("intent") or {}).get("name") or "nlu_fallback"
        top, confidence = classifier_best(parsed)
        best.append(top)
        confidences.append(confidence)
        gold.append(expected)
        pred.append(predicted)
        scripts.append(script_of(text))
        gold_entities += [(str(n), e["entity"], surface(text, e)) for e in example.get("entities") or []]
        pred_entities += [(str(n), e["entity"], surface(text, e)) for e in parsed.get("entities") or []]
        if predicted != expected and not (expected == "out_of_scope" and predicted in FALLBACK_OK):
            errors.append(
                {
                    "text": text,
                    "expected": expected,
                    "predicted": predicted,
                    "confidence": (parsed.get("intent") or {}).get("confidence"),
                }
            )
    # Out of scope answered as fallback is a correct outcome: the assistant does not answer a wrong FAQ.
    scored = [p if not (g == "out_of_scope" and p in FALLBACK_OK) else g for g, p in zip(gold, pred, strict=False)]
    correct = [g == p for g, p in zip(gold, scored, strict=False)]
    wrong = [not c and p != "nlu_fallback" for c, p in zip(correct, pred, strict=False)]
    per_script = {}
    for script in ("zh-CN", "zh-TW", "en"):
        idx = [i for i, s in enumerate(scripts) if s == script]
        per_script[script] = {
            "accuracy": sum(correct[i] for i in idx) / len(idx) if idx else 0.0,
            "wrong_answer": sum(wrong[i] for i in idx) / len(idx) if idx else 0.0,
            "n": len(idx),
        }
    per_intent = f1_scores(gold, scored)
    macro_f1 = sum(v["f1"] for k, v in per_intent.items() if v["support"]) / max(
        1, sum(1 for v in per_intent.values() if v["support"])
    )
    entities = {}
    for name in sorted({e[1] for e in gold_entities}):
        entities[name] = entity_f1(
            [e for e in gold_entities if e[1] == name], [e for e in pred_entities if e[1] == name]
        )
    oos = [i for i, g in enumerate(gold) if g == "out_of_scope"]
    answered_wrong_faq = [i for i in oos if pred[i] not in FALLBACK_OK]
    confusion_png(gold, scored, out / png, *([title] if title else []))
    latencies.sort()
    return {
        "n": len(gold),
        "accuracy": sum(correct) / len(correct) if correct else 0.0,
        "macro_f1": macro_f1,
        "per_script": per_script,
        "per_intent": per_intent,
        "entities": entities,
        "wrong_answer": sum(wrong) / len(wrong) if wrong else 0.0,
        "fallback": sum(p == "nlu_fallback" for p in pred) / len(pred) if pred else 0.0,
        "out_of_scope": {
            "n": len(oos),
            "answered_as_faq": len(answered_wrong_faq),
            "recall": 1.0 - len(answered_wrong_faq) / len(oos) if oos else 0.0,
        },
        "parse_latency_ms": {
            "p50": 1000 * latencies[len(latencies) // 2],
            "p95": 1000 * latencies[int(len(latencies) * 0.95)],
        },
        "errors": errors,
        "intent_counts": dict(Counter(gold)),
        "predictions": [
            {"expected": g, "predicted": p, "best": b, "confidence": round(c, 4), "script": s}
            for g, p, b, c, s in zip(gold, pred, best, confidences, scripts, strict=False)
        ],
    }


async def scores_and_intents(agent: Any, texts: list[str]) -> list[tuple[float, str]]:
    """The model's anger score (the pipeline's SentimentScorer) and intent of each text."""
    found = []
    for text in texts:
        parsed = await agent.parse_message(text)
        score = float((parsed.get("sentiment") or {}).get("score") or 0.0)
        found.append((score, str((parsed.get("intent") or {}).get("name") or "")))
    return found


async def anger_scores(agent: Any, texts: list[str]) -> list[float]:
    """The model's anger score of each text."""
    return [score for score, _ in await scores_and_intents(agent, texts)]


# Intents answered with an apology, a complaint ticket or a person: wrong for a calm, happy message.
COMPLAINT_INTENTS = COMPLAINTS | {"followup_unresolved", "request_human"}


def handoff_counts(labels: Sequence[bool], flagged: Sequence[bool]) -> dict[str, Any]:
    """Precision and recall of the hand-off on negative messages, and the share of the others handed off."""
    tp = sum(g and f for g, f in zip(labels, flagged, strict=True))
    fp = sum(f and not g for g, f in zip(labels, flagged, strict=True))
    fn = sum(g and not f for g, f in zip(labels, flagged, strict=True))
    negatives, others = tp + fn, len(labels) - tp - fn
    return {
        "n": len(labels),
        "negative": negatives,
        "other": others,
        "precision": tp / (tp + fp) if tp + fp else 0.0,
        "recall": tp / negatives if negatives else 0.0,
        "accuracy": (len(labels) - fp - fn) / len(labels) if labels else 0.0,
        # A calm message scored over the threshold: a customer handed to a human for no reason.
        "false_handoff": fp / others if others else 0.0,
        "false_handoffs": fp,
    }


async def evaluate_sentiment(agent: Any, tsv: Path, threshold: float) -> dict[str, Any]:
    """Precision and recall of "negative enough to hand off" on a labelled set, overall and per locale."""
    with tsv.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    values = await anger_scores(agent, [row["text"] for row in rows])
    labels = [row["label"].strip() == "negative" for row in rows]
    flagged = [value >= threshold for value in values]
    locales = [row.get("locale", "?") for row in rows]
    by_locale = {
        locale: handoff_counts(
            [g for g, loc in zip(labels, locales, strict=True) if loc == locale],
            [f for f, loc in zip(flagged, locales, strict=True) if loc == locale],
        )
        for locale in sorted(set(locales))
    }
    misses = [
        {"text": row["text"], "label": row["label"], "locale": row.get("locale", "?"), "score": round(value, 3)}
        for row, value, g, f in zip(rows, values, labels, flagged, strict=True)
        if g != f
    ]
    return {
        "set": tsv.name,
        **handoff_counts(labels, flagged),
        "threshold": threshold,
        "by_locale": by_locale,
        "errors": misses,
    }


async def evaluate_chnsenticorp(agent: Any, tsv: Path) -> dict[str, Any]:
    """Polarity accuracy on ChnSentiCorp's test split: negative when the anger score passes 0.5."""
    with tsv.open(encoding="utf-8") as handle:
        rows = [line.rstrip("\n").split("\t", 1) for line in handle]
    rows = [r for r in rows if len(r) == 2 and r[0] in ("0", "1")]
    values = await anger_scores(agent, [text for _, text in rows])
    correct = sum((value >= 0.5) == (label == "0") for (label, _), value in zip(rows, values, strict=False))
    return {"n": len(rows), "accuracy": correct / len(rows) if rows else 0.0}


def crosswoz_user_turns(archive: Path) -> list[str]:
    """Every user turn of a CrossWOZ split (a zip holding one JSON file): calm requests of travellers."""
    import zipfile

    with zipfile.ZipFile(archive) as zipped:
        dialogues = json.loads(zipped.read(zipped.namelist()[0]))
    return [
        " ".join(str(m["content"]).split())
        for d in dialogues.values()
        for m in d.get("messages", [])
        if m.get("role") == "usr" and str(m.get("content", "")).strip()
    ]


# Product categories of the review set: goods a shop sells (not its hotels, nor books, whose reviews judge the book).
REVIEW_CATEGORIES = ("平板", "水果", "洗发水", "衣服", "手机", "计算机", "热水器", "蒙牛")


def positive_reviews(csv_file: Path, n: int = 1500, seed: int = 7) -> list[str]:
    """A fixed sample of positive shop reviews of chat length (online_shopping_10_cats: `cat,label,review`).

    Happy customers write with exclamation marks and intensifiers ("太快了！！下次还来"); none of these
    should bring a human in. The labels are the reviewers' stars, so a few "positive" reviews complain.
    """
    import csv
    import random

    with csv_file.open(encoding="utf-8-sig", newline="") as handle:
        rows = [
            text
            for row in csv.DictReader(handle)
            if row.get("label") == "1" and row.get("cat") in REVIEW_CATEGORIES
            for text in [" ".join(str(row.get("review") or "").replace("\ufeff", "").split())]
            if 4 <= len(text) <= 200
        ]
    random.Random(seed).shuffle(rows)
    return rows[:n]


def ordinary_examples(nlu_file: Path, intents: Sequence[str]) -> list[str]:
    """The texts of a labelled NLU file's examples of ordinary (calm-by-topic) intents."""
    from rasa.shared.nlu.training_data.loading import load_data

    wanted = set(intents)
    return [str(m.get("text")) for m in load_data(str(nlu_file)).intent_examples if m.get("intent") in wanted]


async def evaluate_calm(agent: Any, texts: list[str], threshold: float) -> dict[str, Any]:
    """How many messages nobody would call angry are scored over the hand-off threshold, and how many
    are read as a complaint (answered with an apology, or handed off)."""
    parsed = await scores_and_intents(agent, texts)
    flagged = sorted(((v, t) for (v, _), t in zip(parsed, texts, strict=True) if v >= threshold), reverse=True)
    complaints = [(i, t) for (_, i), t in zip(parsed, texts, strict=True) if i in COMPLAINT_INTENTS]
    return {
        "n": len(texts),
        "handed_off": len(flagged),
        "share": len(flagged) / len(texts) if texts else 0.0,
        "highest": [{"score": round(v, 2), "text": t} for v, t in flagged[:10]],
        "complaints": len(complaints),
        "complaint_share": len(complaints) / len(texts) if texts else 0.0,
        "complaint_examples": [{"intent": i, "text": t} for i, t in complaints[:10]],
    }


async def evaluate_all(args: argparse.Namespace) -> dict[str, Any]:
    """Every evaluation, with one loaded model."""
    from rasa.core.agent import Agent

    agent = Agent.load(args.model)
    metrics: dict[str, Any] = {}
    if args.nlu_test is not None:
        metrics["nlu"] = await evaluate_nlu(agent, args.nlu_test, args.out)
    dev: Path | None = args.dev_test
    if dev is not None:
        title = "Intent confusion matrix (development set)"
        metrics["dev"] = await evaluate_nlu(agent, dev, args.out, "dev_confusion_matrix.png", title)
    # The first sentiment set is the general one (`sentiment`); every set is also under `sentiment_sets`.
    sets = [await evaluate_sentiment(agent, tsv, args.sentiment_threshold) for tsv in args.sentiment_test or []]
    if sets:
        metrics["sentiment"] = sets[0]
        metrics["sentiment_sets"] = {Path(s["set"]).stem: s for s in sets}
    chn: Path | None = args.chnsenticorp
    metrics["chnsenticorp"] = await evaluate_chnsenticorp(agent, chn) if chn and chn.exists() else None
    # Calm messages: the development set's ordinary questions, and travellers' requests from outside.
    calm: dict[str, Any] = {}
    if dev is not None and args.ordinary_intents:
        texts = ordinary_examples(dev, args.ordinary_intents)
        calm["dev_ordinary"] = await evaluate_calm(agent, texts, args.sentiment_threshold)
    crosswoz: Path | None = args.crosswoz
    if crosswoz is not None and crosswoz.exists():
        calm["crosswoz"] = await evaluate_calm(agent, crosswoz_user_turns(crosswoz), args.sentiment_threshold)
    reviews: Path | None = args.reviews
    if reviews is not None and reviews.exists():
        calm["reviews"] = await evaluate_calm(agent, positive_reviews(reviews), args.sentiment_threshold)
    metrics["calm"] = calm
    return metrics


def main() -> None:
    """Entry point: `python -m ar_engine.evaluate --model M [--nlu-test F] [--dev-test F] [--sentiment-test F…] --out D`

    Without `--sentiment-test` only the NLU sets are scored, without `--nlu-test` only the sentiment sets
    (the fast paths while tuning).
    """
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True)
    parser.add_argument("--nlu-test", type=Path, default=None, help="held-out NLU set (omit to score sentiment only)")
    parser.add_argument("--dev-test", type=Path, default=None, help="development set, scored beside --nlu-test")
    parser.add_argument("--sentiment-test", type=Path, nargs="+", default=None, help="labelled sentiment sets")
    parser.add_argument("--sentiment-threshold", type=float, default=0.5)
    parser.add_argument("--chnsenticorp", type=Path, default=None)
    parser.add_argument("--crosswoz", type=Path, default=None, help="a CrossWOZ split (zip): its user turns are calm")
    parser.add_argument("--reviews", type=Path, default=None, help="online_shopping_10_cats.csv: its praise is calm")
    parser.add_argument(
        "--ordinary-intents", nargs="*", default=[], help="intents of --dev-test whose examples are calm messages"
    )
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    logging.disable(logging.WARNING)
    quiet_structlog()
    args.out.mkdir(parents=True, exist_ok=True)
    metrics = asyncio.run(evaluate_all(args))
    (args.out / "metrics.json").write_text(json.dumps(metrics, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
