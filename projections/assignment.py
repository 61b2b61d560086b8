"""The automatic-assignment process manager: follows the log, decides, issues ``assign`` commands.

Its state (agents and the tickets waiting for one) is folded from the log like any read
model, so it can be rebuilt; decisions are made after each batch on that state, stored with
the batch (so they count against capacity before their events arrive, and a second manager
instance sees them), and issued as commands after the commit. A decision names the ticket
version it was made on: if the ticket changed since, the command is refused and the ticket
is decided again once the manager has seen the change. Rebuilding replays state only; it
never decides or issues anything.

Which tickets need an agent: every Open ticket (new, unassigned, reopened without one), and
the working tickets of an agent who went offline (reassigned when someone is free; until
then they stay with their agent). The policies themselves are ``domain.assignment``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from domain.agent import Agent, Availability
from domain.assignment import Candidate, Need, Policy, backlog_order, plan
from domain.lifecycle import Priority, Status
from domain.sla import BusinessCalendar
from domain.team import Team
from domain.ticket import Ticket
from projections.ports import Envelope
from projections.tickets import OPEN_STATUSES

NAME = "assignment"
ACTOR_ID = "automation"
# A ticket in one of these has an agent working on it; if that agent goes offline, it moves.
WORKING = frozenset(
    {Status.ASSIGNED.value, Status.IN_PROGRESS.value, Status.WAITING_ON_CUSTOMER.value}
)


@dataclass
class AgentFacts:
    user_id: str
    aggregate_id: UUID
    name: str
    availability: str
    capacity: int
    skills: list[str]
    languages: list[str]
    working_hours: dict[str, Any] | None
    version: int


@dataclass
class TicketFacts:
    id: UUID
    status: str
    priority: str
    tags: list[str]
    language: str
    agent_id: str | None
    opened_position: int  # age in the backlog: older tickets first
    version: int  # the ticket version a decision is made on
    orphaned: bool = False  # its agent went offline: give it to someone else
    avoid_agent_id: str | None = None  # taken from this agent: automation won't give it back
    team_id: UUID | None = None  # routed to this team: only its members may get it

    @property
    def needs_agent(self) -> bool:
        return self.status == Status.OPEN.value or (self.orphaned and self.status in WORKING)


@dataclass
class TeamFacts:
    id: UUID
    name: str
    archived: bool
    members: list[str]
    version: int


class AssignmentState(Protocol):
    def ticket(self, ticket_id: UUID) -> TicketFacts | None: ...

    def put_ticket(self, facts: TicketFacts) -> None: ...

    def agent(self, aggregate_id: UUID) -> AgentFacts | None: ...

    def put_agent(self, facts: AgentFacts) -> None: ...

    def team(self, team_id: UUID) -> TeamFacts | None: ...

    def put_team(self, facts: TeamFacts) -> None: ...

    def working_tickets_of(self, agent_user_id: str) -> list[TicketFacts]:
        """The tickets this agent is working on now (status in ``WORKING``)."""


@dataclass(frozen=True)
class AssignCommand:
    """A decision to issue: ``assign_ticket`` as automation, valid only at ``expected_version``."""

    ticket_id: UUID
    agent_id: str
    expected_version: int
    policy: str
    reason: str


class Outcome:
    ASSIGNED = "assigned"
    STALE = "stale"  # the ticket changed since the decision: decided again later
    REFUSED = "refused"  # the domain said no for another reason


class AssignmentCommands(Protocol):
    def assign(self, command: AssignCommand) -> str:
        """Issue one decision; returns an ``Outcome``. Infrastructure errors raise."""


# ------------------------------------------------------------------------------ folding
def handle(envelope: Envelope, state: AssignmentState) -> None:
    event = envelope.event
    if isinstance(event, Ticket.Event):
        _ticket_event(envelope, event, state)
    elif isinstance(event, Agent.Event):
        _agent_event(event, state)
    elif isinstance(event, Team.Event):
        _team_event(event, state)


def _ticket_event(envelope: Envelope, event: Any, state: AssignmentState) -> None:
    if isinstance(event, Ticket.TicketOpened):
        state.put_ticket(
            TicketFacts(
                id=event.originator_id,
                status=Status.OPEN.value,
                priority=event.priority,
                tags=list(event.tags),
                language=event.language,
                agent_id=None,
                opened_position=envelope.position,
                version=envelope.version,
            )
        )
        return
    facts = state.ticket(event.originator_id)
    if facts is None:  # pragma: no cover - the log always starts a ticket with TicketOpened
        return
    facts.version = envelope.version
    if isinstance(event, Ticket.StatusChanged):
        facts.status = event.to_status
        if event.to_status not in WORKING:
            facts.orphaned = False
    elif isinstance(event, Ticket.AgentAssigned):
        facts.agent_id = event.agent_id
        facts.orphaned = False
        facts.avoid_agent_id = None
    elif isinstance(event, Ticket.AgentUnassigned):
        facts.agent_id = None
        facts.orphaned = False
        facts.avoid_agent_id = event.agent_id
    elif isinstance(event, Ticket.PriorityChanged):
        facts.priority = event.to_priority
    elif isinstance(event, Ticket.TicketEdited):
        facts.tags = list(event.tags)
    elif isinstance(event, Ticket.TeamChanged):
        facts.team_id = None if event.to_team_id is None else UUID(event.to_team_id)
    state.put_ticket(facts)


def _team_event(event: Any, state: AssignmentState) -> None:
    if isinstance(event, Team.TeamCreated):
        state.put_team(
            TeamFacts(event.originator_id, event.name, False, [], event.originator_version)
        )
        return
    team = state.team(event.originator_id)
    if team is None:  # pragma: no cover - the log always starts a team with TeamCreated
        return
    if isinstance(event, Team.TeamRenamed):
        team.name = event.to_name
    elif isinstance(event, Team.TeamArchived | Team.TeamRestored):
        team.archived = isinstance(event, Team.TeamArchived)
    elif isinstance(event, Team.MemberAdded) and event.user_id not in team.members:
        team.members.append(event.user_id)
    elif isinstance(event, Team.MemberRemoved) and event.user_id in team.members:
        team.members.remove(event.user_id)
    team.version = event.originator_version
    state.put_team(team)


def _agent_event(event: Any, state: AssignmentState) -> None:
    if isinstance(event, Agent.AgentRegistered):
        state.put_agent(
            AgentFacts(
                user_id=event.user_id,
                aggregate_id=event.originator_id,
                name=event.name,
                availability=Availability.OFFLINE.value,
                capacity=event.capacity,
                skills=list(event.skills),
                languages=list(event.languages),
                working_hours=None,
                version=event.originator_version,
            )
        )
        return
    agent = state.agent(event.originator_id)
    if agent is None:  # pragma: no cover
        return
    if isinstance(event, Agent.AvailabilityChanged):
        agent.availability = event.to_availability
        went_offline = event.to_availability == Availability.OFFLINE.value
        if went_offline or event.from_availability == Availability.OFFLINE.value:
            for facts in state.working_tickets_of(agent.user_id):
                if facts.orphaned != went_offline:
                    facts.orphaned = went_offline
                    facts.avoid_agent_id = agent.user_id if went_offline else None
                    state.put_ticket(facts)
    elif isinstance(event, Agent.CapacityChanged):
        agent.capacity = event.capacity
    elif isinstance(event, Agent.SkillsChanged):
        agent.skills = list(event.skills)
        agent.languages = list(event.languages)
    elif isinstance(event, Agent.WorkingHoursChanged):
        agent.working_hours = event.working_hours
    agent.version = event.originator_version
    state.put_agent(agent)


# ------------------------------------------------------------------------------ deciding
def counts_against_capacity(status: str) -> bool:
    return status in OPEN_STATUSES


def anyone_has_room(agents: Iterable[AgentFacts], loads: dict[str, int]) -> bool:
    """Whether any agent is online with fewer open tickets (``loads``) than its capacity.
    If none is, ``decide`` decides nothing whatever the backlog holds (``plan`` stops before
    its first ticket), so the backlog need not even be read."""
    return any(
        a.availability == Availability.ONLINE.value and loads.get(a.user_id, 0) < a.capacity
        for a in agents
    )


def candidate(agent: AgentFacts, load: int) -> Candidate:
    hours = agent.working_hours
    return Candidate(
        user_id=agent.user_id,
        availability=agent.availability,
        capacity=agent.capacity,
        open_tickets=load,
        skills=frozenset(agent.skills),
        languages=frozenset(agent.languages),
        working_hours=(
            None if hours is None else BusinessCalendar.from_json(hours, holidays_allowed=False)
        ),
    )


def need(facts: TicketFacts, teams: dict[UUID, TeamFacts] | None = None) -> Need:
    team = None if facts.team_id is None else (teams or {}).get(facts.team_id)
    return Need(
        ticket_id=facts.id,
        priority=Priority(facts.priority),
        tags=frozenset(facts.tags),
        language=facts.language,
        avoid=facts.avoid_agent_id,
        # A team the manager has not seen (cannot happen in log order) routes to nobody.
        team=(
            None if facts.team_id is None else frozenset(team.members if team is not None else ())
        ),
        team_name=team.name if team is not None else "",
    )


def decide(
    backlog: Iterable[TicketFacts],
    agents: Sequence[AgentFacts],
    loads: dict[str, int],
    *,
    policy: Policy,
    now: datetime,
    last_chosen: str | None,
    teams: dict[UUID, TeamFacts] | None = None,
) -> tuple[list[AssignCommand], str | None]:
    """Decisions for the tickets that need an agent, most urgent and then oldest first.

    ``loads``: each agent's open tickets plus its decisions not yet stored as events.
    Returns the commands and the agent chosen last (the rotation's new starting point).
    """
    waiting = sorted(
        (t for t in backlog if t.needs_agent),
        key=lambda t: backlog_order(need(t), t.opened_position),
    )
    candidates = [candidate(a, loads.get(a.user_id, 0)) for a in agents]
    skill_tags = {skill for a in agents for skill in a.skills}
    by_id = {t.id: t for t in waiting}
    decisions, last = plan(
        [need(t, teams) for t in waiting],
        candidates,
        policy=policy,
        skill_tags=skill_tags,
        now=now,
        last_chosen=last_chosen,
    )
    commands = []
    for d in decisions:
        facts = by_id[d.ticket_id]  # type: ignore[index]
        reason = d.reason
        if facts.orphaned and facts.agent_id:
            reason = f"agent {facts.agent_id} went offline; {reason}"
        commands.append(
            AssignCommand(
                ticket_id=facts.id,
                agent_id=d.agent_id,
                expected_version=facts.version,
                policy=d.policy.value,
                reason=reason,
            )
        )
    return commands, last
