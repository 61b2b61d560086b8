"""The relay: tails the event store's notification log and publishes every event to Kafka.

One step, inside one database transaction: lock the relay's row for its topic (a second
relay waits, so two never publish the same range at once), read the events after its
position, send them all (idempotent producer, ``acks=all``), flush, check that the broker
acknowledged every one at an offset, and only then store the new position and commit. Killed at any
moment, the relay starts again from the last stored position: it re-publishes at most the
one batch that was in flight, and never skips an event. Consumers drop the duplicates by
(aggregate id, version).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

from django.db import connection, transaction
from eventsourcing.persistence import Notification
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import KafkaError, KafkaTimeoutError, TopicAlreadyExistsError

from infra.kafka.message import encode

log = logging.getLogger(__name__)

ReadNotifications = Callable[[int, int], Sequence[Notification]]  # (after, limit)
Wait = Callable[[int, float], None]  # (after, timeout)


def ensure_topic(bootstrap: str, topic: str, partitions: int, replication: int = 1) -> bool:
    """Create the topic with ``partitions`` partitions unless it exists; True if created.

    The partition count is fixed at creation: a ticket's partition is its key's hash modulo
    the count, so adding partitions later would move tickets (see ADR 0014)."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="deskstream-admin")
    try:
        admin.create_topics([NewTopic(topic, partitions, replication)])
    except TopicAlreadyExistsError:
        return False
    finally:
        admin.close()
    return True


def producer(bootstrap: str, **config: Any) -> KafkaProducer:
    return KafkaProducer(
        bootstrap_servers=bootstrap,
        client_id="deskstream-relay",
        enable_idempotence=True,
        acks="all",
        linger_ms=5,
        batch_size=256 * 1024,
        max_in_flight_requests_per_connection=5,
        **config,
    )


def _abandon(producer: KafkaProducer) -> None:
    """Close a producer without waiting for what it still holds (a batch whose position was
    not stored: the relay sends it again)."""
    try:
        producer.close(timeout=0)
    except KafkaTimeoutError:
        # kafka-python 3.0.12 flushes before it force-closes, and a flush of 0 s raises while
        # batches are pending: stop its sender here, so it neither delivers them later nor
        # retries in the background (and its __del__ does not try to close it again).
        sender = getattr(producer, "_sender", None)
        if sender is not None:
            sender.force_close()
        producer._closed = True


class UnplacedRecordError(KafkaError):  # type: ignore[misc]
    """The broker acknowledged a record without saying at which offset it stored it."""

    retriable = True

    def __init__(self, position: int, partition: int) -> None:
        super().__init__(
            f"the broker acknowledged position {position} on partition {partition} without an "
            "offset: sending the batch again"
        )


class KafkaRelay:
    """``make_producer`` opens the producer, at first use and again after ``reset`` (a
    producer that lived through a broker outage may hold a stale connection or sequence)."""

    def __init__(
        self,
        make_producer: Callable[[], KafkaProducer],
        topic: str,
        read: ReadNotifications,
        wait: Wait,
        *,
        batch_size: int = 500,
        flush_timeout: float = 30.0,
        after_publish: Callable[[int], None] | None = None,
    ) -> None:
        self._make_producer = make_producer
        self._producer: KafkaProducer | None = None
        self.topic = topic
        self.batch_size = batch_size
        self._read = read
        self._wait = wait
        self._flush_timeout = flush_timeout
        self._after_publish = after_publish  # fault injection in the crash tests

    @property
    def producer(self) -> KafkaProducer:
        if self._producer is None:
            self._producer = self._make_producer()
        return self._producer

    def position(self) -> int:
        with connection.cursor() as cur:
            cur.execute("SELECT position FROM kafka_relay_position WHERE topic = %s", [self.topic])
            row = cur.fetchone()
        return int(row[0]) if row else 0

    def step(self) -> int:
        """Publish at most one batch; return how many events it published."""
        with transaction.atomic(), connection.cursor() as cur:
            cur.execute(
                "INSERT INTO kafka_relay_position (topic, position, updated_at) "
                "VALUES (%s, 0, now()) ON CONFLICT (topic) DO NOTHING",
                [self.topic],
            )
            cur.execute(
                "SELECT position FROM kafka_relay_position WHERE topic = %s FOR UPDATE",
                [self.topic],
            )
            (position,) = cur.fetchone()
            notifications = self._read(int(position), self.batch_size)
            if not notifications:
                return 0
            self.publish(notifications)
            if self._after_publish is not None:
                self._after_publish(len(notifications))
            cur.execute(
                "UPDATE kafka_relay_position SET position = %s, updated_at = now() "
                "WHERE topic = %s",
                [notifications[-1].id, self.topic],
            )
            return len(notifications)

    def publish(self, notifications: Sequence[Notification]) -> None:
        """Send and wait until the broker has acknowledged every one at an offset (raises if
        not). An acknowledgement without an offset (-1) is not taken as a delivery: kafka-python
        reports a DUPLICATE_SEQUENCE_NUMBER answer as a success at offset -1, and Tansu 0.6.0
        (the test broker) gives that answer after a restart for batches it never stored
        (tests/integration/test_kafka_outages.py); the step fails instead, and the relay sends
        the batch again from its stored position with a new producer (consumers drop copies)."""
        futures = []
        for notification in notifications:
            message = encode(notification)
            futures.append(
                self.producer.send(
                    self.topic, key=message.key, value=message.value, headers=message.headers
                )
            )
        self.producer.flush(timeout=self._flush_timeout)
        for notification, future in zip(notifications, futures, strict=True):
            metadata = future.get(timeout=self._flush_timeout)
            if metadata.offset < 0:
                raise UnplacedRecordError(notification.id, metadata.partition)

    def catch_up(self) -> int:
        """Publish until the log's end; return how many events were published."""
        done = 0
        while published := self.step():
            done += published
        return done

    def run(self, stop: threading.Event, *, idle_timeout: float = 1.0) -> None:
        while not stop.is_set():
            if self.step() == 0:
                self._wait(self.position(), idle_timeout)

    def reset(self) -> None:
        """Drop the producer after an error (the next step opens a new one): whatever it had
        not delivered belongs to a batch whose position was not stored, so it is sent again."""
        producer, self._producer = self._producer, None
        if producer is not None:
            _abandon(producer)

    def close(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            try:
                producer.close(timeout=self._flush_timeout)
            except KafkaTimeoutError:  # the broker is gone: what it holds is sent again later
                _abandon(producer)
