"""A Kafka member catches up on a broker that takes longer to read its stored batches than the
member's fetch wait (the 300 s fault run, seed 808: ``read_models`` stayed behind for good).

The broker is Tansu keeping its data in S3 (``moto_server``), reached through a proxy that
holds every S3 answer 250 ms: every read of stored batches then takes longer than the
member's 100 ms fetch wait, and Tansu answers such a fetch with nothing. Before the fix every
poll came back empty and the member never moved; now it lengthens its fetch wait while it is
behind, and shortens it again at the end."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection

from command_api.application import get_application
from config import bootstrap
from infra.kafka import source as kafka_source
from tests.integration.test_kafka import applied_versions, latest_versions
from tests.support.history import generate
from tests.support.kafka import RestartableBroker
from tests.support.netfault import FaultProxy

NAME = "read_models"
S3_DELAY = 0.25  # seconds each S3 answer is held: more than the 100 ms fetch wait


@pytest.fixture
def slow_storage_broker() -> Iterator[RestartableBroker]:
    """A restartable broker whose S3 answers come through a proxy holding each 250 ms."""
    broker = RestartableBroker()
    proxy = FaultProxy()
    try:
        s3_port = int(broker.env["AWS_ENDPOINT"].rsplit(":", 1)[1])
        proxy.add("s3", s3_port)
        broker.stop_broker()
        broker.env["AWS_ENDPOINT"] = f"http://{proxy.address('s3')}"
        broker.start()
        proxy.slow("s3", S3_DELAY)
        yield broker
    finally:
        broker.close()
        proxy.close()


@pytest.mark.django_db
def test_a_member_behind_catches_up_on_a_broker_slower_to_read_than_its_fetch_wait(
    slow_storage_broker: RestartableBroker, settings: Any
) -> None:
    name = f"deskstream.test.slow.{time.monotonic_ns()}"
    settings.KAFKA_BOOTSTRAP = slow_storage_broker.bootstrap
    settings.KAFKA_TOPIC = name
    settings.KAFKA_PARTITIONS = 3
    settings.KAFKA_GROUP_PREFIX = name + "."
    settings.KAFKA_SESSION_TIMEOUT_MS = 3000
    settings.KAFKA_HEARTBEAT_MS = 500
    assert bootstrap.ensure_topic()
    # Only this test's events go to the topic: a worker's log holds thousands more from
    # earlier files, which at 250 ms per S3 answer took longer than the deadline to read.
    start = bootstrap.event_source().head()
    own = set(generate(get_application(), tickets=8, steps=80, seed=81))
    with connection.cursor() as cur:
        cur.execute(
            "INSERT INTO kafka_relay_position (topic, position, updated_at) VALUES (%s, %s, now())",
            [name, start],
        )
    relay = bootstrap.relay()
    try:
        relay.catch_up()
    finally:
        relay.close()

    runner = bootstrap.kafka_runner(NAME)
    source = runner.source
    assert isinstance(source, kafka_source.KafkaStreamSource)
    assert source.fetch_wait_ms == kafka_source.FETCH_WAIT_MS
    target = {k: v for k, v in latest_versions().items() if k in own}
    assert len(target) == len(own)
    raised = kafka_source.FETCH_WAIT_MS
    deadline = time.monotonic() + 90
    try:
        while {k: v for k, v in applied_versions(NAME).items() if k in own} != target:
            assert time.monotonic() < deadline, (
                f"the member did not catch up: fetch wait {source.fetch_wait_ms} ms"
            )
            runner.step(0.5)
            raised = max(raised, source.fetch_wait_ms)
        assert raised > kafka_source.FETCH_WAIT_MS  # what got it there
        # At the end of its partitions, it goes back to the short wait (a live event's lag).
        deadline = time.monotonic() + 30
        while source.fetch_wait_ms != kafka_source.FETCH_WAIT_MS:
            assert time.monotonic() < deadline, source.fetch_wait_ms
            runner.step(0.5)
    finally:
        runner.source.close()
