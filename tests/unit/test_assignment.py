"""Assignment policies (``domain.assignment``) and the process manager's logic
(``projections.assignment``) on plain data: eligibility, rotation, load, capacity, reasons."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.agent import Agent, agent_id_for_user
from domain.assignment import Candidate, Need, Policy, choose, parse_policy, plan
from domain.errors import ValidationError
from domain.lifecycle import Priority, Role
from domain.sla import BusinessCalendar
from domain.ticket import Ticket
from projections import assignment
from projections.assignment import AgentFacts, TicketFacts
from tests.support.fake_log import FakeEventLog

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)  # a Wednesday


def agent(user_id: str, **kw: Any) -> Candidate:
    defaults: dict[str, Any] = {"availability": "online", "capacity": 5, "open_tickets": 0}
    return Candidate(user_id=user_id, **{**defaults, **kw})


def need(priority: str = "medium", **kw: Any) -> Need:
    return Need(ticket_id=kw.pop("ticket_id", uuid4()), priority=Priority(priority), **kw)


def test_least_loaded_picks_the_lowest_share_and_says_why() -> None:
    agents = [agent("1", open_tickets=3), agent("2", open_tickets=2, capacity=5),
              agent("3", open_tickets=1, capacity=2)]  # fmt: skip
    decision = choose(need(), agents, policy=Policy.LEAST_LOADED, skill_tags=(), now=NOW)
    assert decision is not None
    assert decision.agent_id == "2"  # 2/5 = 0.4 < 1/2 = 0.5 < 3/5
    assert decision.reason == "least loaded: 2/5 open, no skill required, language en, online"


def test_skills_language_capacity_availability_and_hours_filter() -> None:
    berlin_days = BusinessCalendar.from_json(
        {"time_zone": "Europe/Berlin", "weekly_hours": {"mon": [["09:00", "17:00"]]}},
        holidays_allowed=False,
    )
    agents = [
        agent("1", skills=frozenset({"billing"}), languages=frozenset({"en"})),  # no German
        agent("2", skills=frozenset({"billing"}), languages=frozenset({"de"}), open_tickets=5),
        agent("3", skills=frozenset(), languages=frozenset({"de"})),  # lacks billing
        agent("4", skills=frozenset({"billing"}), languages=frozenset({"de"}), availability="away"),
        agent("5", skills=frozenset({"billing"}), languages=frozenset({"de"}),
              working_hours=berlin_days),  # Mondays only
        agent("6", skills=frozenset({"billing", "api"}), languages=frozenset({"de", "en"}),
              open_tickets=4),
    ]  # fmt: skip
    ticket = need(tags=frozenset({"billing", "urgent-ish"}), language="de")
    skill_tags = {"billing", "api"}  # "urgent-ish" is no skill: not required
    decision = choose(ticket, agents, policy=Policy.LEAST_LOADED, skill_tags=skill_tags, now=NOW)
    assert decision is not None
    assert decision.agent_id == "6"
    assert decision.reason == "least loaded: 4/5 open, skill billing, language de, online"
    monday = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
    decision = choose(ticket, agents, policy=Policy.LEAST_LOADED, skill_tags=skill_tags, now=monday)
    assert decision is not None
    assert decision.agent_id == "5"
    assert decision.reason.endswith("within working hours (Europe/Berlin)")
    full = [replace(a, open_tickets=a.capacity) for a in agents]
    assert choose(ticket, full, policy=Policy.LEAST_LOADED, skill_tags=skill_tags, now=NOW) is None


def test_nobody_gets_the_ticket_back_it_was_taken_from() -> None:
    agents = [agent("1"), agent("2", open_tickets=4)]
    decision = choose(need(avoid="1"), agents, policy=Policy.ROUND_ROBIN, skill_tags=(), now=NOW)
    assert decision is not None
    assert decision.agent_id == "2"


def test_round_robin_rotates_in_user_id_order_skipping_the_ineligible() -> None:
    agents = [agent("10"), agent("2"), agent("3", availability="offline"), agent("9")]
    needs = [need() for _ in range(6)]
    decisions, last = plan(needs, agents, policy=Policy.ROUND_ROBIN, skill_tags=(), now=NOW)
    assert [d.agent_id for d in decisions] == ["2", "9", "10", "2", "9", "10"]
    assert last == "10"
    assert decisions[0].reason.startswith("round robin (next in rotation): 0/5 open")
    # The rotation continues where it stopped.
    more, _ = plan(needs[:2], agents, policy=Policy.ROUND_ROBIN, skill_tags=(), now=NOW,
                   last_chosen="2")  # fmt: skip
    assert [d.agent_id for d in more] == ["9", "10"]


def test_plan_counts_its_own_decisions_against_capacity() -> None:
    agents = [agent(str(i), capacity=2) for i in range(1, 4)]
    decisions, _ = plan(
        [need() for _ in range(10)], agents, policy=Policy.LEAST_LOADED, skill_tags=(), now=NOW
    )
    assert len(decisions) == 6
    assert Counter(d.agent_id for d in decisions) == {"1": 2, "2": 2, "3": 2}


def test_parse_policy() -> None:
    assert parse_policy("round_robin") is Policy.ROUND_ROBIN
    with pytest.raises(ValidationError) as err:
        parse_policy("random")
    assert err.value.data["field"] == "policy"


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from(list(Policy)),
    st.lists(st.tuples(st.integers(1, 6), st.integers(0, 6)), min_size=1, max_size=8),
    st.integers(0, 60),
)
def test_no_one_ever_goes_over_capacity_and_equal_agents_stay_within_one(
    policy: Policy, shapes: list[tuple[int, int]], n: int
) -> None:
    agents = [
        agent(str(i), capacity=cap, open_tickets=min(load, cap))
        for i, (cap, load) in enumerate(shapes)
    ]
    decisions, _ = plan([need() for _ in range(n)], agents, policy=policy, skill_tags=(), now=NOW)
    given_to = Counter(d.agent_id for d in decisions)
    free = sum(a.capacity - a.open_tickets for a in agents)
    assert len(decisions) == min(n, free)
    for a in agents:
        assert a.open_tickets + given_to[a.user_id] <= a.capacity
    # Agents alike (same capacity, same load) get counts within one of each other.
    for a in agents:
        for b in agents:
            if (a.capacity, a.open_tickets) == (b.capacity, b.open_tickets):
                assert abs(given_to[a.user_id] - given_to[b.user_id]) <= 1


# ---------------------------------------------------------------------------- the manager
class FakeState:
    def __init__(self) -> None:
        self.tickets: dict[UUID, TicketFacts] = {}
        self.agents: dict[UUID, AgentFacts] = {}

    def ticket(self, ticket_id: UUID) -> TicketFacts | None:
        return self.tickets.get(ticket_id)

    def put_ticket(self, facts: TicketFacts) -> None:
        self.tickets[facts.id] = facts

    def agent(self, aggregate_id: UUID) -> AgentFacts | None:
        return self.agents.get(aggregate_id)

    def put_agent(self, facts: AgentFacts) -> None:
        self.agents[facts.aggregate_id] = facts

    def working_tickets_of(self, agent_user_id: str) -> list[TicketFacts]:
        return [
            t
            for t in self.tickets.values()
            if t.agent_id == agent_user_id and t.status in assignment.WORKING
        ]


class FoldedLog(FakeEventLog):
    """The log in memory; what is appended to it goes through the manager's fold."""

    def __init__(self) -> None:
        super().__init__()
        self.state = FakeState()

    def apply(self, aggregate: Any) -> None:
        for envelope in self.append(aggregate):
            assignment.handle(envelope, self.state)


def test_the_fold_tracks_backlog_orphans_and_versions() -> None:
    log = FoldedLog()
    ada = Agent.register(user_id="2", name="Ada", capacity=3, skills=["billing"])
    ada.set_availability("online")
    log.apply(ada)
    ticket = Ticket.open(customer_id="c1", subject="Hi", description="", priority="high",
                         tags=["billing"], language="de", actor_id="c1",
                         actor_role=Role.CUSTOMER)  # fmt: skip
    log.apply(ticket)
    facts = log.state.tickets[ticket.id]
    assert (facts.status, facts.needs_agent, facts.version, facts.opened_position) == (
        "open", True, 1, 3)  # fmt: skip
    ticket.assign(agent_id="2", actor_id="automation", actor_role=Role.SYSTEM)
    ticket.change_status(target="in_progress", actor_id="2", actor_role=Role.AGENT)
    log.apply(ticket)
    assert (facts.status, facts.agent_id, facts.needs_agent, facts.version) == (
        "in_progress", "2", False, 4)  # fmt: skip
    ada.set_availability("offline")
    log.apply(ada)
    assert (facts.orphaned, facts.needs_agent, facts.avoid_agent_id) == (True, True, "2")
    ada.set_availability("online")  # back before anyone took over: keeps its tickets
    log.apply(ada)
    assert (facts.orphaned, facts.needs_agent) == (False, False)
    ticket.unassign(actor_id="2", actor_role=Role.AGENT)
    log.apply(ticket)
    assert (facts.status, facts.agent_id, facts.avoid_agent_id, facts.needs_agent) == (
        "open", None, "2", True)  # fmt: skip
    agent_facts = log.state.agents[agent_id_for_user("2")]
    assert (agent_facts.availability, agent_facts.capacity, agent_facts.skills) == (
        "online", 3, ["billing"])  # fmt: skip
    ada.set_working_hours({"time_zone": "UTC", "weekly_hours": {"mon": [["09:00", "17:00"]]}})
    log.apply(ada)
    assert agent_facts.working_hours == {
        "time_zone": "UTC",
        "weekly_hours": {"mon": [["09:00", "17:00"]], "tue": [], "wed": [], "thu": [], "fri": [],
                         "sat": [], "sun": []},
    }  # fmt: skip


def _ticket(n: int, priority: str = "medium", **kw: Any) -> TicketFacts:
    return TicketFacts(
        id=UUID(int=n), status=kw.pop("status", "open"), priority=priority, tags=[],
        language="en", agent_id=kw.pop("agent_id", None), opened_position=n, version=1, **kw,
    )  # fmt: skip


def _agent(user_id: str, **kw: Any) -> AgentFacts:
    values: dict[str, Any] = {
        "user_id": user_id, "aggregate_id": agent_id_for_user(user_id), "name": user_id,
        "availability": "online", "capacity": 2, "skills": [], "languages": ["en"],
        "working_hours": None, "version": 2,
    }  # fmt: skip
    return AgentFacts(**{**values, **kw})


def test_decide_drains_urgent_first_then_oldest_and_explains_reassignments() -> None:
    backlog = [
        _ticket(1, "low"),
        _ticket(2, "urgent"),
        _ticket(3, "medium"),
        _ticket(4, "urgent"),
        _ticket(5, "high", status="in_progress", agent_id="7", orphaned=True, avoid_agent_id="7"),
    ]
    commands, last = assignment.decide(
        backlog, [_agent("1"), _agent("7", availability="offline")], {"1": 0},
        policy=Policy.LEAST_LOADED, now=NOW, last_chosen=None,
    )  # fmt: skip
    assert [c.ticket_id for c in commands] == [UUID(int=2), UUID(int=4)]  # capacity 2
    assert last == "1"
    commands, _ = assignment.decide(
        backlog[4:], [_agent("1")], {"1": 1}, policy=Policy.ROUND_ROBIN, now=NOW, last_chosen=None
    )
    (command,) = commands
    assert command.reason == (
        "agent 7 went offline; round robin (next in rotation): 1/2 open, no skill required, "
        "language en, online"
    )
    assert (command.agent_id, command.expected_version, command.policy) == ("1", 1, "round_robin")


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from(list(Policy)),
    st.lists(
        st.tuples(st.sampled_from(["online", "away", "offline"]), st.integers(0, 3),
                  st.integers(0, 4)),
        min_size=0, max_size=5,
    ),
    st.integers(0, 6),
)  # fmt: skip
def test_without_room_for_anyone_decide_decides_nothing(
    policy: Policy, shapes: list[tuple[str, int, int]], n: int
) -> None:
    """What lets the manager skip reading its backlog (``anyone_has_room``)."""
    agents = [
        _agent(str(i), availability=availability, capacity=capacity)
        for i, (availability, capacity, _) in enumerate(shapes)
    ]
    loads = {str(i): load for i, (_, _, load) in enumerate(shapes)}
    backlog = [_ticket(i + 1) for i in range(n)]
    commands, last = assignment.decide(
        backlog, agents, loads, policy=policy, now=NOW, last_chosen="0"
    )
    if not assignment.anyone_has_room(agents, loads):
        assert (commands, last) == ([], "0")
    elif backlog:
        assert commands  # someone online with room takes the first ticket (no skills, "en")
