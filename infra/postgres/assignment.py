"""PostgreSQL adapter of the assignment process manager: its state, its decisions, its store.

``PostgresAssignmentState`` folds a batch of events into ``rm_assign_agent`` and
``rm_assign_ticket`` (loaded and written in bulk, like the read models). When the state
decides (live batches only, never a rebuild), it does so at the end of the batch, in the
batch's transaction, while the batch holds the projector's position lock: it drops the
decisions whose ticket has moved on, counts every agent's open tickets from its table plus
its pending decisions, lets ``projections.assignment.decide`` choose, and inserts the new
decisions (``assignment_decision``) and the rotation cursor (``assignment_cursor``). Those
two tables are never rebuilt. ``ProcessManagerStore`` issues the decisions after the
commit, and issues again those a crash left pending.

A batch whose events change nothing a decision reads (messages: only ticket versions move,
and no decision named an older one; ``changes_decisions``) decides only if this
store's last decision is at least ``DECIDE_AT_LEAST_EVERY`` old, so what depends on the time
alone (working hours, lost decisions to issue again) is still decided while such events keep
coming; an idle batch (no events) always decides. Deciding on every batch was a sixth of the
projector process's CPU under load and seven statements per batch (ADR 0020).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from django.db import connection
from psycopg.types.json import Jsonb

from domain.assignment import Policy
from infra.postgres.bulk import insert_rows, select_sql, update_on_conflict
from infra.postgres.projection_store import PostgresBatch, PostgresProjectionStore
from projections import assignment
from projections.assignment import AgentFacts, AssignCommand, Outcome, TeamFacts, TicketFacts
from projections.ports import Envelope
from projections.tickets import OPEN_STATUSES

AGENTS = "rm_assign_agent"
TICKETS = "rm_assign_ticket"
DECISIONS = "assignment_decision"
CURSOR = "assignment_cursor"
TEAMS = "rm_assign_team"
TABLES = [TICKETS, AGENTS, TEAMS]  # what a rebuild copies and swaps; never decisions or the cursor

AGENT_COLUMNS = ["user_id", "aggregate_id", "name", "availability", "capacity", "skills",
                 "languages", "working_hours", "version"]  # fmt: skip
TICKET_COLUMNS = ["id", "status", "priority", "tags", "language", "agent_id", "opened_position",
                  "version", "orphaned", "avoid_agent_id", "team_id"]  # fmt: skip
TEAM_COLUMNS = ["id", "name", "archived", "members", "version"]
# A pending decision not stored as an event after this long was lost (a crash after the
# commit, a failed command): it is issued again.
REISSUE_AFTER = timedelta(seconds=30)
BACKLOG_LIMIT = 5000
# See the module's docstring: how old the last decision may get while batches change nothing
# that decisions read.
DECIDE_AT_LEAST_EVERY = 1.0  # seconds
_PRIORITY_SQL = (
    "CASE priority WHEN 'urgent' THEN 0 WHEN 'high' THEN 1 WHEN 'medium' THEN 2 ELSE 3 END"
)


@dataclass(frozen=True)
class Deciding:
    """What a live batch needs to decide: the settings in force and the time."""

    policy: Policy
    now: datetime


class PostgresAssignmentState:
    """``projections.assignment.AssignmentState`` over the manager's tables, batched."""

    def __init__(
        self,
        cursor: Any,
        suffix: str = "",
        *,
        deciding: Deciding | Callable[[], Deciding | None] | None = None,
    ) -> None:
        self.cur = cursor
        self.agents_table = AGENTS + suffix
        self.tickets_table = TICKETS + suffix
        self.teams_table = TEAMS + suffix
        self._teams: dict[UUID, TeamFacts] = {}
        self._dirty_teams: set[UUID] = set()
        # Never on a rebuild copy: rebuilding replays state, it does not act. A callable is
        # asked only when the batch decides (it reads the settings).
        self._deciding = deciding if not suffix else None
        self._tickets: dict[UUID, TicketFacts] = {}
        # What decisions read of each ticket as loaded, and what the batch touched: a batch
        # that changes none of it need not decide (``changes_decisions``).
        self._loaded: dict[UUID, tuple[Any, ...]] = {}
        self._touched: set[UUID] = set()
        self._agents_touched = False
        self._dropped: int | None = None  # stale decisions dropped by this batch
        self._agents: dict[UUID, AgentFacts] = {}
        self._dirty_tickets: set[UUID] = set()
        self._dirty_agents: set[UUID] = set()
        self._working_loaded: set[str] = set()
        self.decided: list[AssignCommand] = []  # to issue after the commit

    @property
    def deciding(self) -> Deciding | None:
        if callable(self._deciding):
            self._deciding = self._deciding()
        return self._deciding

    # ----------------------------------------------------------- AssignmentState
    def ticket(self, ticket_id: UUID) -> TicketFacts | None:
        return self._tickets.get(ticket_id)

    def put_ticket(self, facts: TicketFacts) -> None:
        self._tickets[facts.id] = facts
        self._dirty_tickets.add(facts.id)
        self._touched.add(facts.id)

    def agent(self, aggregate_id: UUID) -> AgentFacts | None:
        return self._agents.get(aggregate_id)

    def put_agent(self, facts: AgentFacts) -> None:
        self._agents[facts.aggregate_id] = facts
        self._dirty_agents.add(facts.aggregate_id)
        self._agents_touched = True

    def team(self, team_id: UUID) -> TeamFacts | None:
        return self._teams.get(team_id)

    def put_team(self, facts: TeamFacts) -> None:
        self._teams[facts.id] = facts
        self._dirty_teams.add(facts.id)
        self._agents_touched = True  # who may take a team's tickets changed

    def changes_decisions(self) -> bool:
        """Whether the batch changed anything a decision reads: any agent; a new ticket; a
        ticket's facts other than its version; or the version of a ticket that needs an
        agent, if a decision named an older one (it is stale then, and is dropped: the
        ticket is decided again). The version of a waiting ticket without a decision
        changes nothing: ``plan`` does not read it, and it had none because nobody could
        take it, which only the other changes above can change."""
        if self._agents_touched:
            return True
        waiting_moved = False
        for ticket_id in self._touched:
            facts = self._tickets[ticket_id]
            if self._loaded.get(ticket_id) != _decision_inputs(facts):
                return True
            waiting_moved = waiting_moved or facts.needs_agent
        return waiting_moved and self.deciding is not None and self._drop_stale_decisions() > 0

    def working_tickets_of(self, agent_user_id: str) -> list[TicketFacts]:
        if agent_user_id not in self._working_loaded:
            self.cur.execute(
                select_sql(
                    self.tickets_table, TICKET_COLUMNS, "agent_id = %s AND status = ANY(%s)"
                ),
                [agent_user_id, sorted(assignment.WORKING)],
            )
            for values in self.cur.fetchall():
                facts = TicketFacts(*values)
                if facts.id not in self._tickets:  # the batch's own copy is newer
                    self._tickets[facts.id] = facts
                    self._loaded[facts.id] = _decision_inputs(facts)
            self._working_loaded.add(agent_user_id)
        return [
            t
            for t in self._tickets.values()
            if t.agent_id == agent_user_id and t.status in assignment.WORKING
        ]

    # ----------------------------------------------------------- batching
    def preload(self, envelopes: Sequence[Envelope]) -> None:
        ids = list({e.aggregate_id for e in envelopes} - self._tickets.keys() - self._agents.keys())
        if not ids:
            return
        self.cur.execute(select_sql(self.tickets_table, TICKET_COLUMNS, "id = ANY(%s)"), [ids])
        for values in self.cur.fetchall():
            facts = TicketFacts(*values)
            self._tickets[facts.id] = facts
            self._loaded[facts.id] = _decision_inputs(facts)
        self.cur.execute(
            select_sql(self.agents_table, AGENT_COLUMNS, "aggregate_id = ANY(%s)"), [ids]
        )
        for values in self.cur.fetchall():
            agent = _agent(values)
            self._agents[agent.aggregate_id] = agent
        self.cur.execute(select_sql(self.teams_table, TEAM_COLUMNS, "id = ANY(%s)"), [ids])
        for values in self.cur.fetchall():
            team = TeamFacts(*values)
            team.members = list(team.members)
            self._teams[team.id] = team

    def flush(self) -> None:
        if self._dirty_tickets:
            # One statement for the whole batch (a burst touches a thousand rows at once).
            insert_rows(
                self.cur,
                self.tickets_table,
                TICKET_COLUMNS,
                [_ticket_json(self._tickets[i]) for i in self._dirty_tickets],
                on_conflict=update_on_conflict("id", TICKET_COLUMNS),
            )
        if self._dirty_agents:
            insert_rows(
                self.cur,
                self.agents_table,
                AGENT_COLUMNS,
                [_agent_row(self._agents[i]) for i in self._dirty_agents],
                on_conflict=update_on_conflict("user_id", AGENT_COLUMNS),
            )
        if self._dirty_teams:
            insert_rows(
                self.cur,
                self.teams_table,
                TEAM_COLUMNS,
                [_team_row(self._teams[i]) for i in self._dirty_teams],
                on_conflict=update_on_conflict("id", TEAM_COLUMNS),
            )
        self._dirty_tickets.clear()
        self._dirty_agents.clear()
        self._dirty_teams.clear()

    # ----------------------------------------------------------- deciding
    def decide(self) -> list[AssignCommand]:
        """Decide on the committed-to-be state; returns what to issue after the commit."""
        if self.deciding is None:
            return []
        self._drop_stale_decisions()
        cur = self.cur
        cur.execute(select_sql(self.agents_table, AGENT_COLUMNS, "true ORDER BY user_id"))
        agents = [_agent(values) for values in cur.fetchall()]
        if not agents:
            return self._reissue()
        cur.execute(
            f"SELECT agent_id, count(*) FROM {self.tickets_table} "  # noqa: S608
            "WHERE agent_id IS NOT NULL AND status = ANY(%s) GROUP BY agent_id",
            [sorted(OPEN_STATUSES)],
        )
        loads = {agent_id: int(n) for agent_id, n in cur.fetchall()}
        cur.execute(
            f"SELECT agent_id, count(*) FROM {DECISIONS} "  # noqa: S608
            "WHERE status = 'pending' GROUP BY agent_id"
        )
        for agent_id, n in cur.fetchall():
            loads[agent_id] = loads.get(agent_id, 0) + int(n)
        if not assignment.anyone_has_room(agents, loads):
            # Every agent is full or away: nothing to decide, so the backlog (up to
            # BACKLOG_LIMIT tickets read and sorted every second under load) is not read.
            return self._reissue()
        t = self.tickets_table
        waiting = (
            "(status = 'open' OR orphaned) AND NOT EXISTS (SELECT 1 FROM "  # noqa: S608
            f"{DECISIONS} d WHERE d.ticket_id = {t}.id AND d.expected_version >= {t}.version) "
            f"ORDER BY {_PRIORITY_SQL}, opened_position LIMIT {BACKLOG_LIMIT}"
        )
        cur.execute(select_sql(t, TICKET_COLUMNS, waiting))
        backlog = [TicketFacts(*values) for values in cur.fetchall()]
        cur.execute(f"SELECT last_agent_id FROM {CURSOR} WHERE name = %s", [assignment.NAME])  # noqa: S608
        row = cur.fetchone()
        cur.execute(select_sql(self.teams_table, TEAM_COLUMNS, "true"))
        teams = {t.id: t for t in (TeamFacts(*values) for values in cur.fetchall())}
        commands, last = assignment.decide(
            backlog,
            agents,
            loads,
            policy=self.deciding.policy,
            now=self.deciding.now,
            last_chosen=row[0] if row else None,
            teams=teams,
        )
        if commands:
            cur.execute(
                f"INSERT INTO {DECISIONS} (ticket_id, expected_version, agent_id, policy, "  # noqa: S608
                "reason, status, decided_at, attempts, last_error) "
                "SELECT t, v, a, p, r, 'pending', now(), 0, '' "
                "FROM unnest(%s::uuid[], %s::int[], %s::text[], %s::text[], %s::text[]) "
                "AS d(t, v, a, p, r) ON CONFLICT DO NOTHING",
                [
                    [c.ticket_id for c in commands],
                    [c.expected_version for c in commands],
                    [c.agent_id for c in commands],
                    [c.policy for c in commands],
                    [c.reason for c in commands],
                ],
            )
            cur.execute(
                f"INSERT INTO {CURSOR} (name, last_agent_id) VALUES (%s, %s) "  # noqa: S608
                "ON CONFLICT (name) DO UPDATE SET last_agent_id = EXCLUDED.last_agent_id",
                [assignment.NAME, last],
            )
        return commands + self._reissue()

    def _drop_stale_decisions(self) -> int:
        """Decisions whose ticket has moved on (assigned, or changed by someone) are done;
        once per batch, after the batch's state is written. Returns how many there were."""
        if self._dropped is None:
            self.flush()
            self.cur.execute(
                f"DELETE FROM {DECISIONS} d USING {self.tickets_table} t "  # noqa: S608
                "WHERE d.ticket_id = t.id AND t.version > d.expected_version"
            )
            self._dropped = self.cur.rowcount
        return self._dropped

    def _reissue(self) -> list[AssignCommand]:
        """Pending decisions that should have been stored by now (lost after a commit)."""
        self.cur.execute(
            f"UPDATE {DECISIONS} SET decided_at = now() "  # noqa: S608
            "WHERE status = 'pending' AND decided_at < now() - %s * interval '1 second' "
            "RETURNING ticket_id, agent_id, expected_version, policy, reason",
            [REISSUE_AFTER.total_seconds()],
        )
        return [AssignCommand(*values) for values in self.cur.fetchall()]


def _decision_inputs(t: TicketFacts) -> tuple[Any, ...]:
    """A ticket's facts that decisions read, all but its version."""
    return (t.status, t.priority, tuple(t.tags), t.language, t.agent_id, t.opened_position,
            t.orphaned, t.avoid_agent_id, t.team_id)  # fmt: skip


def _agent(values: Sequence[Any]) -> AgentFacts:
    agent = AgentFacts(*values)
    if isinstance(agent.working_hours, str):  # Django's connections leave jsonb undecoded
        agent.working_hours = json.loads(agent.working_hours)
    return agent


def _ticket_json(t: TicketFacts) -> dict[str, Any]:
    row = {c: getattr(t, c) for c in TICKET_COLUMNS}
    row["id"] = str(t.id)
    row["team_id"] = None if t.team_id is None else str(t.team_id)
    return row


def _team_row(t: TeamFacts) -> list[Any]:
    return [t.id, t.name, t.archived, list(t.members), t.version]


def _agent_row(a: AgentFacts) -> list[Any]:
    return [
        Jsonb(a.working_hours) if c == "working_hours" and a.working_hours is not None
        else getattr(a, c)
        for c in AGENT_COLUMNS
    ]  # fmt: skip


def handler(envelope: Envelope, state: Any) -> None:
    assignment.handle(envelope, state)


# ------------------------------------------------------------------------------ outcomes
def record_outcomes(results: Sequence[tuple[AssignCommand, str | BaseException]]) -> None:
    """After issuing: refused decisions stop counting against capacity (they are deleted once
    the manager sees the change that made them stale); failed ones wait to be issued again."""
    with connection.cursor() as cur:
        for command, result in results:
            if result == Outcome.ASSIGNED:
                continue
            refused = result in (Outcome.STALE, Outcome.REFUSED)
            cur.execute(
                f"UPDATE {DECISIONS} SET status = %s, attempts = attempts + 1, "  # noqa: S608
                "last_error = %s WHERE ticket_id = %s AND expected_version = %s",
                [
                    "refused" if refused else "pending",
                    str(result)[:2000],
                    command.ticket_id,
                    command.expected_version,
                ],
            )


Issuer = Callable[[list[AssignCommand]], list[tuple[AssignCommand, str | BaseException]]]


class ProcessManagerStore(PostgresProjectionStore):
    """A projection store whose live batches also decide, and act after they commit.

    Its rebuild copy (``shadow``) is a plain ``PostgresProjectionStore``: it replays state
    and never decides or issues anything.
    """

    def __init__(self, *args: Any, issue: Issuer, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._issue = issue
        self._decided_at = -float("inf")  # time.monotonic() of this store's last decision

    @contextmanager
    def batch(self) -> Iterator[PostgresBatch]:
        commands: list[AssignCommand] = []
        with super().batch() as batch:
            yield batch
            state = batch._state  # the state the factory made for this batch
            if isinstance(state, PostgresAssignmentState) and (
                batch.applied == 0
                or state.changes_decisions()
                or time.monotonic() - self._decided_at >= DECIDE_AT_LEAST_EVERY
            ):
                commands = state.decide()
                self._decided_at = time.monotonic()
        if commands:  # committed: now act on it
            record_outcomes(self._issue(commands))
