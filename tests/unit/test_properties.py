"""Properties of any ticket history: random commands by random actors never break the lifecycle.

A history is a ticket opened by customer ``c1`` followed by a random sequence of commands,
each by a random actor (including another customer); refused commands are part of the
history. Every history must keep the invariants after every step, and its events must
rebuild the same ticket, directly and after a round trip through the stored-event mapper.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate
from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    JSONTranscoder,
    Mapper,
    UUIDAsHex,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.errors import DomainError
from domain.lifecycle import Priority, Role, Status, Trigger, find_transition
from domain.ticket import Ticket

CUSTOMER = "c1"
AGENTS = ("a1", "a2", "a3")
ACTORS = (
    (CUSTOMER, Role.CUSTOMER),
    (CUSTOMER, Role.CUSTOMER),  # twice: the owner acts more often than anyone else
    ("c2", Role.CUSTOMER),  # someone else's customer: always refused
    ("a1", Role.AGENT),
    ("a2", Role.AGENT),
    ("boss", Role.ADMIN),
    ("auto", Role.SYSTEM),
)
WORKING = {Status.ASSIGNED, Status.IN_PROGRESS, Status.WAITING_ON_CUSTOMER}

Command = tuple[Any, ...]

actors = st.sampled_from(ACTORS)
texts = st.text(alphabet=st.sampled_from("ab Z\n"), max_size=6)  # blank ones are refused
tag_lists = st.lists(st.sampled_from(["billing", "API", "api", " bug ", ""]), max_size=3)
attachments = st.lists(
    st.fixed_dictionaries(
        {"name": st.sampled_from(["log.txt", "shot.png"]), "size": st.integers(0, 10**6)}
    ),
    max_size=2,
)
# Every status is a target, the working ones more often: most status commands are refused,
# and the interesting states (Waiting on Customer, a reopened ticket) lie several moves deep.
TARGETS = [s.value for s in Status] + ["in_progress", "in_progress", "waiting_on_customer"]
status_commands = st.tuples(st.just("status"), actors, st.sampled_from(TARGETS))
commands: st.SearchStrategy[Command] = st.one_of(
    status_commands,
    status_commands,
    status_commands,
    st.tuples(st.just("assign"), actors, st.sampled_from(AGENTS)),
    st.tuples(st.just("unassign"), actors),
    st.tuples(st.just("reply"), actors, texts, st.none() | st.integers(0, 30), attachments),
    st.tuples(st.just("note"), actors, texts),
    st.tuples(st.just("priority"), actors, st.sampled_from([p.value for p in Priority])),
    st.tuples(st.just("edit"), actors, st.none() | texts, st.none() | texts, st.none() | tag_lists),
)
openings = st.fixed_dictionaries(
    {
        "subject": st.sampled_from(["Printer on fire", "Refund", "Login fails"]),
        "description": texts,
        "priority": st.sampled_from([p.value for p in Priority]),
        "tags": tag_lists.map(lambda tags: [t for t in tags if t.strip()]),
        "language": st.sampled_from(["en", "DE"]),
    }
)
histories = st.tuples(openings, st.lists(commands, min_size=10, max_size=50))


def apply(ticket: Ticket, command: Command) -> Trigger | None:
    """Run one command; return the trigger any status change it makes must be a row for."""
    kind, (actor_id, role), *args = command
    if kind == "status":
        ticket.change_status(target=args[0], actor_id=actor_id, actor_role=role)
        return Trigger.COMMAND
    if kind == "assign":
        ticket.assign(agent_id=args[0], actor_id=actor_id, actor_role=role)
        return Trigger.ASSIGN
    if kind == "unassign":
        ticket.unassign(actor_id=actor_id, actor_role=role)
        return Trigger.UNASSIGN
    if kind == "reply":
        body, seen_version, files = args
        ticket.post_message(
            author_id=actor_id,
            author_role=role,
            body=body,
            seen_version=seen_version,
            attachments=files,
        )
        return Trigger.CUSTOMER_REPLY if role is Role.CUSTOMER else None
    if kind == "note":
        ticket.post_message(author_id=actor_id, author_role=role, body=args[0], internal=True)
        return None
    if kind == "priority":
        ticket.change_priority(priority=args[0], actor_id=actor_id, actor_role=role)
        return None
    assert kind == "edit"
    subject, description, tags = args
    ticket.edit(
        actor_id=actor_id, actor_role=role, subject=subject, description=description, tags=tags
    )
    return None


def state(ticket: Ticket) -> dict[str, Any]:
    return {
        "id": ticket.id,
        "version": ticket.version,
        "customer_id": ticket.customer_id,
        "status": ticket.status,
        "priority": ticket.priority,
        "subject": ticket.subject,
        "description": ticket.description,
        "tags": list(ticket.tags),
        "language": ticket.language,
        "assigned_agent_id": ticket.assigned_agent_id,
        "messages": list(ticket.messages),
        "last_public_message_version": ticket.last_public_message_version,
        "last_message_at": ticket.last_message_at,
        "resolved_at": ticket.resolved_at,
        "closed_at": ticket.closed_at,
    }


def check_invariants(ticket: Ticket) -> None:
    if ticket.status in WORKING:
        assert ticket.assigned_agent_id is not None, ticket.status
    if ticket.status is Status.OPEN:
        assert ticket.assigned_agent_id is None


def check_status_changes(
    before: Status, events: list[Aggregate.Event], trigger: Trigger | None
) -> None:
    """Every StatusChanged continues from the previous status along a row allowing its actor."""
    status = before
    for event in events:
        if not isinstance(event, Ticket.StatusChanged):
            continue
        assert trigger is not None, f"{type(event).__name__} from a command that moves nothing"
        assert event.from_status == status.value
        row = find_transition(Status(event.from_status), Status(event.to_status), trigger)
        assert row is not None, (event.from_status, event.to_status, trigger)
        assert Role(event.actor_role) in row.roles
        status = Status(event.to_status)


def play(opening: dict[str, Any], history: list[Command]) -> tuple[Ticket, list[Aggregate.Event]]:
    """Open a ticket and run the commands, checking every step; return it and all its events."""
    ticket = Ticket.open(
        customer_id=CUSTOMER, actor_id=CUSTOMER, actor_role=Role.CUSTOMER, **opening
    )
    events: list[Aggregate.Event] = ticket.collect_events()
    for command in history:
        before = state(ticket)
        try:
            trigger = apply(ticket, command)
        except DomainError:
            # A refused command leaves no trace: nothing pending, nothing changed.
            assert ticket.collect_events() == []
            assert state(ticket) == before
            continue
        new = ticket.collect_events()
        assert before["status"] is not Status.CLOSED, "a closed ticket accepted a command"
        assert ticket.version == before["version"] + len(new)
        check_status_changes(before["status"], new, trigger)
        check_invariants(ticket)
        events += new
    return ticket, events


def replay(events: list[Any]) -> Ticket:
    aggregate = None
    for event in events:
        aggregate = event.mutate(aggregate)
    assert isinstance(aggregate, Ticket)
    return aggregate


SETTINGS = settings(max_examples=200, deadline=None)


@SETTINGS
@given(histories)
def test_any_history_keeps_the_lifecycle_invariants(
    history: tuple[dict[str, Any], list[Command]],
) -> None:
    """``play`` checks each step; here the history as a whole: one chain, nothing after Closed."""
    ticket, events = play(*history)
    assert isinstance(events[0], Ticket.TicketOpened)
    assert [e.originator_version for e in events] == list(range(1, ticket.version + 1))
    status = Status.OPEN
    for event in events[1:]:
        assert status is not Status.CLOSED, f"{type(event).__name__} after closing"
        if isinstance(event, Ticket.StatusChanged):
            assert event.from_status == status.value
            status = Status(event.to_status)
    assert ticket.status is status
    check_invariants(ticket)


@SETTINGS
@given(histories)
def test_replaying_the_events_rebuilds_the_same_ticket(
    history: tuple[dict[str, Any], list[Command]],
) -> None:
    ticket, events = play(*history)
    assert state(replay(events)) == state(ticket)


def make_mapper() -> Mapper[UUID]:
    transcoder = JSONTranscoder()
    transcoder.register(UUIDAsHex())
    transcoder.register(DatetimeAsISO())
    transcoder.register(DecimalAsStr())
    return Mapper(transcoder=transcoder)


@SETTINGS
@given(histories)
def test_stored_events_rebuild_the_same_ticket(
    history: tuple[dict[str, Any], list[Command]],
) -> None:
    ticket, events = play(*history)
    mapper = make_mapper()
    stored = [mapper.to_stored_event(e) for e in events]
    assert all(s.topic.startswith("deskstream.ticket:") for s in stored)
    restored = [mapper.to_domain_event(s) for s in stored]
    assert [type(e) for e in restored] == [type(e) for e in events]
    assert [vars(e) for e in restored] == [vars(e) for e in events]
    assert state(replay(restored)) == state(ticket)
