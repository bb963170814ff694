"""The engine's fast model load predicts exactly what Rasa's own load does, on the project's trained model."""

from __future__ import annotations

import re
import subprocess

import pytest

from bot.ops.stack import engine_env, engine_python, train
from bot.settings import PROJECT_ROOT, Settings

pytestmark = pytest.mark.stack


def test_the_fast_load_ranks_every_intent_as_rasa_load_does() -> None:
    settings = Settings()
    model = train(settings)
    result = subprocess.run(
        [str(engine_python(settings)), "-m", "ar_engine.fast_load", str(model)],
        cwd=PROJECT_ROOT / "engine",
        env=engine_env(settings, ""),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    found = re.search(r"max confidence difference: (\S+)", result.stdout)
    assert found, result.stdout[-2000:]
    assert float(found.group(1)) < 1e-5
