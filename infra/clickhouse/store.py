"""The analytics projection in ClickHouse: the same store for the log and for Kafka.

ClickHouse has no transactions, so exactly-once rests on idempotence instead of a lock:

1. a batch folds each ticket's events in version order, from the ticket's current state (a
   cache of this store, else read back from ``analytics_tickets``); events the state already
   holds are skipped, a missing one is an error (``EventGapError``);
2. it writes the facts, then the tickets' new states, then the position;
3. a crash anywhere in between leaves at worst facts or states that the next try writes again
   with the same keys: ``FINAL`` reads them once (ReplacingMergeTree), and the position, read
   as a maximum, never goes back.

So it is a ``ProjectionStore`` (the log, read after its position) and a
``StreamProjectionStore`` (Kafka: at least once, in order per ticket) at once.

One writer per database at a time: run one analytics projector (one log runner, or the
members of one Kafka consumer group, which own disjoint tickets). A rebuild fills copies of
the tables (suffix ``__rebuild``) from zero, then swaps them in by renaming all three at once;
stop the live analytics projector for the rebuild (as for a Kafka rebuild), or an event it
applies to the old tables just before the swap would be missing from the new ones.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from domain.sla import BusinessCalendar
from infra.clickhouse.ports import AnalyticsDatabase
from infra.clickhouse.schema import (
    ADDED_COLUMNS,
    BY_FIELD,
    BY_FIELD_COLUMNS,
    COUNT_TABLES,
    EVENT_COLUMNS,
    EVENTS,
    FIELDS_READY,
    MOVE_TABLES,
    MOVES_READY,
    NARROWING_FIELDS,
    OPENED,
    POSITION,
    QUARTER_HOUR,
    SUMS_READY,
    TABLES,
    TAG_EVENT_TYPES,
    TICKET_COLUMNS,
    TICKET_SUMS_READY,
    TICKETS,
    added_column_statements,
    count_statements,
    count_tables_for,
    create_statements,
    marked,
    sum_statements,
    ticket_sum_statements,
)
from infra.clickhouse.sql import in_list
from projections import analytics
from projections.analytics import EventGapError, Fact, TicketFacts
from projections.ports import Envelope

REBUILD_SUFFIX = "__rebuild"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
CACHE_MAX = 200_000  # tickets whose current state a store keeps in memory
_TIMES = frozenset(
    {
        "opened_at",
        "updated_at",
        "first_response_at",
        "first_resolved_at",
        "resolved_at",
        "closed_at",
        "rated_at",
    }
)


def _fact_row(fact: Fact) -> list[Any]:
    return [getattr(fact, column) for column in EVENT_COLUMNS]


def _ticket_row(ticket: TicketFacts) -> list[Any]:
    return [getattr(ticket, column) for column in TICKET_COLUMNS]


def _by_field_rows(ticket: TicketFacts, before: TicketFacts | None) -> list[list[Any]]:
    """``analytics_tickets_by_field``'s rows for ``ticket`` as of its version: one per value
    of each narrowing field it has now (present), and one per value it had at ``before``
    (its state the rows were last written for) and has no more (absent: ``FINAL`` then
    picks this row over the older one). No rows when nothing they hold changed since
    ``before`` (the rows there are still right): fewer versions for ``FINAL`` to merge."""
    rows: list[list[Any]] = []
    if before is not None and all(
        getattr(ticket, c) == getattr(before, c) for c in _BY_FIELD_CHANGES
    ):
        return rows  # nothing those rows hold changed (a message, a breach ...)
    for field, column in NARROWING_FIELDS:
        now = _values(ticket, column)
        gone = [v for v in _values(before, column) if v not in now] if before else []
        for value in now:
            rows.append([field, value, ticket.ticket_id, ticket.version, 1, ticket.priority,
                         ticket.agent_id, ticket.team, ticket.tags, ticket.move_at,
                         ticket.move_status, ticket.move_delta])  # fmt: skip
        for value in gone:
            rows.append([field, value, ticket.ticket_id, ticket.version, 0, ticket.priority,
                         ticket.agent_id, ticket.team, ticket.tags, (), (), ()])  # fmt: skip
    return rows


# What a ticket's rows in ``analytics_tickets_by_field`` hold besides its id and version.
_BY_FIELD_CHANGES = ("priority", "agent_id", "team", "tags", "move_at")


def _quarter(at: datetime) -> datetime:
    return datetime.fromtimestamp(int(at.timestamp()) // QUARTER_HOUR * QUARTER_HOUR, UTC)


def _moments(ticket: TicketFacts, envelopes: Sequence[Envelope]) -> list[tuple[str, datetime]]:
    """The ticket sums' (moment, quarter hour) that ``envelopes`` (some of ``ticket``'s
    events, applied now or before: a retry's) may have added ``ticket`` to, by its state
    after them: a moment set by one of them falls in one of their quarter hours; a breach
    counts in the opening's quarter hour."""
    quarters = {_quarter(e.event.timestamp) for e in envelopes}
    found = []
    for moment, at in (
        (OPENED, ticket.opened_at),
        ("first_response", ticket.first_response_at),
        ("resolution", ticket.first_resolved_at),
    ):
        if at is not None and _quarter(at) in quarters:
            found.append((moment, _quarter(at)))
    if any(analytics.is_breach(e) for e in envelopes):
        found.append((OPENED, _quarter(ticket.opened_at)))
    return found


def _values(ticket: TicketFacts, column: str) -> tuple[str, ...]:
    value = getattr(ticket, column)
    return tuple(value) if column == "tags" else (value,)


def _select_tickets(table: str, ids: Sequence[UUID]) -> str:
    columns = []
    for column in TICKET_COLUMNS:
        if column == "ticket_id":
            columns.append("toString(ticket_id)")
        elif column == "move_at":
            columns.append("arrayMap(x -> toUnixTimestamp(x), move_at)")
        elif column in _TIMES:
            columns.append(f"toUnixTimestamp({column})")
        else:
            columns.append(column)
    return (
        f"SELECT {', '.join(columns)} FROM {table} FINAL "
        f"WHERE ticket_id IN {in_list([str(i) for i in ids])}"
    )


def _ticket_from_row(row: Sequence[Any]) -> TicketFacts:
    values: dict[str, Any] = dict(zip(TICKET_COLUMNS, row, strict=True))
    values["ticket_id"] = UUID(values["ticket_id"])
    for column in _TIMES:
        if values[column] is not None:
            values[column] = datetime.fromtimestamp(int(values[column]), UTC)
    values["tags"] = tuple(values["tags"])
    values["move_at"] = tuple(datetime.fromtimestamp(int(t), UTC) for t in values["move_at"])
    values["move_status"] = tuple(values["move_status"])
    values["move_delta"] = tuple(int(d) for d in values["move_delta"])
    values["breached_first_response"] = bool(values["breached_first_response"])
    values["breached_resolution"] = bool(values["breached_resolution"])
    return TicketFacts(**values)


class AnalyticsBatch:
    """One batch: folds in memory, writes at ``commit``."""

    def __init__(self, store: ClickHouseProjectionStore, position: int) -> None:
        self.position = position
        self.applied = 0
        self._store = store
        self._facts: list[Fact] = []
        self._tickets: dict[UUID, TicketFacts] = {}
        # Each ticket's state before this batch (None: opened in it), for the rows of the
        # values it no longer has (``_by_field_rows``).
        self._before: dict[UUID, TicketFacts | None] = {}
        self._calendar: list[BusinessCalendar | None] = []  # read once, if needed
        # Each ticket's events in the batch, applied or already held (a retry's), for the
        # quarter hours of the ticket sums to count again (``_moments``).
        self._events: dict[UUID, list[Envelope]] = {}

    def calendar(self) -> BusinessCalendar | None:
        if not self._calendar:
            self._calendar.append(self._store.calendar())
        return self._calendar[0]

    def apply(self, envelopes: Sequence[Envelope]) -> None:
        if not envelopes:
            return
        self._store.load([e for e in envelopes if e.aggregate_id not in self._tickets])
        for envelope in envelopes:
            ticket_id = envelope.aggregate_id
            if analytics.is_ticket_event(envelope):
                self._events.setdefault(ticket_id, []).append(envelope)
            current = self._tickets.get(ticket_id) or self._store.cached(ticket_id)
            try:
                folded = analytics.fold(envelope, current, self.calendar)
            except EventGapError:
                # Another writer (a rebuild's swap, another member of the group) may be ahead
                # of this store's memory: read the ticket back once, then insist.
                current = self._store.reload(ticket_id)
                folded = analytics.fold(envelope, current, self.calendar)
            if folded is not None:
                fact, after = folded
                self._before.setdefault(ticket_id, current)
                self._facts.append(fact)
                self._tickets[ticket_id] = after
                self.applied += 1
            elif not analytics.is_ticket_event(envelope):
                self.applied += 1 if envelope.position > self.position else 0
            self.position = max(self.position, envelope.position)

    def moments(self) -> dict[str, set[datetime]]:
        """The quarter hours, per moment, whose ticket sums this batch's events may change:
        found from the events and the tickets' states, not from the facts applied, so a
        retry after a crash before the sums (the states written: nothing is applied again)
        still counts them."""
        touched: dict[str, set[datetime]] = {}
        for ticket_id, envelopes in self._events.items():
            ticket = self._tickets.get(ticket_id) or self._store.cached(ticket_id)
            if ticket is not None:
                for moment, quarter in _moments(ticket, envelopes):
                    touched.setdefault(moment, set()).add(quarter)
        return touched

    def commit(self, before: int) -> None:
        tickets = list(self._tickets.values())
        befores = [self._before.get(t.ticket_id) for t in tickets]
        self._store.write(self._facts, tickets, before, self.position, befores, self.moments())


class ClickHouseProjectionStore:
    """The analytics projector's tables in one ClickHouse database (``suffix``: a copy)."""

    name = analytics.NAME

    def __init__(
        self,
        db: AnalyticsDatabase,
        *,
        suffix: str = "",
        calendar: Callable[[], BusinessCalendar | None] = lambda: None,
    ) -> None:
        self.db = db
        self.suffix = suffix
        # The SLA calendar for business-time durations (read at most once per batch).
        self.calendar = calendar
        self.tracking_name = analytics.NAME + suffix
        self._cache: dict[UUID, TicketFacts] = {}
        missing = self._missing_count_tables()
        for statement in create_statements(suffix):
            db.command(statement)
        self._add_columns()
        # The move tables cannot be filled from facts of a release before their columns.
        missing = tuple(t for t in missing if t not in MOVE_TABLES)
        if missing:
            self._backfill_counts(missing)
        self._fill_sums()
        self._fill_ticket_sums()
        self._mark_fields()

    def _missing_count_tables(self) -> tuple[str, ...]:
        """The count tables (unsuffixed names) not made yet."""
        rows = self.db.query(
            "SELECT name FROM system.tables WHERE database = currentDatabase() "
            f"AND name IN {in_list([self.table(t) for t in COUNT_TABLES])}"
        )
        present = {str(r[0]) for r in rows}
        return tuple(t for t in COUNT_TABLES if self.table(t) not in present)

    def _backfill_counts(self, tables: tuple[str, ...]) -> None:
        """Count tables made beside facts of an older release: count every fact once
        (idempotent, like every count statement)."""
        rows = self.db.query(
            "SELECT count(), max(position), toUnixTimestamp(max(occurred_at)) "
            f"FROM {self.table(EVENTS)}"
        )
        if not rows or not int(rows[0][0]):
            return
        last = datetime.fromtimestamp(int(rows[0][2]), UTC)
        for statement in count_statements(self.suffix, EPOCH, last, 0, int(rows[0][1]), tables):
            self.db.command(statement)

    def marked(self, marker: str) -> bool:
        """Whether this store's tables hold the row ``marker`` (``schema.marked``)."""
        return marked(self.db, marker, self.suffix)

    def _mark(self, marker: str) -> None:
        """Write the row ``marker`` (at position 0: the projection's position is unchanged)."""
        self.db.insert(
            self.table(POSITION),
            ("name", "position", "written_at"),
            [(marker, 0, datetime.now(UTC))],
        )

    def _fill_sums(self) -> None:
        """Sum every set once, if the sums were not known to hold them all (new tables, or
        made by a reader before this store): then say so, and the dashboard reads them."""
        if self.marked(SUMS_READY):
            return
        for statement in sum_statements(self.suffix, COUNT_TABLES):
            self.db.command(statement)
        self._mark(SUMS_READY)

    def _fill_ticket_sums(self) -> None:
        """Count every quarter hour of the ticket sums from the ticket states once, if they
        were not known to hold them all (a new table beside older states); then say so."""
        if self.marked(TICKET_SUMS_READY):
            return
        for statement in ticket_sum_statements(self.suffix):
            self.db.command(statement)
        self._mark(TICKET_SUMS_READY)

    def _mark_fields(self) -> None:
        """Say that ``analytics_tickets_by_field`` is whole (ADR 0060), and the move tables
        with their sums (ADR 0064), when this store starts on tables without facts: every
        ticket it writes, it folds from the first event, whole status history included, and
        every fact has the columns the moves are made of. Tables with facts from a release
        before stay unmarked (the dashboard reads the per-ticket sets and the ticket states
        instead) until ``projector rebuild analytics``."""
        markers = [m for m in (FIELDS_READY, MOVES_READY) if not self.marked(m)]
        if not markers or int(self.db.query(f"SELECT count() FROM {self.table(EVENTS)}")[0][0]):
            return
        for marker in markers:
            self._mark(marker)

    def _add_columns(self) -> None:
        tables = sorted({table + self.suffix for table, _, _ in ADDED_COLUMNS})
        existing: dict[str, set[str]] = {}
        for table, column in self.db.query(
            "SELECT table, name FROM system.columns WHERE database = currentDatabase() "
            f"AND table IN {in_list(tables)}"
        ):
            existing.setdefault(str(table), set()).add(str(column))
        for statement in added_column_statements(existing, self.suffix):
            self.db.command(statement)

    def table(self, name: str) -> str:
        return name + self.suffix

    # ------------------------------------------------------------------ ProjectionStore
    def position(self) -> int:
        rows = self.db.query(f"SELECT max(position) FROM {self.table(POSITION)}")
        return int(rows[0][0] or 0) if rows else 0

    @contextmanager
    def batch(self) -> Iterator[AnalyticsBatch]:
        before = self.position()
        batch = AnalyticsBatch(self, before)
        try:
            yield batch
            batch.commit(before)
        except BaseException:
            self._cache.clear()  # memory may be ahead of the tables now
            raise

    # ------------------------------------------------------------------ the batch's helpers
    def cached(self, ticket_id: UUID) -> TicketFacts | None:
        return self._cache.get(ticket_id)

    def load(self, envelopes: Sequence[Envelope]) -> None:
        """Read the current state of the tickets these events change that memory lacks."""
        wanted = {
            e.aggregate_id
            for e in envelopes
            if analytics.is_ticket_event(e) and e.version > 1 and e.aggregate_id not in self._cache
        }
        if wanted:
            self._read(sorted(wanted))

    def reload(self, ticket_id: UUID) -> TicketFacts | None:
        self._cache.pop(ticket_id, None)
        self._read([ticket_id])
        return self._cache.get(ticket_id)

    def _read(self, ids: Sequence[UUID]) -> None:
        for start in range(0, len(ids), 1000):
            chunk = ids[start : start + 1000]
            for row in self.db.query(_select_tickets(self.table(TICKETS), chunk)):
                ticket = _ticket_from_row(row)
                self._cache[ticket.ticket_id] = ticket

    def write(
        self,
        facts: list[Fact],
        tickets: list[TicketFacts],
        before: int,
        position: int,
        befores: Sequence[TicketFacts | None],
        moments: dict[str, set[datetime]] | None = None,
    ) -> None:
        """Write a batch: facts, their counts and sums, the tickets by field, the tickets'
        states, the ticket sums of ``moments`` (``AnalyticsBatch.moments``), the position (in
        that order: a retry folds again from the states, so everything before them is
        written again with the same keys, and the ticket sums, counted from the states,
        again from the retry's events). ``befores``: each ticket's state before the batch
        (None: opened in it)."""
        self.db.insert(self.table(EVENTS), EVENT_COLUMNS, [_fact_row(f) for f in facts])
        if facts:  # the dashboard's counts of these facts (a set each: a retry adds nothing)
            since = min(f.occurred_at for f in facts)
            until = max(f.occurred_at for f in facts)
            # Only the tables these facts can add to: each statement costs a read of the
            # range's facts (a third of a batch's work), found or not.
            tables = count_tables_for({f.event_type for f in facts})
            for statement in count_statements(
                self.suffix,
                since,
                until,
                min(f.position for f in facts),
                max(f.position for f in facts),
                tables,
            ):
                self.db.command(statement)
            # Then the sums of the quarter hours these sets grew in (ADR 0058).
            opened = {f.opened_at for f in facts if f.event_type in TAG_EVENT_TYPES}
            for statement in sum_statements(self.suffix, tables, since, until, opened):
                self.db.command(statement)
        by_field = []
        for ticket, earlier in zip(tickets, befores, strict=True):
            by_field += _by_field_rows(ticket, earlier)
        self.db.insert(self.table(BY_FIELD), BY_FIELD_COLUMNS, by_field)
        self.db.insert(self.table(TICKETS), TICKET_COLUMNS, [_ticket_row(t) for t in tickets])
        if moments:
            for statement in ticket_sum_statements(self.suffix, moments):
                self.db.command(statement)
        if position > before:
            self.db.insert(
                self.table(POSITION),
                ("name", "position", "written_at"),
                [(analytics.NAME, position, datetime.now(UTC))],
            )
        if len(self._cache) + len(tickets) > CACHE_MAX:
            self._cache.clear()
        for ticket in tickets:
            self._cache[ticket.ticket_id] = ticket

    # ------------------------------------------------------------------ rebuild
    def shadow(self) -> ClickHouseProjectionStore:
        """Empty copies of the tables, to rebuild into from zero."""
        for table in TABLES:
            self.db.command(f"DROP TABLE IF EXISTS {table}{REBUILD_SUFFIX}")
        return ClickHouseProjectionStore(self.db, suffix=REBUILD_SUFFIX, calendar=self.calendar)

    def swap_in(self, shadow: ClickHouseProjectionStore) -> int:
        """Make the rebuilt copies live (one RENAME of them all); returns their position."""
        position = shadow.position()
        for table in TABLES:
            self.db.command(f"DROP TABLE IF EXISTS {table}__old")
        renames = [f"{t} TO {t}__old, {t}{shadow.suffix} TO {t}" for t in TABLES]
        self.db.command("RENAME TABLE " + ", ".join(renames))
        for table in TABLES:
            self.db.command(f"DROP TABLE IF EXISTS {table}__old")
        self._cache.clear()
        return position

    def clear(self) -> None:
        """Drop every row (tests)."""
        for table in TABLES:
            self.db.command(f"TRUNCATE TABLE {self.table(table)}")
        self._cache.clear()
