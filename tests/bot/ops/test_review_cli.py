"""`autoresponder review report`: the reviewed examples per intent and the last before-and-after."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.desk.reviewed import render
from bot.ops.cli import app


def test_report_counts_reviewed_examples_and_shows_the_last_before_and_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reviewed = tmp_path / "reviewed.yml"
    monkeypatch.setenv("AUTORESPONDER_REVIEW_FILE", str(reviewed))
    monkeypatch.setenv("AUTORESPONDER_VAR_DIR", str(tmp_path / "var"))
    runner = CliRunner()
    empty = runner.invoke(app, ["review", "report"])
    assert empty.exit_code == 0, empty.output
    assert "reviewed examples in" in empty.output and ": 0" in empty.output
    assert "autoresponder eval --before" in empty.output
    reviewed.write_text(render({"order_status": ["<ORDER_ID> 呢", "到哪了呀"], "greet": ["哈喽"]}))
    (tmp_path / "var" / "eval").mkdir(parents=True)
    last = {"dev": {"accuracy": 0.91}, "before": {"dev": {"accuracy": 0.88}}, "reviewed": {"examples": 3}}
    (tmp_path / "var" / "eval" / "metrics.json").write_text(json.dumps(last))
    shown = runner.invoke(app, ["review", "report"])
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    assert lines[0].endswith(": 3")
    assert [line.split() for line in lines[1:3]] == [["greet", "1"], ["order_status", "2"]]
    assert "without them 0.880  with them 0.910" in shown.output
