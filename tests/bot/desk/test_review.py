"""The review list on real Redis, fed by the router with the stub engine; the reviewed examples file."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import yaml

from bot import keys
from bot.conversations.messages import InboundMessage
from bot.crm.repository import CRM
from bot.desk.review import Reason, ReviewQueue, Sighting, item_id
from bot.desk.reviewed import ReviewedExamples, domain_intents, read_examples, render
from bot.engine.contract import Prediction
from bot.errors import BadInput
from bot.masking import PHONE
from bot.settings import PROJECT_ROOT
from bot.web.container import Container
from tests.conftest import TextRedis, in_process
from tests.fakes.engine import StubEngine

INTENTS = domain_intents(PROJECT_ROOT / "domain.yml")


def sighting(text: str = "嗯那个东西", intent: str = "order_status", confidence: float = 0.3) -> Sighting:
    return Sighting(text, "zh-CN", "rest", intent, confidence, conversation_id="c1")


@pytest.fixture
def queue(redis: TextRedis, tmp_path: Path) -> ReviewQueue:
    return ReviewQueue(redis, ReviewedExamples(tmp_path / "reviewed.yml", INTENTS), max_items=10)


@pytest.fixture
def app(redis: TextRedis, crm: CRM, engine: StubEngine, tmp_path: Path) -> Container:
    return in_process(redis, crm, engine, review_file=tmp_path / "reviewed.yml", review_confidence_threshold=0.6)


async def say(app: Container, sender: str, text: str) -> None:
    msg = InboundMessage(channel="rest", thread_id=sender, sender=sender, text=text, idempotency_key=uuid.uuid4().hex)
    await app.router.handle(msg)


async def test_identical_masked_texts_are_one_entry_with_a_count(queue: ReviewQueue, redis: TextRedis) -> None:
    first = await queue.record(sighting(), Reason.LOW_CONFIDENCE, now=100.0)
    again = await queue.record(sighting(confidence=0.35), Reason.HANDOFF, now=200.0)
    assert first == again == item_id("嗯那个东西")
    [item] = (await queue.page()).items
    assert (item.count, item.first_at, item.last_at) == (2, 100.0, 200.0)
    assert item.reasons == (Reason.LOW_CONFIDENCE, Reason.HANDOFF)
    assert item.seen.confidence == 0.35
    # Key names carry digests, never the text; everything expires.
    names = await redis.keys("ar:review:*")
    assert all("嗯" not in n for n in names)
    assert names and all(ttl > 0 for ttl in [await redis.ttl(n) for n in names])


async def test_pages_newest_first_filtered_by_reason_and_capped(queue: ReviewQueue, redis: TextRedis) -> None:
    for n in range(14):
        await queue.record(sighting(f"问题{n}"), Reason.FALLBACK if n % 2 else Reason.LOW_CONFIDENCE, now=float(n))
    page = await queue.page(limit=4)
    assert page.total == 10  # the cap: the four seen longest ago are gone
    assert [i.seen.text for i in page.items] == ["问题13", "问题12", "问题11", "问题10"]
    assert page.next_offset == 4
    last = await queue.page(offset=8, limit=4)
    assert [i.seen.text for i in last.items] == ["问题5", "问题4"] and last.next_offset is None
    fallbacks = await queue.page(Reason.FALLBACK)
    assert [i.seen.text for i in fallbacks.items] == ["问题13", "问题11", "问题9", "问题7", "问题5"]
    assert not await redis.exists(keys.review_item(item_id("问题0")))
    # An entry whose hash expired leaves the indexes when a page meets it.
    await redis.delete(keys.review_item(item_id("问题13")))
    assert (await queue.page(Reason.FALLBACK)).total == 4


async def test_assigning_writes_the_example_and_decided_entries_stay_away(queue: ReviewQueue) -> None:
    found = await queue.record(sighting("嗯那个<ORDER_ID>呢"), Reason.FALLBACK)
    assert found is not None
    with pytest.raises(BadInput):
        await queue.assign(found, "nlu_fallback")
    await queue.assign(found, "order_status")
    assert (await queue.page()).total == 0
    assert read_examples(queue.examples.path) == {"order_status": ["嗯那个<ORDER_ID>呢"]}
    assert await queue.record(sighting("嗯那个<ORDER_ID>呢"), Reason.FALLBACK) is None  # decided lately
    other = await queue.record(sighting("随便"), Reason.LOW_CONFIDENCE)
    assert other is not None
    await queue.dismiss(other)
    assert (await queue.page()).total == 0
    assert queue.examples.counts() == {"order_status": 1}


async def test_the_reviewed_file_is_stable_merged_and_never_holds_raw_pii(tmp_path: Path) -> None:
    path = tmp_path / "reviewed.yml"
    examples = ReviewedExamples(path, INTENTS)
    assert examples.counts() == {}  # a missing file is an empty one
    assert await examples.add("order_status", "我的快递呢 13812345678")
    assert await examples.add("greet", "哈喽")
    assert not await examples.add("greet", "哈喽")
    # An admin's hand edit is kept: later additions merge with it.
    path.write_text(path.read_text().replace("    - 哈喽\n", "    - 哈喽\n    - 嗨喽\n"))
    assert await examples.add("greet", "hello there")
    data = yaml.safe_load(path.read_text())
    assert data["version"] == "3.1"
    assert [b["intent"] for b in data["nlu"]] == ["greet", "order_status"]
    assert data["nlu"][0]["examples"] == "- 哈喽\n- 嗨喽\n- hello there\n"
    assert data["nlu"][1]["examples"] == f"- 我的快递呢 {PHONE}\n"
    assert "13812345678" not in path.read_text()
    assert path.read_text() == render(read_examples(path))  # rewriting it changes nothing
    assert yaml.safe_load(render({}))["nlu"] == []


async def test_low_confidence_and_fallback_answers_land_masked(app: Container, engine: StubEngine) -> None:
    engine.understood["嗯那个 13812345678"] = Prediction("order_status", 0.45)
    engine.understood["abcdefg"] = Prediction("greet", 0.2, fallback=True)
    await say(app, "r1", "你好")  # confident: not listed
    await say(app, "r1", "嗯那个 13812345678")
    await say(app, "r2", "abcdefg")
    items = (await app.review.page()).items
    assert [(i.seen.text, i.seen.intent, i.reasons) for i in items] == [
        ("abcdefg", "greet", (Reason.FALLBACK,)),
        (f"嗯那个 {PHONE}", "order_status", (Reason.LOW_CONFIDENCE,)),
    ]
    assert items[1].seen.channel == "rest" and items[1].seen.locale == "zh-CN" and items[1].seen.conversation_id


async def test_a_follow_up_or_a_handoff_brings_in_the_message_before_it(app: Container, engine: StubEngine) -> None:
    engine.understood["还是没解决"] = Prediction("followup_unresolved", 0.97)
    await say(app, "f1", "我的东西坏了怎么办")
    await say(app, "f1", "还是没解决")
    await say(app, "f1", StubEngine.HANDOFF)
    [item] = (await app.review.page()).items
    assert item.seen.text == "我的东西坏了怎么办" and item.seen.intent == "inform"
    assert item.reasons == (Reason.FOLLOW_UP, Reason.HANDOFF)
    assert [i.seen.text for i in (await app.review.page(Reason.HANDOFF)).items] == ["我的东西坏了怎么办"]


async def test_the_list_can_be_switched_off(redis: TextRedis, crm: CRM, engine: StubEngine) -> None:
    off = in_process(redis, crm, engine, review_enabled=False)
    engine.understood["嗯"] = Prediction("greet", 0.1)
    await say(off, "o1", "嗯")
    assert (await off.review.page()).total == 0


async def test_a_message_with_two_reasons_is_counted_once(app: Container, engine: StubEngine) -> None:
    # Handed off (the stub hands "转人工" off) after being understood as a complaint with low confidence.
    engine.understood[StubEngine.HANDOFF] = Prediction("complaint_service", 0.3)
    await say(app, "t1", StubEngine.HANDOFF)
    [item] = (await app.review.page()).items
    assert (item.seen.text, item.count) == (StubEngine.HANDOFF, 1)
    assert item.reasons == (Reason.LOW_CONFIDENCE, Reason.HANDOFF)
