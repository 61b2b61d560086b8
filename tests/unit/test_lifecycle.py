"""The lifecycle table: exactly its rows are allowed, for exactly their roles; the doc matches."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from domain.errors import IllegalTransitionError, TicketClosedError, ValidationError
from domain.lifecycle import (
    TRANSITIONS,
    Priority,
    Role,
    Status,
    Transition,
    Trigger,
    check_transition,
    find_transition,
    parse_priority,
    parse_role,
    parse_status,
    render_markdown,
)

ROOT = Path(__file__).resolve().parents[2]
KEYS = {(t.source, t.target, t.trigger) for t in TRANSITIONS}
ALL_MOVES = list(itertools.product(Status, Status, Trigger))


def row_id(t: Transition) -> str:
    return f"{t.source}->{t.target} by {t.trigger}"


def test_each_move_has_at_most_one_row() -> None:
    assert len(KEYS) == len(TRANSITIONS) == 21


@pytest.mark.parametrize("row", TRANSITIONS, ids=row_id)
def test_a_row_allows_its_roles(row: Transition) -> None:
    for role in row.roles:
        assert check_transition(row.source, row.target, row.trigger, role) is row
    assert find_transition(row.source, row.target, row.trigger) is row


@pytest.mark.parametrize("row", TRANSITIONS, ids=row_id)
def test_a_row_refuses_other_roles(row: Transition) -> None:
    for role in set(Role) - row.roles:
        with pytest.raises(IllegalTransitionError) as info:
            check_transition(row.source, row.target, row.trigger, role)
        assert type(info.value) is IllegalTransitionError
        assert info.value.data == {
            "source": row.source.value,
            "target": row.target.value,
            "role": role.value,
        }
        assert info.value.detail == (
            f"{'An' if role.value[0] in 'aeiou' else 'A'} {role.value} may not move a ticket "
            f"from {row.source.label} to {row.target.label}."
        )


def test_every_move_outside_the_table_is_refused_for_everyone() -> None:
    refused = [
        (source, target, trigger)
        for source, target, trigger in ALL_MOVES
        if source is not Status.CLOSED and (source, target, trigger) not in KEYS
    ]
    assert len(refused) == 5 * 6 * 4 - 21
    for (source, target, trigger), role in itertools.product(refused, Role):
        with pytest.raises(IllegalTransitionError) as info:
            check_transition(source, target, trigger, role)
        assert type(info.value) is IllegalTransitionError
        assert info.value.data == {"source": source.value, "target": target.value}
        assert find_transition(source, target, trigger) is None


def test_refusal_messages() -> None:
    with pytest.raises(IllegalTransitionError) as info:
        check_transition(Status.OPEN, Status.IN_PROGRESS, Trigger.COMMAND, Role.ADMIN)
    assert info.value.detail == "A ticket cannot move from Open to In progress by status command."
    with pytest.raises(IllegalTransitionError) as info:
        check_transition(Status.RESOLVED, Status.RESOLVED, Trigger.COMMAND, Role.ADMIN)
    assert info.value.detail == "The ticket is already Resolved."
    assert info.value.code == "illegal_transition"


@pytest.mark.parametrize("target", list(Status))
def test_nothing_leaves_closed(target: Status) -> None:
    for trigger, role in itertools.product(Trigger, Role):
        with pytest.raises(TicketClosedError) as info:
            check_transition(Status.CLOSED, target, trigger, role)
        assert (info.value.code, info.value.data) == ("ticket_closed", {"status": "closed"})


def test_the_table_keeps_the_assignment_invariant() -> None:
    """Only assignment enters Assigned; only unassignment or a reopen without agent enters Open."""
    into_assigned = {t.trigger for t in TRANSITIONS if t.target is Status.ASSIGNED}
    assert into_assigned == {Trigger.ASSIGN}
    into_open = {(t.source, t.trigger) for t in TRANSITIONS if t.target is Status.OPEN}
    assert into_open == {
        (Status.ASSIGNED, Trigger.UNASSIGN),
        (Status.IN_PROGRESS, Trigger.UNASSIGN),
        (Status.WAITING_ON_CUSTOMER, Trigger.UNASSIGN),
        (Status.RESOLVED, Trigger.CUSTOMER_REPLY),
        (Status.RESOLVED, Trigger.COMMAND),
    }
    assert {t.roles for t in TRANSITIONS if t.trigger is Trigger.CUSTOMER_REPLY} == {
        frozenset({Role.CUSTOMER})
    }


def test_parsers() -> None:
    assert parse_status("waiting_on_customer") is Status.WAITING_ON_CUSTOMER
    assert parse_priority("urgent") is Priority.URGENT
    assert parse_role("system") is Role.SYSTEM
    with pytest.raises(ValidationError) as info:
        parse_status("Open")
    assert info.value.detail == (
        "Unknown status 'Open'; expected one of "
        "open, assigned, in_progress, waiting_on_customer, resolved, closed."
    )
    with pytest.raises(ValidationError) as info:
        parse_priority("p1")
    assert info.value.detail == "Unknown priority 'p1'; expected one of low, medium, high, urgent."
    with pytest.raises(ValidationError) as info:
        parse_role("root")
    assert info.value.detail == "Unknown role 'root'."


def test_labels() -> None:
    assert [s.label for s in Status] == [
        "Open",
        "Assigned",
        "In progress",
        "Waiting on customer",
        "Resolved",
        "Closed",
    ]


def test_the_lifecycle_doc_is_generated_from_the_table() -> None:
    doc = (ROOT / "docs" / "lifecycle.md").read_text()
    assert doc == render_markdown(), (
        "docs/lifecycle.md is out of date: run python -m domain.lifecycle > docs/lifecycle.md"
    )


def test_the_doc_has_one_line_per_row() -> None:
    rows = [line for line in render_markdown().splitlines() if line.startswith("| ")][1:]
    assert len(rows) == len(TRANSITIONS)
    assert (
        rows[0] == "| Open | Assigned | assignment | agent, admin, system | an agent is assigned |"
    )
    assert rows[-1] == "| Waiting on customer | Closed | status command | admin |  |"
