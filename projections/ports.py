"""What the projection engine needs from the outside world, declared here, implemented in infra.

A projector cannot tell what feeds it: an ``EventSource`` (the event store's notification
log, read by position) or a ``StreamSource`` (a Kafka topic, delivered at least once and in
order per aggregate); where its output goes is a store port it declares itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable
from uuid import UUID

NO_METADATA: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True)
class Envelope:
    """One stored event with its place in the global log."""

    position: int
    event: Any  # a domain event (``Ticket.MessagePosted`` ...)
    # The event's metadata (``correlation_id``, ``request_id``: docs/events.md#metadata),
    # beside it: never part of what a projector computes, only of what it logs.
    metadata: Mapping[str, str] = field(default_factory=lambda: NO_METADATA, compare=False)

    @property
    def aggregate_id(self) -> UUID:
        return self.event.originator_id  # type: ignore[no-any-return]

    @property
    def version(self) -> int:
        return self.event.originator_version  # type: ignore[no-any-return]


class EventSource(Protocol):
    def head(self) -> int:
        """The position of the newest stored event (0 when the log is empty)."""

    def read(self, after: int, limit: int) -> Sequence[Envelope]:
        """Up to ``limit`` events with position > ``after``, in log order. Catching up, the
        runner calls it from a read-ahead thread too (never two calls at once)."""

    def wait(self, after: int, timeout: float) -> None:
        """Block until an event after ``after`` may exist, or ``timeout`` seconds pass."""


class StreamSource(Protocol):
    """Events delivered at least once, in order per aggregate but not across aggregates.

    ``poll`` hands out the next events of the partitions this consumer owns; ``commit``
    acknowledges everything the last ``poll`` returned, and is called only after those events
    are applied and committed by the store: a crash in between re-delivers them, and the store
    drops what it has already applied by (aggregate id, version).
    """

    def poll(self, limit: int, timeout: float) -> Sequence[Envelope]: ...

    def commit(self) -> None: ...

    def rewind(self) -> None:
        """Deliver again what was polled since the last ``commit`` (its batch failed)."""

    def close(self) -> None: ...


class Batch(Protocol):
    """One unit of work: the projector's writes and its new position commit together."""

    position: int  # the position already applied before this batch

    def apply(self, envelopes: Sequence[Envelope]) -> None: ...


class ProjectionStore(Protocol):
    """Where a projector's output lives, with its tracked position."""

    name: str

    def position(self) -> int: ...

    def batch(self) -> AbstractContextManager[Batch]:
        """Open a unit of work; the position is locked so two runners never both apply."""


class RebuildableStore(ProjectionStore, Protocol):
    """A store that can be rebuilt beside its live copy (``projections.runner.rebuild``)."""

    def shadow(self) -> ProjectionStore:
        """An empty copy to rebuild into from zero."""

    def swap_in(self, shadow: Any) -> int:
        """Make ``shadow`` (from ``shadow()``) live; returns its position."""


@runtime_checkable
class BulkProjectionStore(ProjectionStore, Protocol):
    """A store that can also load many batches as one unit of work (a rebuild filling its
    private copy from zero: nothing reads it until the swap, and a failed rebuild starts
    over, so per-batch commits buy nothing there and cost rewriting rows at every batch)."""

    def bulk(self) -> AbstractContextManager[Batch]:
        """One unit of work for many ``apply`` calls; rows and position commit at the end."""


class StreamBatch(Batch, Protocol):
    """A batch that applies each (aggregate id, version) once, in whatever order they come."""

    applied: int  # how many events this batch applied (re-delivered ones not counted)


class StreamProjectionStore(Protocol):
    """A projection fed by a ``StreamSource``: it drops what it has applied already."""

    name: str

    def position(self) -> int:
        """The contiguous frontier: every event of the log at or below it is applied (some
        above it may be too: partitions advance unevenly)."""

    def batch(self) -> AbstractContextManager[StreamBatch]: ...


class AppliedVersions(Protocol):
    """What a store fed by a stream source keeps beside its own data, when that data cannot
    tell its contiguous frontier (OpenSearch keeps each document's version, not the log's
    positions): the last version of each aggregate applied, under a ``key`` (one per index
    the store writes), and the frontier those make on the log."""

    def record(self, key: str, applied: Mapping[Any, int], position: int) -> int:
        """Record ``applied`` (aggregate id -> its newest version now applied) and return
        the contiguous frontier, from ``position`` (the old one) on."""

    def unapplied(self, key: str, position: int) -> int:
        """How many events of the log after ``position`` are not applied under ``key``."""

    def forget(self, key: str) -> None:
        """Drop what ``key`` recorded (its index is gone)."""
