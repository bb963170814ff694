"""The linear intent classifier: trained, persisted with the model, loaded, and safe on odd messages."""

from __future__ import annotations

from pathlib import Path

import pytest
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.nlu.tokenizers.jieba_tokenizer import JiebaTokenizer
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from ar_engine.linear_intent import LinearIntentClassifier

EXAMPLES = {
    "order_status": ["我的订单到哪了", "快递怎么还没到", "where is my order", "查一下物流", "has my parcel shipped"],
    "invoice": ["发票怎么开", "能开增值税发票吗", "i need an invoice", "发票开错了能重开吗", "send me a receipt"],
    "greet": ["你好", "在吗", "hello", "hi there", "早上好"],
}


def _tokenized(messages: list[Message]) -> list[Message]:
    """The words as the pipeline's tokenizer cuts them (the jieba tokenizer keeps nothing in storage)."""
    tokenizer = JiebaTokenizer(JiebaTokenizer.get_default_config(), None, None)  # type: ignore[arg-type]
    tokenizer.process(messages)
    return messages


Stored = tuple[LocalModelStorage, Resource, ExecutionContext]


@pytest.fixture
def storage(tmp_path: Path) -> tuple[LocalModelStorage, Resource, ExecutionContext]:
    context = ExecutionContext(GraphSchema({}), "test")
    return LocalModelStorage(tmp_path), Resource("linear_intent"), context


def _trained(storage: Stored) -> LinearIntentClassifier:
    model_storage, resource, context = storage
    classifier = LinearIntentClassifier.create({}, model_storage, resource, context)
    examples = [Message(data={"text": t, "intent": i}) for i, texts in EXAMPLES.items() for t in texts]
    classifier.train(TrainingData(_tokenized(examples)))
    return classifier


def test_it_ranks_every_known_intent_and_the_best_first(storage: Stored) -> None:
    classifier = _trained(storage)
    (message,) = classifier.process(_tokenized([Message(data={"text": "我的快递到哪了"})]))
    intent, ranking = message.get("intent"), message.get("intent_ranking")
    assert intent["name"] == "order_status" and intent == ranking[0]
    assert {r["name"] for r in ranking} == set(EXAMPLES)
    confidences = [r["confidence"] for r in ranking]
    assert confidences == sorted(confidences, reverse=True)
    assert sum(confidences) == pytest.approx(1.0)
    assert all(isinstance(c, float) for c in confidences)  # JSON-serialisable, not numpy floats


def test_the_loaded_model_predicts_what_the_trained_one_did(storage: Stored) -> None:
    trained = _trained(storage)
    texts = ["发票能开吗", "hello", "where is my parcel"]
    before = [m.get("intent_ranking") for m in trained.process(_tokenized([Message(data={"text": t}) for t in texts]))]
    model_storage, resource, context = storage
    loaded = LinearIntentClassifier.load({}, model_storage, resource, context)
    after = [m.get("intent_ranking") for m in loaded.process(_tokenized([Message(data={"text": t}) for t in texts]))]
    assert after == before
    assert [r[0]["name"] for r in after] == ["invoice", "greet", "order_status"]


def test_messages_without_text_and_an_untrained_model_get_no_intent(
    storage: Stored,
) -> None:
    classifier = _trained(storage)
    odd = [Message(data={"text": ""}), Message(data={"text": "   "}), Message(data={})]
    for message in classifier.process(odd):
        assert message.get("intent") == {"name": None, "confidence": 0.0}
        assert message.get("intent_ranking") == []
    model_storage, _, context = storage
    lonely = LinearIntentClassifier.create({}, model_storage, Resource("one_intent"), context)
    lonely.train(TrainingData(_tokenized([Message(data={"text": "你好", "intent": "greet"})])))
    reloaded = LinearIntentClassifier.load({}, model_storage, Resource("one_intent"), context)
    (message,) = reloaded.process(_tokenized([Message(data={"text": "你好"})]))
    assert message.get("intent") == {"name": None, "confidence": 0.0}


def test_a_long_or_strange_text_is_classified_without_error(storage: Stored) -> None:
    classifier = _trained(storage)
    texts = ["订单" * 2000, "🙂🙂🙂", "\x00\u200b", "DD202405001"]
    for message in classifier.process(_tokenized([Message(data={"text": t}) for t in texts])):
        assert message.get("intent")["name"] in EXAMPLES


def test_short_chinese_examples_are_also_learnt_in_pinyin(storage: Stored) -> None:
    from ar_engine.linear_intent import pinyin_copies

    copies = dict(pinyin_copies("退货怎么操作", ["退货", "怎么", "操作"], 8))
    assert copies == {
        "tui huo zen me cao zuo": ["tui", "huo", "zen", "me", "cao", "zuo"],
        "tuihuo zenme caozuo": ["tuihuo", "zenme", "caozuo"],
    }
    assert "zaima" in dict(pinyin_copies("在吗", ["在", "吗"], 8))
    assert pinyin_copies("我昨天买的台灯怎么还没发货", ["我"], 8) == []  # a story: nobody types it in pinyin
    assert pinyin_copies("where is my order", ["where", "is", "my", "order"], 8) == []
    assert pinyin_copies("退货", ["退货"], 0) == []

    model_storage, _, context = storage
    classifier = LinearIntentClassifier.create({"pinyin_copies": 8}, model_storage, Resource("pinyin"), context)
    examples = [Message(data={"text": t, "intent": i}) for i, texts in EXAMPLES.items() for t in texts]
    classifier.train(TrainingData(_tokenized(examples)))
    for text, intent in [
        ("fapiao zenme kai", "invoice"),
        ("wo de dingdan dao na le", "order_status"),
        ("nihao", "greet"),
    ]:
        (message,) = classifier.process(_tokenized([Message(data={"text": text})]))
        assert message.get("intent")["name"] == intent, text


def test_a_message_without_one_known_latin_word_gets_confidence_zero(storage: Stored) -> None:
    classifier = _trained(storage)
    texts = ["qwxz 呃", "asdfgh", "where is my parcel", "DD202405001", "发票"]
    parsed = classifier.process(_tokenized([Message(data={"text": t}) for t in texts]))
    for message in parsed[:2]:
        assert message.get("intent")["confidence"] == 0.0
        assert {r["confidence"] for r in message.get("intent_ranking")} == {0.0}
    for message in parsed[2:]:
        assert message.get("intent")["confidence"] > 0.2
