"""The Telegram channel end to end in polling mode: fake Bot API → aiogram → router → Rasa → back."""

from __future__ import annotations

import itertools
import time
from typing import Any

import pytest

from bot.crm.repository import CRM
from tests.connectors.telegram.conftest import TelegramStack, new_user
from tests.fakes.telegram_api import parse_html, utf16_len, wait_for

pytestmark = pytest.mark.stack


def inline_buttons(message: dict[str, Any]) -> list[tuple[str, str]]:
    """(text, callback_data) of a sent message's inline keyboard."""
    markup = message.get("sent_markup") or {}
    return [(b["text"], b["callback_data"]) for row in markup.get("inline_keyboard", []) for b in row]


def test_polling_starts_with_the_webhook_removed_and_every_update_type_asked_for(tg: TelegramStack) -> None:
    wait_for(lambda: tg.api.calls("getUpdates"), 30, "the first getUpdates")
    assert tg.api.calls("deleteWebhook"), "a leftover webhook would make getUpdates fail with 409"
    assert tg.api.calls("getMe")
    allowed = tg.api.calls("getUpdates")[-1].params["allowed_updates"]
    assert {"message", "edited_message", "callback_query", "my_chat_member"} <= set(allowed)
    assert all(c.params.get("timeout") for c in tg.api.calls("getUpdates")), "long polling"


@pytest.mark.parametrize(
    ("language", "greeting", "contact_button"),
    [
        ("en", "Hello! I'm the shop's virtual assistant", "📱 Share my phone number"),
        ("zh-hans", "您好！我是智能客服小安", "📱 分享我的手机号"),
        ("zh-hant", "您好！我是智慧客服小安", "📱 分享我的手機號碼"),
        ("de", "Hello! I'm the shop's virtual assistant", "📱 Share my phone number"),
    ],
)
def test_start_greets_in_the_language_of_the_telegram_app(
    tg: TelegramStack, language: str, greeting: str, contact_button: str
) -> None:
    user = new_user(language)
    greet, prompt = tg.say(user, "/start", replies=2)
    assert greet["text"].startswith(greeting)
    assert greet["parse_mode"] == "HTML"
    assert [data for _, data in inline_buttons(greet)] == ["/order_status", "/request_human"]
    keyboard = prompt["sent_markup"]["keyboard"]
    assert keyboard == [[{"text": contact_button, "request_contact": True}]]
    assert prompt["sent_markup"]["one_time_keyboard"] is True
    assert tg.transcript(user.id)[0]["text"] == "/start"


def test_order_question_is_answered_with_the_tracking_number_in_html(tg: TelegramStack) -> None:
    user = new_user()
    # An unlinked Telegram user is a guest: the second factor first (tests/bot/access).
    [asked] = tg.say(user, "DD202405001 到哪了")
    assert "后 4 位" in asked["text"]
    [reply] = tg.say(user, "8001")
    tracking = tg.stack.tracking_number("DD202405001")
    assert reply["parse_mode"] == "HTML"
    assert "<b>DD202405001</b>" in reply["raw"]
    assert f"<code>{tracking}</code>" in reply["raw"]
    assert tracking in reply["text"]
    assert "运单号" in reply["text"]
    # "typing…" was shown while the engine worked.
    actions = [c for c in tg.api.calls("sendChatAction") if int(c.params["chat_id"]) == user.id]
    assert actions
    assert actions[0].params["action"] == "typing"
    transcript = [e for e in tg.transcript(user.id) if e["role"] != "note"]  # the agents' note of the proof
    assert [e["role"] for e in transcript] == ["customer", "bot", "customer", "bot"]
    assert [transcript[1]["template"], transcript[3]["template"]] == ["utter_verify_order", "utter_order_status"]


def test_a_pressed_button_is_answered_and_sends_its_payload(tg: TelegramStack) -> None:
    user = new_user()
    [greeting] = tg.say(user, "你好")
    title, data = inline_buttons(greeting)[0]
    assert (title, data) == ("查询订单", "/order_status")
    before = len(tg.api.sent(user.id))
    update = tg.api.press(user, greeting, data)
    tg.api.push(update)
    [asked] = tg.api.wait_sent(user.id, before + 1)[before:]
    assert "订单号" in asked["text"]
    answered = [c for c in tg.api.calls("answerCallbackQuery") if c.status == 200]
    assert update["callback_query"]["id"] in {c.params["callback_query_id"] for c in answered}
    # The transcript shows what the customer pressed, not the payload.
    assert tg.transcript(user.id)[2]["text"] == "查询订单"
    # The order id then completes the question, once the guest proves the order is theirs.
    [verify] = tg.say(user, "DD202405001")
    assert "后 4 位" in verify["text"]
    [answer] = tg.say(user, "8001")
    assert tg.stack.tracking_number("DD202405001") in answer["text"]


def test_handoff_after_human_agent_answers_reach_the_chat_and_the_bot_comes_back(tg: TelegramStack) -> None:
    user = new_user()
    [ack] = tg.say(user, "/human")
    assert "人工客服" in ack["text"]
    conv_id = tg.conversation_id(user.id)
    queue = tg.stack.agent("GET", "/queue").json()
    entry = next(e for e in queue if e["conversation_id"] == conv_id)
    assert entry["reason"] == "requested"

    # While waiting, the customer's messages go to the agent, not to the engine.
    before = len(tg.api.sent(user.id))
    tg.api.push(tg.api.text(user, "在吗？我的耳机坏了"))
    wait_for(lambda: any(e["text"] == "在吗？我的耳机坏了" for e in tg.transcript(user.id)), 30, "the message")
    time.sleep(1)
    assert len(tg.api.sent(user.id)) == before

    answer = tg.stack.agent(
        "POST", f"/conversations/{conv_id}/messages", by="小李", text="您好，我是小李 <客服> & 售后"
    )
    assert answer.status_code == 200, answer.text
    joined, message = tg.api.wait_sent(user.id, before + 2)[before:]
    assert "人工客服 <b>小李</b> 已接入" in joined["raw"]
    assert message["text"] == "👤 小李\n您好，我是小李 <客服> & 售后"
    assert "&lt;客服&gt; &amp; 售后" in message["raw"]

    back = tg.stack.agent("POST", f"/conversations/{conv_id}/handback")
    assert back.json()["mode"] == "bot"
    [notice] = tg.api.wait_sent(user.id, before + 3)[before + 2 :]
    assert "智能助手" in notice["text"]
    # The notice asks for a score with five buttons; pressing one is thanked, not sent to the assistant.
    assert "<b>小李</b>" in notice["raw"]
    buttons = inline_buttons(notice)
    assert [data for _, data in buttons] == ["5", "4", "3", "2", "1"]
    assert buttons[1][0] == "4 满意"
    tg.api.push(tg.api.press(user, notice, "4"))
    [thanks] = tg.api.wait_sent(user.id, before + 4)[before + 3 :]
    assert "4</b> 分" in thanks["raw"]
    assert tg.transcript(user.id)[-1]["template"] == "utter_csat_thanks"
    [again] = tg.say(user, "DD202405001 到哪了")
    assert "后 4 位" in again["text"]  # the assistant answers again (a guest: the second factor first)


def test_a_long_agent_answer_is_split_into_valid_messages(tg: TelegramStack) -> None:
    user = new_user()
    tg.say(user, "转人工")
    conv_id = tg.conversation_id(user.id)
    paragraph = "您的售后申请我们已经收到 <请保留包装> & 发票。" * 40
    text = "\n\n".join([paragraph] * 6)  # about 7000 characters, 9000 once escaped
    before = len(tg.api.sent(user.id))
    assert tg.stack.agent("POST", f"/conversations/{conv_id}/messages", by="小李", text=text).status_code == 200
    # The agent API answers once everything is delivered: the "agent joined" notice, then the parts.
    parts = tg.api.sent(user.id)[before + 1 :]
    assert len(parts) == 3
    for part in parts:
        assert utf16_len(part["text"]) <= 4096
        assert parse_html(part["raw"]) == part["text"]
        assert part["text"].endswith("发票。"), "cut between paragraphs"
    assert parts[0]["raw"].startswith("👤 <b>小李</b>\n")
    assert "\n\n".join(p["text"] for p in parts) == "👤 小李\n" + text


def test_flood_control_429_is_waited_out_and_the_reply_arrives(tg: TelegramStack) -> None:
    user = new_user()
    tg.api.fail_next("sendMessage", 429, retry_after=2)
    [reply] = tg.say(user, "DD202405001 到哪了")
    assert "DD202405001" in reply["text"] and "后 4 位" in reply["text"]
    attempts = [c for c in tg.api.calls("sendMessage") if int(c.params["chat_id"]) == user.id]
    assert [c.status for c in attempts] == [429, 200]
    assert attempts[1].at - attempts[0].at >= 2.0
    assert len(tg.api.sent(user.id)) == 1


def test_server_errors_and_dropped_connections_are_retried_with_backoff(tg: TelegramStack) -> None:
    user = new_user()
    tg.api.fail_next("sendMessage", 502, times=2)
    tg.api.fail_next("sendMessage", 0)
    [reply] = tg.say(user, "DD202405001 到哪了")
    assert "DD202405001" in reply["text"]
    attempts = [c for c in tg.api.calls("sendMessage") if int(c.params["chat_id"]) == user.id]
    assert [c.status for c in attempts] == [502, 502, 0, 200]
    gaps = [b.at - a.at for a, b in itertools.pairwise(attempts)]
    assert gaps[1] > gaps[0] * 1.2, f"the backoff grows: {gaps}"


def test_a_customer_who_blocked_the_bot_is_recorded_without_a_retry_loop(tg: TelegramStack) -> None:
    user, other = new_user(), new_user()
    tg.say(user, "你好")
    # The customer blocks the bot while it works on their question: the reply gets 403.
    tg.api.block(user.id)
    tg.api.push(tg.api.text(user, "DD202405001 到哪了"))
    blocked_note = "Telegram: the customer has blocked the bot."
    wait_for(lambda: blocked_note in [e["text"] for e in tg.transcript(user.id)], 30, "the blocked note")
    # Another customer is served as usual: the poller is alive.
    tg.say(other, "DD202405001 到哪了")
    failed = [c.status for c in tg.api.calls("sendMessage") if int(c.params["chat_id"]) == user.id and c.status != 200]
    assert failed == [403], "403 is final: no retries"
    assert tg.blocked_flag(user.id)

    # Telegram reports the block too; it is recorded once, and agents' answers are not attempted.
    tg.api.push(tg.api.membership(user, "kicked"))
    conv_id = tg.conversation_id(user.id)
    calls_before = len(tg.api.calls("sendMessage"))
    assert tg.stack.agent("POST", f"/conversations/{conv_id}/take", by="小李").status_code == 200
    assert tg.stack.agent("POST", f"/conversations/{conv_id}/messages", by="小李", text="还在吗？").status_code == 200
    assert not [c for c in tg.api.calls("sendMessage")[calls_before:] if int(c.params["chat_id"]) == user.id]
    texts = [e["text"] for e in tg.transcript(user.id)]
    assert texts.count(blocked_note) == 1
    assert texts.count("Telegram: not delivered, the customer has blocked the bot.") == 2  # notice + answer

    # Unblocked: messages flow again.
    tg.api.push(tg.api.membership(user, "member"))
    wait_for(lambda: not tg.blocked_flag(user.id), 30, "the block to be lifted")
    tg.stack.agent("POST", f"/conversations/{conv_id}/handback")
    assert "智能助手" in tg.api.sent(user.id)[-1]["text"]


def test_each_update_is_processed_once(tg: TelegramStack) -> None:
    user = new_user()
    update_id = tg.api.push(tg.api.text(user, "DD202405001 到哪了"), copies=2)  # delivered twice
    tg.api.wait_sent(user.id, 1)
    tg.say(user, "谢谢")  # handled after the copy: one chat's updates are processed in order
    assert tg.api.handed_out(update_id) >= 2
    assert len(tg.api.sent(user.id)) == 2
    customer_lines = [e["text"] for e in tg.transcript(user.id) if e["role"] == "customer"]
    assert customer_lines == ["DD202405001 到哪了", "谢谢"]


@pytest.mark.parametrize(
    ("build", "kind_word", "label"),
    [
        (lambda api, u: api.photo(u), "图片", "📷 photo 1280×960"),
        (lambda api, u: api.sticker(u), "贴纸", "🙂 sticker 👍"),
        (lambda api, u: api.voice(u), "语音", "🎤 voice message 0:07"),
        (lambda api, u: api.document(u), "文件", "📄 document invoice.pdf (85 KB)"),
        (lambda api, u: api.location(u), "位置", "📍 location 31.23040, 121.47370"),
    ],
)
def test_media_is_acknowledged_politely_and_recorded(tg: TelegramStack, build: Any, kind_word: str, label: str) -> None:
    user = new_user()
    tg.api.push(build(tg.api, user))
    [ack] = tg.api.wait_sent(user.id, 1)
    assert kind_word in ack["text"]
    assert "文字" in ack["text"]
    assert parse_html(ack["raw"]) == ack["text"]
    transcript = tg.transcript(user.id)
    assert [(e["role"], e["text"]) for e in transcript][:1] == [("customer", label)]
    assert transcript[1]["template"] == "utter_telegram_media"


def test_a_photo_with_a_caption_gets_the_caption_answered(tg: TelegramStack) -> None:
    user = new_user()
    tg.api.push(tg.api.photo(user, caption="DD202405001 到哪了"))
    [reply] = tg.api.wait_sent(user.id, 1)
    assert "DD202405001" in reply["text"] and "后 4 位" in reply["text"]  # the caption's question, from a guest
    assert tg.transcript(user.id)[0]["text"] == "📷 photo 1280×960: DD202405001 到哪了"


def test_an_edited_message_is_answered_again_and_live_location_edits_are_ignored(tg: TelegramStack) -> None:
    user = new_user()
    update = tg.api.text(user, "DD202405099 到哪了")
    tg.api.push(update)
    [first] = tg.api.wait_sent(user.id, 1)
    assert "没有找到订单 DD202405099" in first["text"]
    message_id = update["message"]["message_id"]
    tg.api.push(tg.api.edited(user, message_id, text="DD202405001 到哪了"))
    tg.api.push(tg.api.edited(user, message_id + 1, location={"latitude": 31.2, "longitude": 121.4}))
    [second] = tg.api.wait_sent(user.id, 2)[1:]
    assert "DD202405001" in second["text"] and "后 4 位" in second["text"]  # the edited question, from a guest
    tg.say(user, "谢谢")
    assert len(tg.api.sent(user.id)) == 3
    assert "✏️ DD202405001 到哪了" in [e["text"] for e in tg.transcript(user.id)]


def test_sharing_the_own_phone_number_links_the_customer(tg: TelegramStack) -> None:
    user = new_user()
    [prompt] = tg.say(user, "/link")
    assert prompt["sent_markup"]["keyboard"][0][0]["request_contact"] is True

    # Someone else's contact card is refused.
    [refused] = tg.say_update(user, tg.api.contact(user, "8613800138001", contact_user_id=user.id + 1))
    assert "本人" in refused["text"]
    # An unknown number is not linked.
    [unknown] = tg.say_update(user, tg.api.contact(user, "8613999999999", contact_user_id=user.id))
    assert "没有找到" in unknown["text"]
    # The customer's own number, as Telegram sends it (country code, no plus), links C202405001.
    [linked] = tg.say_update(user, tg.api.contact(user, "8613800138001", contact_user_id=user.id))
    assert "王先生" in linked["text"]
    assert linked["sent_markup"] == {"remove_keyboard": True}
    crm = CRM.from_url(f"sqlite:///{tg.stack.var_dir / 'crm.sqlite3'}")
    try:
        customer = crm.find_customer_by_telegram(user.id)
    finally:
        crm.close()
    assert customer is not None
    assert customer.id == "C202405001"
    assert "📱 shared phone number 138****8001" in [e["text"] for e in tg.transcript(user.id)]
    # Linked: another customer's order is not disclosed any more.
    [other] = tg.say(user, "DD202405002 到哪了")
    assert "不在您的账户下" in other["text"]


def test_group_chats_are_ignored(tg: TelegramStack) -> None:
    user = new_user()
    tg.api.push(tg.api.group_text(user, "DD202405001 到哪了"))
    wait_for(lambda: tg.api.pending_updates() == 0, 30, "the update to be confirmed")
    tg.say(user, "你好")
    assert tg.api.sent(-user.id) == []
