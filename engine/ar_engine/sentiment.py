"""SentimentScorer: how angry or distressed each message is, for the handoff decision.

A logistic regression over five views of a message: its multilingual USE sentence vector (meaning,
sarcasm, paraphrase), character n-grams (wording in either script), its words as jieba cuts them (so
that "坏了" said of a device and "坏" said of the shop weigh apart), the evidence of a hand-written anger
lexicon, and topic-free style cues (questions put to the shop, exclamations). It is trained from the
project's own labelled messages (`data/sentiment/*.tsv`, the files in `training_files`); without them
the lexicon alone scores.
"""

from __future__ import annotations

import csv
import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import INTENT, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from ar_engine.normalizer import to_simplified_same_length
from ar_engine.pickled import PickledModelComponent
from ar_engine.sentiment_lexicon import evidence, score, style_cues

SENTIMENT = "sentiment"
log = logging.getLogger(__name__)


# A number of four digits or more, with the letters of an id before it and after (DD202405001, SF…,
# a phone number, a tax number): it says nothing of the customer's mood.
_NUMBER = re.compile(r"[A-Za-z]{0,4}\d{4,}[A-Za-z\d]*")


def without_numbers(text: str) -> str:
    """The text with each long number (an order, phone or tracking number) cut to one digit.

    The scorer reads characters, words and length: a message of 500 digits weighed as a long rant in
    characters it never saw calm, and scored 0.70 (over the hand-off threshold). Digits carry no mood; the
    held-out sentiment sets score exactly as before without them.
    """
    return _NUMBER.sub("0", text)


def read_labelled(path: Path) -> list[tuple]:
    """(text, is_negative) pairs from a `label<TAB>locale<TAB>text` file."""
    with path.open(encoding="utf-8") as handle:
        return [(row["text"], row["label"].strip() == "negative") for row in csv.DictReader(handle, delimiter="\t")]


def calm_examples(examples: list[tuple[str, str]], intents: list[str]) -> list[str]:
    """The texts of NLU examples of ordinary intents, as calm messages for the scorer to learn from.

    The labelled files hold mostly anger and problem reports, so on its own the scorer had seen few
    ordinary messages: it handed off 2.7 % of the development set's plain questions, 18 % of CrossWOZ's
    travel requests and "我是第一次在你们家买" (0.94) as anger. Every example of an intent in `intents`
    (order questions, policies, products, small talk) is such a message, except one that holds a word
    of the anger lexicon: an exasperated order question stays unlabelled rather than calm.
    """
    wanted = set(intents)
    seen: set[str] = set()
    calm = []
    for text, intent in examples:
        if intent in wanted and text.strip() and text not in seen and evidence(to_simplified_same_length(text)) == 0:
            seen.add(text)
            calm.append(text)
    return calm


def words(text: str) -> list[str]:
    """The text's words as jieba cuts it, lower-cased, without blanks (a module function: it is pickled)."""
    import jieba

    return [w for w in jieba.lcut(text.lower()) if w.strip()]


class SentimentModel:
    """The fitted classifier and the feature pipeline it needs."""

    def __init__(self) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        self.chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3), min_df=2, sublinear_tf=True)
        self.words = TfidfVectorizer(analyzer=words, min_df=2, sublinear_tf=True)
        # No class weighting: at the configured threshold this keeps calm problem reports under it more
        # often for the same recall; the words and C 4 (was 2, without words) raised precision and recall
        # together (5-fold cross-validation, `python -m ar_engine.sentiment_cv`; README).
        self.classifier = LogisticRegression(C=4.0, max_iter=2000)

    @staticmethod
    def _dense(texts: list[str]) -> np.ndarray:
        from ar_engine.use_featurizer import encode

        vectors = encode(texts)
        lexicon = np.array([[min(evidence(t), 6.0) / 3.0, *style_cues(t)] for t in texts], dtype=np.float32)
        return np.hstack([vectors, lexicon])

    def _features(self, texts: list[str], fit: bool = False) -> Any:
        from scipy.sparse import csr_matrix, hstack

        folded = [to_simplified_same_length(without_numbers(t)) for t in texts]
        chars = self.chars.fit_transform(folded) if fit else self.chars.transform(folded)
        cut = self.words.fit_transform(folded) if fit else self.words.transform(folded)
        return hstack([chars, cut, csr_matrix(self._dense(folded))]).tocsr()

    def fit(
        self, texts: list[str], labels: list[bool], calm: Sequence[str] = (), calm_weight: float = 0.5
    ) -> SentimentModel:
        """Fit on labelled messages (each weighing 1) and on `calm` ones, not angry, each weighing `calm_weight`."""
        every = [*texts, *calm]
        targets = np.array([*labels, *[False] * len(calm)], dtype=int)
        weights = np.array([1.0] * len(texts) + [calm_weight] * len(calm))
        self.classifier.fit(self._features(every, fit=True), targets, sample_weight=weights)
        return self

    def predict(self, texts: list[str]) -> list[float]:
        """Probability that each message is negative enough to hand off."""
        return [float(p) for p in self.classifier.predict_proba(self._features(texts))[:, 1]]


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=True)
class SentimentScorer(PickledModelComponent):
    """Adds `sentiment: {score, negative}` to every parsed message (score in [0, 1], 1 = furious)."""

    MODEL_FILE = "sentiment.pkl"
    model: SentimentModel | None

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        """`training_files` are relative to the project root; `threshold` only labels the output;
        `calm_intents`: the NLU intents whose examples are also learnt as calm (see `calm_examples`), each
        with `calm_weight` (a labelled message weighs 1)."""
        names = ["train", "problems", "problems_more", "ordinary", "praise"]
        files = [f"data/sentiment/{name}.tsv" for name in names]
        return {"training_files": files, "threshold": 0.5, "calm_intents": [], "calm_weight": 0.5}

    def __init__(
        self, config: dict[str, Any], model_storage: ModelStorage, resource: Resource, model: Any = None
    ) -> None:
        super().__init__(config, model_storage, resource, model)
        self.threshold = float(config.get("threshold", 0.5))

    def train(self, training_data: TrainingData) -> Resource:
        """Fit the classifier on the labelled file, and persist it with the model."""
        names = self.config.get("training_files") or []
        paths = [Path(str(name)) for name in names]
        rows = [row for path in paths if path.exists() for row in read_labelled(path)]
        if missing := [str(path) for path in paths if not path.exists()]:
            log.warning("sentiment training files missing: %s", ", ".join(missing))
        examples = [(str(m.get(TEXT) or ""), str(m.get(INTENT) or "")) for m in training_data.intent_examples]
        calm = calm_examples(examples, list(self.config.get("calm_intents") or []))
        if rows:
            weight = float(self.config.get("calm_weight", 0.5))
            self.model = SentimentModel().fit([t for t, _ in rows], [n for _, n in rows], calm, weight)
        else:
            log.warning("no sentiment training data: the lexicon alone will score")
        return self.persist()

    def scores(self, texts: list[str]) -> list[float]:
        """Anger scores of texts."""
        if self.model is None:
            return [score(to_simplified_same_length(without_numbers(t))) for t in texts]
        return self.model.predict(texts)

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        """Training examples need no score."""
        return training_data

    def process(self, messages: list[Message]) -> list[Message]:
        """Score each message."""
        texts = [str(m.get(TEXT) or "") for m in messages]
        for message, value in zip(messages, self.scores(texts), strict=False):
            value = round(value, 4)
            message.set(SENTIMENT, {"score": value, "negative": value >= self.threshold}, add_to_output=True)
        return messages
