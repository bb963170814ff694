"""Script normalisation and the anger score."""

from __future__ import annotations

from pathlib import Path

from ar_engine.normalizer import to_simplified_same_length
from ar_engine.sentiment_lexicon import score, style_cues


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


def test_style_cues_tell_a_question_put_to_the_shop_from_a_report() -> None:
    report = style_cues("箱子压坏了，里面东西没事")
    rhetorical = style_cues("你们仓库是干什么吃的？？")
    assert len(report) == len(rhetorical) == 5
    assert all(0.0 <= v <= 1.0 for v in report + rhetorical)
    assert report[:4] == [0.0, 0.0, 0.0, 0.0] and rhetorical[3] == 1.0
    assert style_cues("Do you people test anything?")[3] == 1.0
    assert style_cues("x" * 500)[4] == 1.0


def test_policy_uses_the_pipeline_score_when_present_and_the_lexicon_otherwise() -> None:
    from rasa.shared.core.events import UserUttered

    from ar_engine.policy import sentiment_of

    parse_data = {"intent": {"name": "complaint_service"}, "sentiment": {"score": 0.1}}
    scored = UserUttered("你们这些骗子", parse_data=parse_data)
    assert sentiment_of(scored) == 0.1  # the trained scorer's value wins
    unscored_angry = UserUttered("還是沒解決，氣死我了，你們這些騙子！", intent={"name": "followup_unresolved"})
    assert sentiment_of(unscored_angry) > 0.9  # traditional text folded, then the lexicon
    unscored_calm = UserUttered("請問我的訂單到哪了", intent={"name": "order_status"})
    assert sentiment_of(unscored_calm) < 0.2
    assert sentiment_of(UserUttered(None, intent={"name": "greet"})) == 0.0


def test_entities_are_scored_on_the_customers_own_words() -> None:
    from ar_engine.evaluate import surface

    text = "智慧手錶S3防水嗎"
    # The extractor saw the folded text and reports its value in simplified script; the span is what was written.
    assert surface(text, {"entity": "product", "value": "智慧手表S3", "start": 0, "end": 6}) == "智慧手錶s3"
    assert surface("where is dd202405001", {"entity": "order_id", "value": "DD202405001"}) == "dd202405001"


def test_courtesy_around_a_request_is_blanked_with_offsets_kept() -> None:
    from ar_engine.normalizer import blank_courtesy, to_half_width

    text = "在吗 亲 发票开错了能重开吗"
    blanked = blank_courtesy(text)
    assert blanked.strip() == "发票开错了能重开吗"
    assert len(blanked) == len(text) and blanked.index("发票") == text.index("发票")
    assert blank_courtesy("hi there, i need to return these shoes").strip() == "i need to return these shoes"
    assert blank_courtesy("麻烦帮我查下物流单号DD202405001，谢谢亲").strip() == "麻烦帮我查下物流单号DD202405001"
    assert blank_courtesy("good morning, where is my parcel? thanks a lot").strip() == "where is my parcel"
    # Nothing but courtesy, or too little left to be a request: the message stays as written.
    for kept in (
        "你好",
        "你好，在吗",
        "好的谢谢亲",
        "hi",
        "thanks so much",
        "不用了谢谢",
        "hey, u there?",
        "亲自来取可以吗",
    ):
        assert blank_courtesy(kept) == kept
    assert to_half_width("订单号：ＤＤ２０２４０５００８　ｈｉ") == "订单号:DD202405008 hi"


def test_small_talk_praise_and_links() -> None:
    from ar_engine.normalizer import blank_courtesy, blank_links

    for kept in ("hey, how's it going", "您好，这里是客服吗", "你们效率真高，谢谢啦", "that's brilliant, thank you"):
        assert blank_courtesy(kept) == kept
    text = "https://item.jd.com/100023456.html 这个还有货吗"
    assert blank_links(text).strip() == "这个还有货吗" and len(blank_links(text)) == len(text)
    assert (
        blank_links("链接https://m.tb.cn/h.abc这个有白色吗")
        == "链接" + " " * len("https://m.tb.cn/h.abc") + "这个有白色吗"
    )


def test_handoff_counts_report_calm_messages_handed_off() -> None:
    from ar_engine.evaluate import handoff_counts
    from ar_engine.sentiment_cv import summary

    labels = [True, True, False, False, False, False]
    counts = handoff_counts(labels, [True, False, True, False, False, False])
    assert (counts["negative"], counts["other"], counts["false_handoffs"]) == (2, 4, 1)
    assert (counts["precision"], counts["recall"], counts["false_handoff"]) == (0.5, 0.5, 0.25)
    by_file = summary(labels, [0.9, 0.3, 0.6, 0.1, 0.2, 0.52], ["a", "a", "b", "b", "b", "b"])
    assert by_file["0.5"]["b"]["false_handoffs"] == 2 and by_file["0.55"]["b"]["false_handoffs"] == 1
    assert by_file["0.5"]["all"]["recall"] == 0.5


def test_long_numbers_are_cut_before_the_sentiment_scorer_reads_them() -> None:
    from ar_engine.sentiment import without_numbers

    assert without_numbers("DD202405001 到哪了") == "0 到哪了"
    assert without_numbers("DD" + "9" * 500) == "0"
    assert without_numbers("手机13800138000，单号SF1234567890123") == "手机0，单号0"
    # Short numbers stay: "等了15天", "3 次" say how long and how often.
    assert without_numbers("等了15天，问了3次") == "等了15天，问了3次"


def test_ordinary_nlu_examples_are_learnt_as_calm_but_none_with_an_angry_word() -> None:
    from ar_engine.sentiment import calm_examples

    examples = [
        ("我的快递到哪了", "order_status"),
        ("我的快递到哪了", "order_status"),  # once
        ("你们这群骗子，快递到底到哪了", "order_status"),  # a word of the anger lexicon: not calm
        ("東西壞了，垃圾", "return_exchange"),  # traditional folded before the lexicon reads it
        ("我要投诉你们的客服", "complaint_service"),  # not an ordinary intent
        ("   ", "greet"),
        ("where is my parcel", "order_status"),
    ]
    assert calm_examples(examples, ["order_status", "return_exchange", "greet"]) == [
        "我的快递到哪了",
        "where is my parcel",
    ]
    assert calm_examples(examples, []) == []


def test_calm_examples_weigh_what_they_are_given() -> None:
    from ar_engine.sentiment import SentimentModel

    angry = ["你们太过分了，骗子", "气死我了，垃圾服务", "what a scam, I am furious", "滚，什么破店"] * 3
    calm = ["我的快递到哪了", "请问可以开发票吗", "where is my order", "谢谢你"] * 3
    ordinary = ["你们家的东西我买过三次了"] * 6
    texts, labels = angry + calm, [True] * len(angry) + [False] * len(calm)
    heavy = SentimentModel().fit(texts, labels, ordinary, calm_weight=1.0)
    light = SentimentModel().fit(texts, labels, ordinary, calm_weight=0.01)
    probe = ["你们家的东西我买过三次了"]
    assert heavy.predict(probe)[0] < light.predict(probe)[0]


def test_positive_reviews_are_a_fixed_sample_of_praise_of_goods_of_chat_length(tmp_path: Path) -> None:
    from ar_engine.evaluate import positive_reviews

    rows = ["cat,label,review", "水果,1,\ufeff苹果很甜！！下次还买", "水果,0,烂了一半", "酒店,1,房间干净", "衣服,1,好"]
    rows += [f"手机,1,{'很好' * 150}", "手机,1,物流  超快\t好评"]
    path = tmp_path / "reviews.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    found = positive_reviews(path)
    # Positive only, goods only (no hotels), 4 to 200 characters, blanks and byte-order marks dropped.
    assert sorted(found) == ["物流 超快 好评", "苹果很甜！！下次还买"]
    assert positive_reviews(path) == found
    assert len(positive_reviews(path, n=1)) == 1


def test_calm_sets_count_anger_hand_offs_and_happy_messages_read_as_complaints() -> None:
    import asyncio

    from ar_engine.evaluate import evaluate_calm

    parses = {
        "东西很好，下次还来": {"intent": {"name": "complaint_product"}, "sentiment": {"score": 0.1}},
        "太棒了！！！": {"intent": {"name": "thank"}, "sentiment": {"score": 0.7}},
        "我要找人工": {"intent": {"name": "request_human"}, "sentiment": {"score": 0.2}},
        "谢谢": {"intent": {"name": "thank"}},
    }

    class Agent:
        async def parse_message(self, text: str) -> dict:
            return parses[text]

    found = asyncio.run(evaluate_calm(Agent(), list(parses), 0.5))
    assert (found["handed_off"], found["share"]) == (1, 0.25)
    assert found["highest"] == [{"score": 0.7, "text": "太棒了！！！"}]
    assert (found["complaints"], found["complaint_share"]) == (2, 0.5)
    assert [c["intent"] for c in found["complaint_examples"]] == ["complaint_product", "request_human"]
