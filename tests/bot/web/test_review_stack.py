"""The review list with the real engine: a message it does not understand is listed with the intent and
confidence Rasa gave it, and its label lands in the stack's reviewed file."""

from __future__ import annotations

import uuid

import pytest
import yaml

from tests.conftest import RunningStack

pytestmark = pytest.mark.stack


def test_a_fallback_answer_is_listed_with_the_engines_prediction_and_labelled(stack: RunningStack) -> None:
    who = f"review-{uuid.uuid4().hex[:8]}"
    assert stack.rest(who, "qwxz 呃").status_code == 200  # the stories' message the assistant does not understand
    listed = stack.agent("GET", "/review?reason=fallback&limit=200")
    assert listed.status_code == 200, listed.text
    [item] = [i for i in listed.json()["items"] if i["text"] == "qwxz 呃"]
    assert item["intent"] not in ("", "nlu_fallback") and 0.0 <= item["confidence"] < 0.4
    assert item["reasons"] == ["fallback"] and item["channel"] == "rest"
    assert stack.agent("GET", "/review", by="review-agent").status_code == 403
    done = stack.agent("POST", f"/review/{item['id']}/assign", intent="out_of_scope")
    assert done.status_code == 200, done.text
    reviewed = yaml.safe_load((stack.var_dir / "reviewed" / "reviewed.yml").read_text())
    assert {"intent": "out_of_scope", "examples": "- qwxz 呃\n"} in reviewed["nlu"]
