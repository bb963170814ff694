"""Cross-validate the sentiment scorer on its training files, without Rasa: the tool to choose data and features by.

`python -m ar_engine.sentiment_cv --train data/sentiment/*.tsv --folds 5 [--calm-nlu data/nlu --calm-intents …]`
fits `SentimentModel` on k-1 stratified folds of all training rows and scores the k-th, then reports, from
the out-of-fold scores, precision and recall on negative and the share of other messages over the
threshold, overall and per training file (a file of calm problem reports shows how often they would be
handed off), at a few thresholds. `--test F…` also fits on every training row and scores held-out files:
only to report figures, never to choose anything by.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ar_engine.evaluate import handoff_counts
from ar_engine.logs import quiet_structlog
from ar_engine.sentiment import SentimentModel, calm_examples, read_labelled

THRESHOLDS = (0.4, 0.45, 0.5, 0.55, 0.6)


def out_of_fold(
    texts: list[str], labels: list[bool], folds: int, seed: int, calm: Sequence[str] = (), weight: float = 0.5
) -> list[float]:
    """Each text's score from a model fitted without its fold (and with every `calm` text, at `weight`)."""
    from sklearn.model_selection import StratifiedKFold

    scores = [0.0] * len(texts)
    for fit_idx, test_idx in StratifiedKFold(folds, shuffle=True, random_state=seed).split(texts, labels):
        model = SentimentModel().fit([texts[i] for i in fit_idx], [labels[i] for i in fit_idx], calm, weight)
        for i, value in zip(test_idx, model.predict([texts[i] for i in test_idx]), strict=True):
            scores[i] = value
    return scores


def summary(labels: list[bool], scores: list[float], groups: list[str]) -> dict[str, Any]:
    """Hand-off counts at each threshold, overall and per group."""
    out: dict[str, Any] = {}
    for threshold in THRESHOLDS:
        flagged = [s >= threshold for s in scores]
        per_group = {
            g: handoff_counts(
                [x for x, h in zip(labels, groups, strict=True) if h == g],
                [f for f, h in zip(flagged, groups, strict=True) if h == g],
            )
            for g in sorted(set(groups))
        }
        out[str(threshold)] = {"all": handoff_counts(labels, flagged), **per_group}
    return out


def locales(path: Path) -> list[str]:
    """The locale column of a labelled file."""
    with path.open(encoding="utf-8") as handle:
        return [row.get("locale", "?") for row in csv.DictReader(handle, delimiter="\t")]


def main() -> None:
    """Entry point; prints JSON (and writes it to `--out` when given)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--train", type=Path, nargs="+", required=True)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--test", type=Path, nargs="*", default=[], help="held-out files, for reporting only")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--calm-nlu", type=Path, default=None, help="NLU data: ordinary examples are calm")
    parser.add_argument("--calm-intents", nargs="*", default=[], help="config.yml's calm_intents")
    parser.add_argument("--calm-weight", type=float, default=0.5)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    logging.disable(logging.WARNING)
    quiet_structlog()
    rows = [(text, negative, path.name) for path in args.train for text, negative in read_labelled(path)]
    texts, labels, groups = [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]
    calm: list[str] = []
    if args.calm_nlu is not None:
        from rasa.shared.nlu.training_data.loading import load_data

        files = sorted(args.calm_nlu.rglob("*.yml")) if args.calm_nlu.is_dir() else [args.calm_nlu]
        messages = [m for path in files for m in load_data(str(path)).intent_examples]
        examples = [(str(m.get("text")), str(m.get("intent"))) for m in messages]
        calm = calm_examples(examples, args.calm_intents)
    scores = out_of_fold(texts, labels, args.folds, args.seed, calm, args.calm_weight)
    result: dict[str, Any] = {"cv": summary(labels, scores, groups), "calm_examples": len(calm)}
    if args.test:
        model = SentimentModel().fit(texts, labels, calm, args.calm_weight)
        result["test"] = {}
        for path in args.test:
            held = read_labelled(path)
            scores = model.predict([t for t, _ in held])
            by_locale = summary([n for _, n in held], scores, locales(path))
            result["test"][path.name] = by_locale
    text = json.dumps(result, ensure_ascii=False, indent=1)
    if args.out:
        args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
