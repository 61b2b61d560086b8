"""Recording admin changes: who changed what, before and after, as an event (ADR 0039).

A view that changes a setting, a role or an invitation calls ``record`` inside the
transaction that writes the table: the event is appended before that transaction commits,
so a refused append (the event store away) rolls the change back, and no change is left
unrecorded.
"""

from __future__ import annotations

from typing import Any

from rest_framework.request import Request

from command_api.application import Actor, CommandResult, get_application
from domain.lifecycle import Role
from infra.auth.models import User


def admin_actor(request: Request) -> Actor:
    user: User = request.user  # type: ignore[assignment]
    return Actor(id=str(user.pk), role=Role(user.role))


def record(request: Request, action: str, subject: str, before: Any, after: Any) -> CommandResult:
    return get_application().record_admin_change(
        admin_actor(request), action=action, subject=subject, before=before, after=after
    )
