"""The notification projector: who is told about a ticket event, in the app and by e-mail.

Pure logic over the ``NotificationsState`` port. For each ticket event it decides which
users get a notification, what kind, and whether an e-mail goes with it:

- a public reply tells the ticket's customer (e-mail) and its assigned agent (in-app);
- an internal note tells the assigned agent only (staff): customers never hear of one;
- a status change tells the customer (e-mail) and the assigned agent (in-app);
- an assignment tells the new agent (e-mail) and the agent it was taken from (in-app);
- an SLA reminder (``SlaReminderDue``) tells the assigned agent (in-app, and an e-mail if
  they opted in: decided when it is sent, ``processes.notifications``);
- an SLA breach tells the assigned agent (likewise) and the admins (one notification for the
  role, recipient ``ADMINS``: the log does not know who is an admin, every admin reads it);
- nobody is told about their own action, and a user gets at most one notification per event.

The facts this needs beyond the event (the ticket's customer, agent, subject and status
just before it) are folded from the log into the projector's own table, so a rebuild from
zero decides exactly as the live run did. A notification's id is derived from its event
position, recipient and kind: the same notification keeps the same id across rebuilds,
which is what read marks and the e-mail outbox are keyed by.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol
from uuid import NAMESPACE_URL, UUID, uuid5

from domain.ticket import Ticket, is_public
from projections.ports import Envelope

NAME = "notifications"

PUBLIC_REPLY = "public_reply"
INTERNAL_NOTE = "internal_note"
STATUS_CHANGED = "status_changed"
ASSIGNED = "assigned"
UNASSIGNED = "unassigned"
SLA_REMINDER = "sla_reminder"
SLA_BREACHED = "sla_breached"
KINDS = (PUBLIC_REPLY, INTERNAL_NOTE, STATUS_CHANGED, ASSIGNED, UNASSIGNED, SLA_REMINDER,
         SLA_BREACHED)  # fmt: skip
# The kinds that may come with an e-mail (each has an editable template).
EMAIL_KINDS = (STATUS_CHANGED, PUBLIC_REPLY, ASSIGNED, SLA_REMINDER, SLA_BREACHED)
# E-mailed only to agents who chose to get them (their preference, read when it is sent).
OPT_IN_EMAIL_KINDS = (SLA_REMINDER, SLA_BREACHED)
# The recipient of the admins' notifications: every admin reads them (and marks them read
# for themselves).
ADMINS = "admins"

EXCERPT = 200  # characters of a message body kept in a notification
_NAMESPACE = uuid5(NAMESPACE_URL, "deskstream:notification")


def notification_id(position: int, user_id: str, kind: str) -> UUID:
    """The stable id of a notification: the same on every run over the same log."""
    return uuid5(_NAMESPACE, f"{position}:{user_id}:{kind}")


@dataclass
class TicketFacts:
    """What the projector remembers of a ticket (the row of ``rm_notification_ticket``)."""

    id: UUID
    customer_id: str
    subject: str
    status: str
    agent_id: str | None
    version: int
    public_version: int = 0  # how many public events (its customer's numbering)


@dataclass(frozen=True)
class Notification:
    id: UUID
    user_id: str
    kind: str
    ticket_id: UUID
    position: int
    created_at: datetime
    email: bool  # an e-mail goes to this user too
    payload: dict[str, Any] = field(default_factory=dict)


class NotificationsState(Protocol):
    def ticket(self, ticket_id: UUID) -> TicketFacts | None: ...

    def put_ticket(self, facts: TicketFacts) -> None: ...

    def add(self, notification: Notification) -> None: ...


def handle(envelope: Envelope, state: NotificationsState) -> None:
    event = envelope.event
    if not isinstance(event, Ticket.Event):
        return  # agent events tell nobody anything
    if isinstance(event, Ticket.TicketOpened):
        state.put_ticket(
            TicketFacts(
                id=envelope.aggregate_id,
                customer_id=str(event.customer_id),
                subject=event.subject,
                status="open",
                agent_id=None,
                version=envelope.version,
                public_version=1,
            )
        )
        return
    facts = state.ticket(envelope.aggregate_id)
    if facts is None:  # pragma: no cover - the log always starts a ticket with TicketOpened
        return
    for notification in notifications_for(envelope, facts):
        state.add(notification)
    state.put_ticket(_fold(facts, envelope))


def notifications_for(envelope: Envelope, before: TicketFacts) -> list[Notification]:
    """The notifications one ticket event causes, given the ticket just before it."""
    event = envelope.event
    customer, agent = before.customer_id, before.agent_id
    common: dict[str, Any] = {"ticket_subject": before.subject, "customer_id": customer}
    wanted: list[tuple[str, str, dict[str, Any]]] = []  # (user, kind, payload)
    if isinstance(event, Ticket.MessagePosted):
        data = {
            **common,
            "message_id": str(event.message_id),
            "actor_id": event.author_id,
            "actor_role": event.author_role,
            "excerpt": event.body[:EXCERPT],
        }
        if event.internal:
            wanted.append((agent or "", INTERNAL_NOTE, data))
        else:
            wanted += [(customer, PUBLIC_REPLY, data), (agent or "", PUBLIC_REPLY, data)]
        actor = event.author_id
    elif isinstance(event, Ticket.StatusChanged):
        data = {
            **common,
            "from_status": event.from_status,
            "to_status": event.to_status,
            "reason": event.reason,
            "actor_id": event.actor_id,
            "actor_role": event.actor_role,
        }
        wanted += [(customer, STATUS_CHANGED, data), (agent or "", STATUS_CHANGED, data)]
        actor = event.actor_id
    elif isinstance(event, Ticket.AgentAssigned):
        data = {
            **common,
            "agent_id": event.agent_id,
            "previous_agent_id": event.previous_agent_id,
            "policy": event.policy,
            "reason": event.reason,
            "actor_id": event.actor_id,
            "actor_role": event.actor_role,
        }
        wanted += [
            (event.agent_id, ASSIGNED, data),
            (event.previous_agent_id or "", UNASSIGNED, data),
        ]
        actor = event.actor_id
    elif isinstance(event, Ticket.AgentUnassigned):
        data = {
            **common,
            "agent_id": event.agent_id,
            "reason": event.reason,
            "actor_id": event.actor_id,
            "actor_role": event.actor_role,
        }
        wanted.append((event.agent_id, UNASSIGNED, data))
        actor = event.actor_id
    elif isinstance(event, Ticket.SlaReminderDue | Ticket.SlaBreached):
        kind = SLA_REMINDER if isinstance(event, Ticket.SlaReminderDue) else SLA_BREACHED
        data = {
            **common,
            "target": event.target,
            "deadline": event.deadline.isoformat(),
            "agent_id": agent,
            "actor_id": event.actor_id,
            "actor_role": event.actor_role,
        }
        wanted.append((agent or "", kind, data))
        if kind == SLA_BREACHED:
            wanted.append((ADMINS, kind, data))
        actor = event.actor_id
    else:
        return []  # edits and priority changes tell nobody
    out: list[Notification] = []
    seen: set[str] = set()
    public = before.public_version + is_public(event)
    for user, kind, data in wanted:
        if not user or user == actor or user in seen:
            continue
        seen.add(user)
        out.append(
            Notification(
                id=notification_id(envelope.position, user, kind),
                user_id=user,
                kind=kind,
                ticket_id=envelope.aggregate_id,
                position=envelope.position,
                created_at=event.timestamp,
                email=_emailed(kind, user, customer),
                # The customer's notification: the ticket's version as they count it.
                payload={**data, "version": public if user == customer else envelope.version},
            )
        )
    return out


def _emailed(kind: str, user: str, customer: str) -> bool:
    """E-mail: the customer for replies and status changes, the agent for an assignment and
    (if they opted in) for SLA reminders and breaches; never the admins' shared ones."""
    if kind in (PUBLIC_REPLY, STATUS_CHANGED):
        return user == customer
    if kind in OPT_IN_EMAIL_KINDS:
        return user != ADMINS
    return kind == ASSIGNED


def _fold(facts: TicketFacts, envelope: Envelope) -> TicketFacts:
    event = envelope.event
    new = TicketFacts(
        facts.id, facts.customer_id, facts.subject, facts.status, facts.agent_id,
        envelope.version, facts.public_version + is_public(event),
    )  # fmt: skip
    if isinstance(event, Ticket.StatusChanged):
        new.status = event.to_status
    elif isinstance(event, Ticket.AgentAssigned):
        new.agent_id = event.agent_id
    elif isinstance(event, Ticket.AgentUnassigned):
        new.agent_id = None
    elif isinstance(event, Ticket.TicketEdited):
        new.subject = event.subject
    return new


# ------------------------------------------------------------------------------ WebSocket push
_PUSH_KINDS = {"status_changed": STATUS_CHANGED, "assigned_to_you": ASSIGNED,
               "unassigned_from_you": UNASSIGNED, "sla_reminder": SLA_REMINDER,
               "sla_breached": SLA_BREACHED}  # fmt: skip


def pushed(position: int, user_id: str, frame_data: dict[str, Any]) -> dict[str, Any]:
    """The stored notification a push ``notification`` frame announces (``projections.push``
    decides the same recipients from the same log; a test checks it): its id, for ``POST
    /api/notifications/{id}/read``, and its kind."""
    reason = frame_data.get("reason")
    kind = _PUSH_KINDS.get(str(reason)) or (
        INTERNAL_NOTE if frame_data.get("internal") else PUBLIC_REPLY
    )
    return {
        "notification_id": str(notification_id(position, user_id, kind)),
        "notification_kind": kind,
    }
