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
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from django.db import connection
from psycopg import sql
from psycopg.types.json import Jsonb

from domain.assignment import Policy
from infra.postgres.bulk import insert_rows, update_on_conflict
from infra.postgres.projection_store import PostgresBatch, PostgresProjectionStore
from projections import assignment
from projections.assignment import AgentFacts, AssignCommand, Outcome, TicketFacts
from projections.ports import Envelope
from projections.tickets import OPEN_STATUSES

AGENTS = "rm_assign_agent"
TICKETS = "rm_assign_ticket"
DECISIONS = "assignment_decision"
CURSOR = "assignment_cursor"
TABLES = [TICKETS, AGENTS]  # what a rebuild copies and swaps; never decisions or the cursor

AGENT_COLUMNS = ["user_id", "aggregate_id", "name", "availability", "capacity", "skills",
                 "languages", "working_hours", "version"]  # fmt: skip
TICKET_COLUMNS = ["id", "status", "priority", "tags", "language", "agent_id", "opened_position",
                  "version", "orphaned", "avoid_agent_id"]  # fmt: skip
# A pending decision not stored as an event after this long was lost (a crash after the
# commit, a failed command): it is issued again.
REISSUE_AFTER = timedelta(seconds=30)
BACKLOG_LIMIT = 5000
_PRIORITY_SQL = (
    "CASE priority WHEN 'urgent' THEN 0 WHEN 'high' THEN 1 WHEN 'medium' THEN 2 ELSE 3 END"
)


@dataclass(frozen=True)
class Deciding:
    """What a live batch needs to decide: the settings in force and the time."""

    policy: Policy
    now: datetime


def _select(table: str, columns: list[str], where: str) -> str:
    return (
        sql.SQL("SELECT {cols} FROM {t} WHERE ")
        .format(cols=sql.SQL(", ").join(map(sql.Identifier, columns)), t=sql.Identifier(table))
        .as_string(None)
        + where
    )


class PostgresAssignmentState:
    """``projections.assignment.AssignmentState`` over the manager's tables, batched."""

    def __init__(self, cursor: Any, suffix: str = "", *, deciding: Deciding | None = None) -> None:
        self.cur = cursor
        self.agents_table = AGENTS + suffix
        self.tickets_table = TICKETS + suffix
        # Never on a rebuild copy: rebuilding replays state, it does not act.
        self.deciding = deciding if not suffix else None
        self._tickets: dict[UUID, TicketFacts] = {}
        self._agents: dict[UUID, AgentFacts] = {}
        self._dirty_tickets: set[UUID] = set()
        self._dirty_agents: set[UUID] = set()
        self._working_loaded: set[str] = set()
        self.decided: list[AssignCommand] = []  # to issue after the commit

    # ----------------------------------------------------------- AssignmentState
    def ticket(self, ticket_id: UUID) -> TicketFacts | None:
        return self._tickets.get(ticket_id)

    def put_ticket(self, facts: TicketFacts) -> None:
        self._tickets[facts.id] = facts
        self._dirty_tickets.add(facts.id)

    def agent(self, aggregate_id: UUID) -> AgentFacts | None:
        return self._agents.get(aggregate_id)

    def put_agent(self, facts: AgentFacts) -> None:
        self._agents[facts.aggregate_id] = facts
        self._dirty_agents.add(facts.aggregate_id)

    def working_tickets_of(self, agent_user_id: str) -> list[TicketFacts]:
        if agent_user_id not in self._working_loaded:
            self.cur.execute(
                _select(self.tickets_table, TICKET_COLUMNS, "agent_id = %s AND status = ANY(%s)"),
                [agent_user_id, sorted(assignment.WORKING)],
            )
            for values in self.cur.fetchall():
                facts = TicketFacts(*values)
                self._tickets.setdefault(facts.id, facts)  # the batch's own copy is newer
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
        self.cur.execute(_select(self.tickets_table, TICKET_COLUMNS, "id = ANY(%s)"), [ids])
        for values in self.cur.fetchall():
            facts = TicketFacts(*values)
            self._tickets[facts.id] = facts
        self.cur.execute(_select(self.agents_table, AGENT_COLUMNS, "aggregate_id = ANY(%s)"), [ids])
        for values in self.cur.fetchall():
            agent = _agent(values)
            self._agents[agent.aggregate_id] = agent

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
        self._dirty_tickets.clear()
        self._dirty_agents.clear()

    # ----------------------------------------------------------- deciding
    def decide(self) -> list[AssignCommand]:
        """Decide on the committed-to-be state; returns what to issue after the commit."""
        if self.deciding is None:
            return []
        self.flush()
        cur = self.cur
        # Decisions whose ticket has moved on (assigned, or changed by someone) are done.
        cur.execute(
            f"DELETE FROM {DECISIONS} d USING {self.tickets_table} t "  # noqa: S608
            "WHERE d.ticket_id = t.id AND t.version > d.expected_version"
        )
        cur.execute(_select(self.agents_table, AGENT_COLUMNS, "true ORDER BY user_id"))
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
        t = self.tickets_table
        waiting = (
            "(status = 'open' OR orphaned) AND NOT EXISTS (SELECT 1 FROM "  # noqa: S608
            f"{DECISIONS} d WHERE d.ticket_id = {t}.id AND d.expected_version >= {t}.version) "
            f"ORDER BY {_PRIORITY_SQL}, opened_position LIMIT {BACKLOG_LIMIT}"
        )
        cur.execute(_select(t, TICKET_COLUMNS, waiting))
        backlog = [TicketFacts(*values) for values in cur.fetchall()]
        cur.execute(f"SELECT last_agent_id FROM {CURSOR} WHERE name = %s", [assignment.NAME])  # noqa: S608
        row = cur.fetchone()
        commands, last = assignment.decide(
            backlog,
            agents,
            loads,
            policy=self.deciding.policy,
            now=self.deciding.now,
            last_chosen=row[0] if row else None,
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

    def _reissue(self) -> list[AssignCommand]:
        """Pending decisions that should have been stored by now (lost after a commit)."""
        self.cur.execute(
            f"UPDATE {DECISIONS} SET decided_at = now() "  # noqa: S608
            "WHERE status = 'pending' AND decided_at < now() - %s * interval '1 second' "
            "RETURNING ticket_id, agent_id, expected_version, policy, reason",
            [REISSUE_AFTER.total_seconds()],
        )
        return [AssignCommand(*values) for values in self.cur.fetchall()]


def _agent(values: Sequence[Any]) -> AgentFacts:
    agent = AgentFacts(*values)
    if isinstance(agent.working_hours, str):  # Django's connections leave jsonb undecoded
        agent.working_hours = json.loads(agent.working_hours)
    return agent


def _ticket_json(t: TicketFacts) -> dict[str, Any]:
    row = {c: getattr(t, c) for c in TICKET_COLUMNS}
    row["id"] = str(t.id)
    return row


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

    @contextmanager
    def batch(self) -> Iterator[PostgresBatch]:
        commands: list[AssignCommand] = []
        with super().batch() as batch:
            yield batch
            state = batch._state  # the state the factory made for this batch
            if isinstance(state, PostgresAssignmentState):
                commands = state.decide()
        if commands:  # committed: now act on it
            record_outcomes(self._issue(commands))
