"""The ``AggregateLog`` port's contract (``projections/push.py``: one aggregate's stored events
with their log positions, for replays and the push projector's facts), run against
``PostgresAggregateLog`` and ``FakeEventLog``.

To add an implementation: a fixture ``<name>_log`` that returns a ``Log`` (the port, and how
to append an aggregate's new events to the log it reads), and ``<name>`` in
``IMPLEMENTATIONS``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from uuid import uuid4

import pytest

from domain.lifecycle import Role
from domain.ticket import Ticket
from projections.ports import Envelope
from projections.push import AggregateLog
from tests.support.fake_log import FakeEventLog

IMPLEMENTATIONS = ["fake", "postgres"]


@dataclass
class Log:
    log: AggregateLog
    append: Callable[[Any], list[Envelope]]  # an aggregate's new events, with their positions


@pytest.fixture
def fake_log() -> Log:
    log = FakeEventLog()
    return Log(log, log.append)


@pytest.fixture
def postgres_log(django_db_setup: Any) -> Iterator[Log]:
    from django.conf import settings

    from command_api.application import DeskstreamApplication, eventstore_env
    from infra.postgres.aggregate_log import PostgresAggregateLog

    app = DeskstreamApplication(eventstore_env(settings.DATABASES["default"], pool_size=2))

    def append(aggregate: Any) -> list[Envelope]:
        return [Envelope(r.notification.id, r.domain_event) for r in app.save(aggregate)]

    try:
        yield Log(PostgresAggregateLog(app.recorder, app.mapper), append)  # type: ignore[arg-type]
    finally:
        app.close()


@pytest.fixture(params=IMPLEMENTATIONS)
def log(request: pytest.FixtureRequest) -> Log:
    return request.getfixturevalue(f"{request.param}_log")  # type: ignore[no-any-return]


def ticket() -> Ticket:
    customer = uuid4().hex
    return Ticket.open(
        customer_id=customer,
        subject="Printer on fire",
        description="Smoke",
        actor_id=customer,
        actor_role=Role.CUSTOMER,
    )


def reply(t: Ticket, body: str) -> None:
    t.post_message(author_id="a1", author_role=Role.AGENT, body=body)


@pytest.fixture
def two_tickets(log: Log) -> tuple[list[Envelope], list[Envelope]]:
    """Two tickets of five and three events, appended interleaved; the envelopes of each."""
    a, b = ticket(), ticket()
    mine, other = log.append(a), log.append(b)
    for i in range(2):
        reply(a, f"a{i}")
        mine += log.append(a)
        reply(b, f"b{i}")
        other += log.append(b)
    reply(a, "a2")
    reply(a, "a3")
    mine += log.append(a)
    return mine, other


def keys(envelopes: Any) -> list[tuple[int, type, int]]:
    return [(e.position, type(e.event), e.version) for e in envelopes]


def test_an_aggregates_events_in_version_order_with_their_log_positions(
    log: Log, two_tickets: tuple[list[Envelope], list[Envelope]]
) -> None:
    mine, _ = two_tickets
    got = log.log.read_aggregate(mine[0].aggregate_id)
    assert keys(got) == keys(mine)
    assert [e.version for e in got] == [1, 2, 3, 4, 5]
    assert [e.event for e in got] == [e.event for e in mine]  # the domain events themselves
    positions = [e.position for e in got]
    assert positions == sorted(positions)
    assert positions[-1] - positions[0] > 4  # the other ticket's events lie between


def test_after_and_until_a_version(log: Log, two_tickets: Any) -> None:
    mine, _ = two_tickets
    aid = mine[0].aggregate_id
    assert keys(log.log.read_aggregate(aid, after_version=2)) == keys(mine[2:])
    assert keys(log.log.read_aggregate(aid, until_version=2)) == keys(mine[:2])
    assert keys(log.log.read_aggregate(aid, after_version=1, until_version=3)) == keys(mine[1:3])
    assert log.log.read_aggregate(aid, after_version=5) == []
    assert log.log.read_aggregate(aid, after_version=3, until_version=3) == []


def test_after_a_position(log: Log, two_tickets: Any) -> None:
    mine, _ = two_tickets
    aid = mine[0].aggregate_id
    assert keys(log.log.read_aggregate(aid, after_position=mine[1].position)) == keys(mine[2:])
    # Between two of its events: only the later ones.
    assert keys(log.log.read_aggregate(aid, after_position=mine[2].position + 1)) == keys(mine[3:])
    assert keys(
        log.log.read_aggregate(aid, after_position=mine[0].position, until_version=3)
    ) == keys(mine[1:3])
    assert log.log.read_aggregate(aid, after_position=mine[-1].position) == []


def test_each_aggregate_reads_only_its_own_and_an_unknown_one_none(
    log: Log, two_tickets: Any
) -> None:
    mine, other = two_tickets
    assert keys(log.log.read_aggregate(other[0].aggregate_id)) == keys(other)
    assert [e.version for e in other] == [1, 2, 3]
    assert keys(log.log.read_aggregate(mine[0].aggregate_id)) == keys(mine)
    assert log.log.read_aggregate(uuid4()) == []
