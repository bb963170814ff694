"""ScriptNormalizer: traditional Chinese folded to simplified before tokenisation.

One model then serves both scripts; the conversion is character by character so that entity
offsets in the training data stay valid. The reply's script is chosen by the app, not here.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from opencc import OpenCC
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData


@lru_cache(maxsize=1)
def _t2s() -> OpenCC:
    return OpenCC("t2s")


@lru_cache(maxsize=8192)
def _char(ch: str) -> str:
    converted = _t2s().convert(ch)
    # Keep one character per character: offsets of annotated entities must not move.
    return converted if len(converted) == 1 else ch


def to_simplified_same_length(text: str) -> str:
    """Traditional characters replaced by their simplified forms, length unchanged."""
    return "".join(_char(ch) if "\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff" else ch for ch in text)


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=False)
class ScriptNormalizer(GraphComponent):
    """Rewrites the message text in simplified script (put it first in the pipeline)."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        """No options."""
        return {}

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> ScriptNormalizer:
        """Create the component."""
        return cls()

    @staticmethod
    def _normalise(message: Message) -> None:
        text = message.get(TEXT)
        if isinstance(text, str) and text:
            message.set(TEXT, to_simplified_same_length(text))

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        """Normalise every training example."""
        for example in training_data.training_examples:
            self._normalise(example)
        return training_data

    def process(self, messages: list[Message]) -> list[Message]:
        """Normalise incoming messages."""
        for message in messages:
            self._normalise(message)
        return messages
