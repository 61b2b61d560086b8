"""The analytics tables (docs/analytics.md describes each column).

- ``analytics_events``: one row per ticket event. A ReplacingMergeTree keyed by (ticket_id,
  version): an event written twice (a replay, a re-delivery) is one row for every query that
  reads with ``FINAL``, and for good once the parts merge.
- ``analytics_tickets``: one row per ticket, its current state; the highest ``version`` wins.
- ``analytics_position``: the highest log position applied (rows only ever added; the
  position is their maximum), so a copy's position travels with its tables in a rebuild.

All in the SQL that ClickHouse 18.16 and chDB both accept: no LowCardinality, no DateTime64,
times in UTC to the second.
"""

from __future__ import annotations

from infra.clickhouse.sql import identifier

EVENTS, TICKETS, POSITION = "analytics_events", "analytics_tickets", "analytics_position"
TABLES = (EVENTS, TICKETS, POSITION)

EVENT_COLUMNS = (
    "ticket_id",
    "version",
    "position",
    "event_type",
    "occurred_at",
    "actor_id",
    "actor_role",
    "customer_id",
    "agent_id",
    "team",
    "priority",
    "status_from",
    "status_to",
    "tags",
    "language",
    "channel",
    "internal",
    "sla_target",
)

TICKET_COLUMNS = (
    "ticket_id",
    "version",
    "position",
    "customer_id",
    "agent_id",
    "team",
    "priority",
    "status",
    "tags",
    "language",
    "channel",
    "opened_at",
    "updated_at",
    "first_response_at",
    "first_resolved_at",
    "resolved_at",
    "closed_at",
    "resolutions",
    "reopens",
    "staff_replies",
    "customer_replies",
    "breached_first_response",
    "breached_resolution",
    "first_response_business",
    "resolution_business",
)

_DDL = {
    EVENTS: """
CREATE TABLE IF NOT EXISTS {name} (
    ticket_id UUID,
    version UInt32,
    position UInt64,
    event_type String,
    occurred_at DateTime,
    actor_id String,
    actor_role String,
    customer_id String,
    agent_id String,
    team String,
    priority String,
    status_from String,
    status_to String,
    tags Array(String),
    language String,
    channel String,
    internal UInt8,
    sla_target String
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (ticket_id, version)
""",
    TICKETS: """
CREATE TABLE IF NOT EXISTS {name} (
    ticket_id UUID,
    version UInt32,
    position UInt64,
    customer_id String,
    agent_id String,
    team String,
    priority String,
    status String,
    tags Array(String),
    language String,
    channel String,
    opened_at DateTime,
    updated_at DateTime,
    first_response_at Nullable(DateTime),
    first_resolved_at Nullable(DateTime),
    resolved_at Nullable(DateTime),
    closed_at Nullable(DateTime),
    resolutions UInt32,
    reopens UInt32,
    staff_replies UInt32,
    customer_replies UInt32,
    breached_first_response UInt8,
    breached_resolution UInt8,
    first_response_business Nullable(UInt32),
    resolution_business Nullable(UInt32)
) ENGINE = ReplacingMergeTree(version)
ORDER BY ticket_id
""",
    POSITION: """
CREATE TABLE IF NOT EXISTS {name} (
    name String,
    position UInt64,
    written_at DateTime
) ENGINE = MergeTree
ORDER BY (name, position)
""",
}


def create_statements(suffix: str = "") -> list[str]:
    return [_DDL[table].format(name=identifier(table + suffix)).strip() for table in TABLES]
