"""ScriptNormalizer: traditional Chinese folded to simplified before tokenisation.

One model then serves both scripts; the conversion is character by character so that entity
offsets in the training data stay valid. The reply's script is chosen by the app, not here.
CourtesyStripper folds full-width ASCII and blanks the greeting and thanks around a request, for the
same reason by spaces.
"""

from __future__ import annotations

import re
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
    def rewrite(text: str) -> str:
        """The text the rest of the pipeline reads, of the same length (entity offsets stay valid)."""
        return to_simplified_same_length(text)

    def _normalise(self, message: Message) -> None:
        text = message.get(TEXT)
        if isinstance(text, str) and text:
            message.set(TEXT, self.rewrite(text))

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


def to_half_width(text: str) -> str:
    """Full-width ASCII (ｈｉ, ＤＤ２０２４…, ！) and the ideographic space folded to ASCII, length unchanged."""
    return "".join(
        chr(ord(ch) - 0xFEE0) if "\uff01" <= ch <= "\uff5e" else (" " if ch == "\u3000" else ch) for ch in text
    )


_SEP = r"[\s,，.。!！~～、:：;；?？…-]*"
# Openers that carry no request: greetings, "are you there", politeness, "sorry to bother you".
# Matched on folded, half-width, lower-cased text; each alternative may repeat ("你好 在吗 亲").
_OPENER = re.compile(
    r"^(?:(?:"
    r"你好呀?|您好|哈喽|哈啰|嗨+|喂+|在吗|在不在|在么|在\?|亲亲?(?=[\s,，.。!！~～、])|亲爱的客服|"
    r"客服(?:你好|您好|在吗|小姐姐|小哥哥|大大)|小姐姐|早上好|早安|中午好|下午好|晚上好|晚安|"
    r"打扰(?:一下|了|您了|你了)?|不好意思|有人吗|有人在吗|请问有人吗|"
    r"hi there|hey there|hello there|good (?:morning|afternoon|evening)|dear (?:support|team|sir|madam)|"
    r"sorry to bother you|excuse me|quick question|hi+|hello+|hey+|hiya|yo|greetings|"
    r"nihao|ni hao|zaima|zai ma"
    r")(?![a-z])" + _SEP + r")+"
)
# Closers after a request: thanks, "sorry for the trouble".
_CLOSER = re.compile(
    _SEP + r"(?:(?:谢谢(?:你|您|啦|了|亲|哈|客服)*|多谢|感谢|辛苦(?:了|啦)|麻烦(?:了|你了|您了)|拜托(?:了|啦)|"
    r"thanks?(?: you)?(?: (?:so|very) much| a lot| in advance)?|thx|ty|cheers|much appreciated|"
    r"xiexie|xie xie)" + _SEP + r")+$"
)
_HAN = re.compile(r"[\u3400-\u9fff]")
_WORD = re.compile(r"[a-z0-9']+")
# What follows a greeting and is still small talk: "hi, how's it going", "您好，这里是客服吗".
_SMALL_TALK = re.compile(
    r"^\s*(?:how(?:'s| is) it going|how are (?:you|things)(?: doing| today)?|"
    r"hope (?:you're|you are) (?:well|doing well|good)|"
    r"good to (?:reach|see|meet) you|nice to meet you|(?:anyone|anybody|someone) (?:there|here|around|online)|"
    r"(?:请问)?(?:这里|这边|你们)?是(?:客服|售后|人工)吗|(?:这边|这里)?有人(?:在|吗|在吗|值班))"
)
# A request or question after which thanks can be set aside ("…帮我查下物流，谢谢"), unlike praise
# followed by thanks ("你们效率真高，谢谢啦"), which is thanks.
_REQUEST = re.compile(
    r"[吗么呢?？]|帮|请|麻烦|能不能|可以|怎么|什么|多久|哪|几|想|要|查|退|换|改|取消|"
    r"\b(?:how|what|when|where|why|which|can|could|would|will|is|are|does|do|please|pls|need|want|i'd)\b"
)
_URL = re.compile(r"(?:https?://|www\.)[!-~]+")


def _is_request(rest: str) -> bool:
    """Enough left to be a request of its own: four Chinese characters or three words, not small talk."""
    enough = len(_HAN.findall(rest)) >= 4 or len(_WORD.findall(rest)) >= 3
    return enough and not _SMALL_TALK.match(rest)


def blank_links(text: str) -> str:
    """Links replaced by spaces: a product page's address says nothing about the question."""
    return _URL.sub(lambda m: " " * len(m.group(0)), text)


def courtesy_span(text: str) -> tuple[int, int]:
    """(start, end) of the request once a leading greeting and trailing thanks are set aside.

    Only when what remains is a request of its own: "你好" and "好的谢谢" stay as they are.
    """
    lowered = text.lower()
    start, end = 0, len(text)
    opener = _OPENER.match(lowered)
    if opener and _is_request(lowered[opener.end() :]):
        start = opener.end()
    closer = _CLOSER.search(lowered, start)
    if closer and closer.start() > start:
        rest = lowered[start : closer.start()]
        if _is_request(rest) and _REQUEST.search(rest):
            end = closer.start()
    return start, end


def blank_courtesy(text: str) -> str:
    """The text with its leading greeting and trailing thanks replaced by spaces (offsets unchanged)."""
    start, end = courtesy_span(text)
    return " " * start + text[start:end] + " " * (len(text) - end)


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=False)
class CourtesyStripper(ScriptNormalizer):
    """Folds full-width ASCII, blanks links and the greeting and thanks around a request, to classify the request.

    "在吗 亲 发票开错了能重开吗" is then classified as "发票开错了能重开吗". The characters are replaced by
    spaces, not removed, so entity offsets stay valid; put it after the SentimentScorer, which should
    still see the whole message as it was written. Training examples are rewritten the same way.
    """

    @staticmethod
    def rewrite(text: str) -> str:
        """Half-width, links blanked, courtesy around a request blanked; same length."""
        return blank_courtesy(blank_links(to_half_width(text)))
