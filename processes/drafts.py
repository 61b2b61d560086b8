"""Generating an AI draft (the Celery task's body): build the context from the ticket, ask
the drafter (a model, or retrieval), check what comes back before the agent sees it, stream
it to the agent who asked, record ``DraftGenerated`` with its provenance.

Idempotent: a draft already recorded is left alone, so a retried or redelivered task does
nothing more. The same ticket state never costs two model calls (the cache). Text reaches
the agent only after it passed the output checks: the stream is released sentence by
sentence, each time after checking everything released so far with it; once a check fails,
nothing more is released and the draft is refused with the reasons.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from command_api.application import Actor, DeskstreamApplication
from domain.draft import Draft, DraftStatus
from domain.lifecycle import Role
from domain.ticket import Ticket
from infra.llm import prompt, store
from infra.llm.ports import (
    Customer,
    DraftContext,
    Drafter,
    DraftResult,
    ProviderError,
    ResolvedExample,
    ThreadItem,
)
from infra.llm.safety import check_output

log = logging.getLogger(__name__)
SYSTEM = Actor(id="drafts", role=Role.SYSTEM)
SIMILAR_EXAMPLES = 3
THREAD_MAX = 40  # the newest messages a prompt carries


@dataclass(frozen=True)
class DraftServices:
    drafter: Callable[[], Drafter]
    customer: Callable[[str], Customer]
    agent_name: Callable[[str], str]
    similar: Callable[[UUID, int], Sequence[ResolvedExample]]
    publish: Callable[[str, UUID, dict[str, Any]], None]  # (agent, ticket, frame)
    price: Callable[[str], tuple[float, float]]  # model -> USD per million in, out tokens
    allowed_contacts: tuple[str, ...] = ()  # the desk's own addresses a draft may name


def build_context(ticket: Ticket, draft: Draft, services: DraftServices) -> DraftContext:
    thread = tuple(
        ThreadItem(
            author="customer" if m.author_role == Role.CUSTOMER.value else "agent",
            body=m.body,
            internal=m.internal,
        )
        for m in ticket.messages[-THREAD_MAX:]
    )
    try:
        similar = tuple(
            ex for ex in services.similar(ticket.id, SIMILAR_EXAMPLES) if ex.ticket_id != ticket.id
        )
    except ConnectionError:  # search is down: a draft without examples is still a draft
        log.warning("similar tickets unavailable for draft of %s", ticket.id, exc_info=True)
        similar = ()
    return DraftContext(
        ticket_id=ticket.id,
        subject=ticket.subject,
        description=ticket.description,
        customer=services.customer(ticket.customer_id),
        thread=thread,
        similar=similar,
        language=draft.language,
        agent_name=services.agent_name(draft.requested_by),
        allow_internal=draft.allow_internal,
    )


class Gate:
    """Passes text on only while everything passed so far, with it, passes the checks."""

    def __init__(self, check: Callable[[str], list[str]], forward: Callable[[str], None]) -> None:
        self.check = check
        self.forward = forward
        self.text = ""
        self.problems: list[str] = []

    def __call__(self, piece: str) -> None:
        if self.problems or not piece:
            return
        problems = self.check(self.text + piece)
        if problems:
            self.problems = problems
            return
        self.text += piece
        self.forward(piece)


def checker(context: DraftContext, services: DraftServices) -> Callable[[str], list[str]]:
    internal = [item.body for item in context.thread if item.internal]
    public = "\n".join(
        [context.subject, context.description]
        + [item.body for item in context.thread if not item.internal]
    )

    def check(text: str) -> list[str]:
        return check_output(
            text,
            ticket_text=context.ticket_text(),
            public_text=public,
            internal_notes=internal,
            allow_internal=context.allow_internal,
            system_prompt=prompt.SYSTEM_PROMPT,
            allowed_contacts=services.allowed_contacts,
        )

    return check


def generate(
    app: DeskstreamApplication, services: DraftServices, ticket_id: UUID, draft_id: UUID
) -> str:
    """Make, check, stream and record one draft; returns its outcome."""
    started = time.perf_counter()
    ticket = app.get_ticket(ticket_id)
    draft = ticket.drafts.get(draft_id)
    if draft is None or draft.status is not DraftStatus.REQUESTED:
        return "recorded already"
    agent = draft.requested_by

    def send(kind: str, **data: Any) -> None:
        frame = {"kind": kind, "ticket_id": str(ticket_id), "draft_id": str(draft_id), **data}
        try:
            services.publish(agent, ticket_id, frame)
        except Exception:  # the draft is recorded either way; the panel can fetch it
            log.warning("draft frame not delivered", exc_info=True)

    context = build_context(ticket, draft, services)
    drafter = services.drafter()
    version = prompt.PROMPT_VERSION if drafter.source == "model" else drafter.model
    key = store.cache_key(
        ticket_id,
        ticket.content_version,
        version,
        drafter.model,
        context.language,
        context.allow_internal,
    )
    send("started", source=drafter.source, model=drafter.model)
    check = checker(context, services)
    gate = Gate(check, lambda piece: send("delta", text=piece))
    cached = store.cache_get(key)
    reason = ""
    if cached is not None:
        outcome, text, reason = cached.outcome, cached.text, cached.reason
        result = DraftResult(
            text=text,
            source=cached.source,
            model=cached.model,
            prompt_hash=cached.prompt_hash,
            prompt_tokens=cached.prompt_tokens,
            completion_tokens=cached.completion_tokens,
        )
        if outcome == DraftStatus.READY.value:
            gate(text)
    else:
        try:
            result = drafter.draft(context, gate)
        except ProviderError as error:
            result = DraftResult("", drafter.source, drafter.model, "")
            outcome, text, reason = DraftStatus.FAILED.value, "", error.detail
        else:
            problems = gate.problems or (check(result.text) if result.text else [])
            if result.refusal:
                outcome, text, reason = DraftStatus.REFUSED.value, "", result.refusal
            elif problems:
                outcome, text = DraftStatus.REFUSED.value, ""
                reason = "The draft was withheld. " + " ".join(problems)
            else:
                outcome, text = DraftStatus.READY.value, result.text
            store.cache_put(
                key,
                store.Cached(
                    outcome,
                    text,
                    reason,
                    result.source,
                    result.model,
                    result.prompt_hash,
                    result.prompt_tokens,
                    result.completion_tokens,
                ),
            )
    latency_ms = int((time.perf_counter() - started) * 1000)
    tokens_in = 0 if cached else result.prompt_tokens
    tokens_out = 0 if cached else result.completion_tokens
    price_in, price_out = services.price(result.model)
    cost = (tokens_in * price_in + tokens_out * price_out) / 1_000_000
    app.record_draft(
        ticket_id,
        SYSTEM,
        draft_id=draft_id,
        outcome=outcome,
        text=text,
        reason=reason,
        source=result.source,
        model=result.model,
        prompt_version=version,
        prompt_hash=result.prompt_hash,
        context_version=ticket.content_version,
        prompt_tokens=tokens_in,
        completion_tokens=tokens_out,
        latency_ms=latency_ms,
        cost_usd=round(cost, 6),
        cached=cached is not None,
    )
    send(
        "done",
        status=outcome,
        text=text,
        reason=reason,
        source=result.source,
        model=result.model,
        cached=cached is not None,
        prompt_tokens=tokens_in,
        completion_tokens=tokens_out,
        latency_ms=latency_ms,
        basis=[str(t) for t in result.basis],
    )
    return outcome
