"""The read-model projector: tickets, message threads, agents' workload, customers' counts.

Pure logic: each event changes rows through the ``TicketsState`` port; the Postgres adapter
(``infra.postgres.readmodels``) loads the rows a batch touches, lets this code change them in
memory, and writes them back with the projector's position in one transaction.
"""

from __future__ import annotations

from typing import Any, Protocol
from uuid import UUID

from domain.agent import Agent
from domain.lifecycle import Status
from domain.macro import Macro
from domain.ticket import Ticket, is_public
from projections.ports import Envelope

NAME = "read_models"

# A ticket counts against its agent's workload and its customer's open count until resolved.
OPEN_STATUSES = frozenset(
    {
        Status.OPEN.value,
        Status.ASSIGNED.value,
        Status.IN_PROGRESS.value,
        Status.WAITING_ON_CUSTOMER.value,
    }
)

Row = dict[str, Any]


class TicketsState(Protocol):
    def ticket(self, ticket_id: UUID) -> Row | None: ...

    def put_ticket(self, row: Row) -> None: ...

    def add_message(self, row: Row) -> None: ...

    def agent(self, agent_id: UUID) -> Row | None: ...

    def put_agent(self, row: Row) -> None: ...

    def workload_changed(self, agent_user_id: str) -> None:
        """The number of open tickets of this agent must be recounted."""

    def customer_changed(self, customer_id: str) -> None:
        """The ticket counts of this customer must be recounted."""

    def put_macro(self, row: Row) -> None: ...

    def delete_macro(self, macro_id: UUID) -> None: ...


def handle(envelope: Envelope, state: TicketsState) -> None:
    event = envelope.event
    if isinstance(event, Ticket.Event):
        _ticket_event(envelope, event, state)
    elif isinstance(event, Agent.Event):
        _agent_event(event, state)
    elif isinstance(event, Macro.Event):
        _macro_event(envelope, event, state)


MACRO_CONTENT = ("name", "body", "status", "add_tags", "assign_to")


def _macro_event(envelope: Envelope, event: Any, state: TicketsState) -> None:
    """Every macro event but deletion carries the macro's whole content, so no row is read;
    only the creation names ``shared`` and ``owner_id``, which a change leaves as they are."""
    if isinstance(event, Macro.MacroDeleted):
        state.delete_macro(event.originator_id)
        return
    row: Row = {name: getattr(event, name) for name in MACRO_CONTENT}
    row.update(id=event.originator_id, version=event.originator_version,
               position=envelope.position)  # fmt: skip
    if isinstance(event, Macro.MacroCreated):
        row.update(shared=event.shared, owner_id=event.owner_id)
    state.put_macro(row)


def _ticket_event(envelope: Envelope, event: Any, state: TicketsState) -> None:
    if isinstance(event, Ticket.TicketOpened):
        row: Row = {
            "id": event.originator_id,
            "customer_id": event.customer_id,
            "subject": event.subject,
            "description": event.description,
            "status": Status.OPEN.value,
            "priority": event.priority,
            "tags": list(event.tags),
            "language": event.language,
            "assigned_agent_id": None,
            "created_at": event.timestamp,
            "last_message_at": None,
            "resolved_at": None,
            "closed_at": None,
            "message_count": 0,
            "public_message_count": 0,
            "sla_breaches": [],
            "public_last_message_at": None,
            "public_version": 0,  # _touch counts the opening in
            "attachments": [],
            "team_id": None,
            "satisfaction_rating": None,
            "satisfaction_comment": "",
            "satisfaction_at": None,
        }
        _touch(row, envelope, public=True)
        state.put_ticket(row)
        state.customer_changed(event.customer_id)
        return

    existing = state.ticket(event.originator_id)
    if existing is None:  # pragma: no cover - the log always starts a ticket with TicketOpened
        return
    row = existing
    public = is_public(event)
    if isinstance(event, Ticket.MessagePosted):
        state.add_message(
            {
                "id": event.message_id,
                "ticket_id": event.originator_id,
                "version": event.originator_version,
                "author_id": event.author_id,
                "author_role": event.author_role,
                "body": event.body,
                "internal": event.internal,
                "attachments": list(event.attachments),
                "posted_at": event.timestamp,
                "position": envelope.position,
                # The ticket's public version with this message (_touch counts it next).
                "public_version": None if event.internal else row["public_version"] + 1,
            }
        )
        row["message_count"] += 1
        if not event.internal:
            row["public_message_count"] += 1
        row["last_message_at"] = event.timestamp
        if not event.internal:
            row["public_last_message_at"] = event.timestamp
    elif isinstance(event, Ticket.StatusChanged):
        row["status"] = event.to_status
        if event.to_status == Status.RESOLVED.value:
            row["resolved_at"] = event.timestamp
        if event.to_status == Status.CLOSED.value:
            row["closed_at"] = event.timestamp
        if (event.from_status in OPEN_STATUSES) != (event.to_status in OPEN_STATUSES):
            state.customer_changed(row["customer_id"])
            if row["assigned_agent_id"]:
                state.workload_changed(row["assigned_agent_id"])
    elif isinstance(event, Ticket.AgentAssigned):
        if event.previous_agent_id:
            state.workload_changed(event.previous_agent_id)
        row["assigned_agent_id"] = event.agent_id
        state.workload_changed(event.agent_id)
    elif isinstance(event, Ticket.AgentUnassigned):
        row["assigned_agent_id"] = None
        state.workload_changed(event.agent_id)
    elif isinstance(event, Ticket.PriorityChanged):
        row["priority"] = event.to_priority
    elif isinstance(event, Ticket.TicketEdited):
        row["subject"] = event.subject
        row["description"] = event.description
        row["tags"] = list(event.tags)
    elif isinstance(event, Ticket.TeamChanged):
        row["team_id"] = event.to_team_id
    elif isinstance(event, Ticket.SlaBreached) and event.target not in row["sla_breaches"]:
        row["sla_breaches"] = [*row["sla_breaches"], event.target]
    elif isinstance(event, Ticket.SatisfactionRated):
        row["satisfaction_rating"] = event.rating
        row["satisfaction_comment"] = event.comment
        row["satisfaction_at"] = event.timestamp
    elif isinstance(event, Ticket.AttachmentUploaded):
        row["attachments"] = [*row["attachments"], _attachment(event)]
    elif isinstance(event, Ticket.AttachmentScanned):
        found = str(event.attachment_id)
        row["attachments"] = [
            {**a, "status": event.verdict} if a["id"] == found else a for a in row["attachments"]
        ]
    _touch(row, envelope, public=public)
    state.put_ticket(row)


def _attachment(event: Any) -> Row:
    """One file as the read model lists it (JSON: ids as strings); status until scanned:
    ``scanning``."""
    return {
        "id": str(event.attachment_id),
        "name": event.name,
        "content_type": event.content_type,
        "size": event.size,
        "message_id": str(event.message_id) if event.message_id else None,
        "internal": event.internal,
        "uploader_id": event.actor_id,
        "uploader_role": event.actor_role,
        "uploaded_at": event.timestamp.isoformat(),
        "status": "scanning",
    }


def _touch(row: Row, envelope: Envelope, public: bool) -> None:
    row["version"] = envelope.version
    row["position"] = envelope.position
    row["updated_at"] = envelope.event.timestamp
    if public:  # the customer's view moves with public events only, numbered 1, 2, 3, ...
        row["public_version"] += 1
        row["public_position"] = envelope.position
        row["public_updated_at"] = envelope.event.timestamp


def _agent_event(event: Any, state: TicketsState) -> None:
    if isinstance(event, Agent.AgentRegistered):
        state.put_agent(
            {
                "id": event.originator_id,
                "user_id": event.user_id,
                "name": event.name,
                "availability": "offline",
                "capacity": event.capacity,
                "skills": list(event.skills),
                "languages": list(event.languages),
                "version": event.originator_version,
            }
        )
        state.workload_changed(event.user_id)
        return
    row = state.agent(event.originator_id)
    if row is None:  # pragma: no cover
        return
    if isinstance(event, Agent.AvailabilityChanged):
        row["availability"] = event.to_availability
    elif isinstance(event, Agent.CapacityChanged):
        row["capacity"] = event.capacity
    elif isinstance(event, Agent.SkillsChanged):
        row["skills"] = list(event.skills)
        row["languages"] = list(event.languages)
    row["version"] = event.originator_version
    state.put_agent(row)
