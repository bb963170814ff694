"""The evaluation's targets: development-set targets are reported, and gate only when switched on."""

from __future__ import annotations

from typing import Any

from bot.ops.evaluation import Target, anger_targets, calm_intents, calm_targets, dev_targets, report, targets
from bot.settings import PROJECT_ROOT


def nlu_metrics(accuracy: float, wrong: float, oos_recall: float) -> dict[str, Any]:
    """The shape ar_engine.evaluate writes for one NLU set."""
    scores = {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 10}
    return {
        "n": 100,
        "accuracy": accuracy,
        "macro_f1": accuracy,
        "per_script": {s: {"accuracy": accuracy, "wrong_answer": wrong, "n": 33} for s in ("zh-CN", "zh-TW", "en")},
        "per_intent": {"request_human": scores, "followup_unresolved": scores},
        "entities": {"order_id": scores},
        "wrong_answer": wrong,
        "fallback": 0.05,
        "out_of_scope": {"n": 10, "answered_as_faq": round(10 * (1 - oos_recall)), "recall": oos_recall},
        "parse_latency_ms": {"p50": 15.0, "p95": 25.0},
        "errors": [{"text": "在吗 发票开错了", "expected": "invoice", "predicted": "greet", "confidence": 0.9}],
    }


def sentiment_metrics(recall: float, false_handoff: float) -> dict[str, Any]:
    """The shape ar_engine.evaluate writes for one sentiment set (100 negative, 100 other)."""
    counts = {"negative": 100, "other": 100, "precision": 0.9, "recall": recall, "accuracy": 0.9}
    counts |= {"false_handoff": false_handoff, "false_handoffs": round(100 * false_handoff)}
    by_locale = {locale: {**counts, "n": 200} for locale in ("zh-CN", "zh-TW", "en")}
    errors = [{"text": "箱子有点压扁了", "label": "other", "locale": "zh-CN", "score": 0.6}]
    return {"n": 200, **counts, "threshold": 0.5, "by_locale": by_locale, "errors": errors}


def metrics(dev: dict[str, Any], problems: dict[str, Any] | None = None) -> dict[str, Any]:
    sentiment = {"n": 10, "threshold": 0.5, "precision": 0.95, "recall": 0.95, "accuracy": 0.95}
    sets = {"problem_reports": problems} if problems else {}
    return {
        "nlu": nlu_metrics(0.97, 0.02, 1.0),
        "dev": dev,
        "sentiment": sentiment,
        "sentiment_sets": sets,
        "chnsenticorp": None,
    }


def test_a_maximum_is_met_at_or_below_the_bound() -> None:
    assert Target("wrong", 0.03, 0.03, at_most=True).met
    assert not Target("wrong", 0.031, 0.03, at_most=True).met
    assert Target("wrong", 0.02, 0.03, at_most=True).bound == "≤ 0.03"


def test_dev_targets_all_gate() -> None:
    found = targets(metrics(nlu_metrics(0.80, 0.15, 0.6)))
    dev = {t.name: t for t in found if t.name.startswith("dev:")}
    assert len(dev) == 6 and not any(t.met for t in dev.values())
    assert all(t.gate for t in dev.values()) and {t.verdict for t in dev.values()} == {"UNDER TARGET"}
    text = report(metrics(nlu_metrics(0.80, 0.15, 0.6)), found)
    assert "Development set" in text and "在吗 发票开错了" in text


def test_a_target_switched_off_is_reported_only() -> None:
    wrong = {t.name: t for t in dev_targets(nlu_metrics(0.80, 0.15, 0.6), gate=True, wrong_gate=False)}
    assert wrong["dev: wrong FAQ answer (wrong, not fallback)"].verdict == "target not met"


def test_dev_targets_gate_when_switched_on() -> None:
    failing = dev_targets(nlu_metrics(0.80, 0.15, 0.6), gate=True, wrong_gate=True)
    assert {t.verdict for t in failing} == {"UNDER TARGET"}
    passing = dev_targets(nlu_metrics(0.93, 0.02, 0.97), gate=True)
    assert all(t.met for t in passing)


def test_the_report_shows_accuracy_before_and_after_the_reviewed_examples() -> None:
    found = metrics(nlu_metrics(0.90, 0.03, 0.9)) | {"reviewed": {"examples": 12, "per_intent": {"greet": 12}}}
    without = report(found, targets(found))
    assert "12 reviewed examples in data/nlu/reviewed/ (1 intents)." in without
    assert "autoresponder eval --before" in without
    found["before"] = {
        "nlu": {"accuracy": 0.95},
        "dev": {"accuracy": 0.85, "wrong_answer": 0.05, "fallback": 0.1, "out_of_scope_recall": 0.8},
    }
    with_before = report(found, targets(found))
    assert "| held-out intent accuracy | 0.950 | 0.970 |" in with_before
    assert "| dev intent accuracy | 0.850 | 0.900 |" in with_before
    assert "| dev out-of-scope recall | 0.800 | 0.900 |" in with_before


def test_anger_targets_are_reported_with_a_table() -> None:
    found = targets(metrics(nlu_metrics(0.93, 0.02, 0.97), sentiment_metrics(0.80, 0.12)))
    anger = [t for t in found if t.name.startswith("problems:")]
    assert [t.met for t in anger] == [False, False]
    assert [t.verdict for t in anger] == ["UNDER TARGET", "UNDER TARGET"]  # both gate
    text = report(metrics(nlu_metrics(0.93, 0.02, 0.97), sentiment_metrics(0.80, 0.12)), found)
    assert "anger, not problems" in text and "| problem_reports | zh-TW |" in text and "箱子有点压扁了" in text


def test_anger_targets_gate_when_switched_on() -> None:
    failing = anger_targets(sentiment_metrics(0.80, 0.12), recall_gate=True, calm_gate=True)
    assert {t.verdict for t in failing} == {"UNDER TARGET"}
    assert all(t.met for t in anger_targets(sentiment_metrics(0.90, 0.05), recall_gate=True, calm_gate=True))


def calm_metrics(dev_share: float, crosswoz_share: float) -> dict[str, Any]:
    """The shape ar_engine.evaluate writes for the calm sets (1,000 messages each)."""

    def one(share: float) -> dict[str, Any]:
        highest = [{"score": 0.9, "text": "我是第一次在你们家买"}] if share else []
        return {"n": 1000, "handed_off": round(1000 * share), "share": share, "highest": highest}

    reviews = one(crosswoz_share) | {
        "complaints": round(1000 * crosswoz_share),
        "complaint_share": crosswoz_share,
        "complaint_examples": [{"intent": "complaint_product", "text": "东西很好，下次还来"}],
    }
    return {"dev_ordinary": one(dev_share), "crosswoz": one(crosswoz_share), "reviews": reviews}


def test_ordinary_messages_handed_off_as_anger_gate_on_the_dev_set_and_are_reported_for_the_outside_sets() -> None:
    failing = calm_targets(calm_metrics(0.03, 0.2))
    # The dev set gates; the outside sets, and happy reviews answered as complaints, are reported.
    assert [t.verdict for t in failing] == ["UNDER TARGET", "target not met", "target not met", "target not met"]
    assert all(t.met for t in calm_targets(calm_metrics(0.002, 0.04)))
    found = metrics(nlu_metrics(0.93, 0.02, 0.97)) | {"calm": calm_metrics(0.001, 0.07)}
    text = report(found, targets(found))
    assert "ordinary messages are not anger" in text
    assert "CrossWOZ user turns (val): 70 of 1000 handed off as anger (0.070)" in text
    assert "- 0.90: 我是第一次在你们家买" in text
    assert "positive shop reviews (online_shopping_10_cats, 1,500 of chat length): 70 of 1000" in text
    assert "70 of 1000 answered as a complaint (0.070); for example:" in text
    assert "- complaint_product: 东西很好，下次还来" in text
    assert calm_targets({}) == []  # no calm sets scored (an older metrics file): no targets


def test_the_calm_intents_are_the_scorers_and_name_intents_of_the_domain() -> None:
    import yaml

    intents = calm_intents()
    domain = yaml.safe_load((PROJECT_ROOT / "domain.yml").read_text(encoding="utf-8"))
    assert intents and set(intents) <= set(domain["intents"])
    # Never an intent that anger comes with: complaints, follow-ups, asking for a person.
    assert not {i for i in intents if i.startswith("complaint") or i in ("followup_unresolved", "request_human")}
