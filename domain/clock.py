"""When a ticket's events happen: the wall clock, or a time a seed of past history sets.

Every ``Ticket`` event takes its ``timestamp`` from ``now()``. Commands always run on the
wall clock; only a seed writing a plausible past (the demo data of ``make run``) sets the
time with ``seeded_at``, around the use cases it calls, in its own thread (a context
variable: nothing else running meanwhile sees it).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime

from eventsourcing.domain import datetime_now_with_tzinfo

_seeded: ContextVar[datetime | None] = ContextVar("deskstream_seeded_at", default=None)


def now() -> datetime:
    """The time a new event carries."""
    at = _seeded.get()
    return datetime_now_with_tzinfo() if at is None else at


@contextmanager
def seeded_at(at: datetime) -> Iterator[None]:
    """Events made inside carry ``at`` (aware, not in the future): for seeding history only.
    A ticket's events must keep their order: the seed sets later times for later events."""
    if at.tzinfo is None:
        raise ValueError("a seeded time needs a time zone")
    if at > datetime_now_with_tzinfo():
        raise ValueError("a seeded time cannot be in the future")
    token = _seeded.set(at)
    try:
        yield
    finally:
        _seeded.reset(token)
