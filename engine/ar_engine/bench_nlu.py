"""External NLU benchmarks: train the project's pipeline on a public set, report test accuracy.

`python -m ar_engine.bench_nlu {banking77,clinc150,smp2017} --data DIR --config config.yml --out DIR`
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import logging
import os
import time
from pathlib import Path

import yaml

from ar_engine.logs import quiet_structlog

Example = tuple[str, str]  # (text, label)


def load_banking77(data: Path) -> tuple[list[Example], list[Example]]:
    """Banking77: train.csv / test.csv with text,category."""

    def read(name: str) -> list[Example]:
        with (data / name).open(encoding="utf-8") as handle:
            return [(row["text"], row["category"]) for row in csv.DictReader(handle)]

    return read("train.csv"), read("test.csv")


def load_clinc150(data: Path) -> tuple[list[Example], list[Example]]:
    """CLINC150 full: train + oos_train as class `oos` (the oos-train method); test + oos_test."""
    full = json.loads((data / "data_full.json").read_text(encoding="utf-8"))
    train = [(t, label) for t, label in full["train"] + full["oos_train"]]
    test = [(t, label) for t, label in full["test"] + full["oos_test"]]
    return train, test


def load_smp2017(data: Path) -> tuple[list[Example], list[Example]]:
    """SMP2017-ECDT task 1: one `<split>_<label>.txt` per class; train on train+develop, test on test."""

    def read(split: str) -> list[Example]:
        examples = []
        for path in sorted((data / split).glob(f"{split}_*.txt")):
            label = path.stem[len(split) + 1 :]
            for line in path.read_text(encoding="utf-8-sig").splitlines():
                if line.strip():
                    examples.append((line.strip(), label))
        return examples

    return read("train") + read("develop"), read("test")


LOADERS = {"banking77": load_banking77, "clinc150": load_clinc150, "smp2017": load_smp2017}
# Published figures quoted in ../shared/data/README.md.
PUBLISHED = {
    "banking77": "BERT fine-tuned 93.66, USE+ConveRT 93.36 (Casanueva et al. 2020)",
    "clinc150": "in-scope acc / oos recall: BERT 96.9 / 40.3, Rasa (2019) 91.5 / 45.3 (Larson et al. 2019)",
    "smp2017": "none in ../shared/data/README.md; ST-UIC F1 0.945 (Xie et al., NLPCC 2018)",
}


def _safe(label: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "_-" else "_" for ch in label)


def write_nlu(examples: list[Example], path: Path) -> None:
    """Rasa NLU YAML, one block per label; texts with special characters are escaped by the dumper."""
    by_label: dict[str, list[str]] = {}
    for text, label in examples:
        clean = text.replace("[", "(").replace("]", ")").replace("\n", " ").strip()
        if clean:
            by_label.setdefault(_safe(label), []).append(clean)
    nlu = [
        {"intent": label, "examples": "".join(f"- {t}\n" for t in sorted(set(texts)))}
        for label, texts in sorted(by_label.items())
    ]
    path.write_text(
        yaml.safe_dump({"version": "3.1", "nlu": nlu}, allow_unicode=True, sort_keys=False), encoding="utf-8"
    )


def nlu_only_config(config: Path, out: Path) -> Path:
    """The project's pipeline without policies (an NLU-only model)."""
    cfg = yaml.safe_load(config.read_text(encoding="utf-8"))
    cfg.pop("policies", None)
    target = out / "config.yml"
    target.write_text(yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return target


async def evaluate(model: str, test: list[Example], oos_label: str = "oos") -> dict[str, float]:
    """Accuracy, and for sets with out-of-scope items their recall (predicted oos or fallback)."""
    from rasa.core.agent import Agent

    agent = Agent.load(model)
    in_scope = correct = oos_total = oos_hit = 0
    started = time.perf_counter()
    for text, label in test:
        parsed = await agent.parse_message(text)
        predicted = (parsed.get("intent") or {}).get("name") or "nlu_fallback"
        if label == oos_label:
            oos_total += 1
            oos_hit += predicted in (oos_label, "nlu_fallback")
        else:
            in_scope += 1
            correct += predicted == _safe(label)
    elapsed = time.perf_counter() - started
    result = {
        "accuracy": correct / in_scope if in_scope else 0.0,
        "n_test": float(len(test)),
        "parse_ms": 1000 * elapsed / max(1, len(test)),
    }
    if oos_total:
        result["oos_recall"] = oos_hit / oos_total
    return result


def main() -> None:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("dataset", choices=sorted(LOADERS))
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from rasa.model_training import train_nlu

    args.out.mkdir(parents=True, exist_ok=True)
    train, test = LOADERS[args.dataset](args.data)
    nlu_file = args.out / "train.yml"
    write_nlu(train, nlu_file)
    config = nlu_only_config(args.config, args.out)
    started = time.perf_counter()
    model = train_nlu(str(config), str(nlu_file), str(args.out), fixed_model_name=f"bench-{args.dataset}")
    train_seconds = time.perf_counter() - started
    if not model:
        raise SystemExit("training failed")
    logging.disable(logging.WARNING)
    quiet_structlog()
    result = asyncio.run(evaluate(model, test))
    result.update(train_seconds=train_seconds, n_train=float(len(train)))
    summary = {"dataset": args.dataset, **result, "published": PUBLISHED[args.dataset]}
    (args.out / "result.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
