"""Which count statements a batch of analytics facts runs (``count_tables_for``): a table's
statement is left out only when the batch has no fact of a type that table takes, and the
types each table takes are the ones its SQL can count."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from infra.clickhouse.schema import (
    BACKLOG_COUNTS,
    BACKLOG_EVENT_TYPES,
    COUNTS,
    KIND_EVENT_TYPES,
    KIND_SQL,
    MOVE_EVENT_TYPES,
    STATUS_COUNTS,
    TAG_COUNTS,
    TAG_EVENT_TYPES,
    TAG_VOLUME_COUNTS,
    TICKET_STATUS_COUNTS,
    count_statements,
    count_tables_for,
)

AT = datetime(2026, 1, 1, tzinfo=UTC)


def test_every_event_type_kind_sql_can_count_is_a_counted_type():
    # Every branch of the multiIf names its event type; any other type gets '' (no kind).
    named = set(re.findall(r"event_type = '(\w+)'", KIND_SQL))
    assert named == set(KIND_EVENT_TYPES)
    assert KIND_SQL.endswith(", '')")


def test_the_statements_select_only_the_counted_types():
    counts, tags, moves, ticket_moves, backlog, tag_volume = count_statements("", AT, AT, 0, 1)
    kinds = "event_type IN (" + ", ".join(f"'{t}'" for t in KIND_EVENT_TYPES) + ")"
    assert kinds in counts
    assert kinds in tags
    assert "event_type IN (" + ", ".join(f"'{t}'" for t in MOVE_EVENT_TYPES) + ")" in moves
    assert "event_type IN (" + ", ".join(f"'{t}'" for t in MOVE_EVENT_TYPES) + ")" in ticket_moves
    # Each of the backlog's and the tag volume's branches (UNION ALL) selects its types.
    backlog_types = "event_type IN (" + ", ".join(f"'{t}'" for t in BACKLOG_EVENT_TYPES) + ")"
    assert backlog.count(backlog_types) == backlog.count("FROM analytics_events ") == 2
    tag_types = "event_type IN (" + ", ".join(f"'{t}'" for t in TAG_EVENT_TYPES) + ")"
    assert tag_volume.count(tag_types) == tag_volume.count("FROM analytics_events ") == 2


def test_a_batch_runs_the_statements_of_the_tables_its_facts_can_add_to():
    assert count_tables_for([]) == ()
    assert count_tables_for(["PriorityChanged", "TeamChanged", "DraftRequested"]) == ()
    assert count_tables_for(["AgentAssigned"]) == (BACKLOG_COUNTS,)
    assert count_tables_for(["TicketEdited"]) == (TAG_VOLUME_COUNTS,)
    assert count_tables_for(["MessagePosted"]) == (COUNTS, TAG_COUNTS)
    assert count_tables_for(["SlaBreached", "AgentUnassigned"]) == (
        COUNTS,
        TAG_COUNTS,
        BACKLOG_COUNTS,
    )
    assert count_tables_for(["StatusChanged"]) == (
        COUNTS,
        TAG_COUNTS,
        STATUS_COUNTS,
        TICKET_STATUS_COUNTS,
        BACKLOG_COUNTS,
    )
    assert count_tables_for(["TicketOpened", "MessagePosted"]) == (
        COUNTS,
        TAG_COUNTS,
        STATUS_COUNTS,
        TICKET_STATUS_COUNTS,
        BACKLOG_COUNTS,
        TAG_VOLUME_COUNTS,
    )
