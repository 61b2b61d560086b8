"""The Agent aggregate: registration, availability, capacity and skills."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest

from domain.agent import CAPACITY_MAX, Agent, Availability, agent_id_for_user
from domain.errors import ValidationError


def register(**overrides: Any) -> Agent:
    """A registered agent whose registration event is already collected."""
    agent = Agent.register(**{"user_id": "42", "name": "Ada", **overrides})
    agent.collect_events()
    return agent


def emitted(agent: Agent) -> list[type[Any]]:
    return [type(e) for e in agent.collect_events()]


def test_agent_id_for_user_is_deterministic() -> None:
    # Stored aggregates are found by this id: it must never change for a given user.
    assert agent_id_for_user("42") == UUID("a00f1284-03a1-5498-bfd8-ad24df7f7e90")
    assert agent_id_for_user("42") == agent_id_for_user("42")
    assert agent_id_for_user("43") != agent_id_for_user("42")


def test_register() -> None:
    agent = Agent.register(
        user_id="42",
        name="  Ada Lovelace ",
        capacity=8,
        skills=["Billing", "billing", " API "],
        languages=["EN", "de"],
    )
    events = agent.collect_events()
    assert [type(e) for e in events] == [Agent.AgentRegistered]
    registered = events[0]
    assert (registered.originator_id, registered.originator_version) == (
        agent_id_for_user("42"),
        1,
    )
    assert (registered.user_id, registered.name, registered.capacity) == ("42", "Ada Lovelace", 8)
    assert (registered.skills, registered.languages) == (["billing", "api"], ["en", "de"])
    assert (agent.id, agent.version) == (agent_id_for_user("42"), 1)
    assert (agent.user_id, agent.name, agent.capacity) == ("42", "Ada Lovelace", 8)
    assert (agent.skills, agent.languages) == (["billing", "api"], ["en", "de"])
    assert agent.availability is Availability.OFFLINE


def test_register_defaults() -> None:
    agent = Agent.register(user_id="42", name="  ")
    assert (agent.name, agent.capacity, agent.skills, agent.languages) == ("42", 5, [], ["en"])


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"user_id": ""}, "user_id"),
        ({"capacity": -1}, "capacity"),
        ({"capacity": CAPACITY_MAX + 1}, "capacity"),
        ({"capacity": True}, "capacity"),
        ({"capacity": "5"}, "capacity"),
        ({"capacity": 2.5}, "capacity"),
        ({"capacity": None}, "capacity"),
        ({"skills": "billing"}, "tags"),
        ({"skills": [""]}, "tag"),
        ({"languages": [None]}, "tag"),
    ],
)
def test_register_rejects_invalid_arguments(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        Agent.register(**{"user_id": "42", "name": "Ada", **overrides})
    assert info.value.data == {"field": field}


@pytest.mark.parametrize("capacity", [0, CAPACITY_MAX])
def test_capacity_limits_are_allowed(capacity: int) -> None:
    assert register(capacity=capacity).capacity == capacity


def test_capacity_error_message() -> None:
    with pytest.raises(ValidationError) as info:
        register(capacity=201)
    assert info.value.detail == "capacity must be between 0 and 200."


def test_availability_changes() -> None:
    agent = register()
    agent.set_availability("online")
    agent.set_availability("away")
    events = agent.collect_events()
    assert [type(e) for e in events] == [Agent.AvailabilityChanged, Agent.AvailabilityChanged]
    assert [(e.from_availability, e.to_availability) for e in events] == [
        ("offline", "online"),
        ("online", "away"),
    ]
    assert (agent.availability, agent.version) == (Availability.AWAY, 3)


def test_the_same_availability_emits_nothing() -> None:
    agent = register()
    agent.set_availability("offline")
    assert (emitted(agent), agent.version) == ([], 1)


@pytest.mark.parametrize("availability", ["busy", "Online", "", None, 1])
def test_an_unknown_availability_is_refused(availability: object) -> None:
    agent = register()
    with pytest.raises(ValidationError) as info:
        agent.set_availability(availability)
    assert info.value.detail == (
        f"Unknown availability {availability!r}; expected one of online, away, offline."
    )
    assert info.value.data == {"field": "availability"}
    assert (emitted(agent), agent.availability) == ([], Availability.OFFLINE)


def test_capacity_changes() -> None:
    agent = register()
    agent.set_capacity(12)
    events = agent.collect_events()
    assert [type(e) for e in events] == [Agent.CapacityChanged]
    assert events[0].capacity == 12
    assert agent.capacity == 12
    agent.set_capacity(12)
    assert emitted(agent) == []


@pytest.mark.parametrize("capacity", [-1, 201, False, "12", 1.0])
def test_an_invalid_capacity_is_refused(capacity: object) -> None:
    agent = register()
    with pytest.raises(ValidationError):
        agent.set_capacity(capacity)
    assert (emitted(agent), agent.capacity) == ([], 5)


def test_skills_change() -> None:
    agent = register(skills=["billing"])
    agent.set_skills(skills=["API", "billing"], languages=["EN"])
    events = agent.collect_events()
    assert [type(e) for e in events] == [Agent.SkillsChanged]
    assert (events[0].skills, events[0].languages) == (["api", "billing"], ["en"])
    assert (agent.skills, agent.languages) == (["api", "billing"], ["en"])


def test_the_same_skills_after_cleaning_emit_nothing() -> None:
    agent = register(skills=["billing", "api"])
    agent.set_skills(skills=[" Billing", "API", "api"], languages=("en",))
    assert (emitted(agent), agent.version) == ([], 1)


def test_invalid_skills_are_refused() -> None:
    agent = register(skills=["billing"])
    with pytest.raises(ValidationError):
        agent.set_skills(skills=["x" * 41], languages=["en"])
    assert (emitted(agent), agent.skills) == ([], ["billing"])


def test_replaying_the_events_rebuilds_the_agent() -> None:
    agent = Agent.register(user_id="42", name="Ada")
    agent.set_availability("online")
    agent.set_capacity(3)
    agent.set_skills(skills=["api"], languages=["en", "fr"])
    events = agent.collect_events()
    rebuilt: Any = None
    for event in events:
        rebuilt = event.mutate(rebuilt)
    assert isinstance(rebuilt, Agent)
    assert vars(rebuilt) == vars(agent)
