"""PostgreSQL adapter of the read-model projector's ``TicketsState``, batched.

A batch loads every ticket and agent row its events touch with one query each, lets the
projector change them in memory, then writes them back with one multi-row statement per
table and recounts the workloads and customer counts that changed. That is what lets a
rebuild run near the speed the log is read instead of one round trip per event.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson
from psycopg import sql

from infra.postgres.bulk import (
    IGNORE_CONFLICTS,
    insert_rows,
    select_rows,
    select_sql,
    update_on_conflict,
)
from projections import tickets
from projections.ports import Envelope
from projections.tickets import OPEN_STATUSES, Row

TABLES = [
    "rm_ticket", "rm_message", "rm_agent", "rm_agent_workload", "rm_customer_stats", "rm_macro",
]  # fmt: skip
# Built after a rebuild's bulk load, not during it (``PostgresProjectionStore``): the
# batches read tickets and agents by id, and workloads by agent and status (that index stays).
DEFERRED_INDEXES = [
    "rm_ticket_status_created",
    "rm_ticket_created_id",
    "rm_ticket_updated_id",
    "rm_ticket_tags",
    "rm_message_ticket_version",
]

TICKET_COLUMNS = [
    "id", "customer_id", "subject", "description", "status", "priority", "tags", "language",
    "assigned_agent_id", "version", "position", "created_at", "updated_at", "last_message_at",
    "resolved_at", "closed_at", "message_count", "public_message_count", "sla_breaches",
    "public_version", "public_position", "public_updated_at", "public_last_message_at",
    "attachments", "team_id", "satisfaction_rating", "satisfaction_comment", "satisfaction_at",
]  # fmt: skip
MESSAGE_COLUMNS = [
    "id", "ticket_id", "version", "author_id", "author_role", "body", "internal",
    "attachments", "posted_at", "position", "public_version",
]  # fmt: skip
MACRO_COLUMNS = ["id", "shared", "owner_id", "name", "body", "status", "add_tags", "assign_to",
                 "version", "position"]  # fmt: skip
MACRO_CONTENT_COLUMNS = ["name", "body", "status", "add_tags", "assign_to", "version", "position"]
AGENT_COLUMNS = ["id", "user_id", "name", "availability", "capacity", "skills", "languages",
                 "version"]  # fmt: skip


# A bulk load (``BulkState``) keeps at most this many tickets in memory; past it, it writes
# them all and reads them back as batches do.
BULK_TICKETS_IN_MEMORY = 200_000


class PostgresTicketsState:
    """``projections.tickets.TicketsState`` over the ``rm_*`` tables (or their rebuild copies).

    Also a ``BulkState``: loading an empty copy, a ticket's row is written once at the end
    (not once per batch that touches it), and the workloads and customer counts recounted
    once; messages are written as they come (``take_settled``).
    """

    complete = False  # True: the tables held nothing when this state began (a bulk load)

    def __init__(self, cursor: Any, suffix: str = "") -> None:
        self.cur = cursor
        self.t = {name: name + suffix for name in TABLES}
        # Keyed by ``UUID.int``: ``UUID.__hash__`` is Python code, run on every lookup of a
        # freshly decoded id (a tenth of a rebuild's CPU when keyed by the UUIDs themselves).
        self._tickets: dict[int, Row] = {}
        self._agents: dict[int, Row] = {}
        self._dirty_tickets: set[int] = set()
        self._dirty_agents: set[int] = set()
        self._messages: list[Row] = []
        self._workloads: set[str] = set()
        self._customers: set[str] = set()
        self._macros: dict[UUID, Row | None] = {}  # None: deleted

    # ----------------------------------------------------------- TicketsState
    def ticket(self, ticket_id: UUID) -> Row | None:
        return self._tickets.get(ticket_id.int)

    def put_ticket(self, row: Row) -> None:
        key = row["id"].int
        self._tickets[key] = row
        self._dirty_tickets.add(key)

    def add_message(self, row: Row) -> None:
        self._messages.append(row)

    def agent(self, agent_id: UUID) -> Row | None:
        return self._agents.get(agent_id.int)

    def put_agent(self, row: Row) -> None:
        key = row["id"].int
        self._agents[key] = row
        self._dirty_agents.add(key)

    def workload_changed(self, agent_user_id: str) -> None:
        self._workloads.add(agent_user_id)

    def customer_changed(self, customer_id: str) -> None:
        self._customers.add(customer_id)

    def put_macro(self, row: Row) -> None:
        pending = self._macros.get(row["id"])
        self._macros[row["id"]] = {**pending, **row} if pending else row

    def delete_macro(self, macro_id: UUID) -> None:
        self._macros[macro_id] = None

    # ----------------------------------------------------------- batching
    def preload(self, envelopes: Sequence[Envelope]) -> None:
        if self.complete:
            return  # every row there is, is in memory
        ids = {e.aggregate_id.int: e.aggregate_id for e in envelopes}
        ticket_ids = [ids[i] for i in ids.keys() - self._tickets.keys()]
        if ticket_ids:
            self._load(self.t["rm_ticket"], TICKET_COLUMNS, ticket_ids, self._tickets)
        agent_ids = [i for i in ticket_ids if i.int not in self._tickets]
        if agent_ids:
            self._load(self.t["rm_agent"], AGENT_COLUMNS, agent_ids, self._agents)

    def _load(self, table: str, columns: list[str], ids: list[UUID], into: dict[int, Row]) -> None:
        for values in select_rows(self.cur, select_sql(table, columns, "id = ANY(%s)"), [ids]):
            row = dict(zip(columns, values, strict=True))
            if isinstance(
                row.get("attachments"), str
            ):  # Django's connections leave jsonb undecoded
                row["attachments"] = orjson.loads(row["attachments"])
            into[row["id"].int] = row

    def take_settled(self) -> Callable[[Any], None] | None:
        messages, self._messages = self._messages, []
        tickets: list[list[Any]] = []
        if len(self._tickets) > BULK_TICKETS_IN_MEMORY:
            tickets = self._ticket_rows()
            self._tickets.clear()
            self._dirty_tickets.clear()
            self.complete = False  # from now on, rows not in memory are read back
        if not messages and not tickets:
            return None
        table, message_table = self.t["rm_ticket"], self.t["rm_message"]

        def write(cursor: Any) -> None:
            _write_tickets(cursor, table, tickets)
            _write_messages(cursor, message_table, messages)

        return write

    def _ticket_rows(self) -> list[list[Any]]:
        return [[self._tickets[i][c] for c in TICKET_COLUMNS] for i in self._dirty_tickets]

    def flush(self) -> None:
        _write_tickets(self.cur, self.t["rm_ticket"], self._ticket_rows())
        _write_messages(self.cur, self.t["rm_message"], self._messages)
        if self._dirty_agents:
            insert_rows(
                self.cur,
                self.t["rm_agent"],
                AGENT_COLUMNS,
                [[self._agents[i][c] for c in AGENT_COLUMNS] for i in self._dirty_agents],
                on_conflict=update_on_conflict("id", AGENT_COLUMNS),
            )
        open_statuses = sorted(OPEN_STATUSES)
        if self._workloads:
            self.cur.execute(
                sql.SQL(
                    "INSERT INTO {w} (agent_user_id, open_tickets) "
                    "SELECT a, (SELECT count(*) FROM {t} "
                    "           WHERE assigned_agent_id = a AND status = ANY(%s)) "
                    "FROM unnest(%s::text[]) AS a "
                    "ON CONFLICT (agent_user_id) DO UPDATE SET open_tickets = EXCLUDED.open_tickets"
                )
                .format(
                    w=sql.Identifier(self.t["rm_agent_workload"]),
                    t=sql.Identifier(self.t["rm_ticket"]),
                )
                .as_string(None),
                [open_statuses, sorted(self._workloads)],
            )
        if self._customers:
            self.cur.execute(
                sql.SQL(
                    "INSERT INTO {c} (customer_id, open_tickets, total_tickets) "
                    "SELECT c, count(t.id) FILTER (WHERE t.status = ANY(%s)), count(t.id) "
                    "FROM unnest(%s::text[]) AS c LEFT JOIN {t} t ON t.customer_id = c "
                    "GROUP BY c "
                    "ON CONFLICT (customer_id) DO UPDATE SET open_tickets = EXCLUDED.open_tickets,"
                    " total_tickets = EXCLUDED.total_tickets"
                )
                .format(
                    c=sql.Identifier(self.t["rm_customer_stats"]),
                    t=sql.Identifier(self.t["rm_ticket"]),
                )
                .as_string(None),
                [open_statuses, sorted(self._customers)],
            )
        self._write_macros()
        self._dirty_tickets.clear()
        self._dirty_agents.clear()
        self._messages.clear()
        self._workloads.clear()
        self._customers.clear()

    def _write_macros(self) -> None:
        table = sql.Identifier(self.t["rm_macro"])
        for macro_id, row in self._macros.items():
            if row is None:
                self.cur.execute(
                    sql.SQL("DELETE FROM {} WHERE id = %s").format(table).as_string(None),
                    [macro_id],
                )
            elif "shared" in row:  # created (perhaps changed since) in this batch
                insert_rows(
                    self.cur,
                    self.t["rm_macro"],
                    MACRO_COLUMNS,
                    [[row[c] for c in MACRO_COLUMNS]],
                    on_conflict=update_on_conflict("id", MACRO_COLUMNS),
                )
            else:
                self.cur.execute(
                    sql.SQL("UPDATE {} SET {} WHERE id = %s")
                    .format(
                        table,
                        sql.SQL(", ").join(
                            sql.SQL("{} = %s").format(sql.Identifier(c))
                            for c in MACRO_CONTENT_COLUMNS
                        ),
                    )
                    .as_string(None),
                    [*(row[c] for c in MACRO_CONTENT_COLUMNS), macro_id],
                )
        self._macros.clear()


def _write_tickets(cursor: Any, table: str, rows: list[list[Any]]) -> None:
    if rows:
        insert_rows(
            cursor,
            table,
            TICKET_COLUMNS,
            rows,
            on_conflict=update_on_conflict("id", TICKET_COLUMNS),
        )


def _write_messages(cursor: Any, table: str, rows: list[Row]) -> None:
    if rows:
        insert_rows(cursor, table, MESSAGE_COLUMNS, rows, on_conflict=IGNORE_CONFLICTS)


def handler(envelope: Envelope, state: Any) -> None:
    tickets.handle(envelope, state)


def pending_scans(
    uploaded_before: datetime | None = None, limit: int = 10_000
) -> list[tuple[UUID, UUID]]:
    """(ticket id, attachment id) of the files the read model still shows as scanning
    (uploaded before ``uploaded_before``, when given: younger ones may have a scan under way)."""
    from infra.postgres.models import TicketRecord

    pending: list[tuple[UUID, UUID]] = []
    rows = TicketRecord.objects.filter(attachments__contains=[{"status": "scanning"}])
    for ticket_id, files in rows.values_list("id", "attachments")[:limit]:
        pending += [
            (ticket_id, UUID(f["id"]))
            for f in files
            if f["status"] == "scanning"
            and (
                uploaded_before is None
                or datetime.fromisoformat(f["uploaded_at"]) < uploaded_before
            )
        ]
    return pending


def resolving_replies(ticket_ids: list[UUID]) -> dict[UUID, tuple[str, str, str]]:
    """For each of these tickets that is resolved or closed: (subject, customer id, the last
    public reply by staff), the reply that resolved it. Others are left out. One query: the
    drafts ask it for every draft."""
    from django.db import connection

    if not ticket_ids:
        return {}
    with connection.cursor() as cur:
        cur.execute(
            "SELECT t.id, t.subject, t.customer_id, last.body FROM rm_ticket t"
            " CROSS JOIN LATERAL (SELECT m.body FROM rm_message m WHERE m.ticket_id = t.id"
            " AND NOT m.internal AND m.author_role IN ('agent', 'admin')"
            " ORDER BY m.version DESC LIMIT 1) last"
            " WHERE t.id = ANY(%s) AND t.status IN ('resolved', 'closed')",
            [list(ticket_ids)],
        )
        return {tid: (subject, customer, body) for tid, subject, customer, body in cur.fetchall()}
