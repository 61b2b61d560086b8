"""The SLA projector and the breach check: each ticket's SLA clock, and who is past a deadline.

The projector folds, per ticket, what its deadlines depend on (when it opened, its pauses
while Waiting on Customer or Resolved, when it got its first staff reply, when it was
resolved, which breaches are recorded) and keeps the deadlines the current rules give
(``SlaRules``: a policy per priority and the business calendar, admin settings). The check
(``due_breaches``) runs on a schedule: for every ticket past a deadline it returns a
``record_sla_breach`` command, valid only at the ticket version it looked at. Rebuilding the
projection never records anything: only the scheduled check issues commands.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol
from uuid import UUID

from domain.lifecycle import Priority, Role, Status
from domain.sla import (
    BusinessCalendar,
    SlaClock,
    SlaPolicy,
    SlaTarget,
    TargetState,
    evaluate,
)
from domain.ticket import Ticket
from projections.ports import Envelope

NAME = "sla"
ACTOR_ID = "automation"
# The clock does not run while the ticket waits on the customer or is resolved (or closed).
PAUSING = frozenset({Status.WAITING_ON_CUSTOMER.value, Status.RESOLVED.value, Status.CLOSED.value})
STAFF = frozenset({Role.AGENT.value, Role.ADMIN.value})


@dataclass
class SlaFacts:
    ticket_id: UUID
    priority: str
    status: str
    opened_at: datetime
    pauses: list[tuple[datetime, datetime]] = field(default_factory=list)  # ended pauses
    paused_since: datetime | None = None
    first_response_at: datetime | None = None
    resolved_at: datetime | None = None  # resolved (or closed) now, since then
    breaches: list[str] = field(default_factory=list)
    version: int = 1
    position: int = 0
    first_response_due: datetime | None = None  # derived: the current rules' deadlines
    resolution_due: datetime | None = None
    first_response_reminded: datetime | None = None  # the deadline a reminder was recorded for
    resolution_reminded: datetime | None = None

    def clock(self) -> SlaClock:
        pauses: list[tuple[datetime, datetime | None]] = list(self.pauses)
        if self.paused_since is not None:
            pauses.append((self.paused_since, None))
        return SlaClock(
            opened_at=self.opened_at,
            pauses=tuple(pauses),
            first_response_at=self.first_response_at,
            resolved_at=self.resolved_at,
        )


class SlaState(Protocol):
    def ticket(self, ticket_id: UUID) -> SlaFacts | None: ...

    def put_ticket(self, facts: SlaFacts) -> None: ...


class SlaRules(Protocol):
    def policy(self, priority: Priority) -> SlaPolicy: ...

    def calendar(self) -> BusinessCalendar: ...


@dataclass(frozen=True)
class BreachCommand:
    ticket_id: UUID
    target: str
    deadline: datetime
    breached_at: datetime
    priority: str
    policy: str
    expected_version: int


@dataclass(frozen=True)
class ReminderCommand:
    ticket_id: UUID
    target: str
    deadline: datetime
    reminded_at: datetime
    minutes_before: int
    expected_version: int


class SlaCommands(Protocol):
    def record_breach(self, command: BreachCommand) -> str:
        """Issue one breach; returns ``"recorded"``, ``"unchanged"`` or ``"stale"``."""


# ------------------------------------------------------------------------------ folding
def handle(envelope: Envelope, state: SlaState) -> None:
    event = envelope.event
    if not isinstance(event, Ticket.Event):
        return  # agents have no SLA; the position still advances
    at: datetime = event.timestamp
    if isinstance(event, Ticket.TicketOpened):
        facts = SlaFacts(
            ticket_id=event.originator_id,
            priority=event.priority,
            status=Status.OPEN.value,
            opened_at=at,
        )
    else:
        found = state.ticket(event.originator_id)
        if found is None:  # pragma: no cover - the log always starts a ticket with TicketOpened
            return
        facts = found
        _fold(facts, event, at)
    facts.version = envelope.version
    facts.position = envelope.position
    state.put_ticket(facts)


def _fold(facts: SlaFacts, event: Any, at: datetime) -> None:
    if isinstance(event, Ticket.MessagePosted):
        if facts.first_response_at is None and not event.internal and event.author_role in STAFF:
            facts.first_response_at = at
    elif isinstance(event, Ticket.StatusChanged):
        to = event.to_status
        if to in PAUSING and facts.paused_since is None:
            facts.paused_since = at
        elif to not in PAUSING and facts.paused_since is not None:
            facts.pauses.append((facts.paused_since, at))
            facts.paused_since = None
        if to == Status.RESOLVED.value:
            facts.resolved_at = at
        elif to == Status.CLOSED.value:
            if event.from_status != Status.RESOLVED.value or facts.resolved_at is None:
                facts.resolved_at = at
        else:
            facts.resolved_at = None
        facts.status = to
    elif isinstance(event, Ticket.PriorityChanged):
        facts.priority = event.to_priority
    elif isinstance(event, Ticket.SlaBreached) and event.target not in facts.breaches:
        facts.breaches.append(event.target)
    elif isinstance(event, Ticket.SlaReminderDue):
        if event.target == SlaTarget.FIRST_RESPONSE.value:
            facts.first_response_reminded = event.deadline
        else:
            facts.resolution_reminded = event.deadline


def refresh_deadlines(facts: SlaFacts, rules: SlaRules) -> None:
    """Set the deadlines the current rules give (None: the clock stopped short of them)."""
    states = evaluate(facts.clock(), rules.policy(Priority(facts.priority)), rules.calendar())
    facts.first_response_due = states[SlaTarget.FIRST_RESPONSE].due
    facts.resolution_due = states[SlaTarget.RESOLUTION].due


# ------------------------------------------------------------------------------ the check
def target_states(facts: SlaFacts, rules: SlaRules) -> dict[SlaTarget, TargetState]:
    return evaluate(facts.clock(), rules.policy(Priority(facts.priority)), rules.calendar())


def due_breaches(
    tickets: Iterable[SlaFacts], rules: SlaRules, now: datetime
) -> list[BreachCommand]:
    """A command for every target whose deadline passed unmet and is not recorded yet."""
    commands = []
    for facts in tickets:
        policy = rules.policy(Priority(facts.priority))
        for target, state in target_states(facts, rules).items():
            if target.value in facts.breaches or not state.breached(now):
                continue
            assert state.due is not None
            commands.append(
                BreachCommand(
                    ticket_id=facts.ticket_id,
                    target=target.value,
                    deadline=state.due,
                    breached_at=now,
                    priority=facts.priority,
                    policy=policy.describe(),
                    expected_version=facts.version,
                )
            )
    return commands


def due_reminders(
    tickets: Iterable[SlaFacts], rules: SlaRules, now: datetime, before: timedelta
) -> list[ReminderCommand]:
    """A reminder for every unmet target whose deadline is at most ``before`` away (and not
    yet passed), unless one was recorded for that very deadline. A stopped clock (waiting on
    the customer, resolved, closed) has no deadline, a met target needs none: nothing is due.
    """
    if before <= timedelta(0):
        return []
    commands = []
    for facts in tickets:
        if facts.status == Status.CLOSED.value:
            continue
        reminded = {
            SlaTarget.FIRST_RESPONSE: facts.first_response_reminded,
            SlaTarget.RESOLUTION: facts.resolution_reminded,
        }
        for target, state in target_states(facts, rules).items():
            if (
                state.due is None
                or state.met_at is not None
                or target.value in facts.breaches
                or not now < state.due <= now + before
                or reminded[target] == state.due
            ):
                continue
            commands.append(
                ReminderCommand(
                    ticket_id=facts.ticket_id,
                    target=target.value,
                    deadline=state.due,
                    reminded_at=now,
                    minutes_before=int(before.total_seconds() // 60),
                    expected_version=facts.version,
                )
            )
    return commands
