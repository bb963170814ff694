"""The email channel end to end: dovecot → the app (reader, router, Rasa, templates) → outbox → aiosmtpd."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from redis import Redis as SyncRedis

from tests.connectors.email.conftest import MailStack
from tests.connectors.email.mails import SUPPORT, build, guest, new_id
from tests.connectors.email.servers import wait_until

pytestmark = pytest.mark.stack

WANG = "wang.wei@example.com"  # C202405001, owns DD202405001 (shipped by SF, tracking SF1234567890123)
LI = "li.na@example.com"  # C202405002
ZHANG = "zhang.min@example.com"  # C202405003
QUESTION = "您好，请问我的订单 DD202405001 到哪了？谢谢！"


def settle(seconds: float = 2.0) -> None:
    """Give a wrong second answer the time to show up before asserting there is none."""
    time.sleep(seconds)


async def test_gb2312_order_question_gets_one_threaded_answer_with_its_tracking_number(mail_stack: MailStack) -> None:
    question_id = new_id()
    raw = build(
        sender=WANG, sender_name="王伟", subject="订单查询", body=QUESTION, charset="gb2312", message_id=question_id
    )
    assert b'charset="gb2312"' in raw and "订单".encode("gb2312") not in raw  # base64 body, RFC 2047 subject
    await mail_stack.send(raw)
    answer = await asyncio.to_thread(mail_stack.wait_answer, question_id)
    await asyncio.to_thread(settle)
    assert len(mail_stack.answers(question_id)) == 1
    assert answer.rcpt_tos == [WANG]
    assert answer.mail_from == SUPPORT
    assert answer.header("From") == SUPPORT
    assert answer.header("To") == WANG
    assert answer.header("Subject") == "Re: 订单查询"
    assert answer.header("In-Reply-To") == f"<{question_id}>"
    assert answer.header("References") == f"<{question_id}>"
    assert answer.header("Auto-Submitted") == "auto-replied"
    reply_id = answer.header("Message-ID").strip("<>")
    assert reply_id and reply_id != question_id and reply_id.endswith("@shop.test")
    assert answer.header("Content-Language") == "zh-CN"
    text = answer.text()
    assert "SF1234567890123" in text
    assert "运单号" in text
    assert "王先生" in text  # the CRM customer behind the address, masked
    assert "SF1234567890123" in answer.html()
    outcome = mail_stack.outcome(question_id)
    assert outcome is not None and outcome["status"] == "answered"


async def test_the_same_question_as_a_vacation_auto_reply_gets_no_answer(mail_stack: MailStack) -> None:
    question_id = new_id()
    raw = build(
        sender=WANG,
        subject="自动回复: 订单查询",
        body=QUESTION,
        charset="gb2312",
        message_id=question_id,
        headers={"Auto-Submitted": "auto-replied"},
    )
    await mail_stack.send(raw)
    outcome = await asyncio.to_thread(mail_stack.wait_outcome, question_id)
    assert outcome["status"] == "suppressed"
    assert outcome["reason"] == "auto_submitted"
    await asyncio.to_thread(settle)
    assert mail_stack.answers(question_id) == []


async def test_our_own_answer_coming_back_is_not_answered(mail_stack: MailStack) -> None:
    question_id = new_id()
    await mail_stack.send(
        build(sender=guest(), subject="order", body="Where is my order DD202405009?", message_id=question_id)
    )
    answer = await asyncio.to_thread(mail_stack.wait_answer, question_id)
    # A forwarding rule (or a customer's auto-forward) puts our own answer back into the mailbox.
    await mail_stack.send(answer.raw)
    echoed = answer.header("Message-ID").strip("<>")
    outcome = await asyncio.to_thread(mail_stack.wait_outcome, echoed)
    assert outcome["status"] == "suppressed"
    await asyncio.to_thread(settle)
    assert mail_stack.answers(echoed) == []


async def test_english_and_traditional_chinese_mail_are_answered_in_their_language(mail_stack: MailStack) -> None:
    en_id, tw_id = new_id(), new_id()
    await mail_stack.send(
        build(
            sender=guest(), subject="Order question", body="Hi, where is my order DD202405001 please?", message_id=en_id
        ),
        build(
            sender=guest(),
            subject="訂單查詢",
            body="請問我的訂單 DD202405001 到哪裡了？",
            charset="big5",
            message_id=tw_id,
        ),
    )
    en = await asyncio.to_thread(mail_stack.wait_answer, en_id)
    tw = await asyncio.to_thread(mail_stack.wait_answer, tw_id)
    # Guests: asked to prove the order is theirs (tests/bot/access), in their language.
    assert "last 4 digits" in en.text()
    assert not any("\u4e00" <= ch <= "\u9fff" for ch in en.text())
    assert en.header("Content-Language") == "en"
    assert tw.header("Content-Language") == "zh-TW"
    assert "訂單" in tw.text() and "订单" not in tw.text()


async def test_html_only_mail_with_a_quoted_thread_is_understood(mail_stack: MailStack) -> None:
    question_id = new_id()
    html = (
        "<html><body><div>请问订单 DD202405001 到哪了？</div>"
        '<div class="gmail_quote">在 2024年5月1日 写道：'
        "<blockquote>您好，我们是演示商城，欢迎咨询退款问题。</blockquote></div>"
        "</body></html>"
    )
    # From the order's owner (a guest would first be asked to prove the order is theirs).
    await mail_stack.send(build(sender=WANG, subject="Re: 咨询", body="", html=html, message_id=question_id))
    answer = await asyncio.to_thread(mail_stack.wait_answer, question_id)
    assert "SF1234567890123" in answer.text()
    assert answer.header("Subject") == "Re: 咨询"


async def test_mail_without_message_id_delivered_twice_is_answered_once(mail_stack: MailStack) -> None:
    sender = guest()
    raw = build(sender=sender, subject="物流", body="DD202405001 到哪了", message_id="")
    await mail_stack.send(raw, raw)
    wait_until(lambda: any(r.rcpt_tos == [sender] for r in mail_stack.smtp.handler.snapshot()), 90, "the answer")
    await asyncio.to_thread(settle, 4)
    answers = [r for r in mail_stack.smtp.handler.snapshot() if r.rcpt_tos == [sender]]
    assert len(answers) == 1
    assert answers[0].header("In-Reply-To") == ""  # nothing to point at, but still answered


async def test_at_most_the_configured_answers_per_sender_per_hour(mail_stack: MailStack) -> None:
    sender = guest()
    ids = [new_id() for _ in range(7)]
    await mail_stack.send(
        *[build(sender=sender, subject=f"q{i}", body="DD202405001 到哪了", message_id=m) for i, m in enumerate(ids)]
    )
    outcomes = [await asyncio.to_thread(mail_stack.wait_outcome, m) for m in ids]
    statuses = [o["status"] for o in outcomes]
    assert statuses.count("answered") == 5  # AUTORESPONDER_EMAIL_REPLIES_PER_SENDER_PER_HOUR defaults to 5
    assert [o["reason"] for o in outcomes if o["status"] == "suppressed"] == ["rate_limited"] * 2
    await asyncio.to_thread(settle)
    assert len([r for r in mail_stack.smtp.handler.snapshot() if r.rcpt_tos == [sender]]) == 5
    # Held back mail is not lost: agents find it in the conversation, with the reason.
    held = next(o for o in outcomes if o["status"] == "suppressed")
    context = mail_stack.stack.agent("GET", f"/conversations/{held['conversation_id']}").json()
    assert [m["role"] for m in context["transcript"]] == ["customer", "system"]
    assert "AUTORESPONDER_EMAIL_REPLIES_PER_SENDER_PER_HOUR" in context["transcript"][1]["text"]


async def test_a_mail_over_the_size_limit_gets_a_polite_answer(mail_stack: MailStack) -> None:
    question_id = new_id()
    body = "请看附件里的照片，订单 DD202405001 的商品坏了。\n" + "照片数据 " * 40_000  # about 400 KB, limit 200 KB
    await mail_stack.send(build(sender=guest(), subject="商品损坏", body=body, message_id=question_id))
    answer = await asyncio.to_thread(mail_stack.wait_answer, question_id)
    assert "超过了" in answer.text() and "MB" in answer.text()
    assert answer.header("Auto-Submitted") == "auto-replied"
    outcome = mail_stack.outcome(question_id)
    assert outcome is not None and outcome["status"] == "too_large"


async def test_thread_follow_ups_hand_off_and_the_agent_answers_by_mail(mail_stack: MailStack) -> None:
    stack = mail_stack.stack
    first_id = new_id()
    await mail_stack.send(
        build(sender=LI, subject="订单 DD202405002", body="我的订单 DD202405002 到哪了？", message_id=first_id)
    )
    first_answer = await asyncio.to_thread(mail_stack.wait_answer, first_id)
    conversation = (await asyncio.to_thread(mail_stack.wait_outcome, first_id))["conversation_id"]
    previous_id, previous_answer = first_id, first_answer
    references = [first_id]
    handed_off = None
    for attempt in range(4):
        follow_id = new_id()
        references = [*references, previous_answer.header("Message-ID").strip("<>")]
        quoted = "\n".join("> " + line for line in previous_answer.text().splitlines())
        body = f"还是没解决\n\n在 2024年5月20日 10:00，演示商城客服 <{SUPPORT}> 写道：\n{quoted}"
        await mail_stack.send(
            build(
                sender=LI,
                subject=f"Re: {previous_answer.header('Subject')}",
                body=body,
                message_id=follow_id,
                in_reply_to=previous_answer.header("Message-ID").strip("<>"),
                references=references,
            )
        )
        outcome = await asyncio.to_thread(mail_stack.wait_outcome, follow_id)
        assert outcome["conversation_id"] == conversation, "a reply in the thread stays in the conversation"
        references.append(follow_id)
        previous_id = follow_id
        if outcome["status"] == "handed_off":
            handed_off = attempt + 1
            break
        previous_answer = await asyncio.to_thread(mail_stack.wait_answer, follow_id)
    assert handed_off == 3, "the third follow-up in the thread reaches AUTORESPONDER_FOLLOWUP_LIMIT"
    ack = await asyncio.to_thread(mail_stack.wait_answer, previous_id)
    assert "人工客服" in ack.text()
    queue = stack.agent("GET", "/queue").json()
    entry = next(e for e in queue if e["conversation_id"] == conversation)
    assert entry["reason"] == "followups"
    context = stack.agent("GET", f"/conversations/{conversation}").json()
    customer_lines = [m["text"] for m in context["transcript"] if m["role"] == "customer"]
    assert customer_lines[0] == "我的订单 DD202405002 到哪了？"
    assert all(line == "还是没解决" for line in customer_lines[1:]), "quotes never reach the assistant"
    assert context["customer"]["id"] == "C202405002"

    # While waiting for an agent, a further mail in the thread gets no automatic answer.
    waiting_id = new_id()
    await mail_stack.send(
        build(
            sender=LI,
            subject="Re: 订单",
            body="请尽快处理",
            message_id=waiting_id,
            in_reply_to=previous_id,
            references=references,
        )
    )
    outcome = await asyncio.to_thread(mail_stack.wait_outcome, waiting_id)
    assert outcome["status"] == "to_agent"
    assert outcome["conversation_id"] == conversation

    # The agent's answer goes out as a mail in the same thread.
    sent = stack.agent(
        "POST", f"/conversations/{conversation}/messages", by="小李", text="您好，我已联系顺丰加急处理。"
    )
    assert sent.status_code == 200, sent.text
    agent_mail = await asyncio.to_thread(mail_stack.wait_answer, waiting_id)
    assert agent_mail.rcpt_tos == [LI]
    assert "您好，我已联系顺丰加急处理。" in agent_mail.text()
    assert "小李" in agent_mail.text()
    assert agent_mail.header("Auto-Submitted") == ""  # a person wrote it
    assert agent_mail.header("References").split()[0] == f"<{first_id}>"
    assert agent_mail.header("Subject") == "Re: 订单"
    await asyncio.to_thread(settle)
    # One mail for the agent's answer: the "agent joined" console notice is not mailed.
    assert len(mail_stack.answers(waiting_id)) == 1

    # Handed back: one letter in the thread says so and asks for a score; a reply of "4" is thanked.
    assert stack.agent("POST", f"/conversations/{conversation}/handback").status_code == 200
    wait_until(lambda: len(mail_stack.answers(waiting_id)) == 2, 90, "the satisfaction survey")
    survey = mail_stack.answers(waiting_id)[1]
    assert survey.header("Subject") == "Re: 订单"
    assert survey.text().count("尊敬的") == 1, "the survey is a letter of its own, not wrapped in another"
    assert "李女士" in survey.text() and "1 到 5" in survey.text() and "小李" in survey.text()
    score_id = new_id()
    await mail_stack.send(
        build(
            sender=LI,
            subject="Re: 订单",
            body=f"4\n\n在 2024年5月20日 11:00，演示商城客服 <{SUPPORT}> 写道：\n> 请为小李本次服务打分",
            message_id=score_id,
            in_reply_to=survey.header("Message-ID").strip("<>"),
            references=[*references, survey.header("Message-ID").strip("<>")],
        )
    )
    thanks = await asyncio.to_thread(mail_stack.wait_answer, score_id)
    assert "4 分" in thanks.text()
    assert (await asyncio.to_thread(mail_stack.wait_outcome, score_id))["conversation_id"] == conversation
    stats = stack.agent("GET", "/stats").json()
    assert stats["csat"]["distribution"]["4"] >= 1


async def test_attachments_are_listed_for_the_agent(mail_stack: MailStack) -> None:
    from email.mime.application import MIMEApplication
    from email.mime.multipart import MIMEMultipart
    from email.mime.text import MIMEText

    question_id = new_id()
    msg = MIMEMultipart()
    msg["From"] = ZHANG
    msg["To"] = SUPPORT
    msg["Subject"] = "发票"
    msg["Message-ID"] = f"<{question_id}>"
    msg.attach(MIMEText("我要人工客服，发票见附件", "plain", "utf-8"))
    pdf = MIMEApplication(b"%PDF-1.4 " + b"0" * 4096, "pdf")
    pdf.add_header("Content-Disposition", "attachment", filename="invoice.pdf")
    msg.attach(pdf)
    await mail_stack.send(msg.as_bytes())
    outcome = await asyncio.to_thread(mail_stack.wait_outcome, question_id)
    context = mail_stack.stack.agent("GET", f"/conversations/{outcome['conversation_id']}").json()
    first = context["transcript"][0]["text"]
    assert first.startswith("我要人工客服，发票见附件")
    assert "invoice.pdf" in first and "application/pdf" in first


async def test_an_answer_the_server_refuses_for_good_is_shown_to_agents(mail_stack: MailStack) -> None:
    sender = f"refused-{guest()}"
    question_id = new_id()
    mail_stack.smtp.handler.policy = lambda envelope: (
        "550 5.1.1 mailbox unavailable" if envelope.rcpt_tos == [sender] else None
    )
    try:
        await mail_stack.send(build(sender=sender, subject="物流", body="DD202405001 到哪了", message_id=question_id))
        outcome = await asyncio.to_thread(mail_stack.wait_outcome, question_id)
        assert outcome["status"] == "answered"  # committed to the outbox; the delivery is what failed

        def transcript() -> list[dict[str, str]]:
            context = mail_stack.stack.agent("GET", f"/conversations/{outcome['conversation_id']}").json()
            return list(context["transcript"])

        wait_until(lambda: any(m["role"] == "system" for m in transcript()), 60, "the failure in the transcript")
        notice = next(m for m in transcript() if m["role"] == "system")
        assert "could not be delivered" in notice["text"] and "550" in notice["text"]
        with SyncRedis.from_url(mail_stack.redis_url, decode_responses=True) as redis:
            failed = [f for _, f in redis.xrange("ar:outbox:failed") if json.loads(f["to"]) == [sender]]
        assert len(failed) == 1 and failed[0]["code"] == "550"
        assert mail_stack.answers(question_id) == []
    finally:
        mail_stack.smtp.handler.policy = None
