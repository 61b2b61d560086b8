"""The ``StreamSource`` port's contract (``projections/ports.py``): events delivered at least
once, in order per aggregate; ``commit`` acknowledges what was polled, and a new consumer of
the group starts after the commit. Run against ``KafkaStreamSource`` on a real Kafka-protocol
broker (Tansu, started by ``scripts/with_services.py`` or here) and the fake log's stream.

Events are real aggregates' events with log positions from a ``FakeEventLog``; the Kafka
implementation publishes them as the relay does (``KafkaRelay.publish``) to a fresh topic.

To add an implementation: a fixture ``<name>_stream`` that returns a ``Stream``, and
``<name>`` in ``IMPLEMENTATIONS``.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.persistence import Notification

from domain.lifecycle import Role
from domain.ticket import Ticket
from projections.ports import Envelope, StreamSource
from tests.support.fake_log import FakeEventLog
from tests.support.kafka import kafka_bootstrap

__all__ = ["kafka_bootstrap"]  # the fixture

IMPLEMENTATIONS = ["fake", "kafka"]
PARTITIONS = 2
_topics = itertools.count(1)


@dataclass
class Stream:
    log: FakeEventLog  # where events get their positions
    publish: Callable[[list[Envelope]], None]  # make stored events available to consumers
    open: Callable[[], StreamSource]  # a new consumer of the projector's group
    opened: list[StreamSource] = field(default_factory=list)

    def append(self, aggregate: Any) -> list[Envelope]:
        stored = self.log.append(aggregate)
        self.publish(stored)
        return stored

    def consumer(self) -> StreamSource:
        self.opened.append(self.open())
        return self.opened[-1]


@pytest.fixture
def fake_stream() -> Stream:
    log = FakeEventLog()
    return Stream(log, lambda envelopes: None, lambda: log.stream("projector", partitions=2))


@pytest.fixture
def kafka_stream(kafka_bootstrap: str, django_db_setup: Any) -> Iterator[Stream]:
    from command_api.application import get_application
    from infra.kafka.relay import KafkaRelay, ensure_topic, producer
    from infra.kafka.source import KafkaStreamSource, consumer

    topic = f"deskstream.contract.{os.getpid()}.{time.monotonic_ns()}.{next(_topics)}"
    assert ensure_topic(kafka_bootstrap, topic, PARTITIONS)
    mapper = get_application().mapper
    relay = KafkaRelay(lambda: producer(kafka_bootstrap), topic, read=_unused, wait=_unused)

    def publish(envelopes: list[Envelope]) -> None:
        relay.publish([_notification(mapper, e) for e in envelopes])

    def open_consumer() -> StreamSource:
        member = consumer(
            kafka_bootstrap,
            topic,
            topic + ".projector",
            session_timeout_ms=3000,
            heartbeat_interval_ms=500,
        )
        return KafkaStreamSource(member, mapper)

    stream = Stream(FakeEventLog(), publish, open_consumer)
    try:
        yield stream
    finally:
        for source in stream.opened:
            source.close()
        relay.close()


def _unused(*args: Any) -> Any:
    raise AssertionError("the contract publishes by itself")


def _notification(mapper: Any, envelope: Envelope) -> Notification:
    stored = mapper.to_stored_event(envelope.event)
    return Notification(
        id=envelope.position,
        originator_id=stored.originator_id,
        originator_version=stored.originator_version,
        topic=stored.topic,
        state=stored.state,
    )


@pytest.fixture(params=IMPLEMENTATIONS)
def stream(request: pytest.FixtureRequest) -> Stream:
    return request.getfixturevalue(f"{request.param}_stream")  # type: ignore[no-any-return]


# ------------------------------------------------------------------------------- helpers
def ticket(customer: str) -> Ticket:
    return Ticket.open(
        customer_id=customer,
        subject="Printer on fire",
        description="Smoke",
        actor_id=customer,
        actor_role=Role.CUSTOMER,
    )


def story(stream: Stream, tickets: int = 4, replies: int = 2) -> list[Envelope]:
    """Tickets opened, then replies to each in turn: events of several aggregates
    interleaved, on every partition."""
    all_tickets = [ticket(f"c{i}") for i in range(tickets)]
    stored: list[Envelope] = []
    for t in all_tickets:
        stored += stream.append(t)
    for n in range(replies):
        for t in all_tickets:
            t.post_message(author_id="a1", author_role=Role.AGENT, body=f"reply {n}")
            stored += stream.append(t)
    return stored


def drain(source: StreamSource, *, idle: float = 1.5, limit: int = 100) -> list[Envelope]:
    """Poll until a poll waits ``idle`` seconds and gets nothing (first polls of a new
    consumer of a real broker may come back empty while it joins its group)."""
    out: list[Envelope] = []
    while batch := source.poll(limit, idle):
        out.extend(batch)
    return out


def until(
    source: StreamSource, n: int, *, timeout: float = 30.0, limit: int = 100
) -> list[Envelope]:
    """Poll until ``n`` events came (a new member joins its group first)."""
    out: list[Envelope] = []
    deadline = time.monotonic() + timeout
    while len(out) < n and time.monotonic() < deadline:
        out.extend(source.poll(min(limit, n - len(out)), 1.0))
    return out


Key = tuple[int, type, UUID, int]


def key(e: Envelope) -> Key:
    return (e.position, type(e.event), e.aggregate_id, e.version)


def per_aggregate(envelopes: list[Envelope]) -> dict[UUID, list[Key]]:
    out: dict[UUID, list[Key]] = {}
    for e in envelopes:
        out.setdefault(e.aggregate_id, []).append(key(e))
    return out


# --------------------------------------------------------------------------------- tests
def test_every_event_comes_once_in_order_per_aggregate(stream: Stream) -> None:
    stored = story(stream)
    source = stream.consumer()
    got = until(source, len(stored)) + drain(source)
    assert sorted(key(e) for e in got) == sorted(key(e) for e in stored)  # each once
    assert per_aggregate(got) == per_aggregate(stored)  # and in order per aggregate
    assert [e.event for e in sorted(got, key=lambda e: e.position)] == [e.event for e in stored]


def test_a_poll_returns_at_most_limit_events(stream: Stream) -> None:
    stored = story(stream)
    source = stream.consumer()
    got: list[Envelope] = []
    deadline = time.monotonic() + 30
    while len(got) < len(stored) and time.monotonic() < deadline:
        batch = source.poll(3, 1.0)
        assert len(batch) <= 3
        got.extend(batch)
    assert sorted(key(e) for e in got) == sorted(key(e) for e in stored)


def test_a_poll_with_nothing_new_waits_out_its_timeout(stream: Stream) -> None:
    stored = story(stream, tickets=1, replies=0)
    source = stream.consumer()
    assert len(until(source, len(stored))) == len(stored)
    began = time.monotonic()
    assert source.poll(10, 0.5) == []
    assert 0.4 <= time.monotonic() - began < 3.0


def test_a_poll_returns_what_is_appended_while_it_waits(stream: Stream) -> None:
    source = stream.consumer()
    assert drain(source, idle=1.0) == []  # joined, nothing yet
    stored = story(stream, tickets=2, replies=1)
    got = until(source, len(stored), timeout=10)
    assert sorted(key(e) for e in got) == sorted(key(e) for e in stored)


def test_a_new_consumer_of_the_group_starts_after_the_commit(stream: Stream) -> None:
    first = story(stream)
    source = stream.consumer()
    assert len(until(source, len(first)) + drain(source, idle=0.5)) == len(first)
    source.commit()
    source.close()
    later = story(stream, tickets=2, replies=1)
    resumed = stream.consumer()
    got = until(resumed, len(later)) + drain(resumed)
    assert sorted(key(e) for e in got) == sorted(key(e) for e in later)


def test_what_was_polled_and_not_committed_comes_again(stream: Stream) -> None:
    stored = story(stream)
    source = stream.consumer()
    polled = until(source, 3, limit=3)
    source.commit()  # the first batch applied and acknowledged ...
    rest = until(source, len(stored) - len(polled))  # ... the rest polled, then a crash
    assert sorted(key(e) for e in polled + rest) == sorted(key(e) for e in stored)
    source.close()
    again = stream.consumer()
    redelivered = until(again, len(rest)) + drain(again)
    assert sorted(key(e) for e in redelivered) == sorted(key(e) for e in rest)
    assert per_aggregate(redelivered) == per_aggregate(rest)
