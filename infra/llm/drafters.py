"""The two drafters: a chat model's (``ModelDrafter``) and retrieval's (``RetrievalDrafter``,
used when no model is configured: the replies that resolved the most similar tickets,
adapted to this customer and agent, labelled ``retrieval``)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable

from infra.llm import prompt
from infra.llm.ports import ChatModel, DraftContext, DraftResult, ProviderError
from infra.llm.safety import EMAIL, PHONE, Redactor

_BOUNDARY = re.compile(r"[.!?:;]\s|\n")


class _Released:
    """Collects a stream's pieces and passes on text up to the last sentence end or line
    break, with the placeholders put back (a placeholder is never cut by a boundary)."""

    def __init__(self, on_delta: Callable[[str], None], redactor: Redactor) -> None:
        self.on_delta = on_delta
        self.redactor = redactor
        self.buffer = ""

    def __call__(self, piece: str) -> None:
        self.buffer += piece
        last = None
        for last in _BOUNDARY.finditer(self.buffer):  # noqa: B007 - the last one is wanted
            pass
        if last is not None:
            ready, self.buffer = self.buffer[: last.end()], self.buffer[last.end() :]
            self.on_delta(self.redactor.restore(ready))

    def flush(self) -> None:
        if self.buffer:
            ready, self.buffer = self.buffer, ""
            self.on_delta(self.redactor.restore(ready))


class ModelDrafter:
    source = "model"

    def __init__(self, chat: ChatModel) -> None:
        self.chat = chat
        self.model = chat.model

    def draft(self, context: DraftContext, on_delta: Callable[[str], None]) -> DraftResult:
        redactor = Redactor()
        messages = prompt.build(context, redactor)
        released = _Released(on_delta, redactor)
        completion = self.chat.stream(messages, released)
        released.flush()
        refusal = f"The model declined: {completion.refusal}" if completion.refusal else ""
        if not refusal and completion.finish_reason == "content_filter":
            refusal = "The model's provider filtered the answer."
        if not refusal and not completion.text.strip():
            raise ProviderError("malformed", "The model sent an empty draft.")
        text = redactor.restore(completion.text).strip()
        if not refusal:
            flagged = self.chat.flagged(text)
            if flagged:
                refusal = f"The provider's moderation check flagged it ({flagged})."
        return DraftResult(
            text="" if refusal else text,
            source=self.source,
            model=completion.model or self.model,
            prompt_hash=prompt.prompt_hash(messages, self.model),
            prompt_tokens=completion.prompt_tokens,
            completion_tokens=completion.completion_tokens,
            refusal=refusal,
            basis=tuple(example.ticket_id for example in context.similar),
        )


# ------------------------------------------------------------------------------ retrieval
RETRIEVAL_MODEL = "retrieval-v1"
GREETINGS = {
    "en": ("Hi {name},", "Best regards,"),
    "de": ("Hallo {name},", "Viele Grüße,"),
    "fr": ("Bonjour {name},", "Cordialement,"),
    "es": ("Hola {name},", "Saludos,"),
    "it": ("Ciao {name},", "Cordiali saluti,"),
    "nl": ("Hallo {name},", "Met vriendelijke groet,"),
    "pt": ("Olá {name},", "Atenciosamente,"),
}
_OPENING = re.compile(
    r"^\s*(?:hi|hello|hey|dear|good (?:morning|afternoon|evening)|hallo|bonjour|hola|ciao|olá)"
    r"\b[^\n]{0,60}\n+",
    re.IGNORECASE,
)
_CLOSING = re.compile(
    r"\n+\s*(?:best|kind|warm)?\s*(?:regards|wishes|thanks|thank you|cheers|sincerely)"
    r"[^\n]{0,30}(?:\n[^\n]{0,60}){0,2}\s*$",
    re.IGNORECASE,
)


def first_name(name: str) -> str:
    name = name.strip()
    if "@" in name or not name:
        return "there"
    return name.split()[0]


def adapt(reply: str, *, old_customer: str, customer: str) -> str:
    """The heart of a past reply: without its greeting and sign-off, the old customer's
    name replaced by this one's, and other people's contact details taken out."""
    body = _CLOSING.sub("", _OPENING.sub("", reply.strip())).strip()
    old = first_name(old_customer)
    if old != "there" and customer:
        body = re.sub(rf"\b{re.escape(old)}\b", first_name(customer), body)
    body = EMAIL.sub("[e-mail address]", body)
    return PHONE.sub(_phone_gap, body)


def _phone_gap(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group())
    return "[phone number]" if 7 <= len(digits) <= 15 else match.group()


class RetrievalDrafter:
    """No model: the reply that resolved the most similar ticket, adapted."""

    source = "retrieval"
    model = RETRIEVAL_MODEL

    def draft(self, context: DraftContext, on_delta: Callable[[str], None]) -> DraftResult:
        examples = [ex for ex in context.similar if ex.reply.strip()]
        basis = tuple(ex.ticket_id for ex in examples)
        digest = hashlib.sha256(RETRIEVAL_MODEL.encode())
        for ex in examples:
            digest.update(str(ex.ticket_id).encode() + b"\x00" + ex.reply.encode())
        if not examples:
            return DraftResult(
                text="",
                source=self.source,
                model=self.model,
                prompt_hash=digest.hexdigest(),
                refusal="No resolved ticket is similar enough to draft from yet.",
            )
        best = examples[0]
        hello, bye = GREETINGS.get(context.language.split("-")[0], GREETINGS["en"])
        body = adapt(best.reply, old_customer=best.customer_name, customer=context.customer.name)
        paragraphs = [
            hello.format(name=first_name(context.customer.name)),
            body,
            f"{bye}\n{context.agent_name}".strip(),
        ]
        text = "\n\n".join(p for p in paragraphs if p)
        for index, paragraph in enumerate(paragraphs):
            on_delta(paragraph + ("\n\n" if index < len(paragraphs) - 1 else ""))
        return DraftResult(
            text=text,
            source=self.source,
            model=self.model,
            prompt_hash=digest.hexdigest(),
            basis=basis,
        )
