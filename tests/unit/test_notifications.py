"""The notification projector's logic: who is told what, and who gets an e-mail."""

from __future__ import annotations

import random
from typing import Any
from uuid import UUID

import pytest

from domain.agent import Agent
from domain.lifecycle import Role
from domain.ticket import Ticket
from projections import notifications as n
from projections.notifications import Notification, TicketFacts
from projections.ports import Envelope
from tests.support.fake_log import FakeEventLog

CUSTOMER, ADA, BOB, ADMIN = "5", "2", "3", "1"


class State:
    """``NotificationsState`` in memory."""

    def __init__(self) -> None:
        self.facts: dict[UUID, TicketFacts] = {}
        self.added: list[Notification] = []

    def ticket(self, ticket_id: UUID) -> TicketFacts | None:
        return self.facts.get(ticket_id)

    def put_ticket(self, facts: TicketFacts) -> None:
        self.facts[facts.id] = facts

    def add(self, notification: Notification) -> None:
        self.added.append(notification)


class Desk:
    """A ticket driven through the real aggregate; every event goes through the projector."""

    def __init__(self) -> None:
        self.state = State()
        self.log = FakeEventLog()
        self.ticket = Ticket.open(
            customer_id=CUSTOMER,
            subject="Printer on fire",
            description="Smoke",
            actor_id=CUSTOMER,
            actor_role=Role.CUSTOMER,
        )
        self.flush()

    def flush(self) -> list[tuple[str, str, bool]]:
        """Project the pending events; (user, kind, e-mail?) of the notifications they made."""
        before = len(self.state.added)
        for envelope in self.log.append(self.ticket):
            n.handle(envelope, self.state)
        return [(x.user_id, x.kind, x.email) for x in self.state.added[before:]]

    @property
    def position(self) -> int:
        return self.log.head()

    def do(self, method: str, **kwargs: Any) -> list[tuple[str, str, bool]]:
        getattr(self.ticket, method)(**kwargs)
        return self.flush()


@pytest.fixture
def desk() -> Desk:
    return Desk()


def test_opening_a_ticket_tells_nobody(desk: Desk) -> None:
    assert desk.state.added == []
    facts = desk.state.facts[desk.ticket.id]
    assert (facts.customer_id, facts.subject, facts.status, facts.agent_id) == (
        CUSTOMER,
        "Printer on fire",
        "open",
        None,
    )


def test_assignment_e_mails_the_agent_and_the_status_change_e_mails_the_customer(
    desk: Desk,
) -> None:
    made = desk.do("assign", agent_id=ADA, actor_id=BOB, actor_role=Role.AGENT)
    # AgentAssigned -> Ada (e-mail); StatusChanged open -> assigned -> the customer (e-mail)
    # and Ada (in-app: the agent hears of status changes by others).
    assert made == [
        (ADA, n.ASSIGNED, True),
        (CUSTOMER, n.STATUS_CHANGED, True),
        (ADA, n.STATUS_CHANGED, False),
    ]


def test_nobody_is_told_about_their_own_action(desk: Desk) -> None:
    # Ada assigns herself: no assignment notice; the customer still hears of the status.
    made = desk.do("assign", agent_id=ADA, actor_id=ADA, actor_role=Role.AGENT)
    assert made == [(CUSTOMER, n.STATUS_CHANGED, True)]
    # Ada replies publicly: the customer is told (e-mail), Ada is not.
    assert desk.do("post_message", author_id=ADA, author_role=Role.AGENT, body="Which one?") == [
        (CUSTOMER, n.PUBLIC_REPLY, True)
    ]
    # The customer resolves their own ticket: only Ada hears of it, in-app.
    assert desk.do(
        "change_status", target="resolved", actor_id=CUSTOMER, actor_role=Role.CUSTOMER
    ) == [(ADA, n.STATUS_CHANGED, False)]


def test_a_customer_reply_tells_the_assigned_agent_in_the_app_only(desk: Desk) -> None:
    desk.do("assign", agent_id=ADA, actor_id=ADMIN, actor_role=Role.ADMIN)
    desk.do("change_status", target="in_progress", actor_id=ADA, actor_role=Role.AGENT)
    desk.do("change_status", target="waiting_on_customer", actor_id=ADA, actor_role=Role.AGENT)
    made = desk.do("post_message", author_id=CUSTOMER, author_role=Role.CUSTOMER, body="Floor 2")
    # The reply, then the automatic move back to In progress (both by the customer).
    assert made == [(ADA, n.PUBLIC_REPLY, False), (ADA, n.STATUS_CHANGED, False)]


def test_internal_notes_reach_only_the_assigned_agent_never_the_customer(desk: Desk) -> None:
    assert (
        desk.do("post_message", author_id=BOB, author_role=Role.AGENT, body="VIP", internal=True)
        == []
    )  # no agent yet: nobody to tell
    desk.do("assign", agent_id=ADA, actor_id=ADMIN, actor_role=Role.ADMIN)
    made = desk.do(
        "post_message", author_id=BOB, author_role=Role.AGENT, body="Enterprise plan", internal=True
    )
    assert made == [(ADA, n.INTERNAL_NOTE, False)]
    assert all(x.user_id != CUSTOMER for x in desk.state.added if x.kind == n.INTERNAL_NOTE)


def test_reassignment_and_unassignment(desk: Desk) -> None:
    desk.do("assign", agent_id=ADA, actor_id=ADMIN, actor_role=Role.ADMIN)
    # Reassigned to Bob by the admin: Bob gets the e-mail, Ada an in-app notice; the status
    # stays Assigned (no status event).
    assert desk.do("assign", agent_id=BOB, actor_id=ADMIN, actor_role=Role.ADMIN) == [
        (BOB, n.ASSIGNED, True),
        (ADA, n.UNASSIGNED, False),
    ]
    # Unassigned by the admin: Bob in-app; back to Open tells the customer (and no agent).
    assert desk.do("unassign", actor_id=ADMIN, actor_role=Role.ADMIN) == [
        (BOB, n.UNASSIGNED, False),
        (CUSTOMER, n.STATUS_CHANGED, True),
    ]
    assert desk.state.facts[desk.ticket.id].agent_id is None


def test_edits_priority_and_agent_events_tell_nobody(desk: Desk) -> None:
    desk.do("assign", agent_id=ADA, actor_id=ADMIN, actor_role=Role.ADMIN)
    assert (
        desk.do("edit", subject="Printer really on fire", actor_id=ADA, actor_role=Role.AGENT) == []
    )
    assert desk.do("change_priority", priority="urgent", actor_id=ADA, actor_role=Role.AGENT) == []
    agent = Agent.register(user_id=ADA, name="Ada")
    agent.set_availability("online")
    for event in agent.collect_events():
        n.handle(Envelope(999, event), desk.state)
    assert desk.state.facts[desk.ticket.id].subject == "Printer really on fire"
    # The next notification carries the new subject.
    desk.do("post_message", author_id=ADA, author_role=Role.AGENT, body="On it")
    assert desk.state.added[-1].payload["ticket_subject"] == "Printer really on fire"


def test_payloads_ids_and_times(desk: Desk) -> None:
    desk.do("assign", agent_id=ADA, actor_id=ADMIN, actor_role=Role.ADMIN)
    desk.do("post_message", author_id=ADA, author_role=Role.AGENT, body="x" * 500)
    reply = desk.state.added[-1]
    assert reply.kind == n.PUBLIC_REPLY
    assert reply.user_id == CUSTOMER
    assert reply.ticket_id == desk.ticket.id
    assert reply.position == desk.position
    assert reply.created_at == desk.ticket.messages[-1].posted_at
    assert reply.id == n.notification_id(desk.position, CUSTOMER, n.PUBLIC_REPLY)
    assert reply.payload == {
        "ticket_subject": "Printer on fire",
        "customer_id": CUSTOMER,
        "message_id": str(desk.ticket.messages[-1].id),
        "actor_id": ADA,
        "actor_role": "agent",
        "excerpt": "x" * n.EXCERPT,
        "version": desk.ticket.version,
    }
    status = next(x for x in desk.state.added if x.kind == n.STATUS_CHANGED)
    assert status.payload["from_status"] == "open"
    assert status.payload["to_status"] == "assigned"
    assert status.payload["reason"] == "agent assigned"


def test_notification_ids_are_stable_and_distinct() -> None:
    a = n.notification_id(7, "5", n.PUBLIC_REPLY)
    assert a == n.notification_id(7, "5", n.PUBLIC_REPLY)
    assert (
        len(
            {
                a,
                n.notification_id(8, "5", n.PUBLIC_REPLY),
                n.notification_id(7, "6", n.PUBLIC_REPLY),
                n.notification_id(7, "5", n.STATUS_CHANGED),
            }
        )
        == 4
    )


def test_only_the_three_template_kinds_are_ever_e_mailed(desk: Desk) -> None:
    desk.do("assign", agent_id=ADA, actor_id=ADMIN, actor_role=Role.ADMIN)
    desk.do("post_message", author_id=BOB, author_role=Role.AGENT, body="n", internal=True)
    desk.do("post_message", author_id=CUSTOMER, author_role=Role.CUSTOMER, body="hi")
    desk.do("assign", agent_id=BOB, actor_id=ADMIN, actor_role=Role.ADMIN)
    desk.do("change_status", target="resolved", actor_id=BOB, actor_role=Role.AGENT)
    mailed = {(x.user_id, x.kind) for x in desk.state.added if x.email}
    assert {kind for _, kind in mailed} <= set(n.EMAIL_KINDS)
    assert mailed == {(ADA, n.ASSIGNED), (BOB, n.ASSIGNED), (CUSTOMER, n.STATUS_CHANGED)}


def test_the_websocket_pushes_exactly_the_stored_notifications() -> None:
    """Random histories: for every event, the push projector's ``notification`` frames go to
    the users who get a stored notification, and each frame names that notification."""
    from domain.errors import DomainError
    from projections import push

    rng = random.Random(3)
    log, state = FakeEventLog(), State()
    agents, tickets = [ADA, BOB, ADMIN], []
    frames = 0
    for _ in range(1500):
        if not tickets or rng.random() < 0.1:
            c = rng.choice([CUSTOMER, "6"])
            t = Ticket.open(
                customer_id=c, subject="s", description="", actor_id=c, actor_role=Role.CUSTOMER
            )
            tickets.append(t)
        else:
            t = rng.choice(tickets)
            who = rng.choice([t.customer_id, *agents])
            role = (
                Role.CUSTOMER
                if who == t.customer_id
                else Role.ADMIN
                if who == ADMIN
                else Role.AGENT
            )
            try:
                match rng.randrange(4):
                    case 0:
                        internal = role is not Role.CUSTOMER and rng.random() < 0.4
                        t.post_message(author_id=who, author_role=role, body="b", internal=internal)
                    case 1:
                        target = rng.choice(
                            ["in_progress", "waiting_on_customer", "resolved", "open"]
                        )
                        t.change_status(target=target, actor_id=who, actor_role=role)
                    case 2:
                        t.assign(agent_id=rng.choice(agents), actor_id=who, actor_role=role)
                    case _:
                        t.unassign(actor_id=who, actor_role=role)
            except DomainError:
                t.collect_events()
                continue
        facts = push.Facts(log)
        for envelope in log.append(t):
            before = len(state.added)
            n.handle(envelope, state)
            stored = sorted((x.user_id, str(x.id), x.kind) for x in state.added[before:])
            pushed = sorted(
                (
                    d.group.removeprefix("user."),
                    d.frame["data"]["notification_id"],
                    d.frame["data"]["notification_kind"],
                )
                for d in push.notification_deliveries(envelope, facts)
            )
            facts.observe(envelope)
            assert pushed == stored, type(envelope.event).__name__
            frames += len(pushed)
    assert frames > 500
