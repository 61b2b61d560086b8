"""Teams (``domain.team``), team routing in the assignment policy, ticket teams and admin
change records, on plain objects."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import pytest

from domain.admin import AdminChange
from domain.assignment import Candidate, Need, Policy, choose
from domain.errors import IllegalTransitionError, PermissionDeniedError, ValidationError
from domain.lifecycle import Priority, Role
from domain.team import Team
from domain.ticket import Ticket, is_public

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def team() -> Team:
    return Team.create(name="  Billing   desk ", actor_id="1", actor_role=Role.ADMIN)


def test_a_team_is_created_renamed_archived_and_gains_and_loses_members() -> None:
    t = team()
    assert t.name == "Billing desk"
    t.rename(name="Billing", actor_id="1", actor_role=Role.ADMIN)
    t.rename(name="Billing", actor_id="1", actor_role=Role.ADMIN)  # no change: no event
    t.add_member(user_id="7", actor_id="1", actor_role=Role.ADMIN)
    t.add_member(user_id="7", actor_id="1", actor_role=Role.ADMIN)
    t.add_member(user_id="8", actor_id="1", actor_role=Role.ADMIN)
    t.remove_member(user_id="7", actor_id="1", actor_role=Role.ADMIN)
    t.remove_member(user_id="9", actor_id="1", actor_role=Role.ADMIN)
    t.archive(actor_id="1", actor_role=Role.ADMIN)
    events = t.collect_events()
    assert [type(e).__name__ for e in events] == [
        "TeamCreated", "TeamRenamed", "MemberAdded", "MemberAdded", "MemberRemoved",
        "TeamArchived"]  # fmt: skip
    assert (t.members, t.archived) == (["8"], True)
    renamed = events[1]
    assert isinstance(renamed, Team.TeamRenamed)
    assert (renamed.from_name, renamed.to_name, renamed.actor_id) == (
        "Billing desk",
        "Billing",
        "1",
    )
    with pytest.raises(IllegalTransitionError):
        t.add_member(user_id="9", actor_id="1", actor_role=Role.ADMIN)
    t.restore(actor_id="1", actor_role=Role.ADMIN)
    assert not t.archived


@pytest.mark.parametrize("name", ["", "   ", 5, None, "x" * 81])
def test_a_team_needs_a_name(name: object) -> None:
    with pytest.raises(ValidationError):
        Team.create(name=name, actor_id="1", actor_role=Role.ADMIN)


@pytest.mark.parametrize("role", [Role.AGENT, Role.CUSTOMER])
def test_only_admins_change_teams(role: Role) -> None:
    with pytest.raises(PermissionDeniedError):
        Team.create(name="x", actor_id="2", actor_role=role)
    with pytest.raises(PermissionDeniedError):
        team().add_member(user_id="7", actor_id="2", actor_role=role)


def test_team_routing_picks_only_members_and_says_so() -> None:
    agents = [
        Candidate("1", "online", 5, 0),  # least loaded, but not a member
        Candidate("2", "online", 5, 3),
        Candidate("3", "online", 5, 4),
    ]
    need = Need(uuid4(), Priority.MEDIUM, team=frozenset({"2", "3"}), team_name="Billing")
    decision = choose(need, agents, policy=Policy.LEAST_LOADED, skill_tags=(), now=NOW)
    assert decision is not None
    assert decision.agent_id == "2"
    assert decision.reason == (
        "team Billing (2 members), least loaded: 3/5 open, no skill required, language en, online"
    )
    empty = Need(uuid4(), Priority.MEDIUM, team=frozenset(), team_name="Nobody")
    assert choose(empty, agents, policy=Policy.ROUND_ROBIN, skill_tags=(), now=NOW) is None


def test_a_ticket_is_routed_to_a_team_by_staff_only_and_customers_do_not_see_it() -> None:
    ticket = Ticket.open(customer_id="c1", subject="Help", description="", actor_id="c1",
                         actor_role=Role.CUSTOMER)  # fmt: skip
    with pytest.raises(PermissionDeniedError):
        ticket.set_team(team_id="t", actor_id="c1", actor_role=Role.CUSTOMER)
    ticket.set_team(team_id="t", actor_id="5", actor_role=Role.AGENT)
    ticket.set_team(team_id="t", actor_id="5", actor_role=Role.AGENT)
    ticket.set_team(team_id=None, actor_id="5", actor_role=Role.AGENT)
    changes = [e for e in ticket.collect_events() if isinstance(e, Ticket.TeamChanged)]
    assert [(e.from_team_id, e.to_team_id) for e in changes] == [(None, "t"), ("t", None)]
    assert ticket.team_id is None
    assert not any(is_public(e) for e in changes)


def test_an_admin_change_records_who_what_before_and_after() -> None:
    change = AdminChange.record(action="settings.sla", subject="settings:sla", before={"a": 1},
                                after={"a": 2}, actor_id="1", actor_role="admin")  # fmt: skip
    (event,) = change.collect_events()
    assert isinstance(event, AdminChange.ChangeRecorded)
    assert (event.action, event.before, event.after, event.actor_id) == (
        "settings.sla", {"a": 1}, {"a": 2}, "1")  # fmt: skip
    with pytest.raises(ValidationError):
        AdminChange.record(action="nope", subject="x", before=None, after=None, actor_id="1",
                           actor_role="admin")  # fmt: skip
