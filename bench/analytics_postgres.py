"""PostgreSQL computing the dashboard's aggregates from the read models (issue 16's baseline).

The bench folds the same generated history into rows shaped like the PostgreSQL read models
the projectors keep (``rm_ticket``, ``rm_message`` and ``rm_sla``, with the columns the
queries need and the indexes of ``infra.postgres.models``), COPYs them into a scratch
database, and runs, per dashboard query, the SQL an implementation over the read models would
run: each as one pass over the rows it needs, with the cheapest read model that holds the
answer (the first response from ``rm_sla.first_response_at``, not from the messages). The read
models keep each ticket's current state and its messages, not its status history, so:

- resolved per day and resolution time use ``resolved_at`` (the latest resolution; the
  ClickHouse fact table counts every resolution and times the first);
- SLA breaches are those of the tickets opened in the range (``rm_sla.breaches`` holds no
  time; ClickHouse counts the breaches recorded in the range);
- status over time and the reopen rate have no read-model equivalent and are not measured.

Four answers are compared with ClickHouse's in the same run (open now by status, backlog by
agent, created per day, tickets first answered in the range): equal, or the bench stops.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import psycopg

from domain.ticket import Ticket
from projections.ports import Envelope

OPEN = ("open", "assigned", "in_progress", "waiting_on_customer")
STAFF = ("agent", "admin")

SCHEMA = """
DROP TABLE IF EXISTS rm_ticket, rm_message, rm_sla;
CREATE TABLE rm_ticket (
    id uuid PRIMARY KEY,
    customer_id varchar(64) NOT NULL,
    status varchar(32) NOT NULL,
    priority varchar(16) NOT NULL,
    tags varchar(40)[] NOT NULL,
    language varchar(16) NOT NULL,
    assigned_agent_id varchar(64),
    version integer NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    resolved_at timestamptz,
    closed_at timestamptz,
    sla_breaches varchar(32)[] NOT NULL
);
CREATE TABLE rm_message (
    id uuid PRIMARY KEY,
    ticket_id uuid NOT NULL,
    version integer NOT NULL,
    author_id varchar(64) NOT NULL,
    author_role varchar(16) NOT NULL,
    internal boolean NOT NULL,
    posted_at timestamptz NOT NULL
);
CREATE TABLE rm_sla (
    ticket_id uuid PRIMARY KEY,
    priority varchar(16) NOT NULL,
    status varchar(32) NOT NULL,
    opened_at timestamptz NOT NULL,
    first_response_at timestamptz,
    resolved_at timestamptz,
    breaches varchar(32)[] NOT NULL,
    version integer NOT NULL
);
"""
# The read models' indexes (infra.postgres.models), built after the COPY.
INDEXES = """
CREATE INDEX rm_ticket_status_created ON rm_ticket (status, created_at);
CREATE INDEX rm_ticket_agent_status ON rm_ticket (assigned_agent_id, status);
CREATE INDEX rm_ticket_created_id ON rm_ticket (created_at, id);
CREATE INDEX rm_ticket_updated_id ON rm_ticket (updated_at, id);
CREATE INDEX rm_ticket_tags ON rm_ticket USING gin (tags);
CREATE INDEX rm_message_ticket_version ON rm_message (ticket_id, version);
ANALYZE rm_ticket;
ANALYZE rm_message;
ANALYZE rm_sla;
"""


def _array(values: Iterable[str]) -> str:
    return "{" + ",".join(f'"{v}"' for v in values) + "}"


def _ts(at: datetime | None) -> str:
    return "\\N" if at is None else at.isoformat()


class ReadModels:
    """The read-model rows of a history, folded as its events come (``add``), COPYed at the
    end (``load``)."""

    def __init__(self) -> None:
        self.tickets: dict[UUID, dict[str, Any]] = {}
        self.messages = io.StringIO()
        self.n_messages = 0

    def add(self, envelopes: Iterable[Envelope]) -> None:
        for envelope in envelopes:
            self._fold(envelope.event)

    def _fold(self, e: Any) -> None:
        tid = e.originator_id
        if isinstance(e, Ticket.TicketOpened):
            self.tickets[tid] = {
                "customer_id": e.customer_id, "status": "open", "priority": e.priority,
                "tags": list(e.tags), "language": e.language, "agent": None,
                "created_at": e.timestamp, "resolved_at": None, "closed_at": None,
                "breaches": [], "first_response_at": None,
            }  # fmt: skip
        t = self.tickets[tid]
        t["version"], t["updated_at"] = e.originator_version, e.timestamp
        if isinstance(e, Ticket.AgentAssigned):
            t["agent"] = e.agent_id
        elif isinstance(e, Ticket.StatusChanged):
            t["status"] = e.to_status
            if e.to_status == "resolved":
                t["resolved_at"] = e.timestamp
            elif e.to_status == "closed":
                t["closed_at"] = e.timestamp
            elif e.from_status == "resolved":
                t["resolved_at"] = None
        elif isinstance(e, Ticket.SlaBreached):
            t["breaches"].append(e.target)
        elif isinstance(e, Ticket.MessagePosted):
            self.n_messages += 1
            self.messages.write(
                f"{e.message_id}\t{tid}\t{e.originator_version}\t{e.author_id}\t"
                f"{e.author_role}\t{'t' if e.internal else 'f'}\t{_ts(e.timestamp)}\n"
            )
            staff = not e.internal and e.author_role in STAFF
            if staff and t["first_response_at"] is None:
                t["first_response_at"] = e.timestamp

    def load(self, url: str) -> tuple[int, int, float]:
        """COPY the rows and build the indexes; (tickets, messages, seconds)."""
        import time

        started = time.perf_counter()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(SCHEMA)
            with conn.cursor().copy("COPY rm_ticket FROM STDIN") as copy:
                for tid, t in self.tickets.items():
                    copy.write(
                        f"{tid}\t{t['customer_id']}\t{t['status']}\t{t['priority']}\t"
                        f"{_array(t['tags'])}\t{t['language']}\t{t['agent'] or chr(92) + 'N'}\t"
                        f"{t['version']}\t{_ts(t['created_at'])}\t{_ts(t['updated_at'])}\t"
                        f"{_ts(t['resolved_at'])}\t{_ts(t['closed_at'])}\t"
                        f"{_array(t['breaches'])}\n"
                    )
            with conn.cursor().copy("COPY rm_sla FROM STDIN") as copy:
                for tid, t in self.tickets.items():
                    copy.write(
                        f"{tid}\t{t['priority']}\t{t['status']}\t{_ts(t['created_at'])}\t"
                        f"{_ts(t['first_response_at'])}\t{_ts(t['resolved_at'])}\t"
                        f"{_array(t['breaches'])}\t{t['version']}\n"
                    )
            with conn.cursor().copy("COPY rm_message FROM STDIN") as copy:
                copy.write(self.messages.getvalue())
            conn.execute(INDEXES)
        return len(self.tickets), self.n_messages, time.perf_counter() - started


def _in(values: Iterable[str]) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


BUCKETS = (
    "CASE WHEN s < 3600 THEN '< 1 h' WHEN s < 14400 THEN '1-4 h' WHEN s < 28800 THEN '4-8 h' "
    "WHEN s < 86400 THEN '8-24 h' WHEN s < 259200 THEN '1-3 d' WHEN s < 604800 THEN '3-7 d' "
    "ELSE '>= 7 d' END"
)


def queries(start: datetime, end: datetime) -> dict[str, str | None]:
    """The read-model SQL of each dashboard query (None: the read models cannot answer it)."""
    rng = f"'{start.isoformat()}'::timestamptz AND '{end.isoformat()}'::timestamptz"
    first_response = (
        "SELECT extract(epoch FROM first_response_at - opened_at) AS s FROM rm_sla "
        f"WHERE first_response_at >= {rng.replace(' AND ', ' AND first_response_at < ')}"
    )
    resolution = (
        "SELECT extract(epoch FROM resolved_at - created_at) AS s FROM rm_ticket "
        f"WHERE resolved_at >= {rng.replace(' AND ', ' AND resolved_at < ')}"
    )

    def stats(inner: str) -> str:
        return (
            "SELECT count(*), percentile_cont(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY s), avg(s) "
            f"FROM ({inner}) x; SELECT {BUCKETS} AS b, count(*) FROM ({inner}) x GROUP BY b"
        )

    created = f"created_at >= {rng.replace(' AND ', ' AND created_at < ')}"
    return {
        "summary (KPI cards)": (
            f"SELECT count(*) FROM rm_ticket WHERE status IN {_in(OPEN)}; "
            f"SELECT count(*) FILTER (WHERE {created}), "
            f"count(*) FILTER (WHERE resolved_at >= {rng.replace(' AND ', ' AND resolved_at < ')}) "
            "FROM rm_ticket; "
            + stats(resolution).split(";")[0]
            + "; "
            + stats(first_response).split(";")[0]
            + f"; SELECT sum(cardinality(sla_breaches)), count(*) FILTER (WHERE "
            f"cardinality(sla_breaches) = 0), count(*) FROM rm_ticket WHERE {created}"
        ),
        "open now by status": (
            f"SELECT status, count(*) FROM rm_ticket WHERE status IN {_in(OPEN)} GROUP BY status"
        ),
        "created/resolved per day": (
            "SELECT (created_at AT TIME ZONE 'UTC')::date AS day, count(*) FROM rm_ticket "
            f"WHERE {created} GROUP BY day; "
            "SELECT (resolved_at AT TIME ZONE 'UTC')::date AS day, count(*) FROM rm_ticket "
            f"WHERE resolved_at >= {rng.replace(' AND ', ' AND resolved_at < ')} GROUP BY day"
        ),
        "status over time": None,
        "first-response time": stats(first_response),
        "resolution time": stats(resolution),
        "SLA": (
            "SELECT sum(cardinality(sla_breaches)), count(*) FILTER (WHERE "
            f"cardinality(sla_breaches) = 0), count(*) FROM rm_ticket WHERE {created}"
        ),
        "backlog by agent": (
            "SELECT coalesce(assigned_agent_id, '') COLLATE \"C\" AS agent, count(*) AS n "
            "FROM rm_ticket "
            f"WHERE status IN {_in(OPEN)} GROUP BY 1 ORDER BY n DESC, agent"
        ),
        "agent throughput": (
            "SELECT assigned_agent_id, count(*) FROM rm_ticket WHERE assigned_agent_id IS NOT NULL "
            f"AND resolved_at >= {rng.replace(' AND ', ' AND resolved_at < ')} GROUP BY 1; "
            "SELECT author_id, count(*) FROM rm_message WHERE NOT internal AND author_role IN "
            f"{_in(STAFF)} AND posted_at >= {rng.replace(' AND ', ' AND posted_at < ')} GROUP BY 1"
        ),
        "reopen rate": None,
        "volume by tag": (
            "SELECT tag, count(*) AS n FROM rm_ticket, unnest(tags) AS tag "
            f"WHERE {created} GROUP BY tag ORDER BY n DESC, tag"
        ),
    }


def runner(url: str, start: datetime, end: datetime) -> dict[str, Callable[[], Any] | None]:
    """Each query as a callable on one open connection (statements run one after another)."""
    conn = psycopg.connect(url, autocommit=True)

    def run(sql: str) -> Callable[[], Any]:
        statements = [s for s in sql.split(";") if s.strip()]
        return lambda: [conn.execute(s).fetchall() for s in statements]

    return {name: (run(sql) if sql else None) for name, sql in queries(start, end).items()}


def check_equal(url: str, start: datetime, end: datetime, clickhouse: dict[str, Any]) -> None:
    """Open now by status, backlog, created per day and the number of tickets first answered
    in the range agree with ClickHouse's answers."""
    with psycopg.connect(url) as conn:
        by_status: dict[str, int] = dict(
            conn.execute(queries(start, end)["open now by status"] or "").fetchall()
        )
        backlog = [
            {"agent_id": a, "open": n}
            for a, n in conn.execute(queries(start, end)["backlog by agent"] or "").fetchall()
        ]
        created = {
            d.isoformat(): c
            for d, c in conn.execute(
                "SELECT (created_at AT TIME ZONE 'UTC')::date, count(*) FROM rm_ticket "
                "WHERE created_at >= %s AND created_at < %s GROUP BY 1",
                (start, end),
            ).fetchall()
        }
        first_responses = conn.execute(
            "SELECT count(*) FROM rm_sla WHERE first_response_at >= %s AND first_response_at < %s",
            (start, end),
        ).fetchone()
    assert first_responses == (clickhouse["first_responses"],), "first responses differ"
    expected_status = {s: n for s, n in clickhouse["open"]["by_status"].items() if n}
    assert by_status == expected_status, (by_status, expected_status)
    assert backlog == clickhouse["backlog"], "backlog differs"
    ch_created = {p["day"]: p["created"] for p in clickhouse["daily"] if p["created"]}
    assert created == ch_created, "created per day differs"


__all__ = ["UTC", "ReadModels", "check_equal", "runner"]
