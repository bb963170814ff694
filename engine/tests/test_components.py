"""Script normalisation and the anger score."""

from __future__ import annotations

from ar_engine.normalizer import to_simplified_same_length
from ar_engine.sentiment_lexicon import score


def test_traditional_folds_to_simplified_with_the_same_length() -> None:
    text = "我的訂單DD202405001到哪裡了？還沒收到"
    folded = to_simplified_same_length(text)
    assert folded == "我的订单DD202405001到哪里了？还没收到"
    assert len(folded) == len(text)
    assert to_simplified_same_length("where is my order") == "where is my order"


def test_anger_scores_order_messages() -> None:
    calm = score("我的快递还没到，帮我查下")
    angry = score("等了两个星期还没到，你们到底管不管？！太气人了")
    furious = score("你们就是骗子，我要去12315投诉")
    assert calm < 0.3 < 0.75 < angry < furious
    assert score("没问题，谢谢") < 0.2
    assert score("This is the WORST service ever, I want my money back NOW!!") > 0.75
    assert score("where is my order") < 0.1
