"""The projection store ports' contract (``ProjectionStore``, ``BulkProjectionStore``,
``StreamProjectionStore`` in ``projections/ports.py``), run against every implementation:
``PostgresProjectionStore``, ``VersionedProjectionStore``, ``ProcessManagerStore`` (the
assignment manager's, which also decides after its live batches) and ``FakeProjectionStore``
(plain and versioned).

Each store holds a projection that keeps one row per event it applied, so what a store
committed can be read back: ``rows`` are (position, aggregate id, version) in position order.
The PostgreSQL projection writes them to a table of its own, made for the test.

To add an implementation: a fixture ``<name>_store`` that returns a ``Projection`` on an
empty projection, and ``<name>`` in ``STORES`` (and in ``VERSIONED`` if it applies events by
(aggregate id, version) as stream sources need).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any
from uuid import UUID, uuid4

import pytest

from domain.lifecycle import Role
from domain.ticket import Ticket
from infra.postgres.projection_store import EventGapError
from projections.ports import BulkProjectionStore, Envelope
from projections.runner import ProjectionRunner, rebuild
from tests.support.fake_log import FakeEventLog, FakeProjectionStore

STORES = ["fake", "fake_versioned", "postgres", "postgres_versioned", "postgres_process_manager"]
VERSIONED = ["fake_versioned", "postgres_versioned"]

Row = tuple[int, UUID, int]


@dataclass
class Projection:
    store: Any  # the live store: batch, bulk, position, shadow, swap_in
    rows: Callable[[Any], list[Row]]  # what a store (the live one or a shadow) has committed
    another: Callable[[], Any]  # another instance of the same projection (another process)


# ------------------------------------------------------------------------ implementations
def _fake(versioned: bool) -> Projection:
    store = FakeProjectionStore("contract", versioned=versioned)

    def rows(s: FakeProjectionStore) -> list[Row]:
        return sorted((e.position, e.aggregate_id, e.version) for e in s.envelopes)

    return Projection(store, rows, lambda: store)


@pytest.fixture
def fake_store() -> Projection:
    return _fake(versioned=False)


@pytest.fixture
def fake_versioned_store() -> Projection:
    return _fake(versioned=True)


TABLE = "contract_projection"


class RowsState:
    """The test projection's state for one batch: the rows its events make, written at
    ``flush`` through the batch's cursor into the table (or the rebuild's copy of it)."""

    def __init__(self, cursor: Any, suffix: str) -> None:
        self.cursor = cursor
        self.table = TABLE + suffix
        self.pending: list[Row] = []

    def preload(self, envelopes: Sequence[Envelope]) -> None:
        pass

    def flush(self) -> None:
        from psycopg import sql

        statement = sql.SQL("INSERT INTO {} (position, aggregate_id, version) VALUES (%s, %s, %s)")
        for row in self.pending:
            self.cursor.execute(statement.format(sql.Identifier(self.table)).as_string(None), row)
        self.pending = []


def _handle(envelope: Envelope, state: RowsState) -> None:
    state.pending.append((envelope.position, envelope.aggregate_id, envelope.version))


def _postgres(kind: Callable[..., Any]) -> Iterator[Projection]:
    from django.db import connection
    from psycopg import sql

    def drop() -> None:
        with connection.cursor() as cur:
            for suffix in ("", "__rebuild", "__old"):
                cur.execute(f"DROP TABLE IF EXISTS {TABLE}{suffix}")

    drop()
    with connection.cursor() as cur:
        cur.execute(
            f"CREATE TABLE {TABLE} (position bigint PRIMARY KEY, aggregate_id uuid NOT NULL, "
            "version integer NOT NULL)"
        )
    name = f"contract_{uuid4().hex[:8]}"

    def make() -> Any:
        return kind(name, tables=[TABLE], state_factory=RowsState, handler=_handle)

    def rows(store: Any) -> list[Row]:
        with connection.cursor() as cur:
            cur.execute(
                sql.SQL("SELECT position, aggregate_id, version FROM {} ORDER BY position")
                .format(sql.Identifier(TABLE + store.suffix))
                .as_string(None)
            )
            return [(int(p), a, int(v)) for p, a, v in cur.fetchall()]

    try:
        yield Projection(make(), rows, make)
    finally:
        drop()  # a test in a transaction: committed, it stays otherwise


@pytest.fixture
def postgres_store(db: Any) -> Iterator[Projection]:
    from infra.postgres.projection_store import PostgresProjectionStore

    yield from _postgres(PostgresProjectionStore)


LOG_MIRROR = "contract_event_log"


@pytest.fixture
def postgres_versioned_store(
    db: Any, log: FakeEventLog, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Projection]:
    """A versioned store's position is its contiguous frontier over the event store's log
    (every event at or below it applied): here the log is a table mirroring the fake log,
    kept in step with every append."""
    from django.db import connection

    from infra.postgres.projection_store import VersionedProjectionStore

    with connection.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {LOG_MIRROR}")
        cur.execute(
            f"CREATE TABLE {LOG_MIRROR} (notification_id bigint PRIMARY KEY, "
            "originator_id uuid NOT NULL, originator_version integer NOT NULL)"
        )

    def mirror() -> None:
        with connection.cursor() as cur:
            for e in log.read(0, 1_000_000):
                cur.execute(
                    f"INSERT INTO {LOG_MIRROR} VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",  # noqa: S608
                    [e.position, e.aggregate_id, e.version],
                )

    append = log.append

    def append_and_mirror(*args: Any, **kwargs: Any) -> Any:
        result = append(*args, **kwargs)
        mirror()
        return result

    monkeypatch.setattr(log, "append", append_and_mirror)
    mirror()

    def versioned(name: str, **kwargs: Any) -> VersionedProjectionStore:
        store = VersionedProjectionStore(name, **kwargs)
        store.log_table = LOG_MIRROR
        return store

    try:
        yield from _postgres(versioned)
    finally:
        with connection.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {LOG_MIRROR}")


@pytest.fixture
def postgres_process_manager_store(db: Any) -> Iterator[Projection]:
    """The assignment manager's store on the test projection: nothing to decide or issue."""
    from infra.postgres.assignment import ProcessManagerStore

    def issue(commands: list[Any]) -> list[Any]:
        assert commands == []
        return []

    yield from _postgres(partial(ProcessManagerStore, issue=issue))


@pytest.fixture(params=STORES)
def projection(request: pytest.FixtureRequest) -> Projection:
    return request.getfixturevalue(f"{request.param}_store")  # type: ignore[no-any-return]


@pytest.fixture(params=VERSIONED)
def versioned(request: pytest.FixtureRequest) -> Projection:
    return request.getfixturevalue(f"{request.param}_store")  # type: ignore[no-any-return]


# ------------------------------------------------------------------------------- events
@pytest.fixture
def log() -> FakeEventLog:
    """Eight events: two tickets of four, interleaved by two (positions 1-8)."""
    log = FakeEventLog()
    a, b = _ticket(), _ticket()
    for t in (a, b):
        _reply(t)
        log.append(t)
    for t in (a, b):
        _reply(t)
        _reply(t)
        log.append(t)
    return log


def _ticket() -> Ticket:
    return Ticket.open(
        customer_id="c1", subject="Hi", description="", actor_id="c1", actor_role=Role.CUSTOMER
    )


def _reply(t: Ticket) -> None:
    t.post_message(author_id="a1", author_role=Role.AGENT, body="On it")


def rows_of(envelopes: Sequence[Envelope]) -> list[Row]:
    return [(e.position, e.aggregate_id, e.version) for e in envelopes]


def crash_in(unit_of_work: Callable[[], Any], chunks: Sequence[Sequence[Envelope]]) -> None:
    """Apply the chunks in one unit of work, then crash before it ends."""
    with unit_of_work() as batch:
        for chunk in chunks:
            batch.apply(chunk)
        raise RuntimeError("the projector crashed")


# --------------------------------------------------------------------------------- tests
def test_a_new_projection_is_empty_at_position_zero(projection: Projection) -> None:
    assert projection.store.position() == 0
    assert projection.rows(projection.store) == []


def test_a_batch_applies_in_order_and_commits_its_rows_with_its_position(
    projection: Projection, log: FakeEventLog
) -> None:
    events = log.read(0, 8)
    with projection.store.batch() as batch:
        assert batch.position == 0
        batch.apply(events[:3])
        assert batch.position == 3
        batch.apply(events[3:5])
        assert batch.position == 5
    assert projection.store.position() == 5
    assert projection.rows(projection.store) == rows_of(events[:5])
    assert projection.another().position() == 5
    with projection.store.batch() as batch:
        assert batch.position == 5
        batch.apply(events[5:])
    assert projection.store.position() == 8
    assert projection.rows(projection.store) == rows_of(events)


def test_events_applied_already_are_not_applied_again(
    projection: Projection, log: FakeEventLog
) -> None:
    events = log.read(0, 8)
    with projection.store.batch() as batch:
        batch.apply(events[:4])
    with projection.store.batch() as batch:
        batch.apply(events[:6])  # a reader that started from an older position
        assert batch.applied == 2
    with projection.store.batch() as batch:
        batch.apply(events[:6])
        assert (batch.applied, batch.position) == (0, 6)
    assert projection.store.position() == 6
    assert projection.rows(projection.store) == rows_of(events[:6])


def test_a_batch_that_fails_commits_nothing(projection: Projection, log: FakeEventLog) -> None:
    events = log.read(0, 8)
    with projection.store.batch() as batch:
        batch.apply(events[:2])
    with pytest.raises(RuntimeError, match="crashed"):
        crash_in(projection.store.batch, [events[2:5]])
    assert projection.store.position() == 2
    assert projection.rows(projection.store) == rows_of(events[:2])
    with projection.store.batch() as batch:  # the next batch starts where the last commit left
        assert batch.position == 2
        batch.apply(events[2:5])
        assert batch.applied == 3
    assert projection.rows(projection.store) == rows_of(events[:5])


def test_a_runner_catches_up_and_resumes_from_the_committed_position(
    projection: Projection, log: FakeEventLog
) -> None:
    first = FakeEventLog()
    first.record(e.event for e in log.read(0, 5))
    assert ProjectionRunner(first, projection.store, batch_size=2).catch_up() == 5
    # A new runner (another process) on the full log applies only the rest.
    assert ProjectionRunner(log, projection.another(), batch_size=2).catch_up() == 3
    assert projection.store.position() == 8
    assert projection.rows(projection.store) == rows_of(log.read(0, 8))


def test_bulk_commits_many_applies_as_one_and_nothing_if_it_fails(
    projection: Projection, log: FakeEventLog
) -> None:
    store = projection.store
    assert isinstance(store, BulkProjectionStore)
    events = log.read(0, 8)
    with pytest.raises(RuntimeError, match="crashed"):
        crash_in(store.bulk, [events[:3], events[3:6]])
    assert (store.position(), projection.rows(store)) == (0, [])
    with store.bulk() as batch:
        for i in range(0, 8, 3):
            batch.apply(events[i : i + 3])
        assert batch.position == 8
    assert store.position() == 8
    assert projection.rows(store) == rows_of(events)


def test_a_rebuild_fills_an_empty_copy_beside_the_live_one_then_swaps_it_in(
    projection: Projection, log: FakeEventLog
) -> None:
    live = projection.store
    events = log.read(0, 8)
    with live.batch() as batch:
        batch.apply(events[:4])
    shadow = live.shadow()
    assert (shadow.position(), projection.rows(shadow)) == (0, [])
    assert ProjectionRunner(log, shadow, batch_size=3).catch_up(bulk=True) == 8
    assert (shadow.position(), projection.rows(shadow)) == (8, rows_of(events))
    # Until the swap, readers and the live projector see the live copy alone.
    assert (live.position(), projection.rows(live)) == (4, rows_of(events[:4]))
    assert live.swap_in(shadow) == 8
    assert (live.position(), projection.rows(live)) == (8, rows_of(events))
    assert projection.another().position() == 8


def test_the_live_projector_goes_on_from_the_swapped_position(
    projection: Projection, log: FakeEventLog
) -> None:
    live = projection.store
    with live.batch() as batch:
        batch.apply(log.read(0, 2))
    assert rebuild(log, live, live.shadow, live.swap_in, batch_size=3) == 8
    more = _ticket()
    log.append(more)
    with live.batch() as batch:
        assert batch.position == 8
        batch.apply(log.read(0, 9))  # everything: only the new event is applied
        assert batch.applied == 1
    assert live.position() == 9
    assert projection.rows(live) == rows_of(log.read(0, 9))  # live then rebuilt: each once


@pytest.mark.django_db(transaction=True)
def test_another_instance_waits_for_the_batch_in_flight_then_goes_on_after_it(
    projection: Projection, log: FakeEventLog
) -> None:
    """The position is locked for a batch: two instances never apply the same events."""
    events = log.read(0, 8)
    applied, entered, release = threading.Event(), threading.Event(), threading.Event()
    seen: list[tuple[int, int]] = []

    def first() -> None:
        try:
            with projection.store.batch() as batch:
                batch.apply(events[:3])
                applied.set()
                release.wait(10)
        finally:
            _close_thread_connection()

    def second() -> None:
        try:
            with projection.another().batch() as batch:
                entered.set()
                position = batch.position
                batch.apply(events[:5])
                seen.append((position, batch.applied))
        finally:
            _close_thread_connection()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    threads[0].start()
    assert applied.wait(10)
    threads[1].start()
    assert not entered.wait(0.3)  # blocked behind the first batch
    release.set()
    for t in threads:
        t.join(10)
    assert seen == [(3, 2)]  # it saw the first batch's commit and applied only the rest
    assert projection.store.position() == 5
    assert projection.rows(projection.store) == rows_of(events[:5])


def _close_thread_connection() -> None:
    from django.db import connection

    connection.close()


# ------------------------------------------------------------ stream stores (versioned)
def test_a_versioned_store_applies_each_version_once_in_any_order_across_aggregates(
    versioned: Projection, log: FakeEventLog
) -> None:
    events = log.read(0, 8)
    a = [e for e in events if e.aggregate_id == events[0].aggregate_id]
    b = [e for e in events if e.aggregate_id != events[0].aggregate_id]
    # While one partition is ahead of the other, the position is implementation-defined
    # (PostgreSQL's is the contiguous frontier over the event log, tests/integration/
    # test_kafka_consistency.py; the fake's the highest applied): only what is applied and
    # where everything ends are the contract.
    with versioned.store.batch() as batch:
        batch.apply(b[:3])  # a partition ahead of the other
        assert batch.applied == 3
    with versioned.store.batch() as batch:
        batch.apply(a[:2] + b[:3])  # b's again: re-delivered after a rebalance
        assert batch.applied == 2
    with versioned.store.batch() as batch:
        batch.apply(a + b)
        assert batch.applied == 3
    assert versioned.store.position() == 8
    assert versioned.rows(versioned.store) == rows_of(events)


def test_a_versioned_store_refuses_a_gap_and_commits_nothing_of_that_batch(
    versioned: Projection, log: FakeEventLog
) -> None:
    events = log.read(0, 8)
    first = events[0].aggregate_id
    mine = [e for e in events if e.aggregate_id == first]
    with versioned.store.batch() as batch:
        batch.apply(mine[:1])
    with pytest.raises(EventGapError), versioned.store.batch() as batch:
        batch.apply(mine[2:3])  # version 3 after version 1
    assert versioned.store.position() == mine[0].position
    assert versioned.rows(versioned.store) == rows_of(mine[:1])
    with versioned.store.batch() as batch:
        batch.apply(mine[1:3])
        assert batch.applied == 2


def test_a_rebuilt_versioned_store_still_drops_what_it_applied(
    versioned: Projection, log: FakeEventLog
) -> None:
    live = versioned.store
    events = log.read(0, 8)
    with live.batch() as batch:
        batch.apply(events[:3])
    assert rebuild(log, live, live.shadow, live.swap_in) == 8
    with live.batch() as batch:
        batch.apply(events)  # all of it re-delivered
        assert batch.applied == 0
    assert versioned.rows(live) == rows_of(events)
