"""``Ticket.record_sla_breach``, ``Agent.set_working_hours``, and the SLA projector's fold and
breach check (``projections.sla``) on plain data."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from domain.agent import Agent
from domain.errors import PermissionDeniedError, ValidationError
from domain.lifecycle import Priority, Role
from domain.sla import BusinessCalendar, SlaPolicy
from domain.ticket import Ticket
from projections import sla
from projections.ports import Envelope
from projections.sla import SlaFacts

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
H = timedelta(hours=1)


def ticket() -> Ticket:
    t = Ticket.open(customer_id="c1", subject="Printer", description="", priority="high",
                    actor_id="c1", actor_role=Role.CUSTOMER)  # fmt: skip
    t.collect_events()
    return t


def breach(t: Ticket, target: str = "first_response", deadline: datetime = T0, **kw: Any) -> None:
    t.record_sla_breach(
        target=target, deadline=deadline, breached_at=deadline + H, priority="high",
        policy="high: ...", actor_id="automation", actor_role=kw.pop("role", Role.SYSTEM), **kw,
    )  # fmt: skip


def test_a_breach_is_recorded_once_per_target() -> None:
    t = ticket()
    breach(t)
    (event,) = t.collect_events()
    assert isinstance(event, Ticket.SlaBreached)
    assert (event.target, event.deadline, event.breached_at, event.priority) == (
        "first_response", T0, T0 + H, "high")  # fmt: skip
    assert t.sla_breaches == {"first_response": T0}
    breach(t)
    assert t.collect_events() == []
    breach(t, "resolution")
    assert [type(e).__name__ for e in t.collect_events()] == ["SlaBreached"]


def test_a_target_met_by_its_deadline_records_nothing() -> None:
    t = ticket()
    t.post_message(author_id="a1", author_role=Role.AGENT, body="On it", internal=True)
    t.collect_events()
    breach(t, deadline=datetime(2100, 1, 1, tzinfo=UTC))  # an internal note is no response
    assert len(t.collect_events()) == 1
    t = ticket()
    t.post_message(author_id="a1", author_role=Role.AGENT, body="On it")
    t.collect_events()
    breach(t, deadline=datetime(2100, 1, 1, tzinfo=UTC))
    assert t.collect_events() == []
    breach(t, deadline=datetime(2000, 1, 1, tzinfo=UTC))  # answered, but too late
    assert len(t.collect_events()) == 1


def test_resolved_in_time_records_nothing_and_closed_tickets_still_record() -> None:
    t = ticket()
    t.change_status(target="resolved", actor_id="c1", actor_role=Role.CUSTOMER)
    t.collect_events()
    breach(t, "resolution", deadline=datetime(2100, 1, 1, tzinfo=UTC))
    assert t.collect_events() == []
    t.change_status(target="closed", actor_id="c1", actor_role=Role.CUSTOMER)
    t.collect_events()
    breach(t, "first_response", deadline=datetime(2000, 1, 1, tzinfo=UTC))
    assert len(t.collect_events()) == 1


def test_only_automation_records_breaches_and_targets_are_checked() -> None:
    t = ticket()
    with pytest.raises(PermissionDeniedError):
        breach(t, role=Role.AGENT)
    with pytest.raises(ValidationError) as err:
        breach(t, "lunch")
    assert err.value.data["field"] == "target"
    with pytest.raises(ValidationError):
        t.record_sla_breach(
            target="resolution", deadline=datetime(2026, 1, 1), breached_at=T0,
            priority="high", policy="", actor_id="x", actor_role=Role.SYSTEM,
        )  # fmt: skip


def test_working_hours_are_validated_and_normalised() -> None:
    agent = Agent.register(user_id="7", name="Ada")
    agent.collect_events()
    agent.set_working_hours(
        {"time_zone": "Europe/Berlin", "weekly_hours": {"fri": [["13:00", "17:00"]],
                                                         "mon": [["09:00", "12:00"]]}}
    )  # fmt: skip
    (event,) = agent.collect_events()
    assert isinstance(event, Agent.WorkingHoursChanged)
    assert event.working_hours is not None
    assert event.working_hours["weekly_hours"]["mon"] == [["09:00", "12:00"]]
    assert agent.working_hours == event.working_hours
    agent.set_working_hours(dict(event.working_hours))  # the same: nothing stored
    assert agent.collect_events() == []
    with pytest.raises(ValidationError) as err:
        agent.set_working_hours({"time_zone": "Nowhere/City", "weekly_hours": {}})
    assert err.value.data["field"] == "time_zone"
    agent.set_working_hours(None)
    assert agent.working_hours is None
    assert len(agent.collect_events()) == 1


# ---------------------------------------------------------------------------- projector
class FakeState:
    def __init__(self) -> None:
        self.rows: dict[UUID, SlaFacts] = {}

    def ticket(self, ticket_id: UUID) -> SlaFacts | None:
        return self.rows.get(ticket_id)

    def put_ticket(self, facts: SlaFacts) -> None:
        self.rows[facts.ticket_id] = facts


@dataclass(frozen=True)
class Rules:
    first: timedelta = 2 * H
    resolution: timedelta = 8 * H

    def policy(self, priority: Priority) -> SlaPolicy:
        return SlaPolicy(priority, self.first, self.resolution)

    def calendar(self) -> BusinessCalendar:
        return BusinessCalendar.from_json(
            {"time_zone": "UTC", "weekly_hours": {d: [["09:00", "17:00"]]
                                                  for d in ("mon", "tue", "wed", "thu", "fri")}}
        )  # fmt: skip


def fold(t: Ticket, state: FakeState, at: list[datetime]) -> None:
    """Apply the ticket's new events with the given timestamps."""
    for event, moment in zip(t.collect_events(), at, strict=True):
        object.__setattr__(event, "timestamp", moment)
        sla.handle(Envelope(event.originator_version, event), state)


def test_the_clock_pauses_while_waiting_and_stops_when_resolved() -> None:
    state = FakeState()
    t = Ticket.open(customer_id="c1", subject="S", description="", priority="high",
                    actor_id="c1", actor_role=Role.CUSTOMER)  # fmt: skip
    fold(t, state, [T0])
    t.assign(agent_id="a1", actor_id="a1", actor_role=Role.AGENT)
    t.change_status(target="in_progress", actor_id="a1", actor_role=Role.AGENT)
    t.post_message(author_id="a1", author_role=Role.AGENT, body="Note", internal=True)
    t.change_status(target="waiting_on_customer", actor_id="a1", actor_role=Role.AGENT)
    fold(t, state, [T0 + H / 2, T0 + H / 2, T0 + H / 2, T0 + H, T0 + H])
    facts = state.rows[t.id]
    assert (facts.first_response_at, facts.paused_since) == (None, T0 + H)
    sla.refresh_deadlines(facts, Rules())
    assert (facts.first_response_due, facts.resolution_due) == (None, None)  # paused
    t.post_message(author_id="c1", author_role=Role.CUSTOMER, body="Here")  # -> in progress
    fold(t, state, [T0 + 3 * H, T0 + 3 * H])
    assert facts.pauses == [(T0 + H, T0 + 3 * H)]
    sla.refresh_deadlines(facts, Rules())
    assert facts.first_response_due == T0 + 4 * H  # 2 h target + the 2 h pause
    assert facts.resolution_due == T0 + 10 * H - 8 * H + timedelta(days=1)  # 10 h: Thu 11:00
    commands = sla.due_breaches([facts], Rules(), T0 + 4 * H)
    assert [(c.target, c.deadline, c.expected_version, c.breached_at) for c in commands] == [
        ("first_response", T0 + 4 * H, 8, T0 + 4 * H)
    ]
    assert commands[0].policy == "high: first response 2 h, resolution 8 h of business time"
    t.record_sla_breach(
        target="first_response", deadline=T0 + 4 * H, breached_at=T0 + 4 * H,
        priority="high", policy="p", actor_id="x", actor_role=Role.SYSTEM,
    )  # fmt: skip
    t.post_message(author_id="a1", author_role=Role.AGENT, body="Sorry")
    t.change_status(target="resolved", actor_id="a1", actor_role=Role.AGENT)
    fold(t, state, [T0 + 5 * H, T0 + 5 * H, T0 + 6 * H])
    assert facts.breaches == ["first_response"]
    assert (facts.first_response_at, facts.resolved_at, facts.paused_since) == (
        T0 + 5 * H, T0 + 6 * H, T0 + 6 * H)  # fmt: skip
    assert sla.due_breaches([facts], Rules(), T0 + timedelta(days=30)) == []
    t.change_status(target="closed", actor_id="c1", actor_role=Role.CUSTOMER)
    fold(t, state, [T0 + 7 * H])
    assert (facts.resolved_at, facts.status) == (T0 + 6 * H, "closed")  # resolved then
