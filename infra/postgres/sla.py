"""PostgreSQL adapter of the SLA projector (``rm_sla``), and the queries of the SLA check.

A batch loads the clocks its events touch with one query, lets ``projections.sla`` fold the
events, computes the deadlines of the clocks it changed with the rules in force, and writes
them back with the projector's position. The check reads the clocks whose stored deadline
has passed unmet (``overdue``); after a change of the rules it first recomputes every open
ticket's deadlines (``refresh_deadlines``), each row only if the projector has not changed
it meanwhile.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from django.db import connection, transaction
from psycopg.types.json import Jsonb

from infra.postgres.bulk import insert_rows, select_rows, select_sql, update_on_conflict
from projections import sla
from projections.ports import Envelope
from projections.sla import SlaFacts, SlaRules

TABLE = "rm_sla"
TABLES = [TABLE]
COLUMNS = ["ticket_id", "priority", "status", "opened_at", "pauses", "paused_since",
           "first_response_at", "resolved_at", "breaches", "first_response_due",
           "resolution_due", "version", "position", "first_response_reminded",
           "resolution_reminded"]  # fmt: skip


def _facts(values: Sequence[Any]) -> SlaFacts:
    row = dict(zip(COLUMNS, values, strict=True))
    if isinstance(row["pauses"], str):  # Django's connections leave jsonb undecoded
        row["pauses"] = json.loads(row["pauses"])
    row["pauses"] = [
        (datetime.fromisoformat(a), datetime.fromisoformat(b)) for a, b in row["pauses"]
    ]
    row["breaches"] = list(row["breaches"])
    return SlaFacts(**row)


def _values(facts: SlaFacts) -> list[Any]:
    out = []
    for column in COLUMNS:
        value = getattr(facts, column)
        if column == "pauses":
            value = Jsonb([[a.isoformat(), b.isoformat()] for a, b in value])
        out.append(value)
    return out


class PostgresSlaState:
    """``projections.sla.SlaState`` over ``rm_sla`` (or its rebuild copy), batched."""

    def __init__(self, cursor: Any, suffix: str = "", *, rules: SlaRules) -> None:
        self.cur = cursor
        self.table = TABLE + suffix
        self.rules = rules
        self._rows: dict[UUID, SlaFacts] = {}
        self._dirty: set[UUID] = set()

    def ticket(self, ticket_id: UUID) -> SlaFacts | None:
        return self._rows.get(ticket_id)

    def put_ticket(self, facts: SlaFacts) -> None:
        self._rows[facts.ticket_id] = facts
        self._dirty.add(facts.ticket_id)

    def preload(self, envelopes: Sequence[Envelope]) -> None:
        ids = list({e.aggregate_id for e in envelopes} - self._rows.keys())
        if not ids:
            return
        query = select_sql(self.table, COLUMNS, "ticket_id = ANY(%s)")
        for values in select_rows(self.cur, query, [ids]):
            facts = _facts(values)
            self._rows[facts.ticket_id] = facts

    def flush(self) -> None:
        if not self._dirty:
            return
        changed = [self._rows[i] for i in self._dirty]
        for facts in changed:
            sla.refresh_deadlines(facts, self.rules)
        insert_rows(
            self.cur,
            self.table,
            COLUMNS,
            [_values(f) for f in changed],
            on_conflict=update_on_conflict("ticket_id", COLUMNS),
        )
        self._dirty.clear()


def handler(envelope: Envelope, state: Any) -> None:
    sla.handle(envelope, state)


# ------------------------------------------------------------------------------ the check
def overdue(now: datetime, limit: int = 5000) -> list[SlaFacts]:
    """Clocks whose stored deadline passed before the target was met, not recorded yet."""
    where = (
        "(first_response_due <= %(now)s AND NOT ('first_response' = ANY(breaches)) "
        " AND (first_response_at IS NULL OR first_response_at > first_response_due)) "
        "OR (resolution_due <= %(now)s AND NOT ('resolution' = ANY(breaches)) "
        " AND (resolved_at IS NULL OR resolved_at > resolution_due)) "
        "ORDER BY least(first_response_due, resolution_due) LIMIT %(limit)s"
    )
    with connection.cursor() as cur:
        cur.execute(select_sql(TABLE, COLUMNS, where), {"now": now, "limit": limit})
        return [_facts(values) for values in cur.fetchall()]


def near_deadlines(now: datetime, before: timedelta, limit: int = 5000) -> list[SlaFacts]:
    """Open clocks with an unmet deadline in ``(now, now + before]`` not reminded of yet."""
    where = (
        "status <> 'closed' AND ("
        "(first_response_due > %(now)s AND first_response_due <= %(until)s "
        " AND first_response_at IS NULL AND NOT ('first_response' = ANY(breaches)) "
        " AND first_response_reminded IS DISTINCT FROM first_response_due) "
        "OR (resolution_due > %(now)s AND resolution_due <= %(until)s "
        " AND resolved_at IS NULL AND NOT ('resolution' = ANY(breaches)) "
        " AND resolution_reminded IS DISTINCT FROM resolution_due)) "
        "ORDER BY least(first_response_due, resolution_due) LIMIT %(limit)s"
    )
    with connection.cursor() as cur:
        cur.execute(
            select_sql(TABLE, COLUMNS, where), {"now": now, "until": now + before, "limit": limit}
        )
        return [_facts(values) for values in cur.fetchall()]


def refresh_deadlines(rules: SlaRules, batch: int = 2000) -> int:
    """Recompute the deadlines of every ticket not closed with ``rules``; returns how many
    changed. A row the projector changed meanwhile is left to the projector."""
    changed = 0
    after: UUID | None = None
    while True:
        with transaction.atomic(), connection.cursor() as cur:
            cur.execute(
                select_sql(
                    TABLE,
                    COLUMNS,
                    "status <> 'closed' AND (%s::uuid IS NULL OR ticket_id > %s::uuid) "
                    "ORDER BY ticket_id LIMIT %s",
                ),
                [after, after, batch],
            )
            rows = [_facts(values) for values in cur.fetchall()]
            if not rows:
                return changed
            updates = []
            for facts in rows:
                before = (facts.first_response_due, facts.resolution_due)
                sla.refresh_deadlines(facts, rules)
                if (facts.first_response_due, facts.resolution_due) != before:
                    updates.append(
                        [facts.first_response_due, facts.resolution_due, facts.ticket_id,
                         facts.version]
                    )  # fmt: skip
            cur.executemany(
                f"UPDATE {TABLE} SET first_response_due = %s, resolution_due = %s "  # noqa: S608
                "WHERE ticket_id = %s AND version = %s",
                updates,
            )
            changed += len(updates)
            after = rows[-1].ticket_id


def reminder_still_due(ticket_id: UUID, target: str, deadline: str) -> bool:
    """Whether a reminder's deadline still stands: its target unmet, not breached, and the
    clock's deadline for it unchanged (a pause, resolution or new priority moves or clears
    it)."""
    if target not in ("first_response", "resolution"):
        return False
    try:
        when = datetime.fromisoformat(deadline)
    except ValueError:
        return False
    met = "first_response_at" if target == "first_response" else "resolved_at"
    with connection.cursor() as cur:
        cur.execute(
            f"SELECT 1 FROM {TABLE} WHERE ticket_id = %s AND {target}_due = %s "  # noqa: S608
            f"AND {met} IS NULL AND NOT (%s = ANY(breaches)) AND status <> 'closed'",
            [ticket_id, when, target],
        )
        return cur.fetchone() is not None
