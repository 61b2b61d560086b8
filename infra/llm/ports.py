"""The ports of AI drafts: what a draft is made from (``DraftContext``), what comes back
(``DraftResult``), a chat model (``ChatModel``, the OpenAI-compatible adapter) and a
drafter (``Drafter``: from a model, or from retrieval when none is configured)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol
from uuid import UUID

Delta = Callable[[str], None]  # called with each piece of text as it arrives


@dataclass(frozen=True)
class ChatMessage:
    role: str  # system | user | assistant
    content: str


@dataclass(frozen=True)
class Completion:
    text: str
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str = ""
    refusal: str = ""  # the model's own refusal, if it gave one


class ProviderError(Exception):
    """The provider gave no usable answer. ``code``: ``unavailable`` (after the retries:
    rate-limited, server errors, connection), ``timeout``, ``malformed`` (an answer that is
    not a chat completion)."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


class ChatModel(Protocol):
    model: str

    def stream(self, messages: Sequence[ChatMessage], on_delta: Delta) -> Completion:
        """Run the chat completion, calling ``on_delta`` with each piece of text; the whole
        completion with its token counts. Raises ``ProviderError``."""

    def flagged(self, text: str) -> str:
        """The provider's moderation verdict on ``text``: the categories it flagged ("" if
        none, or if the provider has no moderation)."""


@dataclass(frozen=True)
class Customer:
    name: str
    company: str = ""
    email: str = ""
    phone: str = ""


@dataclass(frozen=True)
class ThreadItem:
    author: str  # "customer" or "agent"
    body: str
    internal: bool = False


@dataclass(frozen=True)
class ResolvedExample:
    """The reply that resolved a ticket similar to this one."""

    ticket_id: UUID
    subject: str
    reply: str
    customer_name: str = ""


@dataclass(frozen=True)
class DraftContext:
    ticket_id: UUID
    subject: str
    description: str
    customer: Customer
    thread: tuple[ThreadItem, ...]
    similar: tuple[ResolvedExample, ...]
    language: str  # the agent's language: the draft is written in it
    agent_name: str
    allow_internal: bool = False  # the agent allows internal notes' content in the draft

    def ticket_text(self) -> str:
        """Everything the ticket itself says (what a draft may repeat contact details from)."""
        parts = [self.subject, self.description, *(item.body for item in self.thread)]
        parts += [self.customer.name, self.customer.company]
        parts += [self.customer.email, self.customer.phone]
        return "\n".join(parts)


@dataclass(frozen=True)
class DraftResult:
    text: str
    source: str  # model | retrieval
    model: str
    prompt_hash: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    refusal: str = ""  # non-empty: no draft, and why (told to the agent)
    basis: tuple[UUID, ...] = field(default=())  # the similar tickets it drew on


class Drafter(Protocol):
    source: str
    model: str

    def draft(self, context: DraftContext, on_delta: Delta) -> DraftResult:
        """Write a draft reply for ``context``, streaming its text to ``on_delta``."""
