"""The analytics port's contract, on both adapters: a real ClickHouse server (Debian's 18.16,
native protocol) and chDB in this process. Each test gets a database of its own.

The projection and every metric are checked against the hand-computed history of
``tests/support/analytics_history.py``; duplicates (a replay, a re-delivery, a crash between
the writes) must count once; a rebuild must equal the live build.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime
from typing import Any

import pytest

from domain.sla import BusinessCalendar
from infra.automation import defaults
from infra.clickhouse.metrics import ALL_STATUSES, Filters, Metrics
from infra.clickhouse.ports import AnalyticsDatabase
from infra.clickhouse.store import ClickHouseProjectionStore
from projections.analytics import EventGapError
from projections.ports import Envelope
from projections.runner import ProjectionRunner, rebuild
from tests.support import analytics_history as h

ADAPTERS = ["server", "chdb"]


@pytest.fixture(params=ADAPTERS)
def adb(request: pytest.FixtureRequest) -> Iterator[AnalyticsDatabase]:
    name = f"contract_{uuid.uuid4().hex[:12]}"
    if request.param == "server":
        from infra.clickhouse.native import ClickHouseServerDatabase

        db: Any = ClickHouseServerDatabase(request.getfixturevalue("clickhouse_url"), database=name)
    else:
        from django.conf import settings

        from infra.clickhouse.embedded import ChdbDatabase

        db = ChdbDatabase(settings.ANALYTICS_PATH, database=name)
    try:
        yield db
    finally:
        db.drop()
        db.close()


class ListSource:
    """The log as a list of envelopes (an ``EventSource``), for the hand-made history."""

    def __init__(self, envelopes: Sequence[Envelope]) -> None:
        self.envelopes = list(envelopes)

    def head(self) -> int:
        return self.envelopes[-1].position if self.envelopes else 0

    def read(self, after: int, limit: int) -> Sequence[Envelope]:
        return [e for e in self.envelopes if e.position > after][:limit]

    def wait(self, after: int, timeout: float) -> None:
        pass


def calendar() -> BusinessCalendar:
    """The calendar a fresh installation starts with (Monday to Friday, 09:00-17:00 UTC)."""
    return BusinessCalendar.from_json(defaults.CALENDAR)


def built(adb: AnalyticsDatabase, batch_size: int = 5) -> ClickHouseProjectionStore:
    store = ClickHouseProjectionStore(adb, calendar=calendar)
    ProjectionRunner(ListSource(h.envelopes()), store, batch_size=batch_size).catch_up()
    return store


RANGE = Filters(h.DAY1, h.DAY2)


def snapshot(adb: AnalyticsDatabase) -> dict[str, Any]:
    return {
        "events": adb.query(
            "SELECT toString(ticket_id), version, position, event_type, toString(occurred_at), "
            "actor_id, actor_role, customer_id, agent_id, team, priority, status_from, "
            "status_to, tags, language, channel, internal, sla_target, draft_id, "
            "draft_outcome, edit_distance, draft_length, rating "
            "FROM analytics_events FINAL ORDER BY position"
        ),
        # The count tables, as the dashboard reads them (each set's size).
        "counts": adb.query(
            "SELECT toString(bucket), kind, priority, agent_id, team, actor_id, "
            "uniqExactMerge(events) FROM analytics_counts "
            "GROUP BY bucket, kind, priority, agent_id, team, actor_id "
            "ORDER BY bucket, kind, priority, agent_id, team, actor_id"
        ),
        "tag_counts": adb.query(
            "SELECT toString(bucket), kind, tag, priority, agent_id, team, actor_id, "
            "uniqExactMerge(events) FROM analytics_tag_counts "
            "GROUP BY bucket, kind, tag, priority, agent_id, team, actor_id "
            "ORDER BY bucket, kind, tag, priority, agent_id, team, actor_id"
        ),
        "status_counts": adb.query(
            "SELECT toString(bucket), status, delta, uniqExactMerge(events) "
            "FROM analytics_status_counts GROUP BY bucket, status, delta "
            "ORDER BY bucket, status, delta"
        ),
        "ticket_status_counts": adb.query(
            "SELECT toString(ticket_id), toString(bucket), status, delta, uniqExactMerge(events) "
            "FROM analytics_ticket_status_counts GROUP BY ticket_id, bucket, status, delta "
            "ORDER BY ticket_id, bucket, status, delta"
        ),
        "tickets": adb.query(
            "SELECT toString(ticket_id), version, position, agent_id, priority, status, tags, "
            "toString(opened_at), toString(first_response_at), toString(first_resolved_at), "
            "toString(resolved_at), toString(closed_at), resolutions, reopens, staff_replies, "
            "customer_replies, breached_first_response, breached_resolution, "
            "first_response_business, resolution_business, rating, toString(rated_at) "
            "FROM analytics_tickets FINAL ORDER BY ticket_id"
        ),
        "moves": adb.query(
            "SELECT toString(ticket_id), arrayMap(x -> toString(x), move_at), move_status, "
            "move_delta FROM analytics_tickets FINAL ORDER BY ticket_id"
        ),
        # The values each ticket has now (where it left one, and the version of a row, depend
        # on the batches: a row is written again only when what it holds changed).
        "by_field": adb.query(
            "SELECT field, value, toString(ticket_id), priority, agent_id, team, tags, "
            "arrayMap(x -> toString(x), move_at), move_status, move_delta "
            "FROM analytics_tickets_by_field FINAL WHERE present = 1 "
            "ORDER BY field, value, ticket_id"
        ),
        "ticket_sums": adb.query(TICKET_SUMS_ROWS),
        # The backlog's and the tag volume's moves (ADR 0064), each set's size.
        "backlog_counts": adb.query(
            "SELECT toString(bucket), agent_id, delta, uniqExactMerge(events) "
            "FROM analytics_backlog_counts GROUP BY bucket, agent_id, delta "
            "ORDER BY bucket, agent_id, delta"
        ),
        "tag_volume_counts": adb.query(
            "SELECT toString(bucket), tag, delta, uniqExactMerge(events) "
            "FROM analytics_tag_volume_counts GROUP BY bucket, tag, delta "
            "ORDER BY bucket, tag, delta"
        ),
    }


# The ticket sums' rows as the dashboard reads them (the latest of each quarter hour).
TICKET_SUMS_ROWS = (
    "SELECT toString(bucket), measure, n, arraySort(groupArrayMerge(seconds)) "
    "FROM analytics_ticket_sums FINAL GROUP BY bucket, measure, n ORDER BY bucket, measure"
)


def everything(m: Metrics, f: Filters) -> dict[str, Any]:
    def dist(d: dict[str, Any]) -> dict[str, Any]:
        buckets = {b["bucket"]: b["tickets"] for b in d["distribution"] if b["tickets"]}
        return {**d, "distribution": buckets}

    return {
        "open_now": m.open_now(f),
        "daily": m.daily(f),
        "status_over_time": m.status_over_time(f),
        "totals": m.totals(f),
        "first_response": dist(m.first_response(f)),
        "resolution": dist(m.resolution(f)),
        "sla": m.sla(f),
        "reopen_rate": m.reopen_rate(f),
        "backlog": m.backlog(f),
        "throughput": m.throughput(f),
        "volume_priority": m.volume(f, "priority"),
        "volume_language": m.volume(f, "language"),
        "volume_tag": m.volume(f, "tag"),
        "volume_channel": m.volume(f, "channel"),
    }


# ---------------------------------------------------------------------------- the port
def test_rows_go_as_data_and_come_back_alike(adb):
    adb.command(
        "CREATE TABLE t (id UUID, s String, n UInt64, f Float64, at DateTime, "
        "maybe Nullable(DateTime), tags Array(String)) ENGINE = MergeTree ORDER BY id"
    )
    tricky = "it's a \\ back'slash'); DROP TABLE t; --"
    at = datetime(2026, 3, 2, 23, 30, 5, 999_000, tzinfo=UTC)
    ident = uuid.UUID(int=7)
    adb.insert(
        "t",
        ["id", "s", "n", "f", "at", "maybe", "tags"],
        [
            (ident, tricky, 2**40, 0.5, at, None, ["a", "b'"]),
            (uuid.UUID(int=8), "", 0, 0, at, at, []),
        ],
    )
    rows = adb.query(
        "SELECT toString(id), s, n, f, toString(at), maybe, tags, toString(toDate(at, "
        "'Asia/Tokyo')) FROM t ORDER BY id"
    )
    assert rows[0] == (
        str(ident),
        tricky,
        2**40,
        0.5,
        "2026-03-02 23:30:05",
        None,
        ["a", "b'"],
        "2026-03-03",
    )
    assert rows[1][5] == "2026-03-02 23:30:05"
    from infra.clickhouse.sql import literal

    assert adb.query(f"SELECT count() FROM t WHERE s = {literal(tricky)}") == [(1,)]


def test_arrays_of_times_and_numbers_and_flags_go_in_alike(adb):
    """The types the tickets by field write (arrays of times, of small ints; flags), with
    empty arrays and a column whose first values are empty or None."""
    adb.command(
        "CREATE TABLE u (n UInt32, flag UInt8, at Array(DateTime), d Array(Int8), "
        "s Array(String), maybe Nullable(DateTime)) ENGINE = MergeTree ORDER BY n"
    )
    t1 = datetime(2026, 3, 2, 9, 0, 1, 500_000, tzinfo=UTC)
    t2 = datetime(2026, 3, 3, 23, 59, 59, tzinfo=UTC)
    adb.insert(
        "u",
        ["n", "flag", "at", "d", "s", "maybe"],
        [
            (1, False, (), (), (), None),
            (2, True, (t1, t2), (1, -1), ("a",), t2),
            (3, True, [t2], [-1], ["b", "c"], None),
        ],
    )
    assert adb.query(
        "SELECT n, flag, arrayMap(x -> toString(x), at), d, s, toString(maybe) FROM u ORDER BY n"
    ) == [
        (1, 0, [], [], [], None),
        (2, 1, ["2026-03-02 09:00:01", "2026-03-03 23:59:59"], [1, -1], ["a"],
         "2026-03-03 23:59:59"),
        (3, 1, ["2026-03-03 23:59:59"], [-1], ["b", "c"], None),
    ]  # fmt: skip


def test_several_reads_at_once_answer_what_each_answers_alone(adb):
    """``query_all`` (the KPI cards' three reads): each answer in its place, on every
    adapter, also many at once and again; a read that fails raises, and the next calls
    still answer (a failed read's connection is not left broken)."""
    from infra.clickhouse.sql import literal

    built(adb)
    reads = [
        "SELECT count() FROM analytics_events",
        "SELECT toString(ticket_id), version FROM analytics_tickets FINAL ORDER BY ticket_id",
        *(f"SELECT {i}, {literal(str(i))}" for i in range(8)),
    ]
    alone = [adb.query(sql) for sql in reads]
    for _ in range(3):
        assert adb.query_all(reads) == alone
    assert adb.query_all([]) == []
    assert adb.query_all(reads[:1]) == alone[:1]
    with pytest.raises(Exception, match="no_such_table"):
        adb.query_all([reads[0], "SELECT * FROM no_such_table"])
    assert adb.query_all(reads) == alone


# ---------------------------------------------------------------------------- the metrics
def test_every_metric_equals_the_hand_computed_number(adb):
    built(adb)
    assert everything(Metrics(adb), RANGE) == h.EXPECTED


def dist(d: dict[str, Any]) -> dict[str, Any]:
    return {
        **d,
        "distribution": {b["bucket"]: b["tickets"] for b in d["distribution"] if b["tickets"]},
    }


def test_durations_in_business_time_follow_the_sla_calendar(adb):
    built(adb)
    m = Metrics(adb)
    business = {
        "first_response": dist(m.first_response(RANGE, "business")),
        "resolution": dist(m.resolution(RANGE, "business")),
    }
    assert business == h.EXPECTED_BUSINESS
    # Without a calendar there is no business time, and wall-clock time is unchanged.
    other = ClickHouseProjectionStore(adb, suffix="__nocal")
    ProjectionRunner(ListSource(h.envelopes()), other).catch_up()
    rows = adb.query(
        "SELECT count() FROM analytics_tickets__nocal FINAL WHERE "
        "isNotNull(first_response_business) OR isNotNull(resolution_business)"
    )
    assert rows == [(0,)]


def test_filters_narrow_by_the_tickets_fields_at_the_event_or_now(adb):
    built(adb)
    m = Metrics(adb)
    # T3 was urgent when opened and is high now: created counts T1 only, volume counts both.
    high = Filters(h.DAY1, h.DAY2, priority=("high",))
    assert m.totals(high)["created"] == 1
    assert m.volume(high, "priority") == [{"priority": "high", "tickets": 2}]
    assert [d["resolved"] for d in m.daily(Filters(h.DAY1, h.DAY2, agent=h.A1))] == [1, 1]
    assert m.open_now(Filters(h.DAY1, h.DAY2, tag="login"))["open"] == 1
    assert m.backlog(Filters(h.DAY1, h.DAY2, agent="")) == [{"agent_id": "", "open": 1}]
    assert m.totals(Filters(h.DAY2, h.DAY2))["created"] == 1
    # A range starting later starts from the statuses at its start.
    assert m.status_over_time(Filters(h.DAY2, h.DAY2)) == h.EXPECTED["status_over_time"][1:]
    by_tag = m.status_over_time(Filters(h.DAY1, h.DAY2, tag="login"))  # T2 and T4, tagged now
    assert [sum(d["by_status"].values()) for d in by_tag] == [2, 2]
    assert by_tag[1]["by_status"]["closed"] == by_tag[1]["by_status"]["waiting_on_customer"] == 1
    assert m.totals(Filters(date(2026, 3, 4), date(2026, 3, 9)))["created"] == 0
    assert m.resolution(Filters(date(2026, 3, 4), date(2026, 3, 9)))["median"] is None


def test_days_are_the_admins_calendar_days(adb):
    built(adb)
    tokyo = Filters(h.DAY1, h.DAY2, tz="Asia/Tokyo")
    assert Metrics(adb).daily(tokyo) == [
        {"day": "2026-03-02", "created": 2, "resolved": 1},
        {"day": "2026-03-03", "created": 2, "resolved": 2},
    ]
    new_york = Filters(h.DAY1, h.DAY1, tz="America/New_York")  # 05:00 UTC .. 05:00 UTC
    assert Metrics(adb).totals(new_york)["created"] == 3


# ---------------------------------------------------------------------------- exactly once
def test_a_replayed_or_redelivered_event_counts_once(adb):
    store = built(adb)
    expected = everything(Metrics(adb), RANGE)
    # Kafka delivers again (the same store, and a new one that must read the states back).
    for again in (store, ClickHouseProjectionStore(adb)):
        with again.batch() as batch:
            batch.apply(h.envelopes())
            assert batch.applied == 0
    assert everything(Metrics(adb), RANGE) == expected


def crash_before_the_states(
    adb: AnalyticsDatabase, monkeypatch: pytest.MonkeyPatch, runner: ProjectionRunner
) -> None:
    """Run ``runner`` until its first batch dies writing the tickets' states (everything
    before them written), as a killed process would; the inserts work again after."""
    real_insert = adb.insert

    def dying(table: str, columns: Any, rows: Any) -> None:
        if table == "analytics_tickets":
            raise ConnectionError("killed")
        real_insert(table, columns, rows)

    monkeypatch.setattr(adb, "insert", dying)
    with pytest.raises(ConnectionError):
        runner.catch_up()
    monkeypatch.setattr(adb, "insert", real_insert)


def crash_at_the_insert_into(
    adb: AnalyticsDatabase, monkeypatch: pytest.MonkeyPatch, runner: ProjectionRunner, table: str
) -> None:
    """Run ``runner`` until its first batch dies at its first ``INSERT ... SELECT`` into
    ``table`` (everything before it written), as a killed process would; the statements
    work again after."""
    real_command = adb.command

    def dying(sql: str) -> None:
        if sql.startswith(f"INSERT INTO {table} "):
            raise ConnectionError("killed")
        real_command(sql)

    monkeypatch.setattr(adb, "command", dying)
    with pytest.raises(ConnectionError):
        runner.catch_up()
    monkeypatch.setattr(adb, "command", real_command)


def test_a_crash_between_the_writes_is_repaired_by_the_retry(adb, monkeypatch):
    """The facts written, then the process dies before the states and the position: the next
    try writes the same facts again, and FINAL reads each once."""
    store = ClickHouseProjectionStore(adb)
    runner = ProjectionRunner(ListSource(h.envelopes()), store, batch_size=100)
    crash_before_the_states(adb, monkeypatch, runner)
    assert store.position() == 0
    assert adb.query("SELECT count() FROM analytics_events") == [(len(h.events()),)]
    ProjectionRunner(ListSource(h.envelopes()), ClickHouseProjectionStore(adb)).catch_up()
    assert adb.query("SELECT count() FROM analytics_events") == [(2 * len(h.events()),)]
    assert everything(Metrics(adb), RANGE) == h.EXPECTED


def test_a_missing_event_is_refused(adb):
    store = ClickHouseProjectionStore(adb)
    envelopes = h.envelopes()
    with pytest.raises(EventGapError), store.batch() as batch:
        batch.apply([e for e in envelopes if not (e.aggregate_id == h.T1 and e.version == 2)])
    assert store.position() == 0


def test_a_stream_in_order_per_ticket_only_gives_the_same_result(adb):
    """Kafka keeps order per ticket, not across tickets: deliver ticket by ticket."""
    store = ClickHouseProjectionStore(adb)
    envelopes = h.envelopes()
    by_ticket = sorted(envelopes, key=lambda e: (str(e.aggregate_id), e.version))
    for start in range(0, len(by_ticket), 4):
        with store.batch() as batch:
            batch.apply(by_ticket[start : start + 4])
    assert store.position() == envelopes[-1].position
    assert everything(Metrics(adb), RANGE) == h.EXPECTED


# ---------------------------------------------------------------------------- rebuild
def test_rebuilt_equals_live(adb):
    live = built(adb, batch_size=3)
    before = snapshot(adb)
    source = ListSource(h.envelopes())
    position = rebuild(source, live, live.shadow, live.swap_in, batch_size=7)
    assert position == source.head() == live.position()
    assert snapshot(adb) == before
    assert everything(Metrics(adb), RANGE) == h.EXPECTED
    tables = {r[0] for r in adb.query("SHOW TABLES")}
    assert tables == {
        "analytics_events",
        "analytics_tickets",
        "analytics_position",
        "analytics_counts",
        "analytics_tag_counts",
        "analytics_status_counts",
        "analytics_ticket_status_counts",
        "analytics_count_sums",
        "analytics_status_sums",
        "analytics_agent_sums",
        "analytics_status_day_sums",
        "analytics_agent_day_sums",
        "analytics_tickets_by_field",
        "analytics_ticket_sums",
        "analytics_backlog_counts",
        "analytics_tag_volume_counts",
        "analytics_backlog_day_sums",
        "analytics_tag_volume_sums",
        "analytics_tag_volume_day_sums",
    }


# ---------------------------------------------------------------------------- count tables
# Resolutions by the agent assigned then (T1 twice by A1, T2 by A2) and public staff replies
# by their author (A1 on T1 and T4, A2 on T2; A1's internal note is none), as the agent sums
# hold them: (kind, who, events).
AGENT_TOTALS = [
    ("resolved", h.A1, 2),
    ("resolved", h.A2, 1),
    ("staff_reply", h.A1, 2),
    ("staff_reply", h.A2, 1),
]
# The hand-made history's events of each kind (each once), as (kind, events) by kind.
KIND_TOTALS = [
    ("breach:first_response", 1),
    ("breach:resolution", 1),
    ("created", 4),
    ("reopened", 1),
    ("resolved", 3),
    ("staff_reply", 3),
]


def test_the_counts_hold_each_fact_once_however_often_it_is_written(adb):
    """The dashboard's event counts read the aggregate tables; writing the same facts'
    counts again (a crash's retry, a re-delivery, an overlapping batch) adds nothing."""
    from infra.clickhouse.schema import count_statements

    built(adb, batch_size=3)
    parts = adb.query("SELECT count() FROM analytics_counts")[0][0]
    for statement in count_statements(
        "", datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC), 0, 10**9
    ):
        adb.command(statement)  # every fact's count written once more
    assert adb.query("SELECT count() FROM analytics_counts")[0][0] > parts
    assert everything(Metrics(adb), RANGE) == h.EXPECTED
    rows = adb.query(
        "SELECT kind, uniqExactMerge(events) FROM analytics_counts GROUP BY kind ORDER BY kind"
    )
    assert rows == KIND_TOTALS
    by_tag = adb.query(
        "SELECT tag, uniqExactMerge(events) FROM analytics_tag_counts WHERE kind = 'created' "
        "GROUP BY tag ORDER BY tag"
    )
    assert by_tag == [("billing", 2), ("login", 2)]
    # The status moves: 4 tickets entered 'open', and each status change is one move out
    # and one in, whatever the number of copies.
    moves = adb.query(
        "SELECT delta, uniqExactMerge(events) FROM analytics_status_counts "
        "GROUP BY delta ORDER BY delta"
    )
    changes = adb.query(
        "SELECT count() FROM analytics_events FINAL WHERE event_type = 'StatusChanged'"
    )[0][0]
    assert moves == [(-1, changes), (1, changes + 4)]


def test_the_status_over_time_reads_its_count_tables_narrowed_or_not(adb):
    """Unnarrowed, status_over_time reads the moves per quarter hour; narrowed by the
    tickets' fields now, the moves per ticket. A narrowing that keeps every ticket gives
    what the unnarrowed query gives, and both answer with the facts emptied."""
    built(adb, batch_size=4)
    m = Metrics(adb)
    every = ("low", "medium", "high", "urgent")
    ranges = (RANGE, Filters(h.DAY2, h.DAY3), Filters(h.DAY1, h.DAY2, tz="Asia/Tokyo"))
    for f in ranges:
        narrowed = Filters(f.date_from, f.date_to, tz=f.tz, priority=every)
        assert m.status_over_time(f) == m.status_over_time(narrowed)
    by_tag = Filters(h.DAY1, h.DAY2, tag="login")
    tagged = m.status_over_time(by_tag)
    # Neither table reads the facts: emptied, the answers stay (the current states narrow).
    adb.command("TRUNCATE TABLE analytics_events")
    assert m.status_over_time(RANGE) == h.EXPECTED["status_over_time"]
    assert (
        m.status_over_time(Filters(h.DAY1, h.DAY2, priority=every))
        == (h.EXPECTED["status_over_time"])
    )
    assert m.status_over_time(by_tag) == tagged
    # Narrowed, it reads the tickets by field; without them, nothing to count.
    adb.command("TRUNCATE TABLE analytics_ticket_status_counts")
    assert m.status_over_time(by_tag) == tagged
    adb.command("TRUNCATE TABLE analytics_tickets_by_field")
    assert [sum(d["by_status"].values()) for d in m.status_over_time(by_tag)] == [0, 0]
    assert m.status_over_time(RANGE) == h.EXPECTED["status_over_time"]


def test_the_status_over_time_narrowed_by_the_tickets_fields_now(adb):
    """Narrowed by priority, agent, team or tag, the status over time counts the tickets
    whose fields now match, over their whole history (the moves per ticket, each once)."""
    from infra.clickhouse.schema import count_statements

    built(adb, batch_size=2)
    for statement in count_statements(
        "", datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC), 0, 10**9
    ):
        adb.command(statement)  # every move written once more: counts once
    m = Metrics(adb)
    day_totals = [sum(d["by_status"].values()) for d in h.EXPECTED["status_over_time"]]
    # Every ticket has one priority now: the priorities' answers add up to the whole.
    parts = [m.status_over_time(Filters(h.DAY1, h.DAY2, priority=(p,))) for p in
             ("low", "medium", "high", "urgent")]  # fmt: skip
    for i, whole in enumerate(h.EXPECTED["status_over_time"]):
        for status, n in whole["by_status"].items():
            assert sum(p[i]["by_status"][status] for p in parts) == n
    # T3 was urgent when opened and is high now: it counts under high, on every day.
    # T1 (high since opened) was resolved on day 1, reopened and resolved again on day 2.
    high = m.status_over_time(Filters(h.DAY1, h.DAY2, priority=("high",)))
    none = dict.fromkeys(ALL_STATUSES, 0)
    assert high == [
        {"day": "2026-03-02", "by_status": {**none, "resolved": 1}},
        {"day": "2026-03-03", "by_status": {**none, "open": 1, "resolved": 1}},
    ]
    urgent = m.status_over_time(Filters(h.DAY1, h.DAY2, priority=("urgent",)))
    assert [d["by_status"] for d in urgent] == [none, none]
    # By agent now: A1 has T1 and T4.
    by_agent = m.status_over_time(Filters(h.DAY1, h.DAY2, agent=h.A1))
    assert [d["by_status"] for d in by_agent] == [
        {**none, "assigned": 1, "resolved": 1},
        {**none, "waiting_on_customer": 1, "resolved": 1},
    ]
    by_tag = m.status_over_time(Filters(h.DAY1, h.DAY2, tag="login"))  # T2 and T4, tagged now
    assert [sum(d["by_status"].values()) for d in by_tag] == [2, 2]
    assert by_tag[1]["by_status"]["closed"] == by_tag[1]["by_status"]["waiting_on_customer"] == 1
    assert day_totals == [sum(d["by_status"].values()) for d in m.status_over_time(RANGE)]


def _changed_fields() -> list[Envelope]:
    """After the hand-made history: T2 loses the tag billing and gains refund, T4 goes to
    agent 2 and team t1, T1 is unassigned, T3 is raised back to urgent (a day later)."""
    from domain.ticket import Ticket

    day3 = datetime(2026, 3, 4, 9, tzinfo=UTC)
    common = {"timestamp": day3, "actor_id": h.ADMIN, "actor_role": "admin"}
    later = [
        Ticket.TicketEdited(originator_id=h.T2, originator_version=7, subject="s",
                            description="d", tags=["login", "refund"], **common),
        Ticket.AgentAssigned(originator_id=h.T4, originator_version=6, agent_id=h.A2,
                             previous_agent_id=h.A1, policy="manual", reason="", **common),
        Ticket.TeamChanged(originator_id=h.T4, originator_version=7, from_team_id=None,
                           to_team_id="t1", **common),
        Ticket.AgentUnassigned(originator_id=h.T1, originator_version=10, agent_id=h.A1,
                               reason="", **common),
        Ticket.PriorityChanged(originator_id=h.T3, originator_version=4, from_priority="high",
                               to_priority="urgent", **common),
    ]  # fmt: skip
    first = len(h.envelopes()) + 1
    return [*h.envelopes(), *(Envelope(first + i, e) for i, e in enumerate(later))]


NARROWINGS = (
    {"tag": "billing"},
    {"tag": "login"},
    {"tag": "refund"},
    {"tag": "none-such"},
    {"agent": h.A1},
    {"agent": h.A2},
    {"agent": ""},
    {"team": "t1"},
    {"team": ""},
    {"priority": ("high",)},
    {"priority": ("urgent", "low")},
    {"tag": "login", "agent": h.A2},
    {"tag": "login", "priority": ("low",), "team": ""},
)


@pytest.mark.parametrize("batch_size", [1, 3, 100])
def test_the_tickets_by_field_answer_what_the_per_ticket_sets_answer(adb, batch_size):
    """The narrowed status over time from ``analytics_tickets_by_field`` (ADR 0060) equals
    the one from the per-ticket sets (ADR 0056, ``by_field=False``) for every narrowing,
    range and zone, after tags, agent, team and priority changed (a ticket that left a value
    no longer counts under it); delivered again, nothing is applied and nothing changes."""
    envelopes = _changed_fields()
    store = ClickHouseProjectionStore(adb, calendar=calendar)
    ProjectionRunner(ListSource(envelopes), store, batch_size=batch_size).catch_up()
    fields, sets = Metrics(adb), Metrics(adb, by_field=False)
    day3 = date(2026, 3, 4)
    ranges = [(h.DAY1, day3, "UTC"), (h.DAY2, h.DAY2, "UTC"), (h.DAY1, day3, "Asia/Kathmandu")]
    for narrowing in NARROWINGS:
        for first, last, tz in ranges:
            f = Filters(first, last, tz, **narrowing)
            assert fields._fielded(f)
            assert not sets._fielded(f)
            assert fields.status_over_time(f) == sets.status_over_time(f), (narrowing, tz)
    billing = fields.status_over_time(Filters(h.DAY1, day3, tag="billing"))
    assert [sum(d["by_status"].values()) for d in billing] == [1, 1, 1]  # T1 only, now
    refund = fields.status_over_time(Filters(h.DAY1, day3, tag="refund"))
    assert [sum(d["by_status"].values()) for d in refund] == [1, 1, 1]  # T2, opened day 1
    # Delivered again (a store that reads the states back): nothing applied, the same rows.
    before = snapshot(adb)
    with ClickHouseProjectionStore(adb).batch() as batch:
        batch.apply(envelopes)
        assert batch.applied == 0
    assert snapshot(adb) == before


def test_a_crash_before_the_states_leaves_the_tickets_by_field_to_the_retry(adb, monkeypatch):
    """The tickets by field written, then the process dies before the states: the retry
    folds from the old states and writes the same rows (the same versions) again."""
    envelopes = _changed_fields()
    runner = ProjectionRunner(ListSource(envelopes), ClickHouseProjectionStore(adb))
    crash_before_the_states(adb, monkeypatch, runner)
    written = adb.query("SELECT count() FROM analytics_tickets_by_field")[0][0]
    assert written > 0
    ProjectionRunner(ListSource(envelopes), ClickHouseProjectionStore(adb)).catch_up()
    assert adb.query("SELECT count() FROM analytics_tickets_by_field") == [(2 * written,)]
    fields, sets = Metrics(adb), Metrics(adb, by_field=False)
    for narrowing in NARROWINGS:
        f = Filters(h.DAY1, date(2026, 3, 4), **narrowing)
        assert fields.status_over_time(f) == sets.status_over_time(f), narrowing


def test_the_tickets_by_field_are_read_once_a_store_has_filled_them_from_the_start(adb):
    """A store starting on tables without facts says the tickets by field are whole; one
    starting beside facts of a release before them does not (their status histories are
    not there), so the dashboard narrows from the per-ticket sets until a rebuild."""
    from infra.clickhouse.schema import FIELDS_READY

    narrowed = Filters(h.DAY1, h.DAY2, tag="login")
    built(adb)
    assert Metrics(adb)._fielded(narrowed)
    assert not Metrics(adb)._fielded(RANGE)  # unnarrowed: the sums
    expected = Metrics(adb).status_over_time(narrowed)
    # The release before: no tickets by field, no marker; its store starts beside the facts.
    adb.command("DROP TABLE analytics_tickets_by_field")
    rows = adb.query(
        f"SELECT name, position FROM analytics_position WHERE name != '{FIELDS_READY}'"
    )
    adb.command("TRUNCATE TABLE analytics_position")
    adb.insert("analytics_position", ("name", "position", "written_at"),
               [(n, p, datetime.now(UTC)) for n, p in rows])  # fmt: skip
    live = ClickHouseProjectionStore(adb, calendar=calendar)
    assert not live.marked(FIELDS_READY)
    assert not Metrics(adb)._fielded(narrowed)
    assert Metrics(adb).status_over_time(narrowed) == expected  # from the per-ticket sets
    source = ListSource(h.envelopes())
    rebuild(source, live, live.shadow, live.swap_in, batch_size=4)
    assert live.marked(FIELDS_READY)
    assert Metrics(adb)._fielded(narrowed)
    assert Metrics(adb).status_over_time(narrowed) == expected


def test_a_table_from_the_release_before_gets_the_new_columns(adb):
    """analytics_events made before the draft columns: the store adds them."""
    from infra.clickhouse.schema import ADDED_COLUMNS, create_statements

    old = create_statements()[0]
    added = {column for table, column, _ in ADDED_COLUMNS if table == "analytics_events"}
    for _, column, kind in ADDED_COLUMNS:
        old = old.replace(f",\n    {column} {kind}", "")
    assert "draft_id" not in old
    assert "rating" not in old
    adb.command(old)
    ClickHouseProjectionStore(adb)
    columns = {r[0] for r in adb.query("DESCRIBE TABLE analytics_events")}
    assert added <= columns


def test_count_tables_made_beside_older_facts_count_them_all(adb):
    """A release before the count tables left facts: the store counts them when it makes
    the tables, so the dashboard does not start from zero."""
    built(adb)
    for table in (
        "analytics_counts",
        "analytics_tag_counts",
        "analytics_status_counts",
        "analytics_ticket_status_counts",
    ):
        adb.command(f"DROP TABLE {table}")
    ClickHouseProjectionStore(adb)
    assert everything(Metrics(adb), RANGE) == h.EXPECTED
    # The release before this one had the first three: only the per-ticket moves are counted.
    before = snapshot(adb)
    adb.command("DROP TABLE analytics_ticket_status_counts")
    ClickHouseProjectionStore(adb)
    assert snapshot(adb) == before
    ClickHouseProjectionStore(adb)  # tables there: nothing counted again (nor would it add)
    assert Metrics(adb).totals(RANGE) == h.EXPECTED["totals"]


# ---------------------------------------------------------------------------- team filter
def test_the_team_filter_narrows_by_the_team_at_the_event_or_now(adb):
    from domain.ticket import Ticket

    team = str(uuid.UUID(int=0x3001))
    moved = Ticket.TeamChanged(
        originator_id=h.T1, originator_version=10, timestamp=datetime(2026, 3, 3, 12, tzinfo=UTC),
        from_team_id=None, to_team_id=team, actor_id=h.ADMIN, actor_role="admin",
    )  # fmt: skip
    envelopes = h.envelopes()
    envelopes.append(Envelope(len(envelopes) + 1, moved))
    store = ClickHouseProjectionStore(adb, calendar=calendar)
    ProjectionRunner(ListSource(envelopes), store, batch_size=4).catch_up()
    m = Metrics(adb)
    in_team = Filters(h.DAY1, h.DAY2, team=team)
    # T1 joined the team after its events of the range: no event counts, the ticket does.
    assert m.totals(in_team)["created"] == m.totals(in_team)["resolved"] == 0
    assert m.volume(in_team, "priority") == [{"priority": "high", "tickets": 1}]
    assert m.open_now(in_team)["open"] == 0
    no_team = Filters(h.DAY1, h.DAY2, team="")
    assert m.totals(no_team) == h.EXPECTED["totals"]
    assert [v["tickets"] for v in m.volume(no_team, "priority")] == [1, 1, 1]
    assert m.totals(Filters(h.DAY1, h.DAY2, team=team, tag="billing"))["created"] == 0
    assert m.daily(Filters(h.DAY1, h.DAY2, team="", tag="billing")) == [
        {"day": "2026-03-02", "created": 2, "resolved": 1},
        {"day": "2026-03-03", "created": 0, "resolved": 2},
    ]


# ---------------------------------------------------------------------------- AI drafts
def test_draft_acceptance_and_edits_per_agent_equal_the_hand_computed_numbers(adb):
    store = ClickHouseProjectionStore(adb, calendar=calendar)
    ProjectionRunner(ListSource(h.envelopes_with_drafts()), store, batch_size=6).catch_up()
    m = Metrics(adb)
    assert m.drafts(RANGE) == h.EXPECTED_DRAFTS
    # Later days: D6 only (ready, not sent); a range before any draft: nothing.
    assert m.drafts(Filters(h.DAY3, h.DAY3)) == [
        {
            "agent_id": h.A2,
            "drafts": 1,
            "sent": 0,
            "acceptance_pct": 0.0,
            "edit_distance_avg": None,
            "edit_pct_avg": None,
        }
    ]
    assert m.drafts(Filters(h.DAY1, h.DAY1)) == []
    # Narrowed by the ticket when the draft came back: T3 was high then (D1).
    assert [r["agent_id"] for r in m.drafts(Filters(h.DAY1, h.DAY2, priority=("high",)))] == [h.A2]
    # Delivered again: the same numbers.
    with store.batch() as batch:
        batch.apply(h.envelopes_with_drafts())
    assert m.drafts(RANGE) == h.EXPECTED_DRAFTS


# ---------------------------------------------------------------------------- satisfaction
def test_satisfaction_equals_the_hand_computed_numbers_with_the_latest_rating(adb):
    store = ClickHouseProjectionStore(adb, calendar=calendar)
    ProjectionRunner(ListSource(h.envelopes_with_ratings()), store, batch_size=4).catch_up()
    m = Metrics(adb)
    assert m.satisfaction(RANGE) == h.EXPECTED_SATISFACTION
    # Narrowed (the tickets' fields now), and a range with no rating.
    by_a2 = m.satisfaction(Filters(h.DAY1, h.DAY2, agent=h.A2))
    assert (by_a2["ratings"], by_a2["average"], by_a2["satisfied_pct"]) == (1, 3.0, 0.0)
    empty = m.satisfaction(Filters(h.DAY3, h.DAY3))
    assert (empty["ratings"], empty["average"], empty["satisfied_pct"]) == (0, None, None)
    assert (empty["by_agent"], empty["by_team"]) == ([], [])
    # Delivered again, and rebuilt: the same numbers.
    with store.batch() as batch:
        batch.apply(h.envelopes_with_ratings())
        assert batch.applied == 0
    assert m.satisfaction(RANGE) == h.EXPECTED_SATISFACTION
    source = ListSource(h.envelopes_with_ratings())
    rebuild(source, store, store.shadow, store.swap_in, batch_size=3)
    assert m.satisfaction(RANGE) == h.EXPECTED_SATISFACTION
    # Every rating is a fact (analysts see the history); the ticket holds the latest.
    assert adb.query(
        "SELECT toString(ticket_id), version, rating FROM analytics_events FINAL "
        "WHERE event_type = 'SatisfactionRated' ORDER BY position"
    ) == [(str(h.T2), 7, 3), (str(h.T1), 10, 2), (str(h.T1), 11, 4)]


def test_a_rating_changed_after_the_range_moves_the_ticket_out_of_it(adb):
    store = ClickHouseProjectionStore(adb, calendar=calendar)
    ProjectionRunner(ListSource(h.envelopes_with_ratings(later=True)), store).catch_up()
    m = Metrics(adb)
    in_range = m.satisfaction(RANGE)
    assert (in_range["ratings"], in_range["average"]) == (1, 3.0)
    later = m.satisfaction(Filters(h.DAY3, h.DAY3))
    assert (later["ratings"], later["average"], later["satisfied_pct"]) == (1, 5.0, 100.0)


def test_tables_from_the_release_before_get_the_rating_columns(adb):
    """analytics_tickets made before the ratings: the store adds rating and rated_at, and old
    rows read as unrated."""
    built(adb)
    for table, column in (("analytics_tickets", "rated_at"), ("analytics_tickets", "rating"),
                          ("analytics_events", "rating")):  # fmt: skip
        adb.command(f"ALTER TABLE {table} DROP COLUMN {column}")
    store = ClickHouseProjectionStore(adb, calendar=calendar)
    assert Metrics(adb).satisfaction(RANGE)["ratings"] == 0
    ratings = h.envelopes_with_ratings()[len(h.events()) :]
    with store.batch() as batch:
        batch.apply(ratings)
    assert Metrics(adb).satisfaction(RANGE) == h.EXPECTED_SATISFACTION


# ---------------------------------------------------------------------------- sums (ADR 0058)
UNNARROWED = (
    RANGE,
    Filters(h.DAY2, h.DAY3),
    Filters(h.DAY1, h.DAY3, tz="Asia/Tokyo"),
    Filters(h.DAY1, h.DAY2, tz="Asia/Kathmandu"),  # +05:45: days of quarter hours
    Filters(h.DAY1, h.DAY3, tz="America/New_York"),
)


def answers(adb: AnalyticsDatabase, *, sums: bool = True) -> list[dict[str, Any]]:
    """Every metric over several ranges and time zones, unnarrowed (what the sums serve),
    with the business-time durations and the KPI cards."""
    out = []
    for f in UNNARROWED:
        m = Metrics(adb, sums=sums)
        out.append(
            {
                **everything(m, f),
                "first_response_business": m.first_response(f, "business"),
                "resolution_business": m.resolution(f, "business"),
                "summary": m.summary(f),
            }
        )
    return out


def summed(adb: AnalyticsDatabase) -> dict[str, list[Any]]:
    from infra.clickhouse.schema import (
        AGENT_DAY_SUMS,
        AGENT_SUMS,
        COUNT_SUMS,
        STATUS_DAY_SUMS,
        STATUS_SUMS,
        latest_sums,
    )

    return {
        "counts": adb.query(
            f"SELECT kind, sum(n) FROM ({latest_sums(COUNT_SUMS, '1')}) GROUP BY kind ORDER BY kind"
        ),
        "moves": adb.query(
            f"SELECT delta, sum(n) FROM ({latest_sums(STATUS_SUMS, '1')}) "
            "GROUP BY delta ORDER BY delta"
        ),
        "agents": adb.query(
            f"SELECT kind, who, sum(n) FROM ({latest_sums(AGENT_SUMS, '1')}) "
            "GROUP BY kind, who ORDER BY kind, who"
        ),
        "day_moves": adb.query(
            f"SELECT delta, sum(n) FROM ({latest_sums(STATUS_DAY_SUMS, '1')}) "
            "GROUP BY delta ORDER BY delta"
        ),
        "agent_days": adb.query(
            f"SELECT kind, who, sum(n) FROM ({latest_sums(AGENT_DAY_SUMS, '1')}) "
            "GROUP BY kind, who ORDER BY kind, who"
        ),
    }


@pytest.mark.parametrize("batch_size", [1, 3, 100])
def test_the_day_sums_are_each_days_quarter_hour_sums(adb, batch_size):
    """Open now and the throughput's whole days read sums per UTC day (ADR 0062): each
    day's rows equal the sums of its quarter hours' rows, whatever part of a day each batch
    touched (a batch counts its days' sets again whole)."""
    from infra.clickhouse.schema import (
        AGENT_DAY_SUMS,
        AGENT_SUMS,
        STATUS_DAY_SUMS,
        STATUS_SUMS,
        SUMS,
        latest_sums,
    )

    built(adb, batch_size=batch_size)
    for day_table, quarter_table in ((STATUS_DAY_SUMS, STATUS_SUMS), (AGENT_DAY_SUMS, AGENT_SUMS)):
        key = ", ".join(column for column, _ in SUMS[day_table].key)
        per_day = f"toString(toDate(bucket, 'UTC')) AS day, {key}"
        days, quarters = (
            adb.query(
                f"SELECT {per_day}, sum(n) FROM ({latest_sums(table, '1')}) "
                f"GROUP BY day, {key} ORDER BY day, {key}"
            )
            for table in (day_table, quarter_table)
        )
        assert len({d for d, *_ in days}) == 2  # the history's two days, rows of each
        assert days == quarters, day_table
        assert adb.query(  # a day's first second each
            f"SELECT count() FROM {day_table} WHERE toUInt32(bucket) % 86400 != 0"
        ) == [(0,)]
    assert Metrics(adb).open_now(RANGE) == Metrics(adb, sums=False).open_now(RANGE)
    for f in UNNARROWED:  # whole UTC days and, in other zones, edges of quarter hours
        assert Metrics(adb).throughput(f) == Metrics(adb, sums=False).throughput(f), f


def test_the_sums_answer_what_the_sets_answer(adb):
    """Unnarrowed event counts and status moves read the sums; the sets (``sums=False``)
    give the same answers on every range and time zone, also after every fact's sets and
    sums were written once more."""
    from infra.clickhouse.schema import COUNT_TABLES, count_statements, sum_statements

    built(adb, batch_size=3)
    assert Metrics(adb)._summed(RANGE)
    assert not Metrics(adb, sums=False)._summed(RANGE)
    assert not Metrics(adb)._summed(Filters(h.DAY1, h.DAY2, priority=("high",)))
    assert everything(Metrics(adb), RANGE) == h.EXPECTED
    whole = (datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
    for statement in count_statements("", *whole, 0, 10**9) + sum_statements(
        "", COUNT_TABLES, *whole
    ):
        adb.command(statement)  # a retry of everything: each fact still once
    changes = adb.query(
        "SELECT count() FROM analytics_events FINAL WHERE event_type = 'StatusChanged'"
    )[0][0]
    assert summed(adb) == {
        "counts": KIND_TOTALS,
        "moves": [(-1, changes), (1, changes + 4)],
        "agents": AGENT_TOTALS,
        "day_moves": [(-1, changes), (1, changes + 4)],
        "agent_days": AGENT_TOTALS,
    }
    assert answers(adb) == answers(adb, sums=False)


def test_a_crash_between_the_sets_and_the_sums_is_repaired_by_the_retry(adb, monkeypatch):
    """The sets written, then the process dies before the sums: the position did not move,
    the retry adds nothing to the sets and counts their quarter hours again."""
    store = ClickHouseProjectionStore(adb)
    runner = ProjectionRunner(ListSource(h.envelopes()), store, batch_size=100)
    crash_at_the_insert_into(adb, monkeypatch, runner, "analytics_count_sums")
    assert store.position() == 0
    assert adb.query("SELECT count() FROM analytics_count_sums") == [(0,)]
    ProjectionRunner(ListSource(h.envelopes()), ClickHouseProjectionStore(adb)).catch_up()
    assert Metrics(adb)._summed(RANGE)
    assert everything(Metrics(adb), RANGE) == h.EXPECTED


def test_the_sums_are_read_once_a_store_has_summed_the_sets_there_before_them(adb):
    """A release before the sums left sets; the web process's reader may make the (empty)
    sum tables before the projector starts. Until a store has summed every set and said
    so, the dashboard reads the sets; then the sums, with the same answers."""
    from infra.clickhouse.schema import SUMS_READY, create_statements

    built(adb)
    positions = [
        (name, position, datetime.now(UTC))
        for name, position in adb.query(
            f"SELECT name, position FROM analytics_position WHERE name != '{SUMS_READY}'"
        )
    ]
    for table in ("analytics_count_sums", "analytics_status_sums", "analytics_position"):
        adb.command(f"DROP TABLE {table}")
    for statement in create_statements():  # what connect.reader does
        adb.command(statement)
    adb.insert("analytics_position", ("name", "position", "written_at"), positions)
    assert not Metrics(adb)._summed(RANGE)
    assert everything(Metrics(adb), RANGE) == h.EXPECTED  # from the sets
    ClickHouseProjectionStore(adb)  # the projector starts: sums every set, then says so
    assert Metrics(adb)._summed(RANGE)
    assert everything(Metrics(adb), RANGE) == h.EXPECTED
    assert summed(adb)["counts"] == KIND_TOTALS


def test_the_kpi_cards_equal_the_metrics_they_summarise(adb):
    """The summary reads the ticket cards in one pass over the current states; each card is
    what its own metric answers, on every range and zone, narrowed or not."""
    built(adb)
    m = Metrics(adb)
    for f in (
        RANGE,
        Filters(h.DAY2, h.DAY3),
        Filters(h.DAY1, h.DAY3, tz="Asia/Tokyo"),
        Filters(h.DAY1, h.DAY2, priority=("high",)),
        Filters(h.DAY1, h.DAY3, tag="login"),
        Filters(date(2020, 1, 1), date(2020, 1, 2)),  # nothing in range
    ):
        cards, totals = m.summary(f), m.totals(f)
        resolution, first, sla = m.resolution(f), m.first_response(f), m.sla(f)
        assert cards == {
            "open": m.open_now(f)["open"],
            "created": totals["created"],
            "resolved": totals["resolved"],
            "resolution_median_seconds": resolution["median"],
            "resolution_average_seconds": resolution["average"],
            "first_response_median_seconds": first["median"],
            "sla_breaches": totals["sla_breaches"],
            "sla_compliance_pct": sla["compliance_pct"],
            "reopen_rate_pct": m.reopen_rate(f)["reopen_rate_pct"],
        }, f
    assert m.summary(RANGE)["resolution_median_seconds"] is not None


def unmerged(adb: AnalyticsDatabase, envelopes: Sequence[Envelope]) -> Metrics:
    """``envelopes`` applied one per batch with the ticket states' merges stopped: every
    version of every ticket stays a row of its own, for ``FINAL`` to choose from at read."""
    store = ClickHouseProjectionStore(adb, calendar=calendar)
    adb.command("SYSTEM STOP MERGES analytics_tickets")
    ProjectionRunner(ListSource(envelopes), store, batch_size=1).catch_up()
    [(rows, tickets)] = adb.query(
        "SELECT count(), uniqExact(ticket_id) FROM analytics_tickets"  # no FINAL: every version
    )
    assert rows > 2 * tickets
    return Metrics(adb)


def test_reads_narrowed_before_final_still_see_each_tickets_latest_version(adb):
    """Some reads of the ticket states narrow before ``FINAL`` (``PREWHERE``, ADR 0059), by
    conditions a ticket's later versions keep; the rest narrows after it. With every version
    unmerged, the answers are still those of each ticket's latest version."""
    m = unmerged(adb, h.envelopes())
    assert everything(m, RANGE) == h.EXPECTED
    # T3 was urgent when opened and is high now; T2 and T4 are tagged "login" now.
    high, urgent = (Filters(h.DAY1, h.DAY2, priority=(p,)) for p in ("high", "urgent"))
    assert m.volume(high, "priority") == [{"priority": "high", "tickets": 2}]
    assert m.volume(urgent, "priority") == []
    assert m.open_now(Filters(h.DAY1, h.DAY2, tag="login"))["open"] == 1
    assert m.first_response(urgent)["count"] == m.resolution(urgent)["count"] == 0
    assert m.sla(urgent)["tickets"] == 0
    # T1, answered and resolved by A1, handed to A2 afterwards: A2's now, in every reading.
    by_a1, by_a2 = (Filters(h.DAY1, h.DAY2, agent=a) for a in (h.A1, h.A2))
    assert [m.first_response(f)["count"] for f in (by_a1, by_a2)] == [2, 1]  # T1, T4; T2
    handed = Envelope(len(h.envelopes()) + 1, h._assign(h.T1, 10, h._at(h.DAY2, 12), h.A2))
    m = unmerged(adb, [*h.envelopes(), handed])
    assert [m.first_response(f)["count"] for f in (by_a1, by_a2)] == [1, 2]  # T4; T2, T1
    assert [m.resolution(f)["count"] for f in (by_a1, by_a2)] == [0, 2]  # T2, T1
    assert [m.sla(f)["tickets"] for f in (by_a1, by_a2)] == [1, 2]  # T4; T1, T2
    for f in (RANGE, high, urgent, by_a1, by_a2, Filters(h.DAY1, h.DAY3, tag="login")):
        cards, first, resolution = m.summary(f), m.first_response(f), m.resolution(f)
        assert cards["first_response_median_seconds"] == first["median"], f
        assert cards["resolution_median_seconds"] == resolution["median"], f
        assert cards["sla_compliance_pct"] == m.sla(f)["compliance_pct"], f


def test_a_rating_given_again_is_read_as_the_latest_with_every_version_unmerged(adb):
    """When a rating was given narrows after ``FINAL`` (a rating given again moves it): the
    ticket rated in the range and again after it counts only after it."""
    m = unmerged(adb, h.envelopes_with_ratings(later=True))
    in_range = m.satisfaction(RANGE)
    assert (in_range["ratings"], in_range["average"]) == (1, 3.0)
    later = m.satisfaction(Filters(h.DAY3, h.DAY3))
    assert (later["ratings"], later["average"], later["satisfied_pct"]) == (1, 5.0, 100.0)


@pytest.mark.parametrize(
    ("marker", "added"),
    [
        ("analytics.sums", ("analytics_agent_sums",)),  # before the agent sums
        ("analytics.sums.2", ("analytics_status_day_sums", "analytics_agent_day_sums")),
        ("analytics.sums.3", ("analytics_agent_day_sums",)),  # before the agent day sums
    ],
)
def test_sums_added_by_a_release_are_filled_before_they_are_read(adb, marker, added):
    """A release before a sum table left its marker beside the other sums: the new sum
    table is empty, so the dashboard reads the sets until the projector has summed them
    all again under the new marker; then the sums, alike."""
    from infra.clickhouse.schema import POSITION, SUMS_READY

    built(adb)
    whole = summed(adb)
    positions = adb.query(f"SELECT name, position FROM {POSITION} WHERE name != '{SUMS_READY}'")
    adb.command(f"TRUNCATE TABLE {POSITION}")
    for table in added:
        adb.command(f"TRUNCATE TABLE {table}")
    adb.insert(
        POSITION,
        ("name", "position", "written_at"),
        [(n, p, datetime.now(UTC)) for n, p in [*positions, (marker, 0)]],
    )
    assert not Metrics(adb)._summed(RANGE)
    assert everything(Metrics(adb), RANGE) == h.EXPECTED  # from the sets and the states
    ClickHouseProjectionStore(adb)  # the upgraded projector starts
    assert Metrics(adb)._summed(RANGE)
    assert summed(adb) == whole
    assert summed(adb)["agents"] == AGENT_TOTALS
    assert everything(Metrics(adb), RANGE) == h.EXPECTED


# ---------------------------------------------------------------------------- ticket sums
@pytest.mark.parametrize("batch_size", [1, 3, 100])
def test_the_ticket_sums_answer_what_the_ticket_states_answer(adb, batch_size):
    """Unnarrowed durations, compliance and the KPI cards read the ticket sums (ADR 0063);
    the ticket states (``sums=False``) give the same answers on every range and zone,
    whatever part of a ticket's life each batch held, and after a delivery again."""
    store = built(adb, batch_size=batch_size)
    assert Metrics(adb)._ticket_summed(RANGE)
    assert not Metrics(adb, sums=False)._ticket_summed(RANGE)
    assert not Metrics(adb)._ticket_summed(Filters(h.DAY1, h.DAY2, tag="login"))
    assert answers(adb)[0]["first_response"] == h.EXPECTED["first_response"]
    assert answers(adb) == answers(adb, sums=False)
    rows = adb.query(TICKET_SUMS_ROWS)
    with store.batch() as batch:  # delivered again: nothing applied, the same rows counted
        batch.apply(h.envelopes())
    assert adb.query(TICKET_SUMS_ROWS) == rows
    opened = sum(n for _, measure, n, _ in rows if measure == "opened")
    assert opened == 4  # the history's tickets, each in the quarter hour it opened in


def test_a_crash_between_the_states_and_the_ticket_sums_is_repaired_by_the_retry(adb, monkeypatch):
    """The states written, then the process dies before the ticket sums: the retry applies
    nothing (the states hold every event) and still counts the quarter hours its events set
    a moment in."""
    store = ClickHouseProjectionStore(adb, calendar=calendar)
    runner = ProjectionRunner(ListSource(h.envelopes()), store, batch_size=100)
    crash_at_the_insert_into(adb, monkeypatch, runner, "analytics_ticket_sums")
    assert store.position() == 0
    assert adb.query("SELECT count() FROM analytics_ticket_sums") == [(0,)]
    retry = ClickHouseProjectionStore(adb, calendar=calendar)
    with retry.batch() as batch:
        batch.apply(h.envelopes())
        assert batch.applied == 0
    assert everything(Metrics(adb), RANGE) == h.EXPECTED
    assert answers(adb) == answers(adb, sums=False)


def test_the_ticket_sums_are_read_once_a_store_has_filled_them_from_the_states(adb):
    """Tables of a release before the ticket sums: the new table is empty and unmarked, so
    the dashboard reads the states until the projector has counted every quarter hour
    from them and said so; then the sums, alike."""
    from infra.clickhouse.schema import POSITION, TICKET_SUMS, TICKET_SUMS_READY

    built(adb)
    whole = adb.query(TICKET_SUMS_ROWS)
    adb.command(f"TRUNCATE TABLE {TICKET_SUMS}")
    adb.command(f"ALTER TABLE {POSITION} DELETE WHERE name = '{TICKET_SUMS_READY}'")
    wait_for(lambda: not Metrics(adb)._ticket_summed(RANGE))
    assert answers(adb)[0] == answers(adb, sums=False)[0]  # from the states
    assert everything(Metrics(adb), RANGE) == h.EXPECTED
    ClickHouseProjectionStore(adb, calendar=calendar)  # the upgraded projector starts
    assert Metrics(adb)._ticket_summed(RANGE)
    assert adb.query(TICKET_SUMS_ROWS) == whole
    assert answers(adb) == answers(adb, sums=False)


def wait_for(condition: Any, timeout: float = 10.0) -> None:
    """Until ``condition()`` (an ALTER ... DELETE is a mutation, done in the background)."""
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_the_ticket_sums_with_every_version_unmerged(adb):
    """Every ticket state and every ticket sum row written once per event, none merged:
    ``FINAL`` reads the latest of each, alike from the sums and the states."""
    adb_sums = "analytics_ticket_sums"
    ClickHouseProjectionStore(adb, calendar=calendar)
    adb.command(f"SYSTEM STOP MERGES {adb_sums}")
    unmerged(adb, h.envelopes())
    [(rows, quarters)] = adb.query(f"SELECT count(), uniqExact(bucket, measure) FROM {adb_sums}")
    assert rows > quarters
    assert answers(adb) == answers(adb, sums=False)
    assert everything(Metrics(adb), RANGE) == h.EXPECTED


def test_medians_and_p90_are_exact_and_interpolated_over_many_values(adb):
    """The statistics rule (``metrics._statistics``) on 10,001 values, beyond the 8,192 a
    ClickHouse ``quantiles`` keeps exactly: the median and p90 interpolate between the two
    values nearest their rank, as PostgreSQL's percentile_cont."""
    import random

    from infra.clickhouse.metrics import _statistics

    rng = random.Random(16)
    values = sorted(rng.randrange(0, 30 * 86400) for _ in range(10_001))
    values_sql = "[" + ", ".join(f"toInt64({v})" for v in values[:3]) + ", "
    values_sql += ", ".join(str(v) for v in values[3:]) + "]"

    def cont(q: float) -> float:
        rank = q * (len(values) - 1)
        low = int(rank)
        upper = values[min(low + 1, len(values) - 1)]
        return values[low] * (1 - (rank - low)) + upper * (rank - low)

    [(n, levels, average)] = adb.query(
        f"SELECT {', '.join(_statistics('a'))} FROM (SELECT arraySort({values_sql}) AS a)"
    )
    assert n == len(values)
    assert list(levels) == pytest.approx([cont(0.5), cont(0.9)], rel=1e-12)
    assert average == pytest.approx(sum(values) / len(values), rel=1e-12)
    [(n, levels, average)] = adb.query(
        f"SELECT {', '.join(_statistics('a'))} FROM (SELECT arraySort([toInt64(1)]) AS a)"
    )
    assert (n, list(levels), average) == (1, [1.0, 1.0], 1.0)
    [(n, _, average)] = adb.query(
        f"SELECT {', '.join(_statistics('a'))} FROM (SELECT arraySort(emptyArrayInt64()) AS a)"
    )
    assert (n, average) == (0, 0)


# ---------------------------------------------------------------------------- move sums
@pytest.mark.parametrize("batch_size", [1, 3, 100])
def test_the_backlog_and_tag_volume_sums_answer_what_the_ticket_states_answer(adb, batch_size):
    """Unnarrowed, the backlog and the volume by tag read the move tables' sums (ADR 0064);
    the ticket states (``sums=False``) answer the same on every range and zone, after tags
    were given and taken, a ticket handed to another agent, one unassigned (and again after
    a delivery again)."""
    envelopes = _changed_fields()
    store = ClickHouseProjectionStore(adb, calendar=calendar)
    ProjectionRunner(ListSource(envelopes), store, batch_size=batch_size).catch_up()
    day3 = date(2026, 3, 4)
    ranges = [*UNNARROWED, Filters(h.DAY1, day3), Filters(h.DAY2, day3, "Asia/Kathmandu")]
    moves, states = Metrics(adb), Metrics(adb, sums=False)
    for again in (False, True):
        if again:
            with ClickHouseProjectionStore(adb).batch() as batch:
                batch.apply(envelopes)
                assert batch.applied == 0
        for f in ranges:
            assert moves._moved(f)
            assert not states._moved(f)
            assert moves.backlog(f) == states.backlog(f), f
            assert moves.volume(f, "tag") == states.volume(f, "tag"), f
    assert not moves._moved(Filters(h.DAY1, day3, tag="login"))
    whole = Filters(h.DAY1, day3)
    assert {r["tag"]: r["tickets"] for r in moves.volume(whole, "tag")}.get("billing") == 1
    assert {r["tag"]: r["tickets"] for r in moves.volume(whole, "tag")}.get("refund") == 1
    assert sum(r["open"] for r in moves.backlog(whole)) == moves.open_now(whole)["open"]


def test_move_tables_beside_facts_of_a_release_before_wait_for_a_rebuild(adb):
    """Facts written before the move tables' columns cannot fill them: the tables are made
    empty and unmarked, the dashboard reads the ticket states; a rebuild (a store that starts
    on tables without facts) fills and marks them, with the same answers."""
    from infra.clickhouse.schema import MOVES_READY, POSITION

    live = built(adb)
    expected = everything(Metrics(adb), RANGE)
    for table in ("analytics_backlog_counts", "analytics_tag_volume_counts"):
        adb.command(f"DROP TABLE {table}")
    adb.command(f"ALTER TABLE {POSITION} DELETE WHERE name = '{MOVES_READY}'")
    wait_for(lambda: not Metrics(adb)._moved(RANGE))
    ClickHouseProjectionStore(adb)  # the upgraded projector: no backfill from old facts
    assert adb.query("SELECT count() FROM analytics_backlog_counts") == [(0,)]
    assert not Metrics(adb)._moved(RANGE)
    assert everything(Metrics(adb), RANGE) == expected == h.EXPECTED  # from the states
    source = ListSource(h.envelopes())
    rebuild(source, live, live.shadow, live.swap_in, batch_size=7)
    assert Metrics(adb)._moved(RANGE)
    assert everything(Metrics(adb), RANGE) == h.EXPECTED
