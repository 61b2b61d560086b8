"""The Ticket aggregate, command by command: the events each command emits and the state after."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.persistence import (
    DatetimeAsISO,
    JSONTranscoder,
    Mapper,
    StoredEvent,
    UUIDAsHex,
)

from domain.errors import (
    ForeignTicketError,
    IllegalTransitionError,
    PermissionDeniedError,
    StaleReplyError,
    TicketClosedError,
    ValidationError,
)
from domain.lifecycle import Priority, Role, Status
from domain.ticket import Message, Ticket

CUSTOMER = "cust-1"
OTHER_CUSTOMER = "cust-2"
AGENT = "agent-1"
OTHER_AGENT = "agent-2"
ADMIN = "admin-1"
SYSTEM = "auto-assign"
TICKET_ID = UUID("00000000-0000-4000-8000-000000000001")


def open_ticket(**overrides: Any) -> Ticket:
    """A freshly opened ticket whose opening event is already collected."""
    kwargs: dict[str, Any] = {
        "customer_id": CUSTOMER,
        "subject": "Printer on fire",
        "description": "Smoke everywhere.",
        "actor_id": CUSTOMER,
        "actor_role": Role.CUSTOMER,
        "ticket_id": TICKET_ID,
        **overrides,
    }
    ticket = Ticket.open(**kwargs)
    ticket.collect_events()
    return ticket


def ticket_in(status: Status, *, assigned: bool = True) -> Ticket:
    """A ticket moved along the table into ``status``; events so far are collected."""
    ticket = open_ticket()
    if status is Status.OPEN:
        return ticket
    if assigned or status is not Status.RESOLVED:
        ticket.assign(agent_id=AGENT, actor_id=AGENT, actor_role=Role.AGENT)
    if status in (Status.IN_PROGRESS, Status.WAITING_ON_CUSTOMER):
        ticket.change_status(target="in_progress", actor_id=AGENT, actor_role=Role.AGENT)
    if status is Status.WAITING_ON_CUSTOMER:
        ticket.change_status(target="waiting_on_customer", actor_id=AGENT, actor_role=Role.AGENT)
    if status in (Status.RESOLVED, Status.CLOSED):
        ticket.change_status(target="resolved", actor_id=AGENT, actor_role=Role.AGENT)
    if status is Status.CLOSED:
        ticket.change_status(target="closed", actor_id=CUSTOMER, actor_role=Role.CUSTOMER)
    ticket.collect_events()
    assert ticket.status is status
    return ticket


def emitted(ticket: Ticket) -> list[type[Any]]:
    return [type(e) for e in ticket.collect_events()]


def say(ticket: Ticket, author_id: str, role: Role, body: str = "Hello", **kwargs: Any) -> None:
    ticket.post_message(author_id=author_id, author_role=role, body=body, **kwargs)


# ---------------------------------------------------------------------------------- opening


def test_open_records_one_event_with_cleaned_values() -> None:
    ticket = Ticket.open(
        customer_id=CUSTOMER,
        subject="  Printer on fire  ",
        description="  Smoke everywhere.\n",
        priority="high",
        tags=["Billing", " billing ", "API"],
        language="EN",
        actor_id=CUSTOMER,
        actor_role=Role.CUSTOMER,
        ticket_id=TICKET_ID,
    )
    events = ticket.collect_events()
    assert [type(e) for e in events] == [Ticket.TicketOpened]
    opened = events[0]
    assert isinstance(opened, Ticket.TicketOpened)
    assert (opened.originator_id, opened.originator_version) == (TICKET_ID, 1)
    assert (opened.customer_id, opened.subject, opened.description) == (
        CUSTOMER,
        "Printer on fire",
        "Smoke everywhere.",
    )
    assert (opened.priority, opened.tags, opened.language) == ("high", ["billing", "api"], "en")
    assert (opened.actor_id, opened.actor_role) == (CUSTOMER, "customer")
    assert ticket.id == TICKET_ID
    assert ticket.version == 1
    assert ticket.status is Status.OPEN
    assert ticket.priority is Priority.HIGH
    assert ticket.assigned_agent_id is None
    assert ticket.messages == []
    assert ticket.last_public_message_version == 0
    assert (ticket.last_message_at, ticket.resolved_at, ticket.closed_at) == (None, None, None)


def test_open_defaults() -> None:
    ticket = Ticket.open(
        customer_id=CUSTOMER,
        subject="Help",
        description="",
        actor_id=CUSTOMER,
        actor_role=Role.CUSTOMER,
    )
    assert isinstance(ticket.id, UUID)
    assert (ticket.priority, ticket.tags, ticket.language, ticket.description) == (
        Priority.MEDIUM,
        [],
        "en",
        "",
    )


def test_staff_open_a_ticket_on_behalf_of_a_customer() -> None:
    ticket = Ticket.open(
        customer_id=CUSTOMER,
        subject="Phoned in",
        description="",
        actor_id=AGENT,
        actor_role=Role.AGENT,
    )
    (opened,) = ticket.collect_events()
    assert isinstance(opened, Ticket.TicketOpened)
    assert (opened.customer_id, opened.actor_id, opened.actor_role) == (CUSTOMER, AGENT, "agent")


def test_a_customer_may_not_open_a_ticket_for_someone_else() -> None:
    with pytest.raises(PermissionDeniedError) as info:
        Ticket.open(
            customer_id=OTHER_CUSTOMER,
            subject="Help",
            description="",
            actor_id=CUSTOMER,
            actor_role=Role.CUSTOMER,
        )
    assert type(info.value) is PermissionDeniedError
    assert info.value.code == "forbidden"


def test_open_requires_a_customer_id() -> None:
    with pytest.raises(ValidationError) as info:
        Ticket.open(
            customer_id="", subject="Help", description="", actor_id=AGENT, actor_role=Role.AGENT
        )
    assert info.value.data == {"field": "customer_id"}


@pytest.mark.parametrize(
    ("overrides", "field", "detail"),
    [
        ({"subject": ""}, "subject", "subject must not be empty."),
        ({"subject": "   \n"}, "subject", "subject must not be empty."),
        ({"subject": None}, "subject", "subject must be a string."),
        ({"subject": 42}, "subject", "subject must be a string."),
        ({"subject": "x" * 201}, "subject", "subject is longer than 200 characters."),
        ({"description": 7}, "description", "description must be a string."),
        (
            {"description": "x" * 20_001},
            "description",
            "description is longer than 20000 characters.",
        ),
        ({"priority": 3}, "priority", "priority must be a string."),
        ({"tags": "billing"}, "tags", "tags must be a list of strings."),
        ({"tags": [f"t{i}" for i in range(21)]}, "tags", "At most 20 tags."),
        ({"tags": [""]}, "tag", "tag must not be empty."),
        ({"tags": [1]}, "tag", "tag must be a string."),
        ({"tags": ["x" * 41]}, "tag", "tag is longer than 40 characters."),
        ({"language": ""}, "language", "language must not be empty."),
        ({"language": "x" * 17}, "language", "language is longer than 16 characters."),
    ],
)
def test_open_rejects_invalid_arguments(overrides: dict[str, Any], field: str, detail: str) -> None:
    with pytest.raises(ValidationError) as info:
        open_ticket(**overrides)
    assert (info.value.detail, info.value.data) == (detail, {"field": field})


def test_open_rejects_an_unknown_priority() -> None:
    with pytest.raises(ValidationError) as info:
        open_ticket(priority="critical")
    assert info.value.detail == (
        "Unknown priority 'critical'; expected one of low, medium, high, urgent."
    )


def test_open_accepts_the_limits() -> None:
    ticket = open_ticket(subject="x" * 200, tags=[f"t{i}" for i in range(20)])
    assert (len(ticket.subject), len(ticket.tags)) == (200, 20)


# ---------------------------------------------------------------------------------- messages


def test_a_public_message_is_appended_with_its_version() -> None:
    ticket = ticket_in(Status.ASSIGNED)  # version 3
    message_id = UUID("00000000-0000-4000-8000-0000000000aa")
    say(ticket, AGENT, Role.AGENT, "  On my way.  ", message_id=message_id)
    events = ticket.collect_events()
    assert [type(e) for e in events] == [Ticket.MessagePosted]
    assert ticket.version == 4
    assert ticket.status is Status.ASSIGNED
    assert ticket.messages == [
        Message(
            id=message_id,
            version=4,
            author_id=AGENT,
            author_role="agent",
            body="On my way.",
            internal=False,
            attachments=(),
            posted_at=events[0].timestamp,
        )
    ]
    assert ticket.last_public_message_version == 4
    assert ticket.last_message_at == events[0].timestamp
    assert ticket.public_messages_after(3) == ticket.messages
    assert ticket.public_messages_after(4) == []


def test_an_internal_note_is_kept_but_not_public() -> None:
    ticket = ticket_in(Status.ASSIGNED)
    say(ticket, AGENT, Role.AGENT, "Customer is on the legacy plan.", internal=True)
    assert emitted(ticket) == [Ticket.MessagePosted]
    (note,) = ticket.messages
    assert (note.internal, note.version) == (True, 4)
    assert ticket.last_public_message_version == 0
    assert ticket.public_messages_after(0) == []
    assert ticket.visible_messages(include_internal=False) == []
    assert ticket.visible_messages(include_internal=True) == [note]


def test_a_customer_may_not_write_an_internal_note() -> None:
    ticket = open_ticket()
    with pytest.raises(PermissionDeniedError) as info:
        say(ticket, CUSTOMER, Role.CUSTOMER, internal=True)
    assert info.value.detail == "Only agents and admins write internal notes."
    assert (emitted(ticket), ticket.version, ticket.messages) == ([], 1, [])


@pytest.mark.parametrize("body", ["", "   ", None, 5, "x" * 20_001])
def test_a_message_needs_a_body(body: object) -> None:
    ticket = open_ticket()
    with pytest.raises(ValidationError) as info:
        ticket.post_message(author_id=CUSTOMER, author_role=Role.CUSTOMER, body=body)
    assert info.value.data == {"field": "body"}
    assert (emitted(ticket), ticket.version) == ([], 1)


def test_attachment_metadata_is_cleaned_and_defaulted() -> None:
    ticket = open_ticket()
    say(
        ticket,
        CUSTOMER,
        Role.CUSTOMER,
        attachments=[
            {"name": " error.log ", "content_type": "text/plain", "size": 1200},
            {"name": "photo.jpg", "extra": "dropped"},
        ],
    )
    (event,) = ticket.collect_events()
    expected = [
        {"name": "error.log", "content_type": "text/plain", "size": 1200},
        {"name": "photo.jpg", "content_type": "application/octet-stream", "size": 0},
    ]
    assert event.attachments == expected
    assert list(ticket.messages[0].attachments) == expected
    assert ticket.messages[0].as_dict()["attachments"] == expected


LIST, NAME, TYPE = (
    {"field": "attachments"},
    {"field": "attachment name"},
    {"field": "content_type"},
)


@pytest.mark.parametrize(
    ("attachments", "detail", "data"),
    [
        ("file.txt", "attachments must be a list.", LIST),
        ([{"name": f"{i}"} for i in range(21)], "At most 20 attachments.", LIST),
        (["file.txt"], "Each attachment is an object.", LIST),
        ([{}], "attachment name must be a string.", NAME),
        ([{"name": " "}], "attachment name must not be empty.", NAME),
        ([{"name": "x" * 256}], "attachment name is longer than 255 characters.", NAME),
        ([{"name": "a", "content_type": ""}], "content_type must not be empty.", TYPE),
        ([{"name": "a", "content_type": 1}], "content_type must be a string.", TYPE),
        ([{"name": "a", "size": -1}], "attachment size must be a non-negative integer.", LIST),
        ([{"name": "a", "size": 1.5}], "attachment size must be a non-negative integer.", LIST),
        ([{"name": "a", "size": "12"}], "attachment size must be a non-negative integer.", LIST),
        ([{"name": "a", "size": True}], "attachment size must be a non-negative integer.", LIST),
    ],
)
def test_invalid_attachment_metadata_is_refused(
    attachments: object, detail: str, data: dict[str, str]
) -> None:
    ticket = open_ticket()
    with pytest.raises(ValidationError) as info:
        say(ticket, CUSTOMER, Role.CUSTOMER, attachments=attachments)
    assert (info.value.detail, info.value.data) == (detail, data)
    assert (emitted(ticket), ticket.version) == ([], 1)


def test_twenty_attachments_are_accepted() -> None:
    ticket = open_ticket()
    say(ticket, CUSTOMER, Role.CUSTOMER, attachments=[{"name": f"{i}.txt"} for i in range(20)])
    assert len(ticket.messages[0].attachments) == 20


# ---------------------------------------------------------------------------------- customer reply


def test_a_customer_reply_while_waiting_puts_the_ticket_back_in_progress() -> None:
    ticket = ticket_in(Status.WAITING_ON_CUSTOMER)
    say(ticket, CUSTOMER, Role.CUSTOMER, "Here is the log.")
    events = ticket.collect_events()
    assert [type(e) for e in events] == [Ticket.MessagePosted, Ticket.StatusChanged]
    changed = events[1]
    assert (changed.from_status, changed.to_status) == ("waiting_on_customer", "in_progress")
    assert (changed.actor_id, changed.actor_role, changed.reason) == (
        CUSTOMER,
        "customer",
        "customer replied",
    )
    assert (ticket.status, ticket.assigned_agent_id) == (Status.IN_PROGRESS, AGENT)


@pytest.mark.parametrize(
    ("assigned", "reopened_as", "agent"),
    [(True, Status.IN_PROGRESS, AGENT), (False, Status.OPEN, None)],
)
def test_a_customer_reply_reopens_a_resolved_ticket(
    assigned: bool, reopened_as: Status, agent: str | None
) -> None:
    ticket = ticket_in(Status.RESOLVED, assigned=assigned)
    say(ticket, CUSTOMER, Role.CUSTOMER, "It broke again.")
    events = ticket.collect_events()
    assert [type(e) for e in events] == [Ticket.MessagePosted, Ticket.StatusChanged]
    assert (events[1].from_status, events[1].to_status) == ("resolved", reopened_as.value)
    assert (ticket.status, ticket.assigned_agent_id) == (reopened_as, agent)


@pytest.mark.parametrize("status", [Status.OPEN, Status.ASSIGNED, Status.IN_PROGRESS])
def test_a_customer_reply_in_other_states_changes_no_status(status: Status) -> None:
    ticket = ticket_in(status)
    say(ticket, CUSTOMER, Role.CUSTOMER)
    assert emitted(ticket) == [Ticket.MessagePosted]
    assert ticket.status is status


@pytest.mark.parametrize("status", [Status.WAITING_ON_CUSTOMER, Status.RESOLVED])
@pytest.mark.parametrize(
    ("author", "role", "internal"),
    [(AGENT, Role.AGENT, False), (AGENT, Role.AGENT, True), (ADMIN, Role.ADMIN, False)],
)
def test_staff_messages_change_no_status(
    status: Status, author: str, role: Role, internal: bool
) -> None:
    ticket = ticket_in(status)
    say(ticket, author, role, internal=internal)
    assert emitted(ticket) == [Ticket.MessagePosted]
    assert ticket.status is status


# ---------------------------------------------------------------------------------- stale replies


@pytest.fixture
def busy_ticket() -> Ticket:
    """v1 opened; v2 agent public; v3 agent internal; v4 customer public; v5 admin public.
    Its customer counts public events only: their versions 1, 2, 3, 4 are v1, v2, v4, v5."""
    ticket = open_ticket()
    say(ticket, AGENT, Role.AGENT, "Which printer?")
    say(ticket, AGENT, Role.AGENT, "Probably the old one.", internal=True)
    say(ticket, CUSTOMER, Role.CUSTOMER, "The one on floor 2.")
    say(ticket, ADMIN, Role.ADMIN, "Facilities are on it.")
    ticket.collect_events()
    assert ticket.version == 5
    return ticket


def test_a_stale_reply_is_refused_with_the_newer_public_messages(busy_ticket: Ticket) -> None:
    # The customer's versions (and the messages' in the answer) count public events only.
    with pytest.raises(StaleReplyError) as info:
        say(busy_ticket, CUSTOMER, Role.CUSTOMER, "Any news?", seen_version=1)
    newer = [m.as_dict() for m in busy_ticket.messages if m.version in (2, 5)]
    assert [m["body"] for m in newer] == ["Which printer?", "Facilities are on it."]
    newer[1]["version"] = 4  # v5 is the customer's 4th public version
    assert info.value.data == {"current_version": 4, "messages": newer}
    assert info.value.code == "stale_reply"
    assert (emitted(busy_ticket), busy_ticket.version, len(busy_ticket.messages)) == ([], 5, 4)


def test_only_public_messages_by_others_make_a_reply_stale(busy_ticket: Ticket) -> None:
    with pytest.raises(StaleReplyError) as info:
        say(busy_ticket, CUSTOMER, Role.CUSTOMER, "Any news?", seen_version=3)  # v4
    assert [m["version"] for m in info.value.data["messages"]] == [4]  # v5


def test_own_messages_and_internal_notes_do_not_make_a_reply_stale(busy_ticket: Ticket) -> None:
    # After v2 came an internal note (v3) and the customer's own message (v4): nothing new.
    ticket = open_ticket()
    say(ticket, AGENT, Role.AGENT, "Which printer?")
    say(ticket, AGENT, Role.AGENT, "Note.", internal=True)
    say(ticket, CUSTOMER, Role.CUSTOMER, "Floor 2.")
    ticket.collect_events()
    say(ticket, CUSTOMER, Role.CUSTOMER, "Also floor 3.", seen_version=2)
    assert emitted(ticket) == [Ticket.MessagePosted]
    # The newest public message by someone else is v5, the customer's 4: having seen it is
    # enough.
    say(busy_ticket, CUSTOMER, Role.CUSTOMER, "Thanks.", seen_version=4)
    assert emitted(busy_ticket) == [Ticket.MessagePosted]


def test_staff_replies_are_checked_for_staleness_too(busy_ticket: Ticket) -> None:
    with pytest.raises(StaleReplyError) as info:
        say(busy_ticket, AGENT, Role.AGENT, "Found it.", seen_version=2)
    assert [m["version"] for m in info.value.data["messages"]] == [4, 5]


def test_internal_notes_and_replies_without_seen_version_are_never_stale(
    busy_ticket: Ticket,
) -> None:
    say(busy_ticket, AGENT, Role.AGENT, "FYI", internal=True, seen_version=1)
    say(busy_ticket, CUSTOMER, Role.CUSTOMER, "Hello?")
    assert emitted(busy_ticket) == [Ticket.MessagePosted, Ticket.MessagePosted]


# ---------------------------------------------------------------------------------- assignment


def test_assigning_an_open_ticket_moves_it_to_assigned() -> None:
    ticket = open_ticket()
    ticket.assign(agent_id=AGENT, actor_id=ADMIN, actor_role=Role.ADMIN)
    events = ticket.collect_events()
    assert [type(e) for e in events] == [Ticket.AgentAssigned, Ticket.StatusChanged]
    assigned, changed = events
    assert (assigned.agent_id, assigned.previous_agent_id, assigned.policy, assigned.reason) == (
        AGENT,
        None,
        "manual",
        "assigned by admin",
    )
    assert (assigned.actor_id, assigned.actor_role) == (ADMIN, "admin")
    assert (changed.from_status, changed.to_status, changed.reason) == (
        "open",
        "assigned",
        "agent assigned",
    )
    assert (ticket.status, ticket.assigned_agent_id, ticket.version) == (
        Status.ASSIGNED,
        AGENT,
        3,
    )


def test_automation_assigns_with_its_policy() -> None:
    ticket = open_ticket()
    ticket.assign(
        agent_id=AGENT,
        actor_id=SYSTEM,
        actor_role=Role.SYSTEM,
        policy="least_loaded",
        reason="fewest open tickets",
    )
    assigned, changed = ticket.collect_events()
    assert (assigned.policy, assigned.reason, changed.actor_role) == (
        "least_loaded",
        "fewest open tickets",
        "system",
    )
    assert ticket.status is Status.ASSIGNED


@pytest.mark.parametrize(
    "status",
    [Status.ASSIGNED, Status.IN_PROGRESS, Status.WAITING_ON_CUSTOMER, Status.RESOLVED],
)
def test_reassigning_keeps_the_status(status: Status) -> None:
    ticket = ticket_in(status)
    ticket.assign(agent_id=OTHER_AGENT, actor_id=AGENT, actor_role=Role.AGENT)
    events = ticket.collect_events()
    assert [type(e) for e in events] == [Ticket.AgentAssigned]
    assert (events[0].agent_id, events[0].previous_agent_id) == (OTHER_AGENT, AGENT)
    assert (ticket.status, ticket.assigned_agent_id) == (status, OTHER_AGENT)


def test_assigning_a_resolved_ticket_without_agent_keeps_it_resolved() -> None:
    ticket = ticket_in(Status.RESOLVED, assigned=False)
    ticket.assign(agent_id=AGENT, actor_id=AGENT, actor_role=Role.AGENT)
    assert emitted(ticket) == [Ticket.AgentAssigned]
    assert (ticket.status, ticket.assigned_agent_id) == (Status.RESOLVED, AGENT)


@pytest.mark.parametrize(
    ("agent_id", "actor_role", "error", "detail"),
    [
        (
            AGENT,
            Role.CUSTOMER,
            PermissionDeniedError,
            "Only agents, admins and automation assign tickets.",
        ),
        ("", Role.AGENT, ValidationError, "agent_id is required."),
        (AGENT, Role.AGENT, ValidationError, "The ticket is already assigned to this agent."),
    ],
)
def test_refused_assignments(
    agent_id: str, actor_role: Role, error: type[Exception], detail: str
) -> None:
    ticket = ticket_in(Status.ASSIGNED)
    actor_id = CUSTOMER if actor_role is Role.CUSTOMER else AGENT
    with pytest.raises(error) as info:
        ticket.assign(agent_id=agent_id, actor_id=actor_id, actor_role=actor_role)
    assert (type(info.value), str(info.value)) == (error, detail)
    assert (emitted(ticket), ticket.version, ticket.assigned_agent_id) == ([], 3, AGENT)


@pytest.mark.parametrize(
    "status", [Status.ASSIGNED, Status.IN_PROGRESS, Status.WAITING_ON_CUSTOMER]
)
def test_unassigning_a_working_ticket_returns_it_to_open(status: Status) -> None:
    ticket = ticket_in(status)
    ticket.unassign(actor_id=ADMIN, actor_role=Role.ADMIN)
    events = ticket.collect_events()
    assert [type(e) for e in events] == [Ticket.AgentUnassigned, Ticket.StatusChanged]
    assert (events[0].agent_id, events[0].reason) == (AGENT, "unassigned by admin")
    assert (events[1].from_status, events[1].to_status, events[1].reason) == (
        status.value,
        "open",
        "agent unassigned",
    )
    assert (ticket.status, ticket.assigned_agent_id) == (Status.OPEN, None)


def test_unassigning_a_resolved_ticket_keeps_it_resolved() -> None:
    ticket = ticket_in(Status.RESOLVED)
    ticket.unassign(actor_id=SYSTEM, actor_role=Role.SYSTEM, reason="agent left")
    events = ticket.collect_events()
    assert [type(e) for e in events] == [Ticket.AgentUnassigned]
    assert events[0].reason == "agent left"
    assert (ticket.status, ticket.assigned_agent_id) == (Status.RESOLVED, None)


def test_refused_unassignments() -> None:
    ticket = open_ticket()
    with pytest.raises(ValidationError) as refused:
        ticket.unassign(actor_id=AGENT, actor_role=Role.AGENT)
    assert refused.value.detail == "The ticket has no assigned agent."
    assigned = ticket_in(Status.ASSIGNED)
    with pytest.raises(PermissionDeniedError) as denied:
        assigned.unassign(actor_id=CUSTOMER, actor_role=Role.CUSTOMER)
    assert denied.value.detail == "Only agents, admins and automation unassign tickets."
    assert (emitted(ticket), emitted(assigned), assigned.assigned_agent_id) == ([], [], AGENT)


# ---------------------------------------------------------------------------------- status


def test_a_status_command_records_who_and_why() -> None:
    ticket = ticket_in(Status.ASSIGNED)
    ticket.change_status(
        target="in_progress", actor_id=AGENT, actor_role=Role.AGENT, reason="  starting  "
    )
    events = ticket.collect_events()
    assert [type(e) for e in events] == [Ticket.StatusChanged]
    assert (events[0].from_status, events[0].to_status) == ("assigned", "in_progress")
    assert (events[0].actor_id, events[0].actor_role, events[0].reason) == (
        AGENT,
        "agent",
        "starting",
    )
    assert (ticket.status, ticket.version) == (Status.IN_PROGRESS, 4)


def test_resolving_and_closing_record_their_times() -> None:
    ticket = ticket_in(Status.IN_PROGRESS)
    ticket.change_status(target="resolved", actor_id=CUSTOMER, actor_role=Role.CUSTOMER)
    ticket.change_status(target="closed", actor_id=SYSTEM, actor_role=Role.SYSTEM)
    resolved, closed = ticket.collect_events()
    assert (ticket.resolved_at, ticket.closed_at) == (resolved.timestamp, closed.timestamp)
    assert ticket.status is Status.CLOSED


@pytest.mark.parametrize(
    ("assigned", "target", "reopened_as"),
    [
        (True, "in_progress", Status.IN_PROGRESS),
        (True, "open", Status.IN_PROGRESS),
        (False, "in_progress", Status.OPEN),
        (False, "open", Status.OPEN),
    ],
)
def test_reopening_a_resolved_ticket_depends_on_the_assignment(
    assigned: bool, target: str, reopened_as: Status
) -> None:
    ticket = ticket_in(Status.RESOLVED, assigned=assigned)
    ticket.change_status(target=target, actor_id=CUSTOMER, actor_role=Role.CUSTOMER)
    events = ticket.collect_events()
    assert [type(e) for e in events] == [Ticket.StatusChanged]
    assert (events[0].from_status, events[0].to_status) == ("resolved", reopened_as.value)
    assert (ticket.status, ticket.assigned_agent_id) == (reopened_as, AGENT if assigned else None)


@pytest.mark.parametrize(
    ("status", "target", "role"),
    [
        (Status.OPEN, "in_progress", Role.AGENT),  # nobody is assigned
        (Status.OPEN, "assigned", Role.ADMIN),  # assignment is its own command
        (Status.IN_PROGRESS, "open", Role.AGENT),  # that is an unassignment
        (Status.WAITING_ON_CUSTOMER, "in_progress", Role.CUSTOMER),  # customers reply instead
        (Status.IN_PROGRESS, "waiting_on_customer", Role.CUSTOMER),
        (Status.IN_PROGRESS, "closed", Role.AGENT),  # only admins close unresolved tickets
        (Status.RESOLVED, "waiting_on_customer", Role.AGENT),
        (Status.ASSIGNED, "assigned", Role.AGENT),  # already there
    ],
)
def test_moves_outside_the_table_are_refused(status: Status, target: str, role: Role) -> None:
    ticket = ticket_in(status)
    version = ticket.version
    actor_id = {Role.CUSTOMER: CUSTOMER, Role.AGENT: AGENT, Role.ADMIN: ADMIN}[role]
    with pytest.raises(IllegalTransitionError) as info:
        ticket.change_status(target=target, actor_id=actor_id, actor_role=role)
    assert type(info.value) is IllegalTransitionError
    assert info.value.data["source"] == status.value
    assert (emitted(ticket), ticket.version, ticket.status) == ([], version, status)


@pytest.mark.parametrize(
    "status", [Status.OPEN, Status.ASSIGNED, Status.IN_PROGRESS, Status.WAITING_ON_CUSTOMER]
)
def test_an_admin_may_close_any_ticket(status: Status) -> None:
    ticket = ticket_in(status)
    ticket.change_status(target="closed", actor_id=ADMIN, actor_role=Role.ADMIN, reason="spam")
    (event,) = ticket.collect_events()
    assert (event.from_status, event.to_status, event.reason) == (status.value, "closed", "spam")
    assert ticket.status is Status.CLOSED


def test_an_unknown_status_is_a_validation_error() -> None:
    ticket = open_ticket()
    with pytest.raises(ValidationError) as info:
        ticket.change_status(target="done", actor_id=ADMIN, actor_role=Role.ADMIN)
    assert info.value.detail == (
        "Unknown status 'done'; expected one of "
        "open, assigned, in_progress, waiting_on_customer, resolved, closed."
    )
    assert emitted(ticket) == []


# ---------------------------------------------------------------------------------- priority


def test_changing_the_priority() -> None:
    ticket = open_ticket()
    ticket.change_priority(priority="urgent", actor_id=AGENT, actor_role=Role.AGENT)
    events = ticket.collect_events()
    assert [type(e) for e in events] == [Ticket.PriorityChanged]
    assert (events[0].from_priority, events[0].to_priority, events[0].actor_id) == (
        "medium",
        "urgent",
        AGENT,
    )
    assert (ticket.priority, ticket.version) == (Priority.URGENT, 2)


def test_setting_the_same_priority_emits_nothing() -> None:
    ticket = open_ticket(priority="high")
    ticket.change_priority(priority="high", actor_id=ADMIN, actor_role=Role.ADMIN)
    assert (emitted(ticket), ticket.version) == ([], 1)


@pytest.mark.parametrize(
    ("priority", "role", "error"),
    [
        ("high", Role.CUSTOMER, PermissionDeniedError),
        ("critical", Role.AGENT, ValidationError),
        (None, Role.AGENT, ValidationError),
    ],
)
def test_refused_priority_changes(priority: object, role: Role, error: type[Exception]) -> None:
    ticket = open_ticket()
    actor_id = CUSTOMER if role is Role.CUSTOMER else AGENT
    with pytest.raises(error):
        ticket.change_priority(priority=priority, actor_id=actor_id, actor_role=role)
    assert (emitted(ticket), ticket.priority) == ([], Priority.MEDIUM)


# ---------------------------------------------------------------------------------- edit


def test_editing_records_the_full_new_values() -> None:
    ticket = open_ticket(tags=["printer"])
    ticket.edit(actor_id=AGENT, actor_role=Role.AGENT, subject=" Printer smoking ", tags=["HW"])
    events = ticket.collect_events()
    assert [type(e) for e in events] == [Ticket.TicketEdited]
    assert (events[0].subject, events[0].description, events[0].tags) == (
        "Printer smoking",
        "Smoke everywhere.",
        ["hw"],
    )
    assert (ticket.subject, ticket.description, ticket.tags, ticket.version) == (
        "Printer smoking",
        "Smoke everywhere.",
        ["hw"],
        2,
    )


def test_a_customer_may_edit_subject_and_description() -> None:
    ticket = open_ticket()
    ticket.edit(actor_id=CUSTOMER, actor_role=Role.CUSTOMER, description="")
    assert emitted(ticket) == [Ticket.TicketEdited]
    assert ticket.description == ""


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"subject": "  Printer on fire "},
        {"description": "Smoke everywhere.  "},
        {"tags": ["Printer", "printer"]},
        {"subject": "Printer on fire", "description": "Smoke everywhere.", "tags": ["printer"]},
    ],
)
def test_an_edit_that_changes_nothing_emits_nothing(changes: dict[str, Any]) -> None:
    ticket = open_ticket(tags=["printer"])
    ticket.edit(actor_id=AGENT, actor_role=Role.AGENT, **changes)
    assert (emitted(ticket), ticket.version) == ([], 1)


def test_refused_edits() -> None:
    ticket = open_ticket(tags=["printer"])
    with pytest.raises(PermissionDeniedError) as denied:
        ticket.edit(actor_id=CUSTOMER, actor_role=Role.CUSTOMER, tags=["printer"])
    assert denied.value.detail == "Only agents and admins set tags."
    with pytest.raises(ValidationError) as invalid:
        ticket.edit(actor_id=AGENT, actor_role=Role.AGENT, subject=" ", tags=["new"])
    assert invalid.value.data == {"field": "subject"}
    assert (emitted(ticket), ticket.subject, ticket.tags) == ([], "Printer on fire", ["printer"])


# ---------------------------------------------------------------------------------- closed, foreign

Command = Callable[[Ticket, str, Role], None]

COMMANDS: dict[str, Command] = {
    "public message": lambda t, a, r: say(t, a, r),
    "internal note": lambda t, a, r: say(t, a, r, internal=True),
    "reopen": lambda t, a, r: t.change_status(target="in_progress", actor_id=a, actor_role=r),
    "resolve": lambda t, a, r: t.change_status(target="resolved", actor_id=a, actor_role=r),
    "close": lambda t, a, r: t.change_status(target="closed", actor_id=a, actor_role=r),
    "open": lambda t, a, r: t.change_status(target="open", actor_id=a, actor_role=r),
    "assign": lambda t, a, r: t.assign(agent_id=OTHER_AGENT, actor_id=a, actor_role=r),
    "unassign": lambda t, a, r: t.unassign(actor_id=a, actor_role=r),
    "priority": lambda t, a, r: t.change_priority(priority="urgent", actor_id=a, actor_role=r),
    "edit": lambda t, a, r: t.edit(actor_id=a, actor_role=r, subject="New subject"),
}


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(
    ("actor_id", "role"),
    [(CUSTOMER, Role.CUSTOMER), (AGENT, Role.AGENT), (ADMIN, Role.ADMIN), (SYSTEM, Role.SYSTEM)],
)
def test_closed_is_final(command: str, actor_id: str, role: Role) -> None:
    ticket = ticket_in(Status.CLOSED)
    with pytest.raises(TicketClosedError) as info:
        COMMANDS[command](ticket, actor_id, role)
    assert (info.value.code, info.value.data) == ("ticket_closed", {"status": "closed"})
    assert (emitted(ticket), ticket.version, ticket.status) == ([], 5, Status.CLOSED)


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("status", list(Status))
def test_another_customers_ticket_looks_like_no_ticket(command: str, status: Status) -> None:
    # Checked before anything else, closed included: the answer must not reveal the ticket.
    ticket = ticket_in(status)
    version = ticket.version
    with pytest.raises(ForeignTicketError) as info:
        COMMANDS[command](ticket, OTHER_CUSTOMER, Role.CUSTOMER)
    assert (info.value.code, info.value.detail) == ("not_found", "No such ticket.")
    assert (emitted(ticket), ticket.version, ticket.status) == ([], version, status)


# ---------------------------------------------------------------------------------- stored shape


def test_a_v1_ticket_opened_event_is_upcast_to_english() -> None:
    transcoder = JSONTranscoder()
    transcoder.register(UUIDAsHex())
    transcoder.register(DatetimeAsISO())
    mapper: Mapper[UUID] = Mapper(transcoder=transcoder)
    stored = mapper.to_stored_event(
        Ticket.open(
            customer_id=CUSTOMER,
            subject="Help",
            description="",
            language="de",
            actor_id=CUSTOMER,
            actor_role=Role.CUSTOMER,
            ticket_id=TICKET_ID,
        ).collect_events()[0]
    )
    assert stored.topic == "deskstream.ticket:TicketOpened"
    v1_state = transcoder.decode(stored.state)
    assert (v1_state.pop("class_version"), v1_state.pop("language")) == (2, "de")
    v1 = StoredEvent(
        originator_id=stored.originator_id,
        originator_version=1,
        topic=stored.topic,
        state=transcoder.encode(v1_state),
    )
    event = mapper.to_domain_event(v1)
    assert isinstance(event, Ticket.TicketOpened)
    ticket = event.mutate(None)
    assert isinstance(ticket, Ticket)
    assert (ticket.id, ticket.language, ticket.subject) == (TICKET_ID, "en", "Help")


# ------------------------------------------------------------------------------ copying


def test_a_deep_copy_is_independent_but_shares_the_frozen_messages() -> None:
    """The aggregate cache hands out deep copies: deciding on one must not touch another."""
    import copy

    ticket = ticket_in(Status.IN_PROGRESS)
    say(ticket, CUSTOMER, Role.CUSTOMER, "first")
    ticket.collect_events()

    clone = copy.deepcopy(ticket)
    say(clone, AGENT, Role.AGENT, "only in the copy")
    clone.change_status(target="resolved", actor_id=AGENT, actor_role=Role.AGENT)
    clone.tags.append("copy-only")
    clone.collect_events()

    assert [m.body for m in ticket.messages] == ["first"]
    assert ticket.status is Status.IN_PROGRESS
    assert "copy-only" not in ticket.tags
    assert ticket.version == clone.version - 2
    assert clone.messages[0] is ticket.messages[0]  # shared, not copied
    assert [m.body for m in clone.messages] == ["first", "only in the copy"]


def test_the_customer_counts_public_events_only(busy_ticket: Ticket) -> None:
    # v3 (an internal note) leaves no gap: the customer's versions are 1, 2, 3, 4.
    assert (busy_ticket.public_versions, busy_ticket.public_version) == ([1, 2, 4, 5], 4)
    assert [busy_ticket.public_ordinal(v) for v in range(6)] == [0, 1, 2, 2, 3, 4]
    assert [busy_ticket.real_version(n) for n in range(6)] == [0, 1, 2, 4, 5, 5]
    say(busy_ticket, AGENT, Role.AGENT, "Another note.", internal=True)
    assert (busy_ticket.version, busy_ticket.public_version) == (6, 4)


def test_the_public_count_replays_from_the_events() -> None:
    ticket = Ticket.open(
        customer_id=CUSTOMER, subject="s", description="d", actor_id=CUSTOMER,
        actor_role=Role.CUSTOMER,
    )  # fmt: skip
    say(ticket, AGENT, Role.AGENT, "Note.", internal=True)
    say(ticket, AGENT, Role.AGENT, "Hello.")
    ticket.change_status(target="resolved", actor_id=AGENT, actor_role=Role.AGENT)
    replayed: Any = None
    for event in ticket.collect_events():
        replayed = event.mutate(replayed)
    assert replayed.public_versions == ticket.public_versions == [1, 3, 4]
