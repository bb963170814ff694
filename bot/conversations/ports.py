"""The conversation core's ports: what it needs from the engine and the CRM, and where features plug in.

The router depends on these protocols only; the engine client (`bot.engine.client`) and the CRM
façade (`bot.crm.directory`) implement the first two, the agent desk implements the extension points
(the satisfaction survey intercepts messages, the SLA clock and the after-hours notice listen to
handoffs, the review list listens to answered messages), and channels implement `bot.conversations.channels.Channel`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from bot.conversations.messages import InboundMessage
from bot.conversations.model import Conversation, Handoff
from bot.crm.records import CustomerInfo
from bot.engine.contract import EngineReply, MessageMetadata
from bot.templates import Rendered


class Engine(Protocol):
    """The dialogue engine: understands a message and answers it."""

    async def send(self, conversation_id: str, text: str, metadata: MessageMetadata) -> list[EngineReply]:
        """The engine's replies to one message; raises EngineUnavailable when it cannot answer."""
        ...

    async def reset(self, conversation_id: str) -> None:
        """Forget the conversation's dialogue state, so that it starts afresh."""
        ...

    async def ready(self) -> bool:
        """Whether the engine answers now."""
        ...


class CustomerDirectory(Protocol):
    """Who a customer is: the CRM as the conversation core and the channels see it."""

    async def find(self, identifier: str) -> CustomerInfo | None:
        """The customer named by a customer id, an email address or a phone number."""
        ...

    async def get(self, customer_id: str) -> CustomerInfo | None:
        """The customer with this id."""
        ...

    async def masked_name(self, customer_id: str | None, locale: str | None) -> str:
        """Surname and title in the locale (王先生, Mr. Wang), or "" for a guest."""
        ...

    async def find_by_account(self, channel: str, account: str) -> CustomerInfo | None:
        """The customer who linked this account of a channel (a Telegram user id), if any."""
        ...

    async def link_account(self, customer_id: str, channel: str, account: str) -> CustomerInfo:
        """Link a channel account to a customer (after the channel verified it is theirs)."""
        ...


@dataclass(frozen=True)
class Turn:
    """One customer message in bot mode, as an interceptor sees it before the engine does."""

    conversation: Conversation
    message: InboundMessage
    customer: CustomerInfo | None
    # False when nothing of order access (a second factor asked for, a change to confirm) can wait for
    # this message: the conversation's marker (bot.keys.ACCESS_WAITS_FIELD), read as the message's lease
    # was taken. None: not known (read the state itself).
    access_waits: bool | None = None


@dataclass(frozen=True)
class Interception:
    """What an interceptor did with a message instead of the engine: replies, and maybe a handoff.

    With `engine_text`, the engine still answers, but this text instead of the message (a guest's saved
    question once the second factor is right); its replies follow `replies`.
    """

    replies: Sequence[Rendered] = ()
    handoff: Handoff | None = None
    engine_text: str | None = None


class MessageInterceptor(Protocol):
    """Looks at a bot-mode message before the engine; returns an Interception to answer it instead."""

    async def intercept(self, turn: Turn) -> Interception | None:
        """None lets the message go on to the engine (the next interceptor first)."""
        ...


class HandoffListener:
    """Reacts to a conversation being handed to agents; both hooks do nothing unless overridden."""

    def preparing(self, conversation: Conversation, handoff: Handoff) -> None:
        """Called before the handoff is written: may fill in its fields (the SLA clock sets `due_at`)."""

    async def started(
        self, conversation: Conversation, handoff: Handoff, customer: CustomerInfo | None
    ) -> Sequence[Rendered]:
        """Called once the handoff is queued; returns notices for the customer (sent in order)."""
        return ()


@dataclass(frozen=True)
class Answered:
    """A bot-mode message the engine answered, after the answer is committed: the text the engine was
    asked (an interceptor may have replaced the message's), its replies, and the handoff they led to."""

    turn: Turn
    text: str
    replies: Sequence[EngineReply]
    handoff: Handoff | None


class AnswerListener:
    """Reacts to the engine's answer to a message (the review list of misunderstood messages)."""

    async def answered(self, answered: Answered) -> None:
        """Called once per answered message, beside the commit of its answer (both at once: a listener
        writes only what is its own, and reads nothing the commit writes). In the rare race that another
        process answered the same message first, both answers' listeners hear of it. Does nothing unless
        overridden."""
