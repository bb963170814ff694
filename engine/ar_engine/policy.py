"""HandoffPolicy: the engine's single place that decides when a human takes over."""

from __future__ import annotations

import json
import os
from typing import Any

from rasa.core.policies.policy import Policy, PolicyPrediction
from rasa.engine.graph import ExecutionContext
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.core.constants import ACTION_LISTEN_NAME
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import SlotSet, UserUttered
from rasa.shared.core.generator import TrackerWithCachedStates
from rasa.shared.core.trackers import DialogueStateTracker

from ar_engine import sentiment_lexicon
from ar_engine.handoff import Thresholds, Turn, asks_for_human, decide
from ar_engine.normalizer import to_simplified_same_length

HANDOFF_ACTION = "action_handoff"


def _env_number(name: str, default: float) -> float:
    raw = os.environ.get(name)
    try:
        return float(raw) if raw not in (None, "") else default
    except ValueError:
        return default


def sentiment_of(event: UserUttered) -> float:
    """The message's anger score from the NLU pipeline's SentimentScorer.

    A message that reached the tracker without going through the pipeline (an event posted to the
    HTTP API, a test story's scripted user turn) has no score; its text is then scored by the lexicon,
    so anger never goes unnoticed just because the parse data lacks the field.
    """
    sentiment = (event.parse_data or {}).get("sentiment")
    if isinstance(sentiment, dict) and "score" in sentiment:
        return float(sentiment["score"])
    if event.text:
        return sentiment_lexicon.score(to_simplified_same_length(event.text))
    return 0.0


def turns_of(tracker: DialogueStateTracker) -> list[Turn]:
    """The customer's messages since the last restart, with intent and sentiment."""
    return [
        Turn(
            intent=event.intent_name or "",
            sentiment=sentiment_of(event),
            asks_human=asks_for_human(to_simplified_same_length(event.text or "")),
        )
        for event in tracker.applied_events()
        if isinstance(event, UserUttered)
    ]


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.POLICY_WITHOUT_END_TO_END_SUPPORT, is_trainable=True)
class HandoffPolicy(Policy):
    """Predicts `action_handoff` on an explicit request, repeated follow-ups, anger, or a VIP complaint.

    The reason, skill and priority go to the action as slots, so the action only phrases the handoff.
    """

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        """Defaults; AUTORESPONDER_FOLLOWUP_LIMIT and AUTORESPONDER_SENTIMENT_THRESHOLD override them."""
        return {"priority": 7, "followup_limit": 3, "sentiment_threshold": 0.5}

    def __init__(
        self,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        featurizer: Any | None = None,
    ) -> None:
        super().__init__(config, model_storage, resource, execution_context, featurizer)

    def thresholds(self) -> Thresholds:
        """Thresholds in force now: the environment wins over config.yml."""
        return Thresholds(
            followup_limit=int(_env_number("AUTORESPONDER_FOLLOWUP_LIMIT", self.config["followup_limit"])),
            sentiment_threshold=_env_number("AUTORESPONDER_SENTIMENT_THRESHOLD", self.config["sentiment_threshold"]),
        )

    def train(self, training_trackers: list[TrackerWithCachedStates], domain: Domain, **kwargs: Any) -> Resource:
        """Nothing to learn; persist the configuration so the trained model records it."""
        with self._model_storage.write_to(self._resource) as directory:
            (directory / "handoff_policy.json").write_text(json.dumps(self.config, default=str))
        return self._resource

    @classmethod
    def load(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> HandoffPolicy:
        """Rebuild from configuration alone."""
        return cls(config, model_storage, resource, execution_context)

    def predict_action_probabilities(
        self,
        tracker: DialogueStateTracker,
        domain: Domain,
        rule_only_data: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> PolicyPrediction:
        """Hand off after the latest message when a trigger fires; otherwise abstain."""
        result = self._default_predictions(domain)
        if tracker.latest_action_name == HANDOFF_ACTION:
            result[domain.index_for_action(ACTION_LISTEN_NAME)] = 1.0
            return self._prediction(result)
        if tracker.latest_action_name != ACTION_LISTEN_NAME or not isinstance(tracker.latest_message, UserUttered):
            return self._prediction(result)
        metadata = tracker.latest_message.metadata or {}
        vip = bool(metadata.get("vip") or tracker.get_slot("customer_vip"))
        decision = decide(turns_of(tracker), vip, self.thresholds())
        if decision is None:
            return self._prediction(result)
        result[domain.index_for_action(HANDOFF_ACTION)] = 1.0
        return self._prediction(
            result,
            optional_events=[
                SlotSet("handoff_reason", decision.reason),
                SlotSet("handoff_skill", decision.skill),
                SlotSet("handoff_priority", float(decision.priority)),
            ],
        )
