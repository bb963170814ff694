"""Notices the desk sends customers around a handoff (a router handoff listener)."""

from __future__ import annotations

import time
from collections.abc import Sequence

from bot.conversations.channels import Channels
from bot.conversations.model import Conversation, Handoff
from bot.conversations.ports import HandoffListener
from bot.crm.records import CustomerInfo
from bot.hours import BusinessHours, opening_time
from bot.templates import Rendered, TemplateRegistry


class AfterHoursNotice(HandoffListener):
    """Outside business hours, tell a chat customer when agents are back (mail is not read live anyway)."""

    def __init__(self, templates: TemplateRegistry, hours: BusinessHours, channels: Channels) -> None:
        self.templates = templates
        self.hours = hours
        self.channels = channels

    async def started(
        self, conversation: Conversation, handoff: Handoff, customer: CustomerInfo | None
    ) -> Sequence[Rendered]:
        """The notice, when agents are away and the customer waits live."""
        now = time.time()
        if not self.channels.is_live(conversation.channel) or self.hours.is_open(now):
            return ()
        locale = conversation.locale or "zh-CN"
        opens = opening_time(self.hours.local(self.hours.next_open(now)), locale)
        name = customer.masked_name(locale) if customer is not None else ""
        variables = {"name": name, "opens": opens}
        return [self.templates.render("utter_after_hours", conversation.channel, locale, variables)]
