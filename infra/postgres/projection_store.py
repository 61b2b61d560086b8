"""Exactly-once projection into PostgreSQL: rows and position commit in one transaction.

A batch opens a transaction, locks the projector's row in ``projection_position`` (so a
second instance of the same projector waits, then sees the advanced position and applies
nothing twice), lets the projector change rows, writes them, advances the position, commits.

``VersionedProjectionStore`` is the same store for stream sources (Kafka): events come at
least once and in order per aggregate only, so a batch drops every event whose version is
at or below the last version of its aggregate this projector applied (``projection_applied``,
written in the same transaction), and refuses a gap. Its ``position`` is the contiguous
frontier: every event of the log at or below it is applied (partitions advance unevenly, so
the highest position applied says nothing about the lower ones). Each batch moves it by
walking the notification log from the old frontier to the first event not applied yet.

Rebuilds happen beside the live tables: the store is opened with ``suffix="__rebuild"`` on
copies made with ``CREATE TABLE ... (LIKE live INCLUDING ALL)``, caught up from zero, then
swapped in by renaming inside one transaction that holds the live position lock. Readers
keep reading the old tables until that commit.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, Protocol, TypeVar, cast

from django.db import connection, transaction
from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg import sql

from infra.postgres.feed import KAFKA, LOG
from projections.ports import Envelope

REBUILD_SUFFIX = "__rebuild"
S = TypeVar("S", bound="PostgresProjectionStore")
INDEX_SUFFIX = "__rb"
_INDEX_HEAD = re.compile(r"INDEX \S+ ON \S+")


def _indexes(cur: Any, table: str) -> list[tuple[str, str]]:
    """(name, definition without its name and table) of every index of ``table``."""
    cur.execute(
        "SELECT indexname, indexdef FROM pg_indexes "
        "WHERE schemaname = current_schema() AND tablename = %s ORDER BY indexname",
        [table],
    )
    return [(name, _INDEX_HEAD.sub("INDEX ON", definition)) for name, definition in cur.fetchall()]


def _name_copy_indexes_after_live(cur: Any, live: str, copy: str) -> None:
    """Give the copy's indexes the live names plus a suffix, so after the swap they can take
    the live names back (migrations refer to indexes by name)."""
    unpaired = _indexes(cur, live)
    for name, definition in _indexes(cur, copy):
        match = next((lv for lv in unpaired if lv[1] == definition), None)
        if match is None:
            continue
        unpaired.remove(match)
        cur.execute(
            sql.SQL("ALTER INDEX {} RENAME TO {}")
            .format(sql.Identifier(name), sql.Identifier(match[0] + INDEX_SUFFIX))
            .as_string(None)
        )


def _deferred_index_sql(cur: Any, live: str, copy: str, names: Sequence[str]) -> list[str]:
    """``CREATE INDEX`` statements for the indexes of ``live`` named in ``names`` that the
    copy lacks, named like the copy's other indexes (live name + suffix)."""
    cur.execute(
        "SELECT indexname, indexdef FROM pg_indexes "
        "WHERE schemaname = current_schema() AND tablename = %s ORDER BY indexname",
        [live],
    )
    live_defs = dict(cur.fetchall())
    have = {name for name, _ in _indexes(cur, copy)}
    statements = []
    for name in names:
        definition = live_defs.get(name)
        if definition is None or name + INDEX_SUFFIX in have:
            continue
        head = (
            sql.SQL("INDEX {} ON {}")
            .format(sql.Identifier(name + INDEX_SUFFIX), sql.Identifier(copy))
            .as_string(None)
        )
        match = _INDEX_HEAD.search(definition)
        if match is None:  # pragma: no cover - pg_indexes always names index and table
            raise LookupError(f"cannot read the definition of index {name}")
        statements.append(definition.replace(match[0], head, 1))
    return statements


def _restore_index_names(cur: Any, table: str) -> None:
    for name, _ in _indexes(cur, table):
        if name.endswith(INDEX_SUFFIX):
            cur.execute(
                sql.SQL("ALTER INDEX {} RENAME TO {}")
                .format(sql.Identifier(name), sql.Identifier(name[: -len(INDEX_SUFFIX)]))
                .as_string(None)
            )


INDEX_BUILDERS = 2  # deferred indexes built at once (one core each)


def _build_index(statement: str) -> None:
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SET LOCAL maintenance_work_mem = '256MB'")
        cur.execute(statement)


def _build_index_on_own_connection(statement: str) -> None:
    try:
        _build_index(statement)  # this thread's own connection (Django's are per thread)
    finally:
        connection.close()


class BatchState(Protocol):
    """A projector's view of its tables during one batch."""

    def preload(self, envelopes: Sequence[Envelope]) -> None: ...

    def flush(self) -> None: ...


Writer = Callable[[Any], None]  # writes rows through the cursor it is given


class BulkState(BatchState, Protocol):
    """A state that can load an empty copy of its tables in one long unit of work (a
    rebuild's catch-up, ``PostgresProjectionStore.bulk``): it lives across all the chunks,
    keeps the rows that may still change in memory until ``flush`` at the end (each written
    once, not once per batch), and hands out the rows that can no longer change."""

    complete: bool  # set by the store: the tables held nothing, memory knows every row

    def take_settled(self) -> Writer | None:
        """Rows no later event can change (a message), taken out of memory: a writer that
        inserts them (run on another thread, while the next chunk is applied), or None."""


StateFactory = Callable[[Any, str], BatchState]  # (cursor, table suffix) -> state
Handler = Callable[[Envelope, Any], None]


class PostgresBatch:
    def __init__(self, position: int, state: BatchState, handler: Handler) -> None:
        self.position = position
        self._state = state
        self._handler = handler
        self.applied = 0

    def apply(self, envelopes: Sequence[Envelope]) -> None:
        fresh = [e for e in envelopes if e.position > self.position]
        if not fresh:
            return
        self._state.preload(fresh)
        for envelope in fresh:
            self._handler(envelope, self._state)
        self._state.flush()
        self.position = fresh[-1].position
        self.applied += len(fresh)


class BulkBatch:
    """``PostgresProjectionStore.bulk``'s unit of work: many ``apply`` calls, one transaction.

    With a ``BulkState`` the state lives across the calls and the settled rows of each call
    are written on a writer thread while the next call is applied (Python and PostgreSQL
    work at the same time instead of waiting for each other); the rest is written at
    ``finish``. Otherwise each call is a batch of the store's own kind, as ``batch`` makes
    them, inside the one transaction.
    """

    def __init__(
        self,
        position: int,
        cursor: Any,
        state: BatchState | None,
        make_batch: Callable[[int, Any], PostgresBatch],
        handler: Handler,
    ) -> None:
        self.position = position
        self.applied = 0
        self._cur = cursor
        self._make_batch = make_batch
        self._handler = handler
        self._bulk: BulkState | None = None
        if hasattr(state, "take_settled"):
            self._bulk = cast(BulkState, state)
            self._bulk.complete = position == 0
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="bulk-writer")
        self._writing: Future[None] | None = None

    def apply(self, envelopes: Sequence[Envelope]) -> None:
        if self._bulk is None:
            batch = self._make_batch(self.position, self._cur)
            batch.apply(envelopes)
            self.position, self.applied = batch.position, self.applied + batch.applied
            return
        fresh = [e for e in envelopes if e.position > self.position]
        if not fresh:
            return
        if not self._bulk.complete:
            self._wait()  # preload reads rows back: the write in flight must be in the table
        self._bulk.preload(fresh)
        for envelope in fresh:
            self._handler(envelope, self._bulk)
        # One write at a time (they share the connection), and none in flight while the
        # state takes what is settled: that may write (and move) rows itself.
        self._wait()
        write = self._bulk.take_settled()
        if write is not None:
            self._writing = self._writer.submit(write, self._cur)
        self.position = fresh[-1].position
        self.applied += len(fresh)

    def _wait(self) -> None:
        writing, self._writing = self._writing, None
        if writing is not None:
            writing.result()  # a failed write fails the whole unit of work

    def abandon(self) -> None:
        writing, self._writing = self._writing, None
        if writing is not None:
            writing.exception()  # its error is not the one to report: it all rolls back
        self._writer.shutdown(wait=True)

    def finish(self) -> None:
        try:
            self._wait()
            if self._bulk is not None:
                self._bulk.flush()
        finally:
            self._writer.shutdown(wait=True)


class PostgresProjectionStore:
    # ``bulk`` may keep one ``BulkState`` across its batches (a versioned store may not: it
    # records each batch's applied versions).
    bulk_states = True
    # The source whose feeders keep these tables (infra/postgres/feed.py); a swap records it.
    feed = LOG

    def __init__(
        self,
        name: str,
        *,
        tables: Sequence[str],
        state_factory: StateFactory,
        handler: Handler,
        suffix: str = "",
        deferred_indexes: Sequence[str] = (),
    ) -> None:
        self.name = name
        self.tables = list(tables)
        # Indexes a rebuild copy is loaded without and gets just before its swap: building
        # one over the finished table costs a fraction of maintaining it row by row (the
        # search document's GIN index most of all). The copy's batches must not need them.
        self.deferred_indexes = list(deferred_indexes)
        self.suffix = suffix
        self.tracking_name = name + suffix
        self._state_factory = state_factory
        self._handler = handler

    def position(self) -> int:
        with connection.cursor() as cur:
            cur.execute(
                "SELECT position FROM projection_position WHERE name = %s", [self.tracking_name]
            )
            row = cur.fetchone()
        return int(row[0]) if row else 0

    @contextmanager
    def batch(self) -> Iterator[PostgresBatch]:
        with transaction.atomic(), connection.cursor() as cur:
            position = self._lock_position(cur)
            batch = self._make_batch(position, cur)
            yield batch
            if batch.position != position:
                self._set_position(cur, batch.position)

    def _lock_position(self, cur: Any) -> int:
        lock = "SELECT position FROM projection_position WHERE name = %s FOR UPDATE"
        cur.execute(lock, [self.tracking_name])
        row = cur.fetchone()
        if row is None:  # the projector's first batch ever
            cur.execute(
                "INSERT INTO projection_position (name, position, updated_at) "
                "VALUES (%s, 0, now()) ON CONFLICT (name) DO NOTHING",
                [self.tracking_name],
            )
            cur.execute(lock, [self.tracking_name])
            row = cur.fetchone()
        return int(row[0])

    def _set_position(self, cur: Any, position: int) -> None:
        cur.execute(
            "UPDATE projection_position SET position = %s, updated_at = now() WHERE name = %s",
            [position, self.tracking_name],
        )

    def _make_batch(self, position: int, cur: Any) -> PostgresBatch:
        return PostgresBatch(position, self._state_factory(cur, self.suffix), self._handler)

    @contextmanager
    def bulk(self) -> Iterator[BulkBatch]:
        """One unit of work for a whole catch-up (a rebuild loading its copy): rows and
        position commit together at the end, as in ``batch``; nothing is visible before."""
        with transaction.atomic(), connection.cursor() as cur:
            position = self._lock_position(cur)
            state = self._state_factory(cur, self.suffix) if self.bulk_states else None
            batch = BulkBatch(position, cur, state, self._make_batch, self._handler)
            try:
                yield batch
            except BaseException:
                batch.abandon()  # the write in flight ends before the rollback
                raise
            batch.finish()
            if batch.position != position:
                self._set_position(cur, batch.position)

    # ------------------------------------------------------------------ rebuild
    def shadow(self) -> PostgresProjectionStore:
        """An empty copy of this projection's tables, to rebuild into from zero: a plain
        ``PostgresProjectionStore``, whatever subclass this is."""
        with transaction.atomic(), connection.cursor() as cur:
            for table in self.tables:
                shadow = sql.Identifier(table + REBUILD_SUFFIX)
                cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(shadow).as_string(None))
                cur.execute(
                    sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING ALL)")
                    .format(shadow, sql.Identifier(table))
                    .as_string(None)
                )
                _name_copy_indexes_after_live(cur, table, table + REBUILD_SUFFIX)
                for index in self.deferred_indexes:
                    cur.execute(
                        sql.SQL("DROP INDEX IF EXISTS {}")
                        .format(sql.Identifier(index + INDEX_SUFFIX))
                        .as_string(None)
                    )
            cur.execute(
                "DELETE FROM projection_position WHERE name = %s", [self.name + REBUILD_SUFFIX]
            )
        return self._copy(PostgresProjectionStore, REBUILD_SUFFIX)

    def _copy(self, cls: type[S], suffix: str) -> S:
        """The same projection (tables, state, handler, deferred indexes) as ``cls``."""
        return cls(
            self.name,
            tables=self.tables,
            state_factory=self._state_factory,
            handler=self._handler,
            suffix=suffix,
            deferred_indexes=self.deferred_indexes,
        )

    def build_deferred_indexes(self) -> None:
        """Give a rebuild copy the indexes it was loaded without (see ``deferred_indexes``).

        ``INDEX_BUILDERS`` at a time, each on a connection of its own: a ``CREATE INDEX``
        keeps one core busy, and nothing else uses the copy (builds take SHARE locks, which
        do not conflict with each other). Inside a transaction (tests) the copy is not
        visible to other connections, so they are built one after another on this one."""
        with connection.cursor() as cur:
            statements = [
                statement
                for table in self.tables  # the live names; the copies carry the suffix
                for statement in _deferred_index_sql(
                    cur, table, table + REBUILD_SUFFIX, self.deferred_indexes
                )
            ]
        if connection.in_atomic_block:
            for statement in statements:
                _build_index(statement)
        else:
            with ThreadPoolExecutor(INDEX_BUILDERS, thread_name_prefix="index") as pool:
                list(pool.map(_build_index_on_own_connection, statements))
        with connection.cursor() as cur:
            for table in self.tables:
                # Statistics now, not at autovacuum's leisure: until then the planner guesses
                # (and the search adapter's recency windows come from them).
                cur.execute(
                    sql.SQL("ANALYZE {}")
                    .format(sql.Identifier(table + REBUILD_SUFFIX))
                    .as_string(None)
                )

    def swap_in(self, shadow: PostgresProjectionStore) -> int:
        """Make the rebuilt tables live, atomically; returns the position they are at."""
        # Outside the swap's transaction: the live projector goes on while they are built,
        # and the events it applies meanwhile are after the copy's position anyway.
        shadow.build_deferred_indexes()
        with transaction.atomic(), connection.cursor() as cur:
            # Wait for (and then block) the live projector's batch: it cannot write old tables
            # after this point, and it resumes from the rebuilt position.
            cur.execute(
                "INSERT INTO projection_position (name, position, updated_at) "
                "VALUES (%s, 0, now()) ON CONFLICT (name) DO NOTHING",
                [self.name],
            )
            cur.execute(
                "SELECT position FROM projection_position WHERE name = %s FOR UPDATE", [self.name]
            )
            cur.execute(
                "SELECT position FROM projection_position WHERE name = %s",
                [shadow.tracking_name],
            )
            row = cur.fetchone()
            position = int(row[0]) if row else 0
            for table in self.tables:
                live, new, old = (
                    sql.Identifier(table),
                    sql.Identifier(table + REBUILD_SUFFIX),
                    sql.Identifier(table + "__old"),
                )
                cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(old).as_string(None))
                cur.execute(
                    sql.SQL("ALTER TABLE {} RENAME TO {}").format(live, old).as_string(None)
                )
                cur.execute(
                    sql.SQL("ALTER TABLE {} RENAME TO {}")
                    .format(new, sql.Identifier(table))
                    .as_string(None)
                )
                cur.execute(sql.SQL("DROP TABLE {}").format(old).as_string(None))
                _restore_index_names(cur, table)
            # The tables now are what this store's source builds (a rebuild for Kafka after
            # the log, or back): feeders of the other source refuse from here on.
            cur.execute(
                "UPDATE projection_position SET position = %s, source = %s, updated_at = now() "
                "WHERE name = %s",
                [position, self.feed, self.name],
            )
            cur.execute("DELETE FROM projection_position WHERE name = %s", [shadow.tracking_name])
            # The applied versions describe the tables: the rebuilt ones now (none unless the
            # rebuild recorded them, see VersionedProjectionStore).
            cur.execute("DELETE FROM projection_applied WHERE name = %s", [self.name])
            cur.execute(
                "UPDATE projection_applied SET name = %s WHERE name = %s",
                [self.name, shadow.tracking_name],
            )
        return position


class EventGapError(RuntimeError):
    """An aggregate's next event is missing: the stream lost one (never expected).

    Not transient: retrying gets the same message again. The operator stops the projector's
    consumers and rebuilds it from the log (``projector rebuild NAME --source kafka``); if it
    comes back, the topic itself lacks the event (re-publish to a new topic, see
    docs/operations.md)."""


def log_table(recorder: PostgresApplicationRecorder) -> str:
    """The event store's table as ``schema.table`` (``table`` without a schema)."""
    schema = recorder.datastore.schema
    return f"{schema}.{recorder.events_table_name}" if schema else recorder.events_table_name


def _table(name: str) -> sql.Identifier:
    return sql.Identifier(*name.split("."))


def _unapplied_sql(log_table: str, what: str) -> str:
    """Events of the log after a position (2nd parameter) whose version the projector
    (1st parameter) has not applied: ``what`` of them."""
    return (
        sql.SQL(
            "SELECT {what} FROM {log} e LEFT JOIN projection_applied a "
            "ON a.name = %s AND a.aggregate_id = e.originator_id "
            "WHERE e.notification_id > %s "
            "AND (a.version IS NULL OR a.version < e.originator_version)"
        )
        .format(what=sql.SQL(what), log=_table(log_table))
        .as_string(None)
    )


def frontier_sql(log_table: str) -> str:
    """The contiguous frontier after a batch, in one statement (one snapshot: an event
    committed meanwhile cannot be counted as applied): just below the first event not
    applied after the old frontier, or the log's head when every one is applied. The scan
    walks the ``notification_id`` index from the old frontier and stops at that first event,
    so each batch pays for the events it made contiguous, not for the whole lag."""
    first_missing = _unapplied_sql(log_table, "e.notification_id - 1") + (
        " ORDER BY e.notification_id LIMIT 1"
    )
    head = sql.SQL("SELECT max(notification_id) FROM {}").format(_table(log_table)).as_string(None)
    return f"SELECT coalesce(({first_missing}), ({head}), 0)"


class VersionedBatch(PostgresBatch):
    """A batch that applies each (aggregate id, version) once, whatever order batches come in."""

    def __init__(
        self,
        position: int,
        state: BatchState,
        handler: Handler,
        cursor: Any,
        tracking: str,
        log_table: str,
    ) -> None:
        super().__init__(position, state, handler)
        self._cur = cursor
        self._tracking = tracking
        self._log_table = log_table

    def apply(self, envelopes: Sequence[Envelope]) -> None:
        if not envelopes:
            return
        self._cur.execute(
            "SELECT aggregate_id, version FROM projection_applied "
            "WHERE name = %s AND aggregate_id = ANY(%s)",
            [self._tracking, list({e.aggregate_id for e in envelopes})],
        )
        known: dict[Any, int] = dict(self._cur.fetchall())
        fresh: list[Envelope] = []
        for envelope in envelopes:
            last = known.get(envelope.aggregate_id, 0)
            if envelope.version <= last:
                continue  # re-delivered: applied already
            if envelope.version != last + 1:
                name = self._tracking.removesuffix(REBUILD_SUFFIX)
                raise EventGapError(
                    f"{self._tracking}: {envelope.aggregate_id} is at version {last}, "
                    f"got version {envelope.version} (position {envelope.position}): an event "
                    f"is missing from the stream. Stop every consumer of {name}, run "
                    f"`manage.py projector rebuild {name} --source kafka`, then start them "
                    "again; if the gap comes back, the topic lacks the event: re-publish to a "
                    "new topic (docs/operations.md, Replay)"
                )
            known[envelope.aggregate_id] = envelope.version
            fresh.append(envelope)
        if not fresh:
            return
        self._state.preload(fresh)
        for envelope in fresh:
            self._handler(envelope, self._state)
        self._state.flush()
        changed = {e.aggregate_id: known[e.aggregate_id] for e in fresh}
        self.position = record_applied(
            self._cur, self._log_table, self._tracking, changed, self.position
        )
        self.applied += len(fresh)


def record_applied(
    cur: Any, log_table: str, tracking: str, changed: Mapping[Any, int], position: int
) -> int:
    """Record each aggregate's newest applied version under ``tracking``; return the
    contiguous frontier from ``position`` on (never below it). A version only moves up:
    a re-delivered older event leaves the newer one recorded."""
    cur.execute(
        "INSERT INTO projection_applied (name, aggregate_id, version) "
        "SELECT %s, a, v FROM unnest(%s::uuid[], %s::int[]) AS t(a, v) "
        "ON CONFLICT (name, aggregate_id) DO UPDATE "
        "SET version = GREATEST(projection_applied.version, EXCLUDED.version)",
        [tracking, list(changed), list(changed.values())],
    )
    cur.execute(frontier_sql(log_table), [tracking, position])
    return max(position, int(cur.fetchone()[0]))


class PostgresAppliedVersions:
    """``AppliedVersions`` in ``projection_applied``, the frontier counted on the event
    store's table ``log_table`` (for the OpenSearch store fed by Kafka)."""

    def __init__(self, log_table: str) -> None:
        self.log_table = log_table

    def record(self, key: str, applied: Mapping[Any, int], position: int) -> int:
        with transaction.atomic(), connection.cursor() as cur:
            return record_applied(cur, self.log_table, key, applied, position)

    def unapplied(self, key: str, position: int) -> int:
        with connection.cursor() as cur:
            cur.execute(_unapplied_sql(self.log_table, "count(*)"), [key, position])
            return int(cur.fetchone()[0])

    def forget(self, key: str) -> None:
        with connection.cursor() as cur:
            cur.execute("DELETE FROM projection_applied WHERE name = %s", [key])


class VersionedProjectionStore(PostgresProjectionStore):
    """A projection fed by a stream source: exactly once by (aggregate id, version).

    Batches of one projector still take its position lock, one at a time: projectors that
    recount across aggregates (an agent's open tickets) must see every committed batch, and
    two instances sharing a topic's partitions never write the same rows at once.
    """

    bulk_states = False
    feed = KAFKA
    log_table = ""  # the event store's table: the frontier and the lag are counted on it

    @classmethod
    def like(cls, store: PostgresProjectionStore, log_table: str) -> VersionedProjectionStore:
        """The same projection (tables, state, handler), kept by (aggregate id, version);
        ``log_table`` is the event store's table (its notification log)."""
        versioned = store._copy(cls, store.suffix)
        versioned.log_table = log_table
        return versioned

    def _make_batch(self, position: int, cur: Any) -> PostgresBatch:
        return VersionedBatch(
            position,
            self._state_factory(cur, self.suffix),
            self._handler,
            cur,
            self.tracking_name,
            self.log_table,
        )

    def unapplied(self) -> int:
        """How many events of the log this projector has not applied yet: its true lag (the
        frontier's distance to the head would count the events applied above it too)."""
        with connection.cursor() as cur:
            cur.execute(
                _unapplied_sql(self.log_table, "count(*)"), [self.tracking_name, self.position()]
            )
            return int(cur.fetchone()[0])

    def shadow(self) -> VersionedProjectionStore:
        plain = super().shadow()
        with transaction.atomic(), connection.cursor() as cur:
            cur.execute("DELETE FROM projection_applied WHERE name = %s", [plain.tracking_name])
        copy = self._copy(VersionedProjectionStore, REBUILD_SUFFIX)
        copy.log_table = self.log_table
        return copy
