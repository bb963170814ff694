"""Response templates: complete, sandboxed, escaped where HTML, strict about variables."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from bot.errors import TemplateError
from bot.settings import PROJECT_ROOT
from bot.templates import TemplateRegistry

SAMPLE = {
    "name": "王先生",
    "order_id": "DD202405001",
    "status": "shipped",
    "carrier": "SF",
    "tracking_number": "SF1234567890123",
    "eta": "2024-05-20",
    "product": "无线蓝牙耳机",
    "agent_name": "小李",
    "score": 4,
    "opens": "11月30日（周一）09:00（GMT+8）",
    "refund_status": "processing",
    "refund_amount": "399.00",
    "currency": "CNY",
    "refunded_at": "2024-05-25",
    "purchase_date": "2024-05-01",
    "warranty_months": 12,
    "warranty_until": "2025-05-01",
    "in_warranty": True,
    "ticket": "T20240601-0003",
    "return_days": 7,
    "exchange_days": 15,
    "delivered_at": "2024-05-19",
    "return_until": "2024-05-26",
    "exchange_until": "2024-06-03",
    "amount": "399.00",
    "paid": True,
    "price": "399.00",
    "products": "无线蓝牙耳机 X1, 智能手表 S3",
    "attempts_left": 2,
    "minutes": 30,
    "address": "上海市浦东新区世纪大道 100 号 张三 13800138000",
}


@pytest.fixture(scope="module")
def registry() -> TemplateRegistry:
    return TemplateRegistry.from_dir(PROJECT_ROOT / "responses", strict=True)


def test_every_domain_response_has_a_template_and_back(registry: TemplateRegistry) -> None:
    domain = yaml.safe_load((PROJECT_ROOT / "domain.yml").read_text(encoding="utf-8"))
    engine_side = {name for name, tpl in registry.templates.items() if tpl.rendered_by == "engine"}
    assert set(domain["responses"]) == engine_side


@pytest.mark.parametrize("channel", ["webchat", "rest", "email", "telegram"])
@pytest.mark.parametrize("locale", ["zh-CN", "zh-TW", "en"])
def test_every_template_renders_in_every_channel_and_locale(
    registry: TemplateRegistry, channel: str, locale: str
) -> None:
    for name in registry.templates:
        rendered = registry.render(name, channel, locale, SAMPLE)
        assert rendered.text.strip(), name
        assert rendered.version >= 1
        if locale == "en":
            assert "订单" not in rendered.text
            assert "訂單" not in rendered.text
        if channel == "email":
            assert rendered.html
            assert rendered.html.startswith("<p>")


@pytest.mark.parametrize(
    "status", ["paid", "shipped", "delayed", "delivered", "returned", "refunding", "refunded", "cancelled"]
)
def test_order_status_covers_every_status(registry: TemplateRegistry, status: str) -> None:
    for locale in ("zh-CN", "zh-TW", "en"):
        text = registry.render("utter_order_status", "rest", locale, {**SAMPLE, "status": status}).text
        assert "DD202405001" in text
        assert "当前状态" not in text
        assert "目前狀態" not in text
        assert "currently:" not in text
        if status in ("shipped", "delayed", "delivered"):
            assert "SF1234567890123" in text


def test_traditional_reply_is_in_traditional_script(registry: TemplateRegistry) -> None:
    text = registry.render("utter_order_status", "rest", "zh-TW", SAMPLE).text
    assert "訂單" in text
    assert "订单" not in text
    assert "順豐" in text


def test_html_channels_escape_variables_and_text_channels_do_not(registry: TemplateRegistry) -> None:
    evil = {**SAMPLE, "order_id": "<script>alert(1)</script>"}
    tg = registry.render("utter_order_status", "telegram", "en", evil).text
    assert "<script>" not in tg
    assert "&lt;script&gt;" in tg
    assert "<b>" in tg  # the template's own markup stays
    mail = registry.render("utter_order_status", "email", "en", evil)
    assert mail.html is not None
    assert "<script>" not in mail.html
    assert "<script>" in mail.text  # plain text part: nothing to escape


def test_missing_variable_is_an_error_in_strict_mode(registry: TemplateRegistry) -> None:
    with pytest.raises(TemplateError, match="order_id"):
        registry.render("utter_order_not_found", "rest", "zh-CN", {})


def test_lenient_mode_renders_blank(tmp_path: Path) -> None:
    (tmp_path / "t.yml").write_text("name: utter_t\ntext:\n  chat:\n    zh-CN: '单号{{ x }}'\n    en: 'id {{ x }}'\n")
    lenient = TemplateRegistry.from_dir(tmp_path, strict=False)
    assert lenient.render("utter_t", "rest", "en", {}).text == "id"


def test_sandbox_blocks_attribute_escapes(tmp_path: Path) -> None:
    (tmp_path / "t.yml").write_text(
        "name: utter_t\ntext:\n  chat:\n    zh-CN: '{{ x.__class__.__mro__ }}'\n    en: '{{ x.__class__.__mro__ }}'\n"
    )
    reg = TemplateRegistry.from_dir(tmp_path, strict=True)
    with pytest.raises(TemplateError):
        reg.render("utter_t", "rest", "en", {"x": "s"})


def test_malformed_template_file_is_reported_with_its_path(tmp_path: Path) -> None:
    (tmp_path / "broken.yml").write_text("name: utter_b\ntext: [unclosed\n")
    with pytest.raises(TemplateError, match=r"broken\.yml"):
        TemplateRegistry.from_dir(tmp_path)


def test_unknown_template_is_an_error(registry: TemplateRegistry) -> None:
    with pytest.raises(TemplateError, match="utter_nope"):
        registry.render("utter_nope", "rest", "en", {})


@pytest.mark.parametrize("channel", ["webchat", "rest", "email", "telegram"])
@pytest.mark.parametrize("locale", ["zh-CN", "zh-TW", "en"])
@pytest.mark.parametrize(
    ("name", "variables"),
    [
        ("utter_verify_order", {"order_id": "DD202405001"}),
        ("utter_verify_failed", {"order_id": "DD202405001", "attempts_left": 2}),
        ("utter_verify_locked", {"order_id": "DD202405001", "minutes": 30}),
    ],
)
def test_what_a_guest_is_told_needs_nothing_about_the_order_but_its_number(
    registry: TemplateRegistry, channel: str, locale: str, name: str, variables: dict[str, object]
) -> None:
    # Strict mode: a template that used the customer, product, carrier or amount would fail to render.
    rendered = registry.render(name, channel, locale, {"name": "", **variables})
    assert "DD202405001" in rendered.text


@pytest.mark.parametrize("name", ["utter_confirm_cancel", "utter_confirm_repair", "utter_confirm_address"])
@pytest.mark.parametrize(("locale", "word"), [("zh-CN", "确认"), ("zh-TW", "確認"), ("en", "yes")])
def test_changes_ask_for_a_confirmation_by_button_or_reply_word(
    registry: TemplateRegistry, name: str, locale: str, word: str
) -> None:
    chat = registry.render(name, "webchat", locale, SAMPLE)
    assert [b["payload"] for b in chat.buttons] == ["/affirm", "/deny"]
    assert all(b["title"] for b in chat.buttons)
    email = registry.render(name, "email", locale, SAMPLE)
    assert f"“{word}”" in email.text or f"「{word}」" in email.text or f'"{word}"' in email.text


# Variables an answer may lack: no masked name for a guest, no carrier, tracking number or ETA before an
# order ships, no delivery, refund or deadline dates before those happen, no agent name for a notice.
# `order_id` is optional only where the question may be answered without an order (the policy answers).
OPTIONAL_EVERYWHERE = (
    "name", "carrier", "tracking_number", "eta", "delivered_at", "refunded_at", "return_until",
    "exchange_until", "agent_name",
)  # fmt: skip
OPTIONAL_ORDER_ID = ("utter_return_exchange", "utter_payment_issue", "utter_complaint", "utter_followup")
# What a value missing from a sentence leaves behind.
EMPTY_SLOT_ARTEFACTS = (
    "  ", "None", " 前", "（）", "()", "{{", "}}", "<code></code>", "<b></b>", " ，", " 。", " .", " ,",
)  # fmt: skip


def _without(name: str, empty: object) -> dict[str, object]:
    missing = OPTIONAL_EVERYWHERE + (("order_id",) if name in OPTIONAL_ORDER_ID else ())
    return {**SAMPLE, **dict.fromkeys(missing, empty)}


@pytest.mark.parametrize("empty", ["", None], ids=["blank", "none"])
@pytest.mark.parametrize(
    "status", ["paid", "shipped", "delayed", "delivered", "returned", "refunding", "refunded", "cancelled"]
)
@pytest.mark.parametrize("channel", ["webchat", "rest", "email", "telegram"])
@pytest.mark.parametrize("locale", ["zh-CN", "zh-TW", "en"])
def test_every_template_reads_right_with_every_optional_field_missing(
    registry: TemplateRegistry, locale: str, channel: str, status: str, empty: object
) -> None:
    for name in registry.templates:
        where = f"{name} ({channel}/{locale}/{status})"
        lacking_vars = {**_without(name, empty), "status": status}
        lacking = registry.render(name, channel, locale, lacking_vars).text
        for line in lacking.splitlines():
            found = [a for a in EMPTY_SLOT_ARTEFACTS if a in line.strip()]
            assert not found, f"{where}: {found} in {line!r}"
        # A label whose value is missing ("运单号：") ends its line with the colon; the full answer does not.
        # (compared with the same answer with every date and number, but the same salutation and order id)
        reference = {**SAMPLE, "status": status, "name": empty, "order_id": lacking_vars["order_id"]}
        full = registry.render(name, channel, locale, reference).text
        assert not _labels(lacking) - _labels(full), f"{where}: {lacking!r}"


def _labels(text: str) -> set[str]:
    """Short lines ending with a colon ("运单号：", "Carrier:"), the salutation aside."""
    lines = (re.sub(r"<[^>]+>", "", line).strip() for line in text.splitlines())
    return {
        line
        for line in lines
        if line.endswith(("：", ":")) and len(line) <= 20 and "您好" not in line and not line.startswith(("Dear", "Hi"))
    }


@pytest.mark.parametrize("name", ["utter_out_of_scope", "utter_default"])
@pytest.mark.parametrize("channel", ["webchat", "rest", "email", "telegram"])
@pytest.mark.parametrize(
    ("locale", "can_do", "human"),
    [("zh-CN", "订单", ("人工",)), ("zh-TW", "訂單", ("真人", "客服人員")), ("en", "order", ("human", "agent"))],
)
def test_what_the_bot_cannot_answer_is_declined_with_what_it_can_do_and_a_human(
    registry: TemplateRegistry, name: str, channel: str, locale: str, can_do: str, human: tuple[str, ...]
) -> None:
    text = registry.render(name, channel, locale, {**SAMPLE, "name": ""}).text
    assert not text.startswith(("好的", "Sure", "OK", "Of course")), text
    assert can_do in text.lower(), text
    assert any(word in text.lower() for word in human), text
