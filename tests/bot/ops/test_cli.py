"""The `autoresponder parse` command with the trained model."""

from __future__ import annotations

import json
import subprocess
import sys

from bot.settings import PROJECT_ROOT


def test_parse_prints_one_json_line_per_text() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bot.ops.cli", "parse", "DD202405001 到哪了", "請問訂單到哪裡了", "where is my order"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [line["locale"] for line in lines] == ["zh-CN", "zh-TW", "en"]
    first = lines[0]
    assert first["intent"] == "order_status"
    assert 0 < first["confidence"] <= 1
    assert {"entity": "order_id", "value": "DD202405001", "start": 0, "end": 11} in first["entities"]
    assert 0 <= first["sentiment"] < 0.5


def test_parse_reads_standard_input() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bot.ops.cli", "parse"],
        input="转人工\n\n你们这什么破服务，骗子！我要投诉！！\n",
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(lines) == 2
    assert lines[0]["intent"] == "request_human"
    assert lines[1]["sentiment"] > 0.5
