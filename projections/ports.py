"""What the projection engine needs from the outside world, declared here, implemented in infra.

A projector cannot tell which ``EventSource`` feeds it (the event store's notification log
now, a Kafka topic later); where its output goes is a store port it declares itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID


@dataclass(frozen=True)
class Envelope:
    """One stored event with its place in the global log."""

    position: int
    event: Any  # a domain event (``Ticket.MessagePosted`` ...)

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
