"""Response templates: one YAML file per response in responses/, Jinja2 per channel and locale.

A file looks like::

    name: utter_greet
    version: 2
    buttons:
      - payload: /order_status
        title: {zh-CN: 查订单, zh-TW: 查訂單, en: Track an order}
    text:
      chat: {zh-CN: "...", zh-TW: "...", en: "..."}
      email: {...}
      telegram: {...}

Channels fall back to `chat`; zh-TW falls back to the zh-CN variant converted to traditional script.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from jinja2 import StrictUndefined, Undefined, pass_context
from jinja2 import Template as JinjaTemplate
from jinja2.exceptions import TemplateError as JinjaTemplateError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import Markup, escape

from bot.crm.records import carrier_name
from bot.errors import TemplateError
from bot.locale import LOCALES, to_traditional

# The variants a response file may hold, and how each one's text is formatted: HTML output is
# autoescaped, plain text is not. A channel names the variant it is answered in (`Channel.variant`);
# a channel that names none is answered in `chat`.
VARIANT_FORMAT = {"chat": "text", "email": "text", "telegram": "html"}


@dataclass(frozen=True)
class Rendered:
    """A rendered reply: text in the channel's format, an HTML twin for email, buttons."""

    name: str
    version: int
    locale: str
    channel: str
    text: str
    html: str | None
    buttons: list[dict[str, str]]
    # "html" when `text` is HTML (Telegram), "text" otherwise.
    text_format: str = "text"


@dataclass(frozen=True)
class Template:
    """One response file, parsed."""

    name: str
    version: int
    text: dict[str, dict[str, str]]
    buttons: list[dict[str, Any]]
    path: Path
    # "engine": a Rasa response (declared in domain.yml); "app": a notice the app sends itself.
    rendered_by: str = "engine"


@pass_context
def _localdate(ctx: Context, value: Any) -> str:
    """Format a date for the conversation's locale."""
    if value in (None, ""):
        return ""
    if isinstance(value, str):
        try:
            value = dt.date.fromisoformat(value[:10])
        except ValueError:
            return str(value)
    locale = ctx.get("locale", "zh-CN")
    if locale == "en":
        return str(value.strftime("%d %b %Y").lstrip("0"))
    return f"{value.year}年{value.month}月{value.day}日"


@pass_context
def _carrier(ctx: Context, code: Any) -> str:
    """A carrier code (SF, JD…) as the customer's locale names it."""
    return carrier_name(str(code), ctx.get("locale", "zh-CN")) if code else ""


class TemplateRegistry:
    """Loads every template once and renders them in a sandbox."""

    def __init__(
        self, templates: dict[str, Template], *, strict: bool, variants: Mapping[str, str] | None = None
    ) -> None:
        self.templates = templates
        self.strict = strict
        # Channel name -> the variant it is answered in; variant names stand for themselves.
        self.variants = {name: name for name in VARIANT_FORMAT} | dict(variants or {})
        self._compiled: dict[tuple[str, str, str, bool], JinjaTemplate] = {}
        undefined: type[Undefined] = StrictUndefined if strict else Undefined
        self._text_env = ImmutableSandboxedEnvironment(autoescape=False, undefined=undefined)
        self._html_env = ImmutableSandboxedEnvironment(autoescape=True, undefined=undefined)
        for env in (self._text_env, self._html_env):
            env.filters["localdate"] = _localdate
            env.filters["carrier"] = _carrier

    @classmethod
    def from_dir(
        cls, directory: Path, *, strict: bool = False, variants: Mapping[str, str] | None = None
    ) -> TemplateRegistry:
        """Parse every `*.yml` file of the folder; a malformed file is an error at start-up."""
        templates: dict[str, Template] = {}
        for path in sorted(directory.glob("*.yml")):
            try:
                raw = yaml.safe_load(path.read_text(encoding="utf-8"))
                tpl = Template(
                    name=str(raw["name"]),
                    version=int(raw.get("version", 1)),
                    text={
                        str(ch): {str(k): str(v) for k, v in variants.items()} for ch, variants in raw["text"].items()
                    },
                    buttons=list(raw.get("buttons") or []),
                    path=path,
                    rendered_by=str(raw.get("rendered_by", "engine")),
                )
            except (KeyError, TypeError, ValueError, AttributeError, yaml.YAMLError) as exc:
                raise TemplateError(f"{path}: not a valid response template ({exc!r})") from exc
            if "chat" not in tpl.text or not {"zh-CN", "en"} <= set(tpl.text["chat"]):
                raise TemplateError(f"{path}: needs a `chat` variant in zh-CN and en at least")
            if tpl.name in templates:
                raise TemplateError(f"{path}: response {tpl.name} is defined twice")
            templates[tpl.name] = tpl
        return cls(templates, strict=strict, variants=variants)

    def _source(self, tpl: Template, channel: str, locale: str) -> tuple[str, bool]:
        """The Jinja source for a channel and locale; second item: needs script conversion."""
        variants = tpl.text.get(channel) or tpl.text["chat"]
        if locale in variants:
            return variants[locale], False
        if locale == "zh-TW" and "zh-CN" in variants:
            return variants["zh-CN"], True
        return variants.get("en") or tpl.text["chat"]["en"], False

    def _compile(self, tpl: Template, kind: str, locale: str, source: str, html: bool) -> JinjaTemplate:
        """The compiled template for a variant and locale, compiled once and kept."""
        key = (tpl.name, kind, locale, html)
        compiled = self._compiled.get(key)
        if compiled is None:
            compiled = (self._html_env if html else self._text_env).from_string(source)
            self._compiled[key] = compiled
        return compiled

    def render(self, name: str, channel: str, locale: str, variables: dict[str, Any]) -> Rendered:
        """Render a response for a channel (a channel name such as webchat, or a variant name) and locale."""
        tpl = self.templates.get(name)
        if tpl is None:
            raise TemplateError(f"no template for response {name!r}: add responses/{name}.yml")
        locale = locale if locale in LOCALES else "zh-CN"
        kind = self.variants.get(channel, "chat")
        source, convert = self._source(tpl, kind, locale)
        context = {**variables, "locale": locale, "channel": kind}
        try:
            if VARIANT_FORMAT[kind] == "html" and kind in tpl.text:
                text = self._compile(tpl, kind, locale, source, True).render(context)
                html = None
            elif VARIANT_FORMAT[kind] == "html":
                # The plain `chat` variant stands in: escape all of it, its own text as well as the variables.
                text = str(escape(self._compile(tpl, kind, locale, source, False).render(context)))
                html = None
            else:
                text = self._compile(tpl, kind, locale, source, False).render(context)
                twin = self._compile(tpl, kind, locale, source, True).render(context) if kind == "email" else None
                html = _paragraphs(twin) if twin is not None else None
        except JinjaTemplateError as exc:
            raise TemplateError(f"{tpl.path.name} ({kind}/{locale}): {exc}") from exc
        if convert:
            text = to_traditional(text)
            html = to_traditional(html) if html else None
        buttons = [{"title": _pick(b["title"], locale), "payload": str(b["payload"])} for b in tpl.buttons]
        return Rendered(tpl.name, tpl.version, locale, kind, text.strip(), html, buttons, VARIANT_FORMAT[kind])


def _pick(title: Any, locale: str) -> str:
    if isinstance(title, dict):
        if locale in title:
            return str(title[locale])
        if locale == "zh-TW" and "zh-CN" in title:
            return to_traditional(str(title["zh-CN"]))
        return str(title.get("en") or next(iter(title.values())))
    return str(title)


def _paragraphs(escaped: str) -> str:
    """Turn autoescaped text into HTML paragraphs, keeping single line breaks."""
    blocks = [b.strip() for b in escaped.strip().split("\n\n") if b.strip()]
    return "\n".join(Markup("<p>{}</p>").format(Markup(b.replace("\n", "<br>\n"))) for b in blocks)


__all__ = ["VARIANT_FORMAT", "Rendered", "TemplateRegistry", "escape"]
