"""Admin changes outside the aggregates, recorded as events for the audit browser.

Settings, roles, invitations and deactivations live in tables the running system reads
(ADR 0039); each change to them is also appended to the event store as one
``AdminChange.ChangeRecorded``: who, what, on which subject, the value before and after.
Each change is an aggregate of its own (one event, never updated), so recording never
conflicts with another admin's change.
"""

from __future__ import annotations

from typing import Any
from uuid import uuid4

from eventsourcing.domain import Aggregate

from domain.errors import ValidationError

ACTIONS = frozenset(
    {
        "agent.invited",
        "agent.deactivated",
        "agent.reactivated",
        "agent.role_changed",
        "agent.profile_changed",
        "agent.working_hours_changed",
        "settings.sla",
        "settings.calendar",
        "settings.assignment",
        "settings.rate_limits",
        "settings.tickets",
        "settings.drafts",
        "settings.sla_reminders",
        "settings.email_template",
        "projection.rebuild_started",
    }
)


class AdminChange(Aggregate):
    TOPIC = "deskstream.admin:AdminChange"

    class Event(Aggregate.Event):
        TOPIC = "deskstream.admin:AdminChange.Event"

    class ChangeRecorded(Event, Aggregate.Created):
        TOPIC = "deskstream.admin:ChangeRecorded"

        action: str
        subject: str  # e.g. "user:42", "settings:sla", "email_template:status_changed"
        before: Any
        after: Any
        actor_id: str
        actor_role: str

    def __init__(
        self, action: str, subject: str, before: Any, after: Any, actor_id: str, actor_role: str
    ) -> None:
        self.action = action
        self.subject = subject
        self.before = before
        self.after = after
        self.actor_id = actor_id
        self.actor_role = actor_role

    @classmethod
    def record(
        cls, *, action: str, subject: str, before: Any, after: Any, actor_id: str, actor_role: str
    ) -> AdminChange:
        if action not in ACTIONS:
            raise ValidationError(f"Unknown admin action {action!r}.", field="action")
        if not subject:
            raise ValidationError("subject is required.", field="subject")
        return cls._create(
            cls.ChangeRecorded,
            id=uuid4(),
            action=action,
            subject=subject,
            before=before,
            after=after,
            actor_id=actor_id,
            actor_role=actor_role,
        )
