"""SentimentScorer: how angry or distressed each message is, for the handoff decision."""

from __future__ import annotations

from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from ar_engine.normalizer import to_simplified_same_length
from ar_engine.sentiment_lexicon import score

SENTIMENT = "sentiment"


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=False)
class SentimentScorer(GraphComponent):
    """Adds `sentiment: {score, negative}` to every parsed message (score in [0, 1), 1 = furious)."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        """`threshold` only labels the output; the handoff policy applies its own threshold."""
        return {"threshold": 0.75}

    def __init__(self, config: dict[str, Any]) -> None:
        self.threshold = float(config.get("threshold", 0.75))

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> SentimentScorer:
        """Create the component."""
        return cls({**cls.get_default_config(), **config})

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        """Training examples need no score."""
        return training_data

    def process(self, messages: list[Message]) -> list[Message]:
        """Score each message."""
        for message in messages:
            text = message.get(TEXT) or ""
            value = round(score(to_simplified_same_length(str(text))), 4)
            message.set(SENTIMENT, {"score": value, "negative": value >= self.threshold}, add_to_output=True)
        return messages
