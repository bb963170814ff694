"""Compare candidate NLU pipelines on the held-out test set and by k-fold cross-validation.

`python -m ar_engine.compare --config config.yml --nlu data/nlu --test tests/nlu/test_nlu.yml
--dev tests/nlu/dev/customers.yml --out DIR` (`autoresponder compare-pipelines`). The candidates are
config.yml's pipeline and the same pipeline with DIET and the features it read in place of the linear
intent classifier, so they differ only in the classifier. A fallback counts as a miss, except for an
out-of-scope message.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import logging
import os
import random
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import yaml

from ar_engine.evaluate import f1_scores

LINEAR = "ar_engine.linear_intent.LinearIntentClassifier"

# The intent classifier the linear one replaced, with the features it read (config.yml until 2026-12-03).
DIET_PIPELINE: list[dict[str, Any]] = [
    {"name": "RegexFeaturizer", "case_sensitive": False, "use_lookup_tables": False},
    {"name": "CountVectorsFeaturizer"},
    {"name": "CountVectorsFeaturizer", "analyzer": "char_wb", "min_ngram": 1, "max_ngram": 3},
    {"name": "ar_engine.use_featurizer.UniversalSentenceEncoderFeaturizer"},
    {
        "name": "DIETClassifier",
        "epochs": 40,
        "number_of_transformer_layers": 0,
        "entity_recognition": False,
        "constrain_similarities": True,
        "random_seed": 2024,
    },
]


def candidates(base: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The pipelines to compare, all NLU-only: config.yml's, and the same with DIET in place of the linear one."""
    base = copy.deepcopy(base)
    base.pop("policies", None)
    diet = copy.deepcopy(base)
    names = [c["name"] for c in diet["pipeline"]]
    if LINEAR in names:
        index = names.index(LINEAR)
        diet["pipeline"][index : index + 1] = copy.deepcopy(DIET_PIPELINE)
    return {"linear": base, "diet": diet}


def _write(config: dict[str, Any], path: Path) -> Path:
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


async def _accuracy(model: str, examples: list[Any]) -> dict[str, float]:
    from rasa.core.agent import Agent

    agent = Agent.load(model)
    gold, pred, latencies = [], [], []
    for example in examples:
        started = time.perf_counter()
        parsed = await agent.parse_message(example.get("text"))
        latencies.append(time.perf_counter() - started)
        predicted = (parsed.get("intent") or {}).get("name") or "nlu_fallback"
        expected = example.get("intent")
        if expected == "out_of_scope" and predicted == "nlu_fallback":
            predicted = expected  # recognised as not answerable: the right outcome
        gold.append(expected)
        pred.append(predicted)
    per = f1_scores(gold, pred)
    supported = [v["f1"] for v in per.values() if v["support"]]
    latencies.sort()
    return {
        "accuracy": sum(g == p for g, p in zip(gold, pred, strict=False)) / len(gold),
        "macro_f1": sum(supported) / len(supported),
        "parse_ms_p50": 1000 * latencies[len(latencies) // 2],
    }


def _train(config: Path, nlu: Path, out: Path, name: str) -> tuple[str, float]:
    from rasa.model_training import train_nlu

    started = time.perf_counter()
    model = train_nlu(str(config), str(nlu), str(out), fixed_model_name=name)
    if not model:
        raise SystemExit(f"training {name} failed")
    return model, time.perf_counter() - started


def folds(training: Any, k: int, seed: int = 13) -> list[tuple[Any, list[Any]]]:
    """Stratified k folds: (training data without the fold, the fold's examples)."""
    from rasa.shared.nlu.training_data.training_data import TrainingData

    by_intent: dict[str, list[Any]] = defaultdict(list)
    for example in training.intent_examples:
        by_intent[example.get("intent")].append(example)
    rng = random.Random(seed)
    buckets: list[list[Any]] = [[] for _ in range(k)]
    for examples in by_intent.values():
        shuffled = examples[:]
        rng.shuffle(shuffled)
        for i, example in enumerate(shuffled):
            buckets[i % k].append(example)
    result = []
    for i in range(k):
        held = {id(e) for e in buckets[i]}
        rest = [e for e in training.training_examples if id(e) not in held]
        result.append((TrainingData(rest, regex_features=training.regex_features), buckets[i]))
    return result


def main() -> None:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--nlu", type=Path, required=True)
    parser.add_argument("--test", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--dev", type=Path, default=None, help="development set, scored beside --test")
    parser.add_argument("--folds", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from rasa.shared.data import get_data_files, is_nlu_file
    from rasa.shared.nlu.training_data.formats.rasa_yaml import RasaYAMLWriter
    from rasa.shared.nlu.training_data.loading import load_data
    from rasa.shared.nlu.training_data.training_data import TrainingData

    args.out.mkdir(parents=True, exist_ok=True)
    # The NLU files only, as `rasa train` reads them: data/nlu/reviewed also holds a README.
    training = TrainingData().merge(*(load_data(f) for f in sorted(get_data_files([str(args.nlu)], is_nlu_file))))
    test = load_data(str(args.test)).intent_examples
    rows = []
    for label, config in candidates(yaml.safe_load(args.config.read_text(encoding="utf-8"))).items():
        slug = label
        cfg = _write(config, args.out / f"config-{slug}.yml")
        model, seconds = _train(cfg, args.nlu, args.out, f"cmp-{slug}")
        logging.disable(logging.WARNING)
        held_out = asyncio.run(_accuracy(model, test))
        dev = asyncio.run(_accuracy(model, load_data(str(args.dev)).intent_examples)) if args.dev else None
        logging.disable(logging.NOTSET)
        fold_scores = []
        for n, (train_part, fold) in enumerate(folds(training, args.folds)):
            path = args.out / f"fold-{slug}-{n}.yml"
            RasaYAMLWriter().dump(path, train_part)
            fold_model, _ = _train(cfg, path, args.out, f"cmp-{slug}-fold{n}")
            logging.disable(logging.WARNING)
            fold_scores.append(asyncio.run(_accuracy(fold_model, fold)))
            logging.disable(logging.NOTSET)
        rows.append(
            {
                "pipeline": label,
                "held_out_accuracy": held_out["accuracy"],
                "held_out_macro_f1": held_out["macro_f1"],
                "dev_accuracy": dev["accuracy"] if dev else None,
                "cv_accuracy": sum(f["accuracy"] for f in fold_scores) / len(fold_scores),
                "cv_macro_f1": sum(f["macro_f1"] for f in fold_scores) / len(fold_scores),
                "train_seconds": seconds,
                "parse_ms_p50": held_out["parse_ms_p50"],
            }
        )
        (args.out / "comparison.json").write_text(json.dumps(rows, indent=2))
    print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
