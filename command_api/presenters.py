"""JSON shapes of a ticket rebuilt from events and of its event history (the audit trail)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from eventsourcing.domain import Aggregate

from domain.ticket import Ticket, is_public

# Event attributes that are bookkeeping, not content.
_META = {"originator_id", "originator_version", "timestamp", "originator_topic"}


def present_ticket(
    ticket: Ticket, *, include_internal: bool, events: Iterable[Aggregate.Event] = ()
) -> dict[str, Any]:
    """The ticket; for a customer (``include_internal`` off) in their numbering: its version
    and its messages' are public versions (``Ticket.public_version``), its times those of
    its last public event among ``events`` (its events up to its version)."""
    presented = _present_ticket(ticket, include_internal=include_internal)
    if not include_internal:
        presented["version"] = ticket.public_version
        presented["messages"] = [
            ticket.message_as_seen(m, customer=True)
            for m in ticket.visible_messages(include_internal=False)
        ]
        public = [e for e in events if is_public(e)]
        if public:
            presented["updated_at"] = public[-1].timestamp.isoformat()
        posted = [e for e in public if isinstance(e, Ticket.MessagePosted)]
        presented["last_message_at"] = posted[-1].timestamp.isoformat() if posted else None
    return presented


def _present_ticket(ticket: Ticket, *, include_internal: bool) -> dict[str, Any]:
    return {
        "id": str(ticket.id),
        "version": ticket.version,
        "customer_id": ticket.customer_id,
        "subject": ticket.subject,
        "description": ticket.description,
        "status": ticket.status.value,
        "priority": ticket.priority.value,
        "tags": list(ticket.tags),
        "language": ticket.language,
        "assigned_agent_id": ticket.assigned_agent_id,
        "created_at": ticket.created_on.isoformat(),
        "updated_at": ticket.modified_on.isoformat(),
        "last_message_at": ticket.last_message_at.isoformat() if ticket.last_message_at else None,
        "resolved_at": ticket.resolved_at.isoformat() if ticket.resolved_at else None,
        "closed_at": ticket.closed_at.isoformat() if ticket.closed_at else None,
        "messages": [
            m.as_dict() for m in ticket.visible_messages(include_internal=include_internal)
        ],
        "attachments": [
            a.as_dict() for a in ticket.visible_attachments(include_internal=include_internal)
        ],
    }


def event_type(event: object) -> str:
    return type(event).__name__


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def present_history(
    events: Iterable[Aggregate.Event], *, include_internal: bool
) -> list[dict[str, Any]]:
    """Each event: type, version, time, actor and data. Customers get the public events only
    (``is_public``: no internal notes, drafts, SLA bookkeeping or team routing), numbered
    1, 2, 3, ... (their ticket's public versions), with a neutral reason for automatic
    assignments."""
    out = []
    ordinal = 0
    for event in events:
        if not include_internal and not is_public(event):
            continue
        ordinal += 1
        data = {k: v for k, v in vars(event).items() if k not in _META}
        if (
            isinstance(event, Ticket.AgentAssigned | Ticket.AgentUnassigned)
            and not include_internal
        ):
            data["reason"] = event.public_reason
        actor_id = data.pop("actor_id", None) or data.get("author_id")
        actor_role = data.pop("actor_role", None) or data.get("author_role")
        out.append(
            {
                "version": event.originator_version if include_internal else ordinal,
                "type": event_type(event),
                "time": event.timestamp.isoformat(),
                "actor": {"id": actor_id, "role": actor_role},
                "data": _jsonable(data),
            }
        )
    return out
