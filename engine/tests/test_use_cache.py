"""The sentence vector of a message is computed once, whoever asks for it first."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from ar_engine import use_featurizer


class CountingEncoder:
    def __init__(self) -> None:
        self.texts: list[str] = []

    def encode(self, texts: list[str]) -> Any:
        self.texts.extend(texts)
        return [[float(len(t))] * 512 for t in texts]


@pytest.fixture
def encoder(monkeypatch: pytest.MonkeyPatch) -> CountingEncoder:
    fake = CountingEncoder()
    monkeypatch.setattr(use_featurizer, "_encoder", lambda: fake)
    monkeypatch.setattr(use_featurizer, "_cache", type(use_featurizer._cache)())
    return fake


def test_the_featurizer_and_the_scorer_share_one_encoding(encoder: CountingEncoder) -> None:
    first = use_featurizer.encode(["我的订单到哪了"])
    second = use_featurizer.encode(["我的订单到哪了", "hello"])
    assert encoder.texts == ["我的订单到哪了", "hello"]
    assert first.shape == (1, 512) and second.shape == (2, 512)
    assert np.array_equal(first[0], second[0]) and second[1][0] == 5.0
    first[0][0] = -1.0  # callers get their own copy: the cached vector is unchanged
    assert use_featurizer.encode(["我的订单到哪了"])[0][0] == 7.0


def test_the_cache_stays_bounded(encoder: CountingEncoder) -> None:
    texts = [f"text {i}" for i in range(use_featurizer.CACHE_SIZE + 10)]
    use_featurizer.encode(texts)
    assert len(use_featurizer._cache) == use_featurizer.CACHE_SIZE
    use_featurizer.encode(["text 0"])  # evicted: encoded again
    assert encoder.texts.count("text 0") == 2
    assert use_featurizer.encode([]).shape == (0, 512)
