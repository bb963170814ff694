"""A hand-written lexicon of customer-service anger and distress, simplified Chinese and English.

Weights are evidence that a human should take over; traditional Chinese is folded to simplified
before scoring. Kept free of Rasa imports so the scorer can be tested on its own.
"""

from __future__ import annotations

import math
import re

# Strong signals: insults, threats to escalate, fury.
STRONG: dict[str, float] = {
    "垃圾": 1.6,
    "骗子": 1.8,
    "骗人": 1.5,
    "坑人": 1.5,
    "坑爹": 1.4,
    "黑心": 1.6,
    "无良": 1.6,
    "奸商": 1.8,
    "恶心": 1.3,
    "废物": 1.7,
    "滚": 1.2,
    "去死": 2.0,
    "妈的": 1.8,
    "他妈": 1.8,
    "tmd": 1.8,
    "靠": 0.6,
    "气死": 1.6,
    "气炸": 1.8,
    "火大": 1.5,
    "愤怒": 1.5,
    "忍无可忍": 2.0,
    "受够": 1.7,
    "崩溃": 1.3,
    "投诉": 1.0,
    "12315": 1.8,
    "消协": 1.8,
    "工商局": 1.6,
    "曝光": 1.6,
    "律师": 1.4,
    "起诉": 1.7,
    "报警": 1.6,
    "媒体": 1.0,
    "差评": 1.2,
    "退钱": 1.0,
    "骗钱": 1.8,
    "欺诈": 1.8,
    "诈骗": 1.8,
    "太离谱": 1.6,
    "离谱": 1.1,
    "太过分": 1.6,
    "过分": 1.0,
    "无语": 1.0,
    "呵呵": 1.0,
    "什么破": 1.5,
    "破玩意": 1.6,
    "烂透": 1.8,
    "太烂": 1.5,
    "最差": 1.5,
    "太差": 1.3,
    "失望透顶": 1.8,
    "太失望": 1.5,
    "再也不": 1.3,
    "永远不会再": 1.5,
    "态度恶劣": 1.8,
    "态度极差": 1.8,
    "敷衍": 1.3,
    "踢皮球": 1.5,
    "不负责任": 1.5,
    "不要脸": 1.8,
    "欺负": 1.3,
    "耍我": 1.6,
    "当我傻": 1.6,
    "糊弄": 1.4,
    "scam": 1.8,
    "scammer": 1.8,
    "fraud": 1.8,
    "rip-off": 1.6,
    "ripoff": 1.6,
    "garbage": 1.5,
    "rubbish": 1.3,
    "useless": 1.4,
    "pathetic": 1.6,
    "ridiculous": 1.3,
    "unacceptable": 1.5,
    "disgusting": 1.6,
    "disgrace": 1.6,
    "worst": 1.5,
    "terrible": 1.2,
    "horrible": 1.3,
    "awful": 1.2,
    "furious": 1.8,
    "livid": 1.8,
    "outraged": 1.8,
    "fed up": 1.6,
    "sick of": 1.5,
    "had enough": 1.6,
    "lawyer": 1.4,
    "sue": 1.5,
    "chargeback": 1.3,
    "dispute": 0.7,
    "report you": 1.6,
    "bbb": 1.4,
    "never again": 1.4,
    "never buy": 1.4,
    "joke": 0.8,
    "incompetent": 1.6,
    "liar": 1.7,
    "lying": 1.3,
    "lied": 1.3,
    "wtf": 1.7,
    "damn": 1.1,
    "hell": 0.8,
    "crap": 1.4,
    "shit": 1.8,
    "stupid": 1.3,
    "idiot": 1.7,
    "nonsense": 1.1,
    "angry": 1.3,
    "upset": 0.9,
    "frustrated": 1.1,
    "frustrating": 1.1,
    "disappointed": 0.9,
    "waste of": 1.2,
    "shameful": 1.5,
    "shame on": 1.6,
    "rude": 1.3,
}
# Mild signals: impatience, repetition, a problem that drags on.
MILD: dict[str, float] = {
    "到底": 0.7,
    "究竟": 0.6,
    "怎么回事": 0.5,
    "还要等多久": 0.8,
    "等了": 0.35,
    "一直": 0.3,
    "每次": 0.4,
    "又": 0.2,
    "还是没": 0.4,
    "都没人": 0.8,
    "没人管": 0.9,
    "没人理": 0.9,
    "管不管": 0.9,
    "有没有人": 0.6,
    "不满": 0.8,
    "不满意": 0.9,
    "生气": 1.0,
    "郁闷": 0.6,
    "烦": 0.6,
    "糟糕": 0.8,
    "差劲": 1.0,
    "太慢": 0.7,
    "慢死": 1.1,
    "急死": 1.0,
    "着急": 0.4,
    "赶紧": 0.5,
    "马上给我": 0.9,
    "给个说法": 1.0,
    "说法": 0.3,
    "凭什么": 0.9,
    "搞什么": 1.0,
    "搞什么鬼": 1.4,
    "什么鬼": 1.1,
    "服了": 0.8,
    "真是好": 0.6,
    "好服务": 0.4,
    "still": 0.3,
    "again": 0.25,
    "weeks": 0.4,
    "ever": 0.2,
    "nobody": 0.6,
    "no one": 0.6,
    "ignored": 0.9,
    "ignore": 0.6,
    "seriously": 0.6,
    "what the": 0.8,
    "how many times": 1.0,
    "demand": 0.8,
    "immediately": 0.5,
    "right now": 0.5,
    "poor": 0.6,
    "bad": 0.5,
    "annoyed": 0.9,
    "annoying": 0.9,
    "unhappy": 0.8,
    "not happy": 0.9,
    "complain": 0.7,
    "complaint": 0.6,
    "refund me": 0.6,
    "great service": 0.5,
}
INTENSIFIERS = (
    "太",
    "非常",
    "特别",
    "极其",
    "真的",
    "简直",
    "实在",
    "so ",
    "very ",
    "really ",
    "extremely ",
    "absolutely ",
)
NEGATORS = ("不", "没", "别", "无", "not ", "no ", "never ", "n't ")
# Phrases that look negative but are not ("no problem", "没问题").
DEFUSERS = ("没问题", "不客气", "没关系", "不错", "不用", "no problem", "no worries", "not bad", "no rush")

_EXCLAIM = re.compile(r"[!！]")
_QUESTION_EXCLAIM = re.compile(r"[?？][!！]|[!！][?？]")
_CAPS_WORD = re.compile(r"\b[A-Z]{3,}\b")


def _hits(text: str, lexicon: dict[str, float]) -> list[tuple[str, float, int]]:
    found = []
    for word, weight in lexicon.items():
        start = text.find(word)
        while start != -1:
            found.append((word, weight, start))
            start = text.find(word, start + len(word))
    return found


def evidence(text: str) -> float:
    """Summed evidence of anger in a (simplified-script) message."""
    lowered = " " + text.lower() + " "
    for phrase in DEFUSERS:
        lowered = lowered.replace(phrase, " ")
    total = 0.0
    for _word, weight, start in _hits(lowered, STRONG) + _hits(lowered, MILD):
        before = lowered[max(0, start - 3) : start]
        if any(before.endswith(n) for n in NEGATORS) and weight < 1.2:
            continue  # "不过分", "not bad": a negated mild word is not a complaint
        boost = 1.3 if any(lowered[max(0, start - 6) : start].endswith(i) for i in INTENSIFIERS) else 1.0
        total += weight * boost
    exclaims = len(_EXCLAIM.findall(text))
    total += min(exclaims, 6) * 0.22
    total += 0.5 * len(_QUESTION_EXCLAIM.findall(text))
    total += 0.35 * min(len(_CAPS_WORD.findall(text)), 3)
    return total


def score(text: str) -> float:
    """Anger score in [0, 1): 1 - exp(-evidence)."""
    return 1.0 - math.exp(-evidence(text))


_QUESTION = re.compile(r"[?？]")
# Addressing the shop head-on ("你们是不是…", "you people"): angry messages do, calm reports mostly describe.
_SECOND_PERSON = re.compile(r"你们|你哋|you people|you guys|\byour?\b")


def style_cues(text: str) -> list[float]:
    """Topic-free cues of how a (simplified-script) message is said, each in [0, 1].

    Question marks, exclamation marks, addressing the shop, a question put to the shop (rhetorical
    questions: "你们仓库是干什么吃的？"), and length. Calm and angry reports of the same problem share
    their topic words; these cues differ between them.
    """
    lowered = text.lower()
    questions = len(_QUESTION.findall(text))
    second = len(_SECOND_PERSON.findall(lowered))
    return [
        min(questions, 3) / 3.0,
        min(len(_EXCLAIM.findall(text)), 3) / 3.0,
        min(second, 3) / 3.0,
        1.0 if questions and second else 0.0,
        min(len(text), 120) / 120.0,
    ]
