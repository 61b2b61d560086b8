"""Automatic assignment policies, as pure functions: candidates in, a decision and its reason out.

An agent is eligible for a ticket when it is online, inside its working hours, below its
capacity (open tickets, counting decisions not yet stored), speaks the ticket's language and
has every skill the ticket asks for (the ticket's tags that are skill tags). Among the
eligible ones, **round robin** takes the next agent in a fixed rotation after the one chosen
last; **least loaded** takes the lowest ``open / capacity`` (then fewer open tickets, then
the rotation). Every decision carries a sentence saying why this agent.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from domain.errors import ValidationError
from domain.lifecycle import Priority
from domain.numbers import parse_natural
from domain.sla import BusinessCalendar

ONLINE = "online"
PRIORITY_RANK = {Priority.URGENT: 0, Priority.HIGH: 1, Priority.MEDIUM: 2, Priority.LOW: 3}


class Policy(StrEnum):
    ROUND_ROBIN = "round_robin"
    LEAST_LOADED = "least_loaded"

    @property
    def label(self) -> str:
        return self.value.replace("_", " ")


def parse_policy(value: object) -> Policy:
    try:
        return Policy(value if isinstance(value, str) else "")
    except ValueError:
        allowed = ", ".join(p.value for p in Policy)
        raise ValidationError(
            f"Unknown assignment policy {value!r}; expected one of {allowed}.", field="policy"
        ) from None


@dataclass(frozen=True)
class Candidate:
    """An agent as the policy sees it at decision time."""

    user_id: str
    availability: str
    capacity: int
    open_tickets: int  # assigned and not resolved, plus decisions not stored yet
    skills: frozenset[str] = frozenset()
    languages: frozenset[str] = frozenset({"en"})
    working_hours: BusinessCalendar | None = None  # None: always at work


@dataclass(frozen=True)
class Need:
    """A ticket that needs an agent."""

    ticket_id: object
    priority: Priority
    tags: frozenset[str] = frozenset()
    language: str = "en"
    avoid: str | None = None  # the agent it was just taken from: never given back by automation
    team: frozenset[str] | None = None  # the ticket's team's members; None: no team
    team_name: str = ""


@dataclass(frozen=True)
class Decision:
    ticket_id: object
    agent_id: str
    policy: Policy
    reason: str


def required_skills(need: Need, skill_tags: Iterable[str]) -> frozenset[str]:
    """The ticket's tags that name a skill some agent has: those an agent must have."""
    return need.tags & frozenset(skill_tags)


def ineligible_because(
    candidate: Candidate, need: Need, skills: frozenset[str], now: datetime
) -> str | None:
    """Why this agent cannot take this ticket now, or None if it can."""
    if candidate.user_id == need.avoid:
        return "the ticket was just taken from this agent"
    if need.team is not None and candidate.user_id not in need.team:
        return f"not a member of team {need.team_name}"
    if candidate.availability != ONLINE:
        return f"{candidate.availability}, not online"
    if candidate.open_tickets >= candidate.capacity:
        return f"at capacity ({candidate.open_tickets}/{candidate.capacity} open)"
    if need.language not in candidate.languages:
        return f"does not speak {need.language!r}"
    missing = skills - candidate.skills
    if missing:
        return "lacks skill " + ", ".join(sorted(missing))
    if candidate.working_hours is not None and not candidate.working_hours.is_open(now):
        return "outside working hours"
    return None


def rotation_key(user_id: str) -> tuple[int, int | str]:
    """The fixed rotation order: numeric user ids by number, then the others by text."""
    number = parse_natural(user_id)
    return (1, user_id) if number is None else (0, number)


def _after(user_id: str, last: str | None) -> tuple[bool, tuple[int, int | str]]:
    """Rotation order starting right after ``last`` (the agent chosen last)."""
    key = rotation_key(user_id)
    if last is None:
        return (False, key)
    return (key <= rotation_key(last), key)


def choose(
    need: Need,
    candidates: Sequence[Candidate],
    *,
    policy: Policy,
    skill_tags: Iterable[str],
    now: datetime,
    last_chosen: str | None = None,
) -> Decision | None:
    """The agent this policy gives the ticket to, with the reason; None if nobody may take it."""
    skills = required_skills(need, skill_tags)
    eligible = [c for c in candidates if ineligible_because(c, need, skills, now) is None]
    if not eligible:
        return None
    if policy is Policy.ROUND_ROBIN:
        pick = min(eligible, key=lambda c: _after(c.user_id, last_chosen))
        why = "round robin (next in rotation)"
    else:
        pick = min(
            eligible,
            key=lambda c: (
                c.open_tickets / c.capacity,
                c.open_tickets,
                _after(c.user_id, last_chosen),
            ),
        )
        why = "least loaded"
    return Decision(need.ticket_id, pick.user_id, policy, _reason(why, pick, need, skills))


def _reason(why: str, agent: Candidate, need: Need, skills: frozenset[str]) -> str:
    """E.g. "least loaded: 2/5 open, skill billing, language en, online", prefixed with
    "team Billing (3 members), " for a ticket routed to a team."""
    if skills:
        skill = ("skill " if len(skills) == 1 else "skills ") + ", ".join(sorted(skills))
    else:
        skill = "no skill required"
    if need.team is not None:
        why = f"team {need.team_name} ({len(need.team)} members), {why}"
    parts = [
        f"{why}: {agent.open_tickets}/{agent.capacity} open",
        skill,
        f"language {need.language}",
        "online",
    ]
    if agent.working_hours is not None:
        parts.append(f"within working hours ({agent.working_hours.time_zone})")
    return ", ".join(parts)


def backlog_order(need: Need, age: int) -> tuple[int, int]:
    """Most urgent first, then oldest first (``age``: the ticket's log position)."""
    return (PRIORITY_RANK[need.priority], age)


def plan(
    needs: Sequence[Need],
    candidates: Sequence[Candidate],
    *,
    policy: Policy,
    skill_tags: Iterable[str],
    now: datetime,
    last_chosen: str | None = None,
) -> tuple[list[Decision], str | None]:
    """Decide for ``needs`` in the given order (most deserving first), each decision counting
    against the chosen agent's capacity for the next ones. Returns the decisions and the
    agent chosen last (where the rotation continues next time)."""
    pool = {c.user_id: c for c in candidates}
    tags = frozenset(skill_tags)
    decisions = []
    for need in needs:
        if not any(c.open_tickets < c.capacity and c.availability == ONLINE for c in pool.values()):
            break  # nobody can take anything more
        decision = choose(
            need,
            list(pool.values()),
            policy=policy,
            skill_tags=tags,
            now=now,
            last_chosen=last_chosen,
        )
        if decision is None:
            continue
        decisions.append(decision)
        chosen = pool[decision.agent_id]
        pool[decision.agent_id] = replace(chosen, open_tickets=chosen.open_tickets + 1)
        last_chosen = decision.agent_id
    return decisions, last_chosen
