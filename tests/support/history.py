"""Generated ticket histories, driven through the real application use cases."""

from __future__ import annotations

import random
from uuid import UUID, uuid4

from command_api.application import Actor, DeskstreamApplication
from domain.errors import DomainError
from domain.lifecycle import Role

WORDS = [
    "invoice",
    "refund",
    "password",
    "login",
    "export",
    "api",
    "webhook",
    "dashboard",
    "billing",
    "slow",
    "error",
    "crash",
    "upload",
    "csv",
    "account",
    "team",
    "member",
    "charge",
    "plan",
    "vat",
    "number",
    "delay",
    "timeout",
    "certificate",
]


def sentence(rng: random.Random, n: int = 8) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def generate(
    app: DeskstreamApplication,
    *,
    tickets: int,
    steps: int,
    seed: int,
    customers: tuple[str, ...] = ("c1", "c2", "c3"),
    agents: tuple[str, ...] = ("a1", "a2"),
    after_each: object = None,
    drafts: bool = False,
) -> list[UUID]:
    """Open ``tickets`` tickets then apply ``steps`` random commands; refused ones are skipped.

    ``after_each`` (a callable) runs after every command, e.g. to advance a live projector.
    With ``drafts``, about one step in ten is also followed by an AI draft (requested,
    recorded, sometimes sent as a reply), from a random stream of its own: the rest of the
    history is the same as without.
    """
    rng = random.Random(seed)
    draft_rng = random.Random(seed + 1)
    ids: list[UUID] = []
    owner: dict[UUID, str] = {}
    for _ in range(tickets):
        customer = rng.choice(customers)
        res = app.open_ticket(
            Actor(customer, Role.CUSTOMER),
            customer_id=customer,
            subject=sentence(rng, 4),
            description=sentence(rng),
            priority=rng.choice(["low", "medium", "high", "urgent"]),
            tags=rng.sample(["billing", "api", "accounts", "bug"], k=rng.randint(0, 2)),
        )
        ids.append(res.id)
        owner[res.id] = customer
        if callable(after_each):
            after_each()
    for _ in range(steps):
        tid = rng.choice(ids)
        agent = Actor(rng.choice(agents), Role.AGENT)
        customer = Actor(owner[tid], Role.CUSTOMER)
        action = rng.random()
        try:
            if action < 0.35:
                app.post_message(tid, agent, body=sentence(rng), internal=rng.random() < 0.25)
            elif action < 0.55:
                app.post_message(tid, customer, body=sentence(rng))
            elif action < 0.70:
                app.assign_ticket(tid, agent, agent_id=rng.choice(agents))
            elif action < 0.85:
                status = rng.choice(
                    ["in_progress", "waiting_on_customer", "resolved", "closed", "open"]
                )
                app.change_status(tid, rng.choice([agent, customer]), status=status)
            elif action < 0.92:
                app.edit_ticket(tid, agent, subject=sentence(rng, 4), tags=[rng.choice(WORDS)])
            elif action < 0.96:
                app.edit_ticket(tid, agent, priority=rng.choice(["low", "high", "urgent"]))
            else:
                app.assign_ticket(tid, agent, agent_id=None)
        except DomainError:
            pass
        if drafts and draft_rng.random() < 0.1:
            _draft(app, tid, agent, draft_rng)
        if callable(after_each):
            after_each()
    return ids


def _draft(app: DeskstreamApplication, tid: UUID, agent: Actor, rng: random.Random) -> None:
    draft_id = uuid4()
    try:
        app.request_draft(tid, agent, draft_id=draft_id, language="en")
        app.record_draft(
            tid,
            Actor("drafts", Role.SYSTEM),
            draft_id=draft_id,
            outcome="ready",
            text=sentence(rng),
            reason="",
            source="retrieval",
            model="retrieval-v1",
            prompt_version="retrieval-v1",
            prompt_hash="0" * 64,
            context_version=1,
            prompt_tokens=0,
            completion_tokens=0,
            latency_ms=1,
            cost_usd=0.0,
            cached=False,
        )
        if rng.random() < 0.5:
            app.post_message(tid, agent, body=sentence(rng), draft_id=draft_id)
    except DomainError:
        pass
