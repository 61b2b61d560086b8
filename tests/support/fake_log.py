"""The event log and a projection store in memory, for tests that exercise projection logic
without a database: ``FakeEventLog`` is an ``EventSource`` and an ``AggregateLog``, and gives
``StreamSource`` consumers of its events as a partitioned topic would (``stream``);
``FakeProjectionStore`` is a ``BulkProjectionStore`` (and, ``versioned``, a
``StreamProjectionStore``) that can be rebuilt beside itself and swapped in.

They pass the same contract suites as the PostgreSQL and Kafka adapters (``tests/contracts/``), so a
test that uses them exercises the behaviour production gets.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from eventsourcing.persistence import IntegrityError

from infra.postgres.projection_store import EventGapError
from projections.ports import Envelope


class FakeEventLog:
    """The notification log in memory: each appended event gets the next position.

    ``append`` takes an aggregate's pending events (``collect_events``), ``record`` takes
    events as they are (anything with ``originator_id`` and ``originator_version``). As the
    event store does, it refuses an event whose aggregate already has that version, and
    appends nothing of a call that was refused.
    """

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []
        self._versions: dict[UUID, set[int]] = {}
        self._appended = threading.Condition()
        self._committed: dict[str, dict[int, int]] = {}  # group -> partition -> offset

    # ------------------------------------------------------------------ writing
    def append(self, aggregate: Any, *, at: datetime | None = None) -> list[Envelope]:
        """Store the aggregate's new events; with ``at``, stamped ``at``, ``at`` + 1 s, ..."""
        events = list(aggregate.collect_events())
        if at is not None:
            events = [
                dataclasses.replace(e, timestamp=at + timedelta(seconds=i))
                for i, e in enumerate(events)
            ]
        return self.record(events)

    def record(self, events: Iterable[Any]) -> list[Envelope]:
        events = list(events)
        with self._appended:
            keys = [(e.originator_id, e.originator_version) for e in events]
            if len(set(keys)) < len(keys) or any(v in self._versions.get(i, ()) for i, v in keys):
                raise IntegrityError("an aggregate already has one of these versions")
            start = len(self.envelopes)
            new = [Envelope(start + n + 1, e) for n, e in enumerate(events)]
            self.envelopes += new
            for i, v in keys:
                self._versions.setdefault(i, set()).add(v)
            self._appended.notify_all()
        return new

    # ------------------------------------------------------------------ EventSource
    def head(self) -> int:
        return len(self.envelopes)

    def read(self, after: int, limit: int) -> Sequence[Envelope]:
        return self.envelopes[after : after + limit]

    def wait(self, after: int, timeout: float) -> None:
        with self._appended:
            self._appended.wait_for(lambda: len(self.envelopes) > after, timeout)

    # ------------------------------------------------------------------ AggregateLog
    def read_aggregate(
        self,
        aggregate_id: UUID,
        *,
        after_version: int = 0,
        after_position: int = 0,
        until_version: int | None = None,
    ) -> Sequence[Envelope]:
        found = [
            e
            for e in self.envelopes
            if e.aggregate_id == aggregate_id
            and e.version > after_version
            and e.position > after_position
            and (until_version is None or e.version <= until_version)
        ]
        return sorted(found, key=lambda e: e.version)

    # ------------------------------------------------------------------ StreamSource
    def stream(self, group: str, *, partitions: int = 2) -> FakeStreamSource:
        """A consumer of the log as a topic of ``partitions`` partitions keyed by aggregate,
        in consumer group ``group``: it starts at the group's committed offsets."""
        return FakeStreamSource(self, group, partitions)


class FakeStreamSource:
    """One consumer, owning every partition of its group (no rebalances).

    ``poll`` hands out the next events after this consumer's offsets, in log order (so in
    order per aggregate); ``commit`` stores the offsets of everything polled so far as the
    group's; a new consumer of the group starts there, so what was polled and not committed
    comes again.
    """

    def __init__(self, log: FakeEventLog, group: str, partitions: int) -> None:
        self._log = log
        self._group = group
        self._partitions = partitions
        with log._appended:
            self._offsets = dict(log._committed.get(group, {}))

    def poll(self, limit: int, timeout: float) -> Sequence[Envelope]:
        log = self._log
        with log._appended:
            log._appended.wait_for(lambda: bool(self._next(1)), timeout)
            out = self._next(limit)
            for e in out:
                p = self._partition(e)
                self._offsets[p] = self._offsets.get(p, 0) + 1
            return out

    def commit(self) -> None:
        with self._log._appended:
            self._log._committed[self._group] = dict(self._offsets)

    def close(self) -> None:
        pass

    def _partition(self, envelope: Envelope) -> int:
        return envelope.aggregate_id.int % self._partitions

    def _next(self, limit: int) -> list[Envelope]:
        seen: dict[int, int] = {}  # events of each partition passed so far
        out: list[Envelope] = []
        for e in self._log.envelopes:
            if len(out) >= limit:
                break
            p = self._partition(e)
            n = seen.get(p, 0)
            seen[p] = n + 1
            if n >= self._offsets.get(p, 0):
                out.append(e)
        return out


class FakeBatch:
    """One unit of work of a ``FakeProjectionStore``: applied envelopes and the position."""

    def __init__(self, position: int, versions: dict[UUID, int] | None) -> None:
        self.position = position
        self.applied = 0
        self.envelopes: list[Envelope] = []
        self._versions = versions  # versioned: the last version applied of each aggregate

    def apply(self, envelopes: Sequence[Envelope]) -> None:
        if self._versions is None:
            fresh = [e for e in envelopes if e.position > self.position]
            if fresh:
                self.position = fresh[-1].position
        else:
            fresh = []
            for e in envelopes:
                last = self._versions.get(e.aggregate_id, 0)
                if e.version <= last:
                    continue  # re-delivered: applied already
                if e.version != last + 1:
                    raise EventGapError(f"{e.aggregate_id} is at version {last}, got {e.version}")
                self._versions[e.aggregate_id] = e.version
                fresh.append(e)
            if fresh:
                self.position = max(self.position, *(e.position for e in fresh))
        self.envelopes += fresh
        self.applied += len(fresh)


class FakeProjectionStore:
    """A projection that keeps the envelopes it applied, with its position.

    A batch holds the store's lock (as the position row lock does) and commits its
    envelopes and position together when the block ends without an error; otherwise
    nothing. ``versioned`` drops events by (aggregate id, version) instead of by position,
    as ``VersionedProjectionStore`` does for stream sources.
    """

    def __init__(self, name: str = "memory", *, versioned: bool = False) -> None:
        self.name = name
        self.versioned = versioned
        self.envelopes: list[Envelope] = []
        self._position = 0
        self._versions: dict[UUID, int] = {}
        self._lock = threading.Lock()

    @property
    def applied(self) -> list[int]:
        """The positions applied, in the order they were."""
        return [e.position for e in self.envelopes]

    def position(self) -> int:
        return self._position

    @contextmanager
    def batch(self) -> Iterator[FakeBatch]:
        with self._lock:
            versions = dict(self._versions) if self.versioned else None
            batch = FakeBatch(self._position, versions)
            yield batch
            self._commit(batch, versions)

    bulk = batch  # one unit of work however many ``apply`` calls: the same thing here

    def _commit(self, batch: FakeBatch, versions: dict[UUID, int] | None) -> None:
        self.envelopes += batch.envelopes
        self._position = batch.position
        if versions is not None:
            self._versions = versions

    # ------------------------------------------------------------------ rebuild
    def shadow(self) -> FakeProjectionStore:
        return FakeProjectionStore(self.name + "__rebuild", versioned=self.versioned)

    def swap_in(self, shadow: FakeProjectionStore) -> int:
        with self._lock, shadow._lock:
            self.envelopes = list(shadow.envelopes)
            self._position = shadow._position
            self._versions = dict(shadow._versions)
            return self._position
