"""The analytics tables (docs/analytics.md describes each column).

- ``analytics_events``: one row per ticket event. A ReplacingMergeTree keyed by (ticket_id,
  version): an event written twice (a replay, a re-delivery) is one row for every query that
  reads with ``FINAL``, and for good once the parts merge.
- ``analytics_tickets``: one row per ticket, its current state; the highest ``version`` wins.
- ``analytics_position``: the highest log position applied (rows only ever added; the
  position is their maximum), so a copy's position travels with its tables in a rebuild.
- ``analytics_counts`` and ``analytics_tag_counts``: what the dashboard's event counts read
  (created, resolved, reopened, SLA breaches, staff replies) per quarter hour, kind,
  priority, agent, team (and tag): AggregatingMergeTree of ``uniqExact(ticket_id, version)``,
  a set of fact keys, so writing a fact's count again (a crash's retry) adds nothing
  (ADR 0049).
- ``analytics_status_counts``: the status over time, per quarter hour: the tickets entering
  a status (+1: opened, or a status change to it) and leaving one (-1), each a set of fact
  keys like the counts above; a day's statuses are the sums up to its end (ADR 0053).
- ``analytics_ticket_status_counts``: the same moves per ticket, what the status over time
  reads when narrowed by the tickets' fields now (which tickets match changes after the
  fact, so the moves keep their ticket; ADR 0056).
- ``analytics_count_sums`` and ``analytics_status_sums``: the sizes of those sets per quarter
  hour and kind (per status and direction), numbers rather than sets, for the dashboard
  unnarrowed; the projector counts again each quarter hour its batch added to, from the sets
  (ADR 0058). ReplacingMergeTree(n): a set only grows, so the largest count is the latest.
  ``analytics_agent_sums``: the same for the agent throughput, resolutions per agent and
  staff replies per author (``who``). ``analytics_status_day_sums``: the status moves' sets
  summed per UTC day (``bucket`` is the day's first second), what open now reads over the
  whole history: a day's row instead of its 96 quarter hours' (ADR 0062);
  ``analytics_agent_day_sums``: the agent sums per UTC day, for the whole days of the
  throughput's range.
- ``analytics_tickets_by_field``: per ticket, a row for each value of the fields the
  dashboard narrows by (each tag, the agent, the team, the priority), with the ticket's
  fields and status moves as of ``version`` (``present`` 0: it no longer has that value);
  ReplacingMergeTree(version) keyed (field, value, ticket_id), so the tickets matching a
  narrowing now are one range of the key, not a read of every ticket (ADR 0060).
  ``analytics_tickets`` keeps the same moves per ticket (``move_*``), so a ticket read back
  continues its history.
- ``analytics_ticket_sums``: the ticket metrics' moments per quarter hour, for the dashboard
  unnarrowed (ADR 0063): per quarter hour of a first response (of a first resolution), the
  tickets first answered (resolved) in it and their seconds from opening, wall-clock and
  business (``measure`` ``first_response:wall`` ...; ``seconds`` a ``groupArray`` state, every
  value, so medians and the distribution stay exact); per quarter hour of an opening, the
  tickets opened in it (``opened``) and those of them with an SLA breach recorded
  (``breached``). Each moment is set once and a breach is never taken back, so each row's
  tickets only grow: the projector counts again, from the ticket states, each quarter hour
  its batch may have set a moment in, and the row with the largest ``n`` is the latest
  (ReplacingMergeTree(n), read with ``FINAL``).
- ``analytics_backlog_counts`` and ``analytics_tag_volume_counts``: sets of fact keys of the
  moves that make the backlog now (a ticket leaving, -1, or entering, +1, an agent's open
  tickets, per quarter hour of the event) and the volume by tag (a tag given or taken, per
  quarter hour of the ticket's *opening*), made from the facts' ``agent_from``,
  ``tags_from`` and ``opened_at``; summed like the others, the backlog per UTC day
  (``analytics_backlog_day_sums``), the tag volume per quarter hour and UTC day of the
  openings (``analytics_tag_volume_sums``, ``analytics_tag_volume_day_sums``). Read once a
  store that started without facts marked them whole (``MOVES_READY``; ADR 0064).

All in the SQL that ClickHouse 18.16 and chDB both accept: no LowCardinality, no DateTime64,
times in UTC to the second.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from infra.clickhouse.ports import AnalyticsDatabase
from infra.clickhouse.sql import identifier, in_list, literal
from projections.analytics import OPEN_STATUSES

EVENTS, TICKETS, POSITION = "analytics_events", "analytics_tickets", "analytics_position"
COUNTS, TAG_COUNTS = "analytics_counts", "analytics_tag_counts"
STATUS_COUNTS = "analytics_status_counts"
TICKET_STATUS_COUNTS = "analytics_ticket_status_counts"
BACKLOG_COUNTS = "analytics_backlog_counts"
TAG_VOLUME_COUNTS = "analytics_tag_volume_counts"
COUNT_TABLES = (
    COUNTS,
    TAG_COUNTS,
    STATUS_COUNTS,
    TICKET_STATUS_COUNTS,
    BACKLOG_COUNTS,
    TAG_VOLUME_COUNTS,
)
# The count tables made from the fact columns of the ticket's fields before the event
# (``agent_from``, ``tags_from``) and its opening (``opened_at``): facts written by a release
# before those columns cannot fill them (ADR 0064).
MOVE_TABLES = (BACKLOG_COUNTS, TAG_VOLUME_COUNTS)
COUNT_SUMS, STATUS_SUMS = "analytics_count_sums", "analytics_status_sums"
AGENT_SUMS = "analytics_agent_sums"
STATUS_DAY_SUMS = "analytics_status_day_sums"
AGENT_DAY_SUMS = "analytics_agent_day_sums"
BACKLOG_DAY_SUMS = "analytics_backlog_day_sums"
TAG_VOLUME_SUMS, TAG_VOLUME_DAY_SUMS = "analytics_tag_volume_sums", "analytics_tag_volume_day_sums"
BY_FIELD = "analytics_tickets_by_field"
TICKET_SUMS = "analytics_ticket_sums"


QUARTER_HOUR, DAY = 900, 86400  # the sums' grains, in seconds


@dataclass(frozen=True)
class Sum:
    """A sum table: the count table whose sets it sums, its key after the time (each column
    as SQL over the count table's rows), which of those rows it sums, and over how many
    seconds of them (``grain``: a quarter hour, the sets' own, or a UTC day: ``bucket`` is
    then the day's first second)."""

    sets: str
    key: tuple[tuple[str, str], ...]  # (column, SQL)
    rows: str = "1"
    grain: int = QUARTER_HOUR
    # The fact's time the count table's buckets are (the opening's: the tag volume's).
    moment: str = "occurred_at"

    def bucket(self) -> str:
        """The sum's ``bucket`` as SQL over the count table's (whole seconds, any zone)."""
        if self.grain == QUARTER_HOUR:
            return "bucket"
        return f"toDateTime(intDiv(toUInt32(bucket), {self.grain}) * {self.grain})"


_MOVES = Sum(STATUS_COUNTS, (("status", "status"), ("delta", "delta")))
_AGENTS = Sum(
    COUNTS,
    (("kind", "kind"), ("who", "if(kind = 'staff_reply', actor_id, agent_id)")),
    "kind IN ('resolved', 'staff_reply')",
)
_TAG_VOLUME = Sum(TAG_VOLUME_COUNTS, (("tag", "tag"), ("delta", "delta")), moment="opened_at")
SUMS = {
    COUNT_SUMS: Sum(COUNTS, (("kind", "kind"),)),
    STATUS_SUMS: _MOVES,
    # Open now: the moves over the whole history, a row per day (ADR 0062).
    STATUS_DAY_SUMS: replace(_MOVES, grain=DAY),
    # Throughput: resolutions by the agent assigned then, staff replies by their author; and
    # the same per UTC day, for a range's whole days (its edges from the quarter hours).
    AGENT_SUMS: _AGENTS,
    AGENT_DAY_SUMS: replace(_AGENTS, grain=DAY),
    # Backlog now: each agent's open tickets entering and leaving, over the whole history,
    # a row per day (ADR 0064).
    BACKLOG_DAY_SUMS: Sum(
        BACKLOG_COUNTS, (("agent_id", "agent_id"), ("delta", "delta")), grain=DAY
    ),
    # Volume by tag: per quarter hour (and UTC day) of the tickets' openings, tags given and
    # taken since.
    TAG_VOLUME_SUMS: _TAG_VOLUME,
    TAG_VOLUME_DAY_SUMS: replace(_TAG_VOLUME, grain=DAY),
}
SUM_TABLES = tuple(SUMS)
TABLES = (EVENTS, TICKETS, POSITION, *COUNT_TABLES, *SUM_TABLES, BY_FIELD, TICKET_SUMS)
# The row of ``analytics_position`` saying that the sums hold every set (at position 0, so
# the projection's position, the maximum, is unchanged): the dashboard reads the sums only
# then (the store writes it once it has summed the sets that were there before the sums).
# Its name changes with the sum tables (".2": the agent sums; ".3": the status day sums;
# ".4": the agent day sums), so a store upgraded from a release with fewer sums sums every
# set again before the dashboard reads them.
SUMS_READY = "analytics.sums.4"
# The row saying that ``analytics_ticket_sums`` holds every ticket's moments (a store writes
# it once it has counted every quarter hour from the ticket states: a new table beside older
# states is filled first; ADR 0063).
TICKET_SUMS_READY = "analytics.ticket_sums.1"
# The row saying that the move tables (``MOVE_TABLES``) and their sums hold every fact:
# written, like ``FIELDS_READY``, by a store that starts on tables without facts (ADR 0064).
MOVES_READY = "analytics.moves.1"
# The row saying that ``analytics_tickets_by_field`` holds every ticket with its whole status
# history (ADR 0060): written by a store that starts on tables without facts (a new
# installation, a rebuild), so every ticket it writes was folded from its first event.
FIELDS_READY = "analytics.by_field.1"
# The fields the dashboard narrows ticket metrics by, as (field, the ticket state's column):
# ``analytics_tickets_by_field`` has a row per ticket and value of each (a tag each).
NARROWING_FIELDS = (
    ("tag", "tags"),
    ("agent", "agent_id"),
    ("team", "team"),
    ("priority", "priority"),
)
BY_FIELD_COLUMNS = (
    "field",
    "value",
    "ticket_id",
    "version",
    "present",
    "priority",
    "agent_id",
    "team",
    "tags",
    "move_at",
    "move_status",
    "move_delta",
)

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
    "draft_id",
    "draft_outcome",
    "edit_distance",
    "draft_length",
    "rating",
    "agent_from",
    "tags_from",
    "opened_at",
)
# Columns added after the first release: (table, column, type), added where missing.
ADDED_COLUMNS = (
    (EVENTS, "draft_id", "String"),
    (EVENTS, "draft_outcome", "String"),
    (EVENTS, "edit_distance", "UInt32"),
    (EVENTS, "draft_length", "UInt32"),
    (EVENTS, "rating", "UInt8"),
    (EVENTS, "agent_from", "String"),
    (EVENTS, "tags_from", "Array(String)"),
    (EVENTS, "opened_at", "DateTime"),
    (TICKETS, "rating", "Nullable(UInt8)"),
    (TICKETS, "rated_at", "Nullable(DateTime)"),
    (TICKETS, "move_at", "Array(DateTime)"),
    (TICKETS, "move_status", "Array(String)"),
    (TICKETS, "move_delta", "Array(Int8)"),
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
    "rating",
    "rated_at",
    "move_at",
    "move_status",
    "move_delta",
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
    sla_target String,
    draft_id String,
    draft_outcome String,
    edit_distance UInt32,
    draft_length UInt32,
    rating UInt8,
    agent_from String,
    tags_from Array(String),
    opened_at DateTime
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
    resolution_business Nullable(UInt32),
    rating Nullable(UInt8),
    rated_at Nullable(DateTime),
    move_at Array(DateTime),
    move_status Array(String),
    move_delta Array(Int8)
) ENGINE = ReplacingMergeTree(version)
ORDER BY ticket_id
""",
    BY_FIELD: """
CREATE TABLE IF NOT EXISTS {name} (
    field String,
    value String,
    ticket_id UUID,
    version UInt32,
    present UInt8,
    priority String,
    agent_id String,
    team String,
    tags Array(String),
    move_at Array(DateTime),
    move_status Array(String),
    move_delta Array(Int8)
) ENGINE = ReplacingMergeTree(version)
ORDER BY (field, value, ticket_id)
""",
    POSITION: """
CREATE TABLE IF NOT EXISTS {name} (
    name String,
    position UInt64,
    written_at DateTime
) ENGINE = MergeTree
ORDER BY (name, position)
""",
    COUNTS: """
CREATE TABLE IF NOT EXISTS {name} (
    bucket DateTime,
    kind String,
    priority String,
    agent_id String,
    team String,
    actor_id String,
    events AggregateFunction(uniqExact, UUID, UInt32)
) ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(bucket)
ORDER BY (bucket, kind, priority, agent_id, team, actor_id)
""",
    TAG_COUNTS: """
CREATE TABLE IF NOT EXISTS {name} (
    bucket DateTime,
    kind String,
    tag String,
    priority String,
    agent_id String,
    team String,
    actor_id String,
    events AggregateFunction(uniqExact, UUID, UInt32)
) ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(bucket)
ORDER BY (bucket, kind, tag, priority, agent_id, team, actor_id)
""",
    COUNT_SUMS: """
CREATE TABLE IF NOT EXISTS {name} (
    bucket DateTime,
    kind String,
    n UInt64
) ENGINE = ReplacingMergeTree(n)
PARTITION BY toYYYYMM(bucket)
ORDER BY (bucket, kind)
""",
    AGENT_SUMS: """
CREATE TABLE IF NOT EXISTS {name} (
    bucket DateTime,
    kind String,
    who String,
    n UInt64
) ENGINE = ReplacingMergeTree(n)
PARTITION BY toYYYYMM(bucket)
ORDER BY (bucket, kind, who)
""",
    TICKET_STATUS_COUNTS: """
CREATE TABLE IF NOT EXISTS {name} (
    ticket_id UUID,
    bucket DateTime,
    status String,
    delta Int8,
    events AggregateFunction(uniqExact, UUID, UInt32)
) ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(bucket)
ORDER BY (ticket_id, bucket, status, delta)
""",
}


def _moves_ddl(key: str, sums: bool) -> str:
    """A table of moves (``delta`` +1 entering, -1 leaving) per ``bucket`` and ``key``: the
    sets of fact keys, or (``sums``) their sizes, the largest the latest."""
    value, engine = (
        ("n UInt64", "ReplacingMergeTree(n)")
        if sums
        else ("events AggregateFunction(uniqExact, UUID, UInt32)", "AggregatingMergeTree")
    )
    return f"""
CREATE TABLE IF NOT EXISTS {{name}} (
    bucket DateTime,
    {key} String,
    delta Int8,
    {value}
) ENGINE = {engine}
PARTITION BY toYYYYMM(bucket)
ORDER BY (bucket, {key}, delta)
"""


for _table, _key, _sums in (
    (STATUS_COUNTS, "status", False),
    (STATUS_SUMS, "status", True),
    (BACKLOG_COUNTS, "agent_id", False),
    (BACKLOG_DAY_SUMS, "agent_id", True),
    (TAG_VOLUME_COUNTS, "tag", False),
    (TAG_VOLUME_SUMS, "tag", True),
):
    _DDL[_table] = _moves_ddl(_key, _sums)
_DDL[TAG_VOLUME_DAY_SUMS] = _DDL[TAG_VOLUME_SUMS]
_DDL[TICKET_SUMS] = """
CREATE TABLE IF NOT EXISTS {name} (
    bucket DateTime,
    measure String,
    n UInt64,
    seconds AggregateFunction(groupArray, Int64)
) ENGINE = ReplacingMergeTree(n)
PARTITION BY toYYYYMM(bucket)
ORDER BY (bucket, measure)
"""
# A day sum table has its quarter-hour table's columns (``bucket`` a UTC day's first second).
_DDL[STATUS_DAY_SUMS] = _DDL[STATUS_SUMS]
_DDL[AGENT_DAY_SUMS] = _DDL[AGENT_SUMS]

# The kinds of event the count tables hold, as SQL over a fact row (at most one per fact).
RESOLVED_SQL = "(status_to = 'resolved' OR (status_to = 'closed' AND status_from != 'resolved'))"
REOPENED_SQL = (
    "(status_from = 'resolved' AND status_to IN ('open', 'assigned', 'in_progress', "
    "'waiting_on_customer'))"
)
STAFF_REPLY_SQL = (
    "(event_type = 'MessagePosted' AND internal = 0 AND actor_role IN ('agent', 'admin'))"
)
KIND_SQL = (
    "multiIf(event_type = 'TicketOpened', 'created', "
    f"event_type = 'StatusChanged' AND {RESOLVED_SQL}, 'resolved', "
    f"event_type = 'StatusChanged' AND {REOPENED_SQL}, 'reopened', "
    "event_type = 'SlaBreached', concat('breach:', sla_target), "
    f"{STAFF_REPLY_SQL}, 'staff_reply', '')"
)
# The event types whose facts each count table takes: those KIND_SQL can give a kind (each of
# its branches names one), and those that move a ticket into or out of a status. The count
# statements select only these, so a batch with none of a table's types can leave that
# table's statement out (``count_tables_for``): it would read the batch's range of facts
# and insert nothing (tests/unit/test_analytics_counted_types.py checks KIND_SQL's branches).
KIND_EVENT_TYPES = ("TicketOpened", "StatusChanged", "SlaBreached", "MessagePosted")
MOVE_EVENT_TYPES = ("TicketOpened", "StatusChanged")
BACKLOG_EVENT_TYPES = ("TicketOpened", "StatusChanged", "AgentAssigned", "AgentUnassigned")
TAG_EVENT_TYPES = ("TicketOpened", "TicketEdited")
COUNTED_TYPES = {
    COUNTS: KIND_EVENT_TYPES,
    TAG_COUNTS: KIND_EVENT_TYPES,
    STATUS_COUNTS: MOVE_EVENT_TYPES,
    TICKET_STATUS_COUNTS: MOVE_EVENT_TYPES,
    BACKLOG_COUNTS: BACKLOG_EVENT_TYPES,
    TAG_VOLUME_COUNTS: TAG_EVENT_TYPES,
}


def open_condition(column: str = "status") -> str:
    """A status ``column`` is open (``projections.analytics.OPEN_STATUSES``), as SQL."""
    return f"{column} IN {in_list(sorted(OPEN_STATUSES))}"


# The ticket moments the duration metrics measure from the opening: (the moment's column, its
# business-time column), each set once (the first response, the first resolution).
DURATIONS = {
    "first_response": ("first_response_at", "first_response_business"),
    "resolution": ("first_resolved_at", "resolution_business"),
}
CLOCKS = ("wall", "business")
OPENED = "opened"  # the ticket sums' moment of the openings (measures opened and breached)
BREACHED_SQL = "(breached_first_response = 1 OR breached_resolution = 1)"


def duration_sql(which: str, clock: str) -> tuple[str, str]:
    """(seconds, present): the seconds from a ticket's opening to its ``which`` moment
    (``DURATIONS``), wall-clock or business time (the moment's business column), and the
    condition of having them, as SQL over a row of ``analytics_tickets``. Not Nullable (or
    aggregates over no tickets would be NULL). The one definition, for the metrics read from
    the ticket states and for the ticket sums."""
    if clock not in CLOCKS:
        raise ValueError(f"clock is one of {', '.join(CLOCKS)}")
    until, business = DURATIONS[which]
    if clock == "wall":
        seconds = f"toInt64(toUInt32(assumeNotNull({until}))) - toInt64(toUInt32(opened_at))"
        return seconds, f"isNotNull({until})"
    return f"toInt64(assumeNotNull({business}))", f"isNotNull({until}) AND isNotNull({business})"


def ticket_sum_statements(
    suffix: str, touched: dict[str, set[datetime]] | None = None
) -> list[str]:
    """INSERT ... SELECT into ``analytics_ticket_sums`` the rows of the quarter hours
    ``touched`` (per moment: ``OPENED`` or a ``DURATIONS`` key, the quarter hours' first
    seconds; None: every quarter hour of every moment), counted again from the ticket
    states. Run after the states are written: a moment is set once, so a later count of a
    quarter hour holds every ticket an earlier one held, and more."""
    tickets = identifier(TICKETS + suffix)
    target = identifier(TICKET_SUMS + suffix)

    def among(column: str, moment: str) -> str:
        if touched is None:
            return ""
        quarters = sorted(touched.get(moment, ()))
        return f" AND toStartOfFifteenMinutes({column}) IN {in_list(quarters)}"

    statements = []
    for which, (until, _) in DURATIONS.items():
        if touched is not None and not touched.get(which):
            continue
        for clock in CLOCKS:
            seconds, present = duration_sql(which, clock)
            statements.append(
                f"INSERT INTO {target} (bucket, measure, n, seconds) "
                f"SELECT toStartOfFifteenMinutes(assumeNotNull({until})) AS quarter, "
                f"{literal(f'{which}:{clock}')}, count(), groupArrayState({seconds}) "
                f"FROM {tickets} FINAL PREWHERE {present}"
                f"{among(f'assumeNotNull({until})', which)} GROUP BY quarter"
            )
    if touched is None or touched.get(OPENED):
        # Openings are kept, a breach never taken back: narrowed by the opening before FINAL.
        where = among("opened_at", OPENED)
        statements.append(
            f"INSERT INTO {target} (bucket, measure, n) SELECT quarter, measure, n FROM ("
            "SELECT toStartOfFifteenMinutes(opened_at) AS quarter, count() AS opened, "
            f"countIf({BREACHED_SQL}) AS breached FROM {tickets} FINAL"
            f"{' PREWHERE 1' + where if where else ''} GROUP BY quarter) "
            f"ARRAY JOIN ['{OPENED}', 'breached'] AS measure, [opened, breached] AS n"
        )
    return statements


def count_tables_for(event_types: Iterable[str]) -> tuple[str, ...]:
    """The count tables that facts of ``event_types`` can add to (in ``COUNT_TABLES`` order)."""
    present = set(event_types)
    return tuple(t for t in COUNT_TABLES if present.intersection(COUNTED_TYPES[t]))


def count_statements(
    suffix: str,
    since: datetime,
    until: datetime,
    first: int,
    last: int,
    tables: tuple[str, ...] = COUNT_TABLES,
) -> list[str]:
    """INSERT ... SELECT into the count ``tables`` the counts of the facts that occurred in
    [since, until] at log positions [first, last] (a batch's facts, and maybe others':
    counting a fact twice adds nothing to its set)."""
    where = (
        f"occurred_at >= {literal(since)} AND occurred_at <= {literal(until)} "
        f"AND position >= {int(first)} AND position <= {int(last)}"
    )
    source = identifier(EVENTS + suffix)
    kinds = (
        f"SELECT toStartOfFifteenMinutes(occurred_at) AS bucket, {KIND_SQL} AS kind, tags, "
        "priority, agent_id, team, if(kind = 'staff_reply', actor_id, '') AS actor, "
        f"ticket_id, version FROM {source} WHERE {where} "
        f"AND event_type IN {in_list(KIND_EVENT_TYPES)}"
    )
    # A ticket enters status_to when opened or changed, and leaves status_from when changed.
    moves = (
        "SELECT toStartOfFifteenMinutes(occurred_at) AS bucket, status_to AS status, "
        f"toInt8(1) AS delta, ticket_id, version FROM {source} WHERE {where} "
        f"AND event_type IN {in_list(MOVE_EVENT_TYPES)} "
        "UNION ALL "
        "SELECT toStartOfFifteenMinutes(occurred_at) AS bucket, status_from AS status, "
        f"toInt8(-1) AS delta, ticket_id, version FROM {source} WHERE {where} "
        "AND event_type = 'StatusChanged'"
    )
    # A ticket leaves its agent's backlog when it was open and is no more open with them (a
    # resolution, another agent), and enters one when open with an agent it was not open
    # with before (opened, reopened, reassigned; the agent "" is the unassigned).
    held_before = f"event_type != 'TicketOpened' AND {open_condition('status_from')}"
    held_after = open_condition("status_to")
    same = "agent_from = agent_id"
    backlog = (
        "SELECT toStartOfFifteenMinutes(occurred_at) AS bucket, agent_from AS who, "
        f"toInt8(-1) AS delta, ticket_id, version FROM {source} WHERE {where} "
        f"AND event_type IN {in_list(BACKLOG_EVENT_TYPES)} "
        f"AND {held_before} AND NOT ({held_after} AND {same}) "
        "UNION ALL "
        "SELECT toStartOfFifteenMinutes(occurred_at) AS bucket, agent_id AS who, "
        f"toInt8(1) AS delta, ticket_id, version FROM {source} WHERE {where} "
        f"AND event_type IN {in_list(BACKLOG_EVENT_TYPES)} "
        f"AND {held_after} AND NOT ({held_before} AND {same})"
    )
    # The tags a ticket was given (+1: opened with them, or added) and taken (-1), in the
    # quarter hour it was opened in.
    tag_moves = " UNION ALL ".join(
        "SELECT toStartOfFifteenMinutes(opened_at) AS bucket, tag, "
        f"toInt8({delta}) AS delta, ticket_id, version FROM {source} "
        f"ARRAY JOIN {new} AS tag WHERE {where} AND NOT has({old}, tag) "
        f"AND event_type IN {in_list(TAG_EVENT_TYPES)}"
        for delta, old, new in ((1, "tags_from", "tags"), (-1, "tags", "tags_from"))
    )
    statements = {
        BACKLOG_COUNTS: f"INSERT INTO {identifier(BACKLOG_COUNTS + suffix)} "
        "SELECT bucket, who, delta, uniqExactState(ticket_id, version) "
        f"FROM ({backlog}) GROUP BY bucket, who, delta",
        TAG_VOLUME_COUNTS: f"INSERT INTO {identifier(TAG_VOLUME_COUNTS + suffix)} "
        "SELECT bucket, tag, delta, uniqExactState(ticket_id, version) "
        f"FROM ({tag_moves}) GROUP BY bucket, tag, delta",
        COUNTS: f"INSERT INTO {identifier(COUNTS + suffix)} "
        "SELECT bucket, kind, priority, agent_id, team, actor, "
        f"uniqExactState(ticket_id, version) FROM ({kinds}) WHERE kind != '' "
        "GROUP BY bucket, kind, priority, agent_id, team, actor",
        TAG_COUNTS: f"INSERT INTO {identifier(TAG_COUNTS + suffix)} "
        "SELECT bucket, kind, tag, priority, agent_id, team, actor, "
        f"uniqExactState(ticket_id, version) FROM ({kinds}) ARRAY JOIN tags AS tag "
        "WHERE kind != '' GROUP BY bucket, kind, tag, priority, agent_id, team, actor",
        STATUS_COUNTS: f"INSERT INTO {identifier(STATUS_COUNTS + suffix)} "
        "SELECT bucket, status, delta, uniqExactState(ticket_id, version) "
        f"FROM ({moves}) GROUP BY bucket, status, delta",
        TICKET_STATUS_COUNTS: f"INSERT INTO {identifier(TICKET_STATUS_COUNTS + suffix)} "
        "SELECT ticket_id, bucket, status, delta, uniqExactState(ticket_id, version) "
        f"FROM ({moves}) GROUP BY ticket_id, bucket, status, delta",
    }
    return [statements[table] for table in tables]


def sum_statements(
    suffix: str,
    tables: tuple[str, ...],
    since: datetime | None = None,
    until: datetime | None = None,
    opened: Iterable[datetime] = (),
) -> list[str]:
    """INSERT ... SELECT into the sums of the count ``tables`` (those that have sums) the
    size of each set of the quarter hours (or days, by the sum's grain) from ``since``'s to
    ``until``'s (None: all of them), or, for sums by the opening, of the quarter hours (days)
    of the times ``opened``: a day's sum counts its whole day's sets again. Run after the
    sets were added to: a set only grows, so a later count is never smaller, and whichever
    count of a quarter hour (a day) is read last saw every set written before it."""
    statements = []
    for target, total in SUMS.items():
        if total.sets not in tables:
            continue
        where = ""
        if since is not None and until is not None:
            if total.moment == "opened_at":
                spans = _grains(opened, total.grain)
            else:  # every grain from the first event's to the last's
                spans = [(_grains([since], total.grain)[0][0], _grains([until], total.grain)[0][1])]
            where = (
                " AND (" + " OR ".join(_between(a, b) for a, b in spans) + ")"
                if spans
                else " AND 0"
            )
        key = ", ".join(f"{sql} AS {column}" for column, sql in total.key)
        columns = ", ".join(("sum_bucket", *(column for column, _ in total.key)))
        statements.append(
            f"INSERT INTO {identifier(target + suffix)} SELECT {total.bucket()} AS sum_bucket, "
            f"{key}, uniqExactMerge(events) FROM {identifier(total.sets + suffix)} "
            f"WHERE {total.rows}{where} GROUP BY {columns}"
        )
    return statements


def _grains(times: Iterable[datetime], grain: int) -> list[tuple[int, int]]:
    """The grains (quarter hours or days) that ``times`` fall in, as [start, end) seconds,
    consecutive ones joined."""
    spans: list[tuple[int, int]] = []
    for start in sorted({int(t.timestamp()) // grain * grain for t in times}):
        if spans and spans[-1][1] == start:
            spans[-1] = (spans[-1][0], start + grain)
        else:
            spans.append((start, start + grain))
    return spans


def _between(first: int, end: int) -> str:
    return (
        f"bucket >= {literal(datetime.fromtimestamp(first, UTC))} "
        f"AND bucket < {literal(datetime.fromtimestamp(end, UTC))}"
    )


def latest_sums(table: str, where: str) -> str:
    """SELECT bucket, the key, n: each quarter hour's latest count in the sum table
    ``table``, over the rows ``where`` selects (a count may be there more than once until
    the parts merge; a set only grows, so the largest is the latest)."""
    columns = ", ".join(("bucket", *(column for column, _ in SUMS[table].key)))
    return (
        f"SELECT {columns}, max(n) AS n FROM {identifier(table)} WHERE {where} GROUP BY {columns}"
    )


def marked(db: AnalyticsDatabase, marker: str, suffix: str = "") -> bool:
    """Whether the tables hold the row ``marker`` (``SUMS_READY``: the sums hold every set;
    ``FIELDS_READY``: the tickets by field are whole)."""
    rows = db.query(
        f"SELECT count() FROM {identifier(POSITION + suffix)} WHERE name = {literal(marker)}"
    )
    return bool(rows and int(rows[0][0]))


def create_statements(suffix: str = "") -> list[str]:
    return [_DDL[table].format(name=identifier(table + suffix)).strip() for table in TABLES]


def added_column_statements(existing: dict[str, set[str]], suffix: str = "") -> list[str]:
    """ALTERs adding the columns a table made by an older release lacks (``existing``: each
    table's columns now). Old rows get the type's default: rebuild to fill them."""
    return [
        f"ALTER TABLE {identifier(table + suffix)} ADD COLUMN {column} {kind}"
        for table, column, kind in ADDED_COLUMNS
        if column not in existing.get(table + suffix, {column})
    ]
