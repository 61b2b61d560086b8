"""The Agent aggregate: what automatic assignment needs to know about a support agent.

Availability is a command (and an event) rather than ephemeral presence because the
assignment policy decides on it; presence dots in the UI come later from the WebSocket.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate

from domain.errors import ValidationError
from domain.sla import BusinessCalendar
from domain.ticket import clean_tags

CAPACITY_MAX = 200


class Availability(StrEnum):
    ONLINE = "online"
    AWAY = "away"
    OFFLINE = "offline"


def agent_id_for_user(user_id: str) -> UUID:
    """An agent's aggregate id is derived from its user id, so no lookup table is needed."""
    return uuid5(NAMESPACE_URL, f"deskstream:agent:{user_id}")


def _clean_capacity(capacity: object) -> int:
    if not isinstance(capacity, int) or isinstance(capacity, bool):
        raise ValidationError("capacity must be an integer.", field="capacity")
    if not 0 <= capacity <= CAPACITY_MAX:
        raise ValidationError(f"capacity must be between 0 and {CAPACITY_MAX}.", field="capacity")
    return capacity


class Agent(Aggregate):
    TOPIC = "deskstream.agent:Agent"

    class Event(Aggregate.Event):
        TOPIC = "deskstream.agent:Agent.Event"

    class Created(Event, Aggregate.Created):
        TOPIC = "deskstream.agent:Agent.Created"

    class AgentRegistered(Created):
        TOPIC = "deskstream.agent:AgentRegistered"

        user_id: str
        name: str
        capacity: int
        skills: list[str]
        languages: list[str]

    class AvailabilityChanged(Event):
        TOPIC = "deskstream.agent:AvailabilityChanged"

        from_availability: str
        to_availability: str

        def apply(self, aggregate: Any) -> None:
            agent: Agent = aggregate
            agent.availability = Availability(self.to_availability)

    class CapacityChanged(Event):
        TOPIC = "deskstream.agent:CapacityChanged"

        capacity: int

        def apply(self, aggregate: Any) -> None:
            agent: Agent = aggregate
            agent.capacity = self.capacity

    class SkillsChanged(Event):
        TOPIC = "deskstream.agent:SkillsChanged"

        skills: list[str]
        languages: list[str]

        def apply(self, aggregate: Any) -> None:
            agent: Agent = aggregate
            agent.skills = list(self.skills)
            agent.languages = list(self.languages)

    class WorkingHoursChanged(Event):
        """The agent's weekly working hours (automatic assignment only inside them)."""

        TOPIC = "deskstream.agent:WorkingHoursChanged"

        working_hours: dict[str, Any] | None  # {"time_zone", "weekly_hours"}; None: any time

        def apply(self, aggregate: Any) -> None:
            agent: Agent = aggregate
            agent.working_hours = self.working_hours

    def __init__(
        self, user_id: str, name: str, capacity: int, skills: list[str], languages: list[str]
    ) -> None:
        self.user_id = user_id
        self.name = name
        self.capacity = capacity
        self.skills = list(skills)
        self.languages = list(languages)
        self.availability = Availability.OFFLINE
        self.working_hours: dict[str, Any] | None = None

    @classmethod
    def register(
        cls,
        *,
        user_id: str,
        name: str,
        capacity: object = 5,
        skills: object = (),
        languages: object = ("en",),
    ) -> Agent:
        if not user_id:
            raise ValidationError("user_id is required.", field="user_id")
        return cls._create(
            cls.AgentRegistered,
            id=agent_id_for_user(user_id),
            user_id=user_id,
            name=name.strip() or user_id,
            capacity=_clean_capacity(capacity),
            skills=clean_tags(skills),
            languages=clean_tags(languages),
        )

    def set_availability(self, availability: object) -> None:
        try:
            new = Availability(availability if isinstance(availability, str) else "")
        except ValueError:
            allowed = ", ".join(a.value for a in Availability)
            raise ValidationError(
                f"Unknown availability {availability!r}; expected one of {allowed}.",
                field="availability",
            ) from None
        if new is self.availability:
            return
        self.trigger_event(
            self.AvailabilityChanged,
            from_availability=self.availability.value,
            to_availability=new.value,
        )

    def set_capacity(self, capacity: object) -> None:
        value = _clean_capacity(capacity)
        if value != self.capacity:
            self.trigger_event(self.CapacityChanged, capacity=value)

    def set_skills(self, *, skills: object, languages: object) -> None:
        new_skills, new_languages = clean_tags(skills), clean_tags(languages)
        if (new_skills, new_languages) != (self.skills, self.languages):
            self.trigger_event(self.SkillsChanged, skills=new_skills, languages=new_languages)

    def set_working_hours(self, working_hours: object) -> None:
        """Weekly hours in a time zone (``{"time_zone", "weekly_hours"}``), or None: any time."""
        value = (
            None
            if working_hours is None
            else BusinessCalendar.from_json(working_hours, holidays_allowed=False).to_json(
                with_holidays=False
            )
        )
        if value != self.working_hours:
            self.trigger_event(self.WorkingHoursChanged, working_hours=value)
