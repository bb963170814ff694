"""`autoresponder eval`: held-out NLU test, development set, conversation tests, sentiment test, one report;
with `--before`, the same sets scored by a model without the reviewed examples too (the review routine's
before and after)."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.desk.reviewed import ReviewedExamples
from bot.ops.stack import engine_env, rasa_bin, train
from bot.settings import PROJECT_ROOT, Settings

DEV_SET = PROJECT_ROOT / "tests" / "nlu" / "dev" / "customers.yml"
# The development-set targets of issue 10 fail `make eval` once the model meets them, so that they guard
# against regressions from then on: accuracy (overall and per script) and out-of-scope recall (0.967,
# 0.951-0.982, 0.976), and wrong FAQ answers (0.029 against <= 0.03: a margin of one message, but the
# classifier is deterministic, so the gate fails on a real regression, not on chance).
DEV_TARGETS_GATE = True
DEV_WRONG_FAQ_GATE = True
SENTIMENT_SET = PROJECT_ROOT / "tests" / "sentiment" / "cs_messages.tsv"
PROBLEM_SET = PROJECT_ROOT / "tests" / "sentiment" / "problem_reports.tsv"
# Issue 10 item 4 ("anger, not problems") on tests/sentiment/problem_reports.tsv: each target is a gate
# once the scorer meets it, like DEV_TARGETS_GATE: recall on angry reports (0.950 ≥ 0.85) and calm
# problem reports handed off (0.020, 3 of 151, against ≤ 0.05).
ANGER_RECALL_GATE = True
CALM_HANDOFF_GATE = True
# Calm messages handed off as anger: the development set's ordinary questions (order status, policies,
# products, small talk: 0.027, 17 of 640, before the scorer learnt from the NLU examples; 0.002 after) are
# a gate; CrossWOZ's travellers' requests (off topic, long, full of numbers: 0.180 of a sample before,
# 0.069 of all 4,229 after, 0.028 with praise.tsv) only a reported figure.
CALM_ORDINARY_GATE = True
CROSSWOZ = PROJECT_ROOT.parent / "shared" / "data" / "crosswoz" / "val.json.zip"
REVIEWS = PROJECT_ROOT.parent / "shared" / "data" / "zh_reviews" / "online_shopping_10_cats.csv"


@dataclass(frozen=True)
class Target:
    """One target of the assistant, checked against the measured value."""

    name: str
    value: float
    minimum: float
    # A maximum instead of a minimum: the value must stay at or below the bound.
    at_most: bool = False
    # A gate fails `make eval` when it is not met; other targets are only reported.
    gate: bool = True

    @property
    def met(self) -> bool:
        """Whether the measured value reaches the target."""
        return self.value <= self.minimum if self.at_most else self.value >= self.minimum

    @property
    def bound(self) -> str:
        """The target as written in the report: `≥ 0.95` or `≤ 0.03`."""
        return f"{'≤' if self.at_most else '≥'} {self.minimum:.2f}"

    @property
    def verdict(self) -> str:
        """`ok`, `UNDER TARGET` for a failed gate, `target not met` for a reported-only target."""
        if self.met:
            return "ok"
        return "UNDER TARGET" if self.gate else "target not met"


def dev_targets(
    dev: dict[str, Any], gate: bool = DEV_TARGETS_GATE, wrong_gate: bool = DEV_WRONG_FAQ_GATE
) -> list[Target]:
    """Issue 10's targets on the development set of realistic customer text."""
    return [
        Target("dev: intent accuracy, overall", dev["accuracy"], 0.92, gate=gate),
        *(
            Target(f"dev: intent accuracy, {script}", v["accuracy"], 0.90, gate=gate)
            for script, v in dev["per_script"].items()
        ),
        Target("dev: wrong FAQ answer (wrong, not fallback)", dev["wrong_answer"], 0.03, at_most=True, gate=wrong_gate),
        Target("dev: out-of-scope recall", dev["out_of_scope"]["recall"], 0.95, gate=gate),
    ]


def anger_targets(
    problems: dict[str, Any], recall_gate: bool = ANGER_RECALL_GATE, calm_gate: bool = CALM_HANDOFF_GATE
) -> list[Target]:
    """Issue 10's targets on the problem-report set: anger is handed off, calm problem reports are not."""
    calm = problems["false_handoff"]
    return [
        Target("problems: sentiment recall (angry about a problem)", problems["recall"], 0.85, gate=recall_gate),
        Target("problems: calm problem reports handed off", calm, 0.05, at_most=True, gate=calm_gate),
    ]


# The calm sets `ar_engine.evaluate` scores: what each is called, the most it may hand off, whether that
# gates. Only the development set gates; CrossWOZ and the reviews come from outside the shop's chats (the
# reviews' labels are star ratings, so a few "positive" ones complain).
CALM_SETS = {
    "dev_ordinary": ("ordinary dev-set questions", "development set, ordinary intents", 0.02, CALM_ORDINARY_GATE),
    "crosswoz": ("CrossWOZ user turns", "CrossWOZ user turns (val)", 0.05, False),
    "reviews": (
        "positive shop reviews",
        "positive shop reviews (online_shopping_10_cats, 1,500 of chat length)",
        0.05,
        False,
    ),
}


# Happy customers are not answered with an apology: the share of a calm set read as a complaint, a
# follow-up or a request for a person (`COMPLAINT_INTENTS` in ar_engine.evaluate), reported, not a gate.
# Positive reviews: 0.763 (not met; README, "Happy customers answered as complaining"); a few do complain.
COMPLAINT_LIMITS = {"reviews": 0.10}


def calm_targets(calm: dict[str, Any]) -> list[Target]:
    """Calm messages are not handed off as anger: one target per calm set scored (`CALM_SETS`), and
    happy ones are not answered as complaints (`COMPLAINT_LIMITS`)."""
    found = []
    for key, (name, _, limit, gated) in CALM_SETS.items():
        if key in calm:
            found.append(Target(f"calm: {name} handed off as anger", calm[key]["share"], limit, True, gated))
    for key, limit in COMPLAINT_LIMITS.items():
        if "complaint_share" in calm.get(key, {}):
            name = CALM_SETS[key][0]
            found.append(
                Target(f"calm: {name} answered as a complaint", calm[key]["complaint_share"], limit, True, False)
            )
    return found


def calm_intents(config: Path = PROJECT_ROOT / "config.yml") -> list[str]:
    """The intents whose examples the sentiment scorer learns as calm (its `calm_intents` in config.yml)."""
    import yaml

    pipeline = (yaml.safe_load(config.read_text(encoding="utf-8")) or {}).get("pipeline") or []
    for component in pipeline:
        if str(component.get("name", "")).endswith("SentimentScorer"):
            return [str(i) for i in component.get("calm_intents") or []]
    return []


def calm_table(calm: dict[str, Any]) -> list[str]:
    """Calm messages scored over the threshold, per set, with the highest scored."""
    lines = []
    for key, values in calm.items():
        counted = f"{values['handed_off']} of {values['n']} handed off as anger ({values['share']:.3f})"
        lines += [
            "",
            f"{CALM_SETS[key][1] if key in CALM_SETS else key}: {counted}"
            + ("; the highest scored:" if values["highest"] else "."),
            "",
        ]
        lines += [f"- {h['score']:.2f}: {h['text']}" for h in values["highest"]]
        if key in COMPLAINT_LIMITS and "complaint_share" in values:
            complained = (
                f"{values['complaints']} of {values['n']} answered as a complaint ({values['complaint_share']:.3f})"
            )
            lines += ["", f"{complained}" + ("; for example:" if values["complaint_examples"] else "."), ""]
            lines += [f"- {c['intent']}: {c['text']}" for c in values["complaint_examples"]]
    return ["", "### Sentiment: ordinary messages are not anger", *lines] if lines else []


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
    if metrics.get("dev"):
        found += dev_targets(metrics["dev"])
    problems = (metrics.get("sentiment_sets") or {}).get(PROBLEM_SET.stem)
    if problems:
        found += anger_targets(problems)
    found += calm_targets(metrics.get("calm") or {})
    return found


def run_nlu_and_sentiment(settings: Settings, model: Path, out: Path) -> dict[str, Any]:
    """The engine-side evaluation (ar_engine.evaluate) on the held-out files."""
    chnsenticorp = PROJECT_ROOT.parent / "shared" / "data" / "chnsenticorp" / "test.tsv"
    cmd = [
        str(settings.engine_dir / ".venv" / "bin" / "python"), "-m", "ar_engine.evaluate",
        "--model", str(model), "--nlu-test", str(PROJECT_ROOT / "tests" / "nlu" / "test_nlu.yml"),
        "--dev-test", str(DEV_SET),
        # One engine process scores every sentiment set (the model loads once).
        "--sentiment-test", str(SENTIMENT_SET), str(PROBLEM_SET),
        "--sentiment-threshold", str(settings.sentiment_threshold), "--out", str(out),
    ]  # fmt: skip
    if chnsenticorp.exists():
        cmd += ["--chnsenticorp", str(chnsenticorp)]
    if CROSSWOZ.exists():
        cmd += ["--crosswoz", str(CROSSWOZ)]
    if REVIEWS.exists():
        cmd += ["--reviews", str(REVIEWS)]
    if intents := calm_intents():
        cmd += ["--ordinary-intents", *intents]
    subprocess.run(cmd, cwd=PROJECT_ROOT, env=engine_env(settings, ""), check=True)
    metrics: dict[str, Any] = json.loads((out / "metrics.json").read_text())
    return metrics


def run_before(settings: Settings, out: Path) -> dict[str, Any]:
    """The held-out and development sets scored by the baseline model, trained (once, cached by its own
    fingerprint) without the reviewed examples: the "before" of the weekly review routine."""
    model = train(settings, baseline=True)
    before = out / "before"
    cmd = [
        str(settings.engine_dir / ".venv" / "bin" / "python"), "-m", "ar_engine.evaluate", "--model", str(model),
        "--nlu-test", str(PROJECT_ROOT / "tests" / "nlu" / "test_nlu.yml"), "--dev-test", str(DEV_SET),
        "--out", str(before),
    ]  # fmt: skip
    subprocess.run(cmd, cwd=PROJECT_ROOT, env=engine_env(settings, ""), check=True)
    metrics: dict[str, Any] = json.loads((before / "metrics.json").read_text())
    return {"nlu": {"accuracy": metrics["nlu"]["accuracy"]}, "dev": _dev_summary(metrics.get("dev"))}


def _dev_summary(dev: dict[str, Any] | None) -> dict[str, Any] | None:
    if not dev:
        return None
    return {k: dev[k] for k in ("accuracy", "wrong_answer", "fallback")} | {
        "out_of_scope_recall": dev["out_of_scope"]["recall"]
    }


def reviewed_summary(settings: Settings) -> dict[str, Any]:
    """How many reviewed examples the model learnt from, per intent."""
    counts = ReviewedExamples(settings.review_file, ()).counts()
    return {"examples": sum(counts.values()), "per_intent": counts}


def before_after(metrics: dict[str, Any]) -> list[str]:
    """The review routine's effect: accuracy without and with the reviewed examples (eval --before)."""
    reviewed = metrics.get("reviewed") or {"examples": 0, "per_intent": {}}
    before = metrics.get("before")
    lines = ["", "## Reviewed examples (the weekly review)", ""]
    lines.append(
        f"{reviewed['examples']} reviewed examples in data/nlu/reviewed/ ({len(reviewed['per_intent'])} intents)."
    )
    if not before:
        lines += ["", "Run `autoresponder eval --before` for the accuracy without them (one more training)."]
        return lines
    lines += ["", "| measure | before (without) | after (with) |", "|---|---|---|"]
    lines.append(f"| held-out intent accuracy | {before['nlu']['accuracy']:.3f} | {metrics['nlu']['accuracy']:.3f} |")
    dev, now = before.get("dev"), _dev_summary(metrics.get("dev"))
    if dev and now:
        names = {"accuracy": "dev intent accuracy", "wrong_answer": "dev wrong FAQ answer", "fallback": "dev fallback"}
        names["out_of_scope_recall"] = "dev out-of-scope recall"
        lines += [f"| {label} | {dev[key]:.3f} | {now[key]:.3f} |" for key, label in names.items()]
    return lines


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
        "| target | measured | target | met |",
        "|---|---|---|---|",
    ]
    met = {True: "yes", False: "**NO**"}
    lines += [f"| {t.name} | {t.value:.3f} | {t.bound} | {met[t.met] if t.gate else t.verdict} |" for t in found]
    if any(not t.gate for t in found):
        lines += [
            "",
            "Targets marked `target not met` are reported only (`DEV_TARGETS_GATE`, `DEV_WRONG_FAQ_GATE`, "
            "`ANGER_RECALL_GATE`, `CALM_HANDOFF_GATE`, `CALM_ORDINARY_GATE` in `bot/ops/evaluation.py`; "
            "the CrossWOZ figure always).",
        ]
    lines += [
        "",
        f"Held-out NLU test: {nlu['n']} utterances; macro-F1 {nlu['macro_f1']:.3f}; parse latency "
        f"p50 {nlu['parse_latency_ms']['p50']:.0f} ms, p95 {nlu['parse_latency_ms']['p95']:.0f} ms.",
        "",
    ]
    lines += ["| script | n | accuracy |", "|---|---|---|"]
    lines += [f"| {s} | {v['n']} | {v['accuracy']:.3f} |" for s, v in nlu["per_script"].items()]
    lines += ["", *f1_table("intent", nlu["per_intent"]), "", *f1_table("entity", nlu["entities"])]
    lines += dev_report(metrics.get("dev"), nlu)
    lines += before_after(metrics)
    sentiment = metrics["sentiment"]
    lines += [
        "",
        "## Sentiment",
        "",
        f"Project set ({sentiment['n']} messages, threshold {sentiment['threshold']}): "
        f"precision {sentiment['precision']:.3f}, recall {sentiment['recall']:.3f}, "
        f"accuracy {sentiment['accuracy']:.3f}.",
        *anger_table(metrics.get("sentiment_sets") or {}),
        *calm_table(metrics.get("calm") or {}),
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
    dev = metrics.get("dev")
    if dev:
        lines += ["## Misclassified development-set utterances", ""]
        lines += [
            f"- {e['expected']} → {e['predicted']} ({e['confidence'] or 0:.2f}): {e['text']}" for e in dev["errors"]
        ] or ["none"]
        lines += ["", "![confusion matrix](dev_confusion_matrix.png)", ""]
    return "\n".join(lines)


def anger_table(sets: dict[str, dict[str, Any]]) -> list[str]:
    """Sentiment per set and script: precision and recall on negative, calm messages handed off."""
    if not sets:
        return []
    lines = [
        "",
        "### Sentiment: anger, not problems",
        "",
        "| set | script | n (negative / other) | precision | recall | calm handed off |",
        "|---|---|---|---|---|---|",
    ]
    for name, scores in sets.items():
        for script, v in [("all", scores), *sorted(scores.get("by_locale", {}).items())]:
            lines.append(
                f"| {name} | {script} | {v['n']} ({v['negative']} / {v['other']}) | {v['precision']:.3f} | "
                f"{v['recall']:.3f} | {v['false_handoff']:.3f} ({v['false_handoffs']}) |"
            )
    problems = sets.get(PROBLEM_SET.stem)
    if problems:
        lines += ["", f"Wrongly scored in {PROBLEM_SET.name} (label, locale, score):", ""]
        lines += [f"- {e['label']} {e['locale']} {e['score']:.2f}: {e['text']}" for e in problems["errors"]] or ["none"]
    return lines


def dev_report(dev: dict[str, Any] | None, held_out: dict[str, Any]) -> list[str]:
    """The development set beside the held-out set: accuracy per script, wrong answers, out of scope."""
    if not dev:
        return []
    lines = [
        "",
        "## Development set (realistic customer text) beside the held-out set",
        "",
        "| measure | held-out | development |",
        "|---|---|---|",
        f"| utterances | {held_out['n']} | {dev['n']} |",
        f"| intent accuracy, overall | {held_out['accuracy']:.3f} | {dev['accuracy']:.3f} |",
    ]
    lines += [
        f"| intent accuracy, {script} | {held_out['per_script'][script]['accuracy']:.3f} | {v['accuracy']:.3f} |"
        for script, v in dev["per_script"].items()
    ]
    h_oos, d_oos = held_out["out_of_scope"].get("recall", 0.0), dev["out_of_scope"]["recall"]
    lines += [
        f"| wrong FAQ answer | {held_out.get('wrong_answer', 0.0):.3f} | {dev['wrong_answer']:.3f} |",
        f"| fallback | {held_out.get('fallback', 0.0):.3f} | {dev['fallback']:.3f} |",
        f"| out-of-scope recall | {h_oos:.3f} | {d_oos:.3f} |",
        f"| macro-F1 | {held_out['macro_f1']:.3f} | {dev['macro_f1']:.3f} |",
    ]
    return [*lines, "", *f1_table("intent (dev)", dev["per_intent"]), "", *f1_table("entity (dev)", dev["entities"])]


def f1_table(label: str, scores: dict[str, dict[str, float]]) -> list[str]:
    """A markdown table of support, precision, recall and F1 per label."""
    lines = [f"| {label} | support | precision | recall | F1 |", "|---|---|---|---|---|"]
    return lines + [
        f"| {name} | {v['support']} | {v['precision']:.2f} | {v['recall']:.2f} | {v['f1']:.2f} |"
        for name, v in sorted(scores.items())
    ]
