"""The analytics projector: one fact per ticket event, and each ticket's current state.

Pure logic. ``fold`` turns a ticket event into a ``Fact`` (one row of the fact table: who did
what to which ticket, and the ticket's fields right after it) and advances the ticket's
``TicketFacts`` (one row of the current-state table: the latest version wins). The adapter
(``infra.clickhouse.store``) loads the ``TicketFacts`` a batch needs, calls ``fold`` and writes
the rows to ClickHouse (a server, or chDB in-process).

Exactly once without transactions: a ticket's events are folded in version order, each once.
A fact is keyed by (ticket, version), so writing one again (a replay after a crash, Kafka's
re-delivery) replaces it instead of counting twice; ``TicketFacts.version`` says which events
the current state already holds, so the fold skips those (``Skip``) and refuses a gap.

Agent and team events have no facts (the position still advances). ``team`` is the ticket's
team after the event (``TeamChanged``; "" for none). The events carry no channel:
``channel`` says who opened the ticket (``portal``: the customer; ``staff``: an agent or
admin on the customer's behalf).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from domain.lifecycle import Role, Status
from domain.sla import BusinessCalendar, business_time_between
from projections.ports import Envelope
from projections.search import (
    AGENT_ASSIGNED,
    AGENT_UNASSIGNED,
    MESSAGE_POSTED,
    PRIORITY_CHANGED,
    STATUS_CHANGED,
    TICKET_EDITED,
    TICKET_OPENED,
    TICKET_TOPICS,
)

NAME = "analytics"
# Events are told apart by their stored topics, as the search projector does: the read API
# imports this module's definitions, and the read side never imports the aggregates.
SLA_BREACHED = "deskstream.ticket:SlaBreached"
TEAM_CHANGED = "deskstream.ticket:TeamChanged"
SATISFACTION_RATED = "deskstream.ticket:SatisfactionRated"
DRAFT_TOPICS = frozenset(
    {
        "deskstream.ticket:DraftRequested",
        "deskstream.ticket:DraftGenerated",
        "deskstream.ticket:ReplySentFromDraft",
    }
)

OPEN_STATUSES = frozenset(
    {
        Status.OPEN.value,
        Status.ASSIGNED.value,
        Status.IN_PROGRESS.value,
        Status.WAITING_ON_CUSTOMER.value,
    }
)
STAFF = frozenset({Role.AGENT.value, Role.ADMIN.value})
PORTAL, STAFF_CHANNEL = "portal", "staff"


@dataclass(frozen=True)
class Fact:
    """One row of ``analytics_events``: the event and the ticket's fields right after it."""

    ticket_id: UUID
    version: int
    position: int
    event_type: str  # the event class name: TicketOpened, MessagePosted, StatusChanged ...
    occurred_at: datetime
    actor_id: str
    actor_role: str
    customer_id: str
    agent_id: str  # the assigned agent after the event ("" when none)
    team: str
    priority: str
    status_from: str  # the status before the event (equal to status_to unless it changed it)
    status_to: str
    tags: tuple[str, ...]
    language: str
    channel: str
    internal: bool  # an internal note (MessagePosted only)
    sla_target: str  # first_response | resolution (SlaBreached only)
    opened_at: datetime  # when the ticket was opened
    # The AI draft events (DraftRequested, DraftGenerated, ReplySentFromDraft) only:
    draft_id: str = ""
    draft_outcome: str = ""  # ready | refused | failed (DraftGenerated)
    edit_distance: int = 0  # characters changed before sending (ReplySentFromDraft)
    draft_length: int = 0  # the draft's characters (ReplySentFromDraft)
    rating: int = 0  # the customer's rating, 1-5 (SatisfactionRated only)
    # The ticket's agent and tags before the event ("" and none for TicketOpened): with
    # ``opened_at``, what the backlog's and the tag volume's moves are made of (ADR 0064).
    agent_from: str = ""
    tags_from: tuple[str, ...] = ()


@dataclass(frozen=True)
class TicketFacts:
    """One row of ``analytics_tickets``: a ticket as of its ``version``."""

    ticket_id: UUID
    version: int
    position: int
    customer_id: str
    agent_id: str
    team: str
    priority: str
    status: str
    tags: tuple[str, ...]
    language: str
    channel: str
    opened_at: datetime
    updated_at: datetime
    first_response_at: datetime | None = None  # the first public reply by staff
    first_resolved_at: datetime | None = None
    resolved_at: datetime | None = None  # when it was last resolved, while resolved or closed
    closed_at: datetime | None = None
    resolutions: int = 0
    reopens: int = 0
    staff_replies: int = 0  # public messages by agents and admins
    customer_replies: int = 0
    breached_first_response: bool = False
    breached_resolution: bool = False
    # Opening to the first response / first resolution in business time: seconds inside the
    # SLA calendar's opening hours (the calendar in force when the projector applied it);
    # None without a calendar.
    first_response_business: int | None = None
    resolution_business: int | None = None
    # The customer's latest satisfaction rating (1-5; they may change it) and when given.
    rating: int | None = None
    rated_at: datetime | None = None
    # The ticket's status moves, oldest first (``status_moves``): when, which status, +1
    # entering it or -1 leaving it. What the narrowed status over time reads (ADR 0060).
    move_at: tuple[datetime, ...] = ()
    move_status: tuple[str, ...] = ()
    move_delta: tuple[int, ...] = ()


class EventGapError(RuntimeError):
    """A ticket's next event is missing (a stream lost one; never expected)."""


def status_moves(event_type: str, status_from: str, status_to: str) -> tuple[tuple[str, int], ...]:
    """The status moves of a fact, (status, +1 entering / -1 leaving): a ticket enters its
    status when opened, and leaves ``status_from`` for ``status_to`` on a status change.
    The same rule as the moves' count tables (``schema.count_statements``); a contract test
    compares the two answers."""
    if event_type == "TicketOpened":
        return ((status_to, 1),)
    if event_type == "StatusChanged":
        return ((status_to, 1), (status_from, -1))
    return ()


def _topic(event: Any) -> str:
    return str(getattr(type(event), "TOPIC", ""))


def is_ticket_event(envelope: Envelope) -> bool:
    return _topic(envelope.event).startswith(TICKET_TOPICS)


def is_breach(envelope: Envelope) -> bool:
    """An SLA breach recorded on a ticket (``SlaBreached``)."""
    return _topic(envelope.event) == SLA_BREACHED


def is_resolution(status_from: str, status_to: str) -> bool:
    """Resolving: to Resolved, or to Closed from any status but Resolved."""
    return status_to == Status.RESOLVED.value or (
        status_to == Status.CLOSED.value and status_from != Status.RESOLVED.value
    )


def is_reopen(status_from: str, status_to: str) -> bool:
    """Reopening: from Resolved back to a working status (a customer reply or a command)."""
    return status_from == Status.RESOLVED.value and status_to in OPEN_STATUSES


def fold(
    envelope: Envelope,
    current: TicketFacts | None,
    calendar: Callable[[], BusinessCalendar | None] = lambda: None,
) -> tuple[Fact, TicketFacts] | None:
    """The fact of a ticket event and the ticket after it; None for an event that is not a
    ticket's, or one ``current`` already holds (applied before). Raises ``EventGapError``
    when an event between ``current`` and this one is missing."""
    event = envelope.event
    topic = _topic(event)
    if not topic.startswith(TICKET_TOPICS):
        return None
    version = envelope.version
    if current is not None and version <= current.version:
        return None  # applied already (a replay or a re-delivery)
    if topic == TICKET_OPENED:
        if current is not None:  # pragma: no cover - a ticket opens once
            return None
        before = after = _opened(envelope, event)
    else:
        if current is None or version != current.version + 1:
            have = 0 if current is None else current.version
            raise EventGapError(
                f"ticket {envelope.aggregate_id} is at version {have}, got version {version} "
                f"(position {envelope.position})"
            )
        before = current
        after = _evolve(current, _changes(current, topic, event, calendar))
        after.__dict__.update(
            version=version, position=envelope.position, updated_at=event.timestamp
        )
    at: datetime = event.timestamp
    actor_id, actor_role = _actor(topic, event)
    fact = Fact(
        ticket_id=envelope.aggregate_id,
        version=version,
        position=envelope.position,
        event_type=type(event).__name__,
        occurred_at=at,
        actor_id=actor_id,
        actor_role=actor_role,
        customer_id=after.customer_id,
        agent_id=after.agent_id,
        team=after.team,
        priority=after.priority,
        status_from=before.status if version > 1 else after.status,
        status_to=after.status,
        tags=after.tags,
        language=after.language,
        channel=after.channel,
        internal=bool(getattr(event, "internal", False)),
        sla_target=str(event.target) if topic == SLA_BREACHED else "",
        rating=int(event.rating) if topic == SATISFACTION_RATED else 0,
        agent_from=before.agent_id if version > 1 else "",
        tags_from=before.tags if version > 1 else (),
        opened_at=after.opened_at,
        **(_draft(event) if topic in DRAFT_TOPICS else {}),
    )
    moves = status_moves(fact.event_type, fact.status_from, fact.status_to)
    if moves:
        after.__dict__.update(
            move_at=after.move_at + (at,) * len(moves),
            move_status=after.move_status + tuple(s for s, _ in moves),
            move_delta=after.move_delta + tuple(d for _, d in moves),
        )
    return fact, after


def _draft(event: Any) -> dict[str, Any]:
    return {
        "draft_id": str(event.draft_id),
        "draft_outcome": str(getattr(event, "outcome", "")),
        "edit_distance": int(getattr(event, "edit_distance", 0)),
        "draft_length": int(getattr(event, "draft_length", 0)),
    }


def _actor(topic: str, event: Any) -> tuple[str, str]:
    if topic == MESSAGE_POSTED:
        return event.author_id, event.author_role
    return str(getattr(event, "actor_id", "")), str(getattr(event, "actor_role", ""))


def _opened(envelope: Envelope, event: Any) -> TicketFacts:
    at: datetime = event.timestamp
    return TicketFacts(
        ticket_id=envelope.aggregate_id,
        version=envelope.version,
        position=envelope.position,
        customer_id=event.customer_id,
        agent_id="",
        team="",
        priority=event.priority,
        status=Status.OPEN.value,
        tags=tuple(event.tags),
        language=event.language,
        channel=PORTAL if event.actor_role == Role.CUSTOMER.value else STAFF_CHANNEL,
        opened_at=at,
        updated_at=at,
    )


def _business(start: datetime, end: datetime, calendar: BusinessCalendar | None) -> int | None:
    """Whole seconds of business time (both ends to the second, as the tables store them)."""
    if calendar is None:
        return None
    a, b = start.replace(microsecond=0), end.replace(microsecond=0)
    return int(business_time_between(a, b, calendar).total_seconds())


def _evolve(t: TicketFacts, changes: dict[str, Any]) -> TicketFacts:
    """A copy of ``t`` with ``changes``: ``dataclasses.replace`` without its per-field
    ``getattr`` and ``__init__`` (which were most of the fold's cost). Only the fold calls
    it, with field names it spells out, on a copy nobody else holds yet."""
    copy = object.__new__(TicketFacts)
    copy.__dict__.update(t.__dict__)
    copy.__dict__.update(changes)
    return copy


def _changes(
    t: TicketFacts, topic: str, event: Any, calendar: Callable[[], BusinessCalendar | None]
) -> dict[str, Any]:
    """The fields of ``t`` that ``event`` changes."""
    at: datetime = event.timestamp
    if topic == MESSAGE_POSTED:
        if event.internal:
            return {}
        if event.author_role not in STAFF:
            return {"customer_replies": t.customer_replies + 1}
        if t.first_response_at is not None:
            return {"staff_replies": t.staff_replies + 1}
        return {
            "staff_replies": t.staff_replies + 1,
            "first_response_at": at,
            "first_response_business": _business(t.opened_at, at, calendar()),
        }
    if topic == STATUS_CHANGED:
        frm, to = event.from_status, event.to_status
        changes: dict[str, Any] = {"status": to}
        if is_resolution(frm, to):
            changes.update(resolutions=t.resolutions + 1, resolved_at=at)
            if t.first_resolved_at is None:
                changes.update(
                    first_resolved_at=at,
                    resolution_business=_business(t.opened_at, at, calendar()),
                )
        if to == Status.CLOSED.value:
            changes["closed_at"] = at
        if is_reopen(frm, to):
            changes.update(reopens=t.reopens + 1, resolved_at=None)
        return changes
    if topic == AGENT_ASSIGNED:
        return {"agent_id": event.agent_id}
    if topic == AGENT_UNASSIGNED:
        return {"agent_id": ""}
    if topic == PRIORITY_CHANGED:
        return {"priority": event.to_priority}
    if topic == TICKET_EDITED:
        return {"tags": tuple(event.tags)}
    if topic == TEAM_CHANGED:
        return {"team": event.to_team_id or ""}
    if topic == SATISFACTION_RATED:
        return {"rating": int(event.rating), "rated_at": at}
    if topic == SLA_BREACHED:
        if event.target == "first_response":
            return {"breached_first_response": True}
        return {"breached_resolution": True}
    return {}
