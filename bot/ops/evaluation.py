"""`autoresponder eval`: held-out NLU test, conversation tests, sentiment test, one report."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.ops.stack import engine_env, rasa_bin
from bot.settings import PROJECT_ROOT, Settings


@dataclass(frozen=True)
class Target:
    """One target of the assistant, checked against the measured value."""

    name: str
    value: float
    minimum: float

    @property
    def met(self) -> bool:
        """Whether the measured value reaches the target."""
        return self.value >= self.minimum


def targets(metrics: dict[str, Any]) -> list[Target]:
    """The targets the issue sets, evaluated on the metrics."""
    nlu = metrics["nlu"]
    per_intent = nlu["per_intent"]
    oos = nlu["out_of_scope"]
    found = [
        Target("intent accuracy, overall", nlu["accuracy"], 0.95),
        *(Target(f"intent accuracy, {script}", v["accuracy"], 0.93) for script, v in nlu["per_script"].items()),
        Target("F1 request_human", per_intent.get("request_human", {}).get("f1", 0.0), 0.97),
        Target("F1 followup_unresolved", per_intent.get("followup_unresolved", {}).get("f1", 0.0), 0.97),
        Target("entity F1 order_id", nlu["entities"].get("order_id", {}).get("f1", 0.0), 0.98),
        Target(
            "out-of-scope not answered as an FAQ",
            1.0 - oos["answered_as_faq"] / oos["n"] if oos["n"] else 0.0,
            0.95,
        ),
        Target("sentiment precision (hand-off negative)", metrics["sentiment"]["precision"], 0.9),
        Target("sentiment recall (hand-off negative)", metrics["sentiment"]["recall"], 0.9),
    ]
    core = metrics.get("conversation_tests")
    if core is not None:
        found.append(Target("conversation tests passed", 1.0 if core["passed"] else 0.0, 1.0))
    return found


def run_nlu_and_sentiment(settings: Settings, model: Path, out: Path) -> dict[str, Any]:
    """The engine-side evaluation (ar_engine.evaluate) on the held-out files."""
    chnsenticorp = PROJECT_ROOT.parent / "shared" / "data" / "chnsenticorp" / "test.tsv"
    cmd = [
        str(settings.engine_dir / ".venv" / "bin" / "python"), "-m", "ar_engine.evaluate",
        "--model", str(model), "--nlu-test", str(PROJECT_ROOT / "tests" / "nlu" / "test_nlu.yml"),
        "--sentiment-test", str(PROJECT_ROOT / "tests" / "sentiment" / "cs_messages.tsv"),
        "--sentiment-threshold", str(settings.sentiment_threshold), "--out", str(out),
    ]  # fmt: skip
    if chnsenticorp.exists():
        cmd += ["--chnsenticorp", str(chnsenticorp)]
    subprocess.run(cmd, cwd=PROJECT_ROOT, env=engine_env(settings, ""), check=True)
    metrics: dict[str, Any] = json.loads((out / "metrics.json").read_text())
    return metrics


def run_conversation_tests(settings: Settings, model: Path, out: Path) -> dict[str, Any]:
    """Rasa test stories, failing on the first wrong prediction."""
    cmd = [
        str(rasa_bin(settings)), "test", "core", "--model", str(model),
        "--stories", str(PROJECT_ROOT / "tests" / "stories"), "--out", str(out / "core"),
        "--fail-on-prediction-errors", "--no-plot",
    ]  # fmt: skip
    proc = subprocess.run(
        cmd, cwd=PROJECT_ROOT, env=engine_env(settings, ""), capture_output=True, text=True, check=False
    )
    return {"passed": proc.returncode == 0, "output_tail": (proc.stdout + proc.stderr)[-3000:]}


def report(metrics: dict[str, Any], found: list[Target]) -> str:
    """The markdown report."""
    nlu = metrics["nlu"]
    lines = [
        "# Assistant evaluation",
        "",
        "## Targets",
        "",
        "| target | measured | minimum | met |",
        "|---|---|---|---|",
    ]
    lines += [f"| {t.name} | {t.value:.3f} | {t.minimum:.2f} | {'yes' if t.met else '**NO**'} |" for t in found]
    lines += [
        "",
        f"Held-out NLU test: {nlu['n']} utterances; macro-F1 {nlu['macro_f1']:.3f}; parse latency "
        f"p50 {nlu['parse_latency_ms']['p50']:.0f} ms, p95 {nlu['parse_latency_ms']['p95']:.0f} ms.",
        "",
    ]
    lines += ["| script | n | accuracy |", "|---|---|---|"]
    lines += [f"| {s} | {v['n']} | {v['accuracy']:.3f} |" for s, v in nlu["per_script"].items()]
    lines += ["", "| intent | support | precision | recall | F1 |", "|---|---|---|---|---|"]
    lines += [
        f"| {name} | {v['support']} | {v['precision']:.2f} | {v['recall']:.2f} | {v['f1']:.2f} |"
        for name, v in sorted(nlu["per_intent"].items())
    ]
    lines += ["", "| entity | support | precision | recall | F1 |", "|---|---|---|---|---|"]
    lines += [
        f"| {name} | {v['support']} | {v['precision']:.2f} | {v['recall']:.2f} | {v['f1']:.2f} |"
        for name, v in sorted(nlu["entities"].items())
    ]
    sentiment = metrics["sentiment"]
    lines += [
        "",
        "## Sentiment",
        "",
        f"Project set ({sentiment['n']} messages, threshold {sentiment['threshold']}): "
        f"precision {sentiment['precision']:.3f}, recall {sentiment['recall']:.3f}, "
        f"accuracy {sentiment['accuracy']:.3f}.",
    ]
    chn = metrics.get("chnsenticorp")
    if chn:
        lines += [
            "",
            f"ChnSentiCorp test ({chn['n']} reviews, polarity = anger score ≥ 0.5): accuracy "
            f"{chn['accuracy']:.3f}; published BERT: 0.950 (ymcui/Chinese-BERT-wwm).",
        ]
    core = metrics.get("conversation_tests")
    if core is not None:
        lines += [
            "",
            "## Conversation tests",
            "",
            "passed" if core["passed"] else "FAILED:\n\n```\n" + core["output_tail"] + "\n```",
        ]
    lines += ["", "## Misclassified held-out utterances", ""]
    lines += [f"- {e['expected']} → {e['predicted']}: {e['text']}" for e in nlu["errors"]] or ["none"]
    lines += ["", "![confusion matrix](intent_confusion_matrix.png)", ""]
    return "\n".join(lines)
