"""SLA reminders, breach notifications and satisfaction ratings (ADR 0047) on plain data:
the aggregate's rules, the reminder check of ``projections.sla``, and who the notification
and push projectors tell."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from domain.errors import ForeignTicketError, PermissionDeniedError, ValidationError
from domain.lifecycle import Role
from domain.ticket import Ticket, is_public
from projections import notifications as n
from projections import push, sla
from tests.support.fake_log import FakeEventLog
from tests.unit.test_notifications import ADA, ADMIN, CUSTOMER, Desk
from tests.unit.test_sla_breach import FakeState, Rules, fold

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)  # a Wednesday, 09:00 (opening time)
H = timedelta(hours=1)
M = timedelta(minutes=1)


def ticket() -> Ticket:
    t = Ticket.open(customer_id="c1", subject="Printer", description="", priority="high",
                    actor_id="c1", actor_role=Role.CUSTOMER)  # fmt: skip
    t.collect_events()
    return t


def remind(t: Ticket, target: str = "first_response", deadline: datetime = T0, **kw: Any) -> None:
    t.record_sla_reminder(
        target=target, deadline=deadline, reminded_at=deadline - 30 * M, minutes_before=30,
        actor_id="automation", actor_role=kw.pop("role", Role.SYSTEM), **kw,
    )  # fmt: skip


# ---------------------------------------------------------------------------- the aggregate
def test_a_reminder_is_recorded_once_per_deadline() -> None:
    t = ticket()
    remind(t)
    (event,) = t.collect_events()
    assert isinstance(event, Ticket.SlaReminderDue)
    assert (event.target, event.deadline, event.minutes_before) == ("first_response", T0, 30)
    assert not is_public(event)
    remind(t)
    assert t.collect_events() == []  # the same deadline: nothing
    remind(t, deadline=T0 + H)  # a new deadline (a pause moved it): a new reminder
    assert len(t.collect_events()) == 1
    remind(t, "resolution")
    assert len(t.collect_events()) == 1


def test_no_reminder_once_met_breached_or_closed_and_only_automation_reminds() -> None:
    t = ticket()
    t.post_message(author_id="a1", author_role=Role.AGENT, body="On it")
    t.collect_events()
    remind(t, deadline=datetime(2100, 1, 1, tzinfo=UTC))
    assert t.collect_events() == []  # answered
    t = ticket()
    t.record_sla_breach(target="first_response", deadline=T0, breached_at=T0, priority="high",
                        policy="", actor_id="x", actor_role=Role.SYSTEM)  # fmt: skip
    t.collect_events()
    remind(t)
    assert t.collect_events() == []
    with pytest.raises(PermissionDeniedError):
        remind(ticket(), role=Role.AGENT)
    with pytest.raises(ValidationError) as err:
        remind(ticket(), "lunch")
    assert err.value.data["field"] == "target"


def test_satisfaction_is_the_customers_after_resolution_and_a_repeat_stores_nothing() -> None:
    t = ticket()
    with pytest.raises(ValidationError) as err:
        t.rate_satisfaction(rating=5, channel="app", actor_id="c1", actor_role=Role.CUSTOMER)
    assert err.value.data["field"] == "rating"  # not resolved yet
    t.change_status(target="resolved", actor_id="c1", actor_role=Role.CUSTOMER)
    t.collect_events()
    with pytest.raises(PermissionDeniedError):
        t.rate_satisfaction(rating=5, channel="app", actor_id="a1", actor_role=Role.AGENT)
    with pytest.raises(ForeignTicketError):
        t.rate_satisfaction(rating=5, channel="app", actor_id="c2", actor_role=Role.CUSTOMER)
    for bad in (0, 6, "5", True, None):
        with pytest.raises(ValidationError) as err:
            t.rate_satisfaction(rating=bad, channel="app", actor_id="c1",
                                actor_role=Role.CUSTOMER)  # fmt: skip
        assert err.value.data["field"] == "rating"
    with pytest.raises(ValidationError) as err:
        t.rate_satisfaction(rating=4, comment="x" * 2001, channel="app", actor_id="c1",
                            actor_role=Role.CUSTOMER)  # fmt: skip
    assert err.value.data["field"] == "comment"
    t.rate_satisfaction(rating=4, comment=" Quick ", channel="app", actor_id="c1",
                        actor_role=Role.CUSTOMER)  # fmt: skip
    (event,) = t.collect_events()
    assert isinstance(event, Ticket.SatisfactionRated)
    assert (event.rating, event.comment, event.channel) == (4, "Quick", "app")
    assert is_public(event)
    # The e-mail link with the same rating: nothing (the comment is kept, not cleared).
    t.rate_satisfaction(rating=4, channel="email", actor_id="c1", actor_role=Role.CUSTOMER)
    assert t.collect_events() == []
    t.rate_satisfaction(rating=2, channel="email", actor_id="c1", actor_role=Role.CUSTOMER)
    (again,) = t.collect_events()
    assert isinstance(again, Ticket.SatisfactionRated)
    assert (again.rating, again.comment) == (2, "Quick")
    assert t.satisfaction == (2, "Quick")


# ---------------------------------------------------------------------------- the check
def test_reminders_are_due_in_the_window_once_and_never_on_a_stopped_clock() -> None:
    state = FakeState()
    t = Ticket.open(customer_id="c1", subject="S", description="", priority="high",
                    actor_id="c1", actor_role=Role.CUSTOMER)  # fmt: skip
    fold(t, state, [T0])
    facts = state.rows[t.id]
    sla.refresh_deadlines(facts, Rules())
    assert facts.first_response_due == T0 + 2 * H
    before = 30 * M
    assert sla.due_reminders([facts], Rules(), T0 + H, before) == []  # too early
    (cmd,) = sla.due_reminders([facts], Rules(), T0 + 90 * M, before)
    assert (cmd.target, cmd.deadline, cmd.minutes_before, cmd.expected_version) == (
        "first_response", T0 + 2 * H, 30, 1)  # fmt: skip
    assert sla.due_reminders([facts], Rules(), T0 + 2 * H + M, before) == []  # a breach now
    assert sla.due_reminders([facts], Rules(), T0 + 90 * M, timedelta(0)) == []  # turned off
    # Recorded: the projector remembers the deadline, the check does not ask again.
    remind(t, deadline=T0 + 2 * H)
    fold(t, state, [T0 + 90 * M])
    assert facts.first_response_reminded == T0 + 2 * H
    assert sla.due_reminders([facts], Rules(), T0 + 100 * M, before) == []
    # Waiting on the customer stops the clock: no deadline, no reminder.
    t.assign(agent_id="a1", actor_id="a1", actor_role=Role.AGENT)
    t.change_status(target="in_progress", actor_id="a1", actor_role=Role.AGENT)
    t.change_status(target="waiting_on_customer", actor_id="a1", actor_role=Role.AGENT)
    fold(t, state, [T0 + 100 * M] * 4)
    sla.refresh_deadlines(facts, Rules())
    assert facts.first_response_due is None
    assert sla.due_reminders([facts], Rules(), T0 + 100 * M, 8 * H) == []
    # Back to work: a new deadline (moved by the pause), so a new reminder.
    t.change_status(target="in_progress", actor_id="a1", actor_role=Role.AGENT)
    fold(t, state, [T0 + 3 * H])
    sla.refresh_deadlines(facts, Rules())
    new_due = T0 + 2 * H + (3 * H - 100 * M)
    assert facts.first_response_due == new_due
    (cmd,) = sla.due_reminders([facts], Rules(), new_due - 10 * M, before)
    assert cmd.deadline == new_due
    # Answered: the first response needs no reminder any more.
    t.post_message(author_id="a1", author_role=Role.AGENT, body="Hello")
    fold(t, state, [new_due - 5 * M])
    assert [c.target for c in sla.due_reminders([facts], Rules(), new_due - 4 * M, 48 * H)] == [
        "resolution"
    ]


# ---------------------------------------------------------------------------- who is told
def test_a_reminder_tells_the_assigned_agent_and_a_breach_also_the_admins() -> None:
    desk = Desk()
    desk.do("assign", agent_id=ADA, actor_id=ADMIN, actor_role=Role.ADMIN)
    made = desk.do("record_sla_reminder", target="first_response", deadline=T0, reminded_at=T0,
                   minutes_before=30, actor_id="automation", actor_role=Role.SYSTEM)  # fmt: skip
    assert made == [(ADA, n.SLA_REMINDER, True)]
    made = desk.do("record_sla_breach", target="first_response", deadline=T0, breached_at=T0,
                   priority="medium", policy="p", actor_id="automation",
                   actor_role=Role.SYSTEM)  # fmt: skip
    assert made == [(ADA, n.SLA_BREACHED, True), (n.ADMINS, n.SLA_BREACHED, False)]
    assert desk.state.added[-1].payload["target"] == "first_response"
    assert CUSTOMER not in {x.user_id for x in desk.state.added[-3:]}


def test_push_sends_the_agent_a_notification_and_the_staff_a_breach_frame() -> None:
    log = FakeEventLog()
    t = Ticket.open(customer_id=CUSTOMER, subject="s", description="", actor_id=CUSTOMER,
                    actor_role=Role.CUSTOMER)  # fmt: skip
    t.assign(agent_id=ADA, actor_id=ADMIN, actor_role=Role.ADMIN)
    facts = push.Facts(log)
    state_desk = Desk()  # only for its State class
    state = type(state_desk.state)()
    for envelope in log.append(t):
        n.handle(envelope, state)
        facts.observe(envelope)
    t.record_sla_breach(target="resolution", deadline=T0, breached_at=T0, priority="medium",
                        policy="p", actor_id="automation", actor_role=Role.SYSTEM)  # fmt: skip
    (envelope,) = log.append(t)
    n.handle(envelope, state)
    stored = {x.user_id: x for x in state.added[-2:]}
    deliveries = push.all_deliveries(envelope, facts)
    groups = {d.group: d.frame for d in deliveries}
    # Staff only: the ticket's staff group and the queue, never the ticket's public group.
    assert set(groups) == {push.ticket_staff_group(t.id), push.QUEUE, push.user_group(ADA)}
    frame = groups[push.QUEUE]
    assert frame["kind"] == "sla_breached"
    assert frame["data"]["target"] == "resolution"
    assert frame["data"]["admins_notification_id"] == str(stored[n.ADMINS].id)
    agent = groups[push.user_group(ADA)]["data"]
    assert agent["notification_id"] == str(stored[ADA].id)
    assert agent["notification_kind"] == n.SLA_BREACHED
