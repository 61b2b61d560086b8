"""The Team aggregate: a named group of agents that tickets can be routed to.

A team is created, renamed, archived (and restored), and gains or loses members; each is an
event that names the admin who did it, so the audit browser shows who changed what. An
archived team takes no new tickets and no new members; tickets already in it keep it.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

from eventsourcing.domain import Aggregate

from domain.errors import IllegalTransitionError, PermissionDeniedError, ValidationError
from domain.lifecycle import Role

NAME_MAX = 80
MEMBERS_MAX = 500


def clean_team_name(name: object) -> str:
    if not isinstance(name, str):
        raise ValidationError("name must be a string.", field="name")
    text = " ".join(name.split())
    if not text:
        raise ValidationError("name must not be empty.", field="name")
    if len(text) > NAME_MAX:
        raise ValidationError(f"name must be at most {NAME_MAX} characters.", field="name")
    return text


def _require_admin(actor_role: Role) -> None:
    if actor_role is not Role.ADMIN:
        raise PermissionDeniedError("Only admins change teams.")


class Team(Aggregate):
    TOPIC = "deskstream.team:Team"

    class Event(Aggregate.Event):
        TOPIC = "deskstream.team:Team.Event"

    class TeamCreated(Event, Aggregate.Created):
        TOPIC = "deskstream.team:TeamCreated"

        name: str
        actor_id: str
        actor_role: str

    class TeamRenamed(Event):
        TOPIC = "deskstream.team:TeamRenamed"

        from_name: str
        to_name: str
        actor_id: str
        actor_role: str

        def apply(self, aggregate: Any) -> None:
            team: Team = aggregate
            team.name = self.to_name

    class TeamArchived(Event):
        TOPIC = "deskstream.team:TeamArchived"

        actor_id: str
        actor_role: str

        def apply(self, aggregate: Any) -> None:
            team: Team = aggregate
            team.archived = True

    class TeamRestored(Event):
        TOPIC = "deskstream.team:TeamRestored"

        actor_id: str
        actor_role: str

        def apply(self, aggregate: Any) -> None:
            team: Team = aggregate
            team.archived = False

    class MemberAdded(Event):
        TOPIC = "deskstream.team:MemberAdded"

        user_id: str
        actor_id: str
        actor_role: str

        def apply(self, aggregate: Any) -> None:
            team: Team = aggregate
            team.members.append(self.user_id)

    class MemberRemoved(Event):
        TOPIC = "deskstream.team:MemberRemoved"

        user_id: str
        actor_id: str
        actor_role: str

        def apply(self, aggregate: Any) -> None:
            team: Team = aggregate
            team.members.remove(self.user_id)

    def __init__(self, name: str, actor_id: str, actor_role: str) -> None:
        self.name = name
        self.archived = False
        self.members: list[str] = []

    @classmethod
    def create(
        cls, *, name: object, actor_id: str, actor_role: Role, team_id: UUID | None = None
    ) -> Team:
        _require_admin(actor_role)
        return cls._create(
            cls.TeamCreated,
            id=team_id or uuid4(),
            name=clean_team_name(name),
            actor_id=actor_id,
            actor_role=actor_role.value,
        )

    def rename(self, *, name: object, actor_id: str, actor_role: Role) -> None:
        _require_admin(actor_role)
        new = clean_team_name(name)
        if new != self.name:
            self.trigger_event(
                self.TeamRenamed,
                from_name=self.name,
                to_name=new,
                actor_id=actor_id,
                actor_role=actor_role.value,
            )

    def archive(self, *, actor_id: str, actor_role: Role) -> None:
        _require_admin(actor_role)
        if not self.archived:
            self.trigger_event(self.TeamArchived, actor_id=actor_id, actor_role=actor_role.value)

    def restore(self, *, actor_id: str, actor_role: Role) -> None:
        _require_admin(actor_role)
        if self.archived:
            self.trigger_event(self.TeamRestored, actor_id=actor_id, actor_role=actor_role.value)

    def add_member(self, *, user_id: str, actor_id: str, actor_role: Role) -> None:
        _require_admin(actor_role)
        if self.archived:
            raise IllegalTransitionError("An archived team takes no new members.")
        if user_id in self.members:
            return
        if len(self.members) >= MEMBERS_MAX:
            raise ValidationError(f"A team has at most {MEMBERS_MAX} members.", field="user_id")
        self.trigger_event(
            self.MemberAdded, user_id=user_id, actor_id=actor_id, actor_role=actor_role.value
        )

    def remove_member(self, *, user_id: str, actor_id: str, actor_role: Role) -> None:
        _require_admin(actor_role)
        if user_id in self.members:
            self.trigger_event(
                self.MemberRemoved, user_id=user_id, actor_id=actor_id, actor_role=actor_role.value
            )
