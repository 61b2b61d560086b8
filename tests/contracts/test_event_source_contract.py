"""The ``EventSource`` port's contract (``projections/ports.py``), run against every
implementation: the event store's notification log read by position (``PostgresEventSource``),
the same with this application's appends handed over in memory (the web server's push
projector, ADR 0021), a runner's source over a ``SharedLog`` reader, and ``FakeEventLog``.

Events are real aggregates' events, appended the way each log is written in production (the
application's event store for PostgreSQL). The PostgreSQL log is shared by the whole test
run, so each test works after the head it finds at its start.

To add an implementation: a fixture ``<name>_log`` that returns a ``Log`` and cleans up
after the test, and ``<name>`` in ``IMPLEMENTATIONS``.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from uuid import uuid4

import pytest
from eventsourcing.persistence import IntegrityError

from domain.agent import Agent
from domain.lifecycle import Role
from domain.ticket import Ticket
from projections.ports import Envelope, EventSource
from projections.runner import SharedLog
from tests.support.fake_log import FakeEventLog
from tests.support.wait import wait_until

IMPLEMENTATIONS = ["fake", "postgres", "postgres_own_appends", "shared"]


@dataclass
class Log:
    source: EventSource
    # Store an aggregate's new events; returns them with their positions, once ``source``
    # can see them. Raises ``IntegrityError`` (and stores nothing) on a version conflict.
    append: Callable[[Any], list[Envelope]]
    reopen: Callable[[], EventSource]  # another source on the same log (a restarted reader)


@pytest.fixture
def fake_log() -> Log:
    log = FakeEventLog()
    return Log(log, log.append, lambda: log)


def _application() -> Any:
    from django.conf import settings

    from command_api.application import DeskstreamApplication, eventstore_env

    return DeskstreamApplication(eventstore_env(settings.DATABASES["default"], pool_size=2))


def _postgres_source(app: Any, *, own: bool) -> Any:
    from django.conf import settings

    from infra.postgres.event_source import PostgresEventSource, conninfo_from_django

    return PostgresEventSource(
        app.recorder,
        app.mapper,
        conninfo_from_django(settings.DATABASES["default"]),
        own=app.watch_own_appends() if own else None,
    )


def _saver(app: Any) -> Callable[[Any], list[Envelope]]:
    def append(aggregate: Any) -> list[Envelope]:
        return [Envelope(r.notification.id, r.domain_event) for r in app.save(aggregate)]

    return append


def _postgres(own: bool) -> Iterator[Log]:
    app = _application()
    opened: list[Any] = []

    def source() -> EventSource:
        opened.append(_postgres_source(app, own=own))
        return opened[-1]  # type: ignore[no-any-return]

    try:
        yield Log(source(), _saver(app), source)
    finally:
        for s in opened:
            s.close()
        app.close()


@pytest.fixture
def postgres_log(django_db_setup: Any) -> Iterator[Log]:
    yield from _postgres(own=False)


@pytest.fixture
def postgres_own_appends_log(django_db_setup: Any) -> Iterator[Log]:
    yield from _postgres(own=True)


@pytest.fixture
def shared_log(django_db_setup: Any) -> Iterator[Log]:
    """Runners' sources over one ``SharedLog`` reading the PostgreSQL log."""
    app = _application()
    upstream = _postgres_source(app, own=False)
    shared = SharedLog(upstream, batch_size=3, keep=5)  # small: reads span window and log
    stop = threading.Event()
    reader = threading.Thread(target=shared.follow, args=(stop,), kwargs={"idle_timeout": 0.05})
    reader.start()
    wait_until(lambda: shared._start is not None)
    save = _saver(app)

    def append(aggregate: Any) -> list[Envelope]:
        stored = save(aggregate)
        wait_until(lambda: shared._end >= stored[-1].position)  # the reader has them
        return stored

    try:
        yield Log(shared.source(), append, shared.source)
    finally:
        stop.set()
        reader.join(5)
        upstream.close()
        app.close()


@pytest.fixture(params=IMPLEMENTATIONS)
def log(request: pytest.FixtureRequest) -> Log:
    return request.getfixturevalue(f"{request.param}_log")  # type: ignore[no-any-return]


# ------------------------------------------------------------------------------- helpers
def ticket(customer: str = "c1") -> Ticket:
    return Ticket.open(
        customer_id=customer,
        subject="Printer on fire",
        description="Smoke",
        actor_id=customer,
        actor_role=Role.CUSTOMER,
    )


def story(log: Log) -> list[Envelope]:
    """Four events of two aggregates, interleaved: a ticket (opened, a reply), an agent,
    the ticket again."""
    t = ticket()
    stored = log.append(t)
    t.post_message(author_id="a1", author_role=Role.AGENT, body="On it")
    stored += log.append(t)
    stored += log.append(Agent.register(user_id=uuid4().hex, name="Ada"))  # new on any log
    t.change_priority(priority="urgent", actor_id="a1", actor_role=Role.AGENT)
    stored += log.append(t)
    return stored


def key(e: Envelope) -> tuple[int, type, Any, int]:
    return (e.position, type(e.event), e.aggregate_id, e.version)


def keys(envelopes: Any) -> list[tuple[int, type, Any, int]]:
    return [key(e) for e in envelopes]


def read_all(source: EventSource, after: int, limit: int = 100) -> list[Envelope]:
    out: list[Envelope] = []
    while batch := source.read(after, limit):
        out.extend(batch)
        after = batch[-1].position
    return out


# --------------------------------------------------------------------------------- tests
def test_appends_take_the_next_positions_and_the_head_is_the_newest(log: Log) -> None:
    start = log.source.head()
    stored = story(log)
    assert [e.position for e in stored] == [start + 1, start + 2, start + 3, start + 4]
    assert log.source.head() == start + 4


def test_a_read_returns_the_events_after_the_position_in_log_order(log: Log) -> None:
    start = log.source.head()
    stored = story(log)
    got = log.source.read(start, 100)
    assert keys(got) == keys(stored)
    assert [e.event for e in got] == [e.event for e in stored]  # the domain events themselves
    assert keys(log.source.read(start + 2, 100)) == keys(stored[2:])
    assert log.source.read(start + 4, 100) == []


def test_a_read_returns_at_most_limit_events(log: Log) -> None:
    start = log.source.head()
    stored = story(log)
    assert keys(log.source.read(start, 1)) == keys(stored[:1])
    assert keys(log.source.read(start + 1, 2)) == keys(stored[1:3])
    assert keys(read_all(log.source, start, limit=3)) == keys(stored)  # pages: same events


def test_a_new_source_resumes_after_any_position(log: Log) -> None:
    start = log.source.head()
    stored = story(log)
    assert keys(read_all(log.source, start)) == keys(stored)
    for done in range(5):
        assert keys(read_all(log.reopen(), start + done, limit=2)) == keys(stored[done:])


def test_wait_returns_at_once_when_an_event_after_the_position_exists(log: Log) -> None:
    start = log.source.head()
    story(log)
    began = time.monotonic()
    log.source.wait(start, 5.0)
    assert time.monotonic() - began < 1.0


def test_wait_waits_out_its_timeout_when_nothing_is_new(log: Log) -> None:
    story(log)
    head = log.source.head()
    assert read_all(log.source, head - 4)  # the reader is up to date
    began = time.monotonic()
    log.source.wait(head, 0.3)
    assert 0.25 <= time.monotonic() - began < 2.0
    assert log.source.read(head, 100) == []


def test_wait_wakes_when_an_event_is_appended(log: Log) -> None:
    story(log)
    head = log.source.head()
    assert len(read_all(log.source, head - 4)) == 4
    later = ticket("c2")
    appended: list[Envelope] = []
    timer = threading.Timer(0.2, lambda: appended.extend(log.append(later)))
    began = time.monotonic()
    timer.start()
    try:
        while not (got := log.source.read(head, 100)):
            log.source.wait(head, 5.0)
            assert time.monotonic() - began < 3.0
    finally:
        timer.join()
    assert keys(got) == keys(appended)
    assert [e.position for e in got] == [head + 1]


def test_a_refused_append_stores_nothing(log: Log) -> None:
    t = ticket()
    twin = copy.deepcopy(t)  # the same aggregate at the same version, elsewhere
    stored = log.append(t)
    head = log.source.head()
    with pytest.raises(IntegrityError):
        log.append(twin)
    assert log.source.head() == head
    assert read_all(log.source, stored[-1].position) == []
    later = log.append(ticket("c2"))  # the log goes on
    assert keys(read_all(log.source, head)) == keys(later)
