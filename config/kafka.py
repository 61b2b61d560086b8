"""Wiring of distributed mode: the relay, and projectors fed by the Kafka topic.

Which projectors may run with ``--source kafka``: those whose result does not depend on the
order of events *across* aggregates, because Kafka keeps order only within a partition (one
ticket's events). ``read_models`` (rows per ticket and agent; workloads and customer counts
are recounted from the rows) and ``sla`` (one clock per ticket) qualify. ``search`` does not
(a customer's document keeps the first and latest of their tickets in arrival order),
``notifications`` does not (its rebuild decides which e-mails were sent by a contiguous log
position) and ``assignment`` does not (it decides from agents' and tickets' state at a point
of the global order). Those run embedded, on the notification log, beside the others.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence

from django.conf import settings
from eventsourcing.persistence import Notification

from command_api.application import get_application
from config import projectors
from infra.kafka import relay as kafka_relay
from infra.kafka import source as kafka_source
from infra.postgres.projection_store import VersionedProjectionStore, log_table
from projections import sla, tickets
from projections.runner import StreamRunner

KAFKA_PROJECTORS = (tickets.NAME, sla.NAME)


class KafkaNotConfiguredError(RuntimeError):
    pass


def bootstrap() -> str:
    if not settings.KAFKA_BOOTSTRAP:
        raise KafkaNotConfiguredError("Set DESKSTREAM_KAFKA_BOOTSTRAP (host:port of a broker).")
    return str(settings.KAFKA_BOOTSTRAP)


def ensure_topic() -> bool:
    return kafka_relay.ensure_topic(
        bootstrap(), settings.KAFKA_TOPIC, settings.KAFKA_PARTITIONS, settings.KAFKA_REPLICATION
    )


def relay() -> kafka_relay.KafkaRelay:
    app = get_application()
    recorder = app.recorder
    log_source = projectors.event_source()

    def read(after: int, limit: int) -> Sequence[Notification]:
        return recorder.select_notifications(start=after, limit=limit, inclusive_of_start=False)

    crash_after = os.environ.get("DESKSTREAM_FAULT_RELAY_CRASH_AFTER")
    return kafka_relay.KafkaRelay(
        functools.partial(kafka_relay.producer, bootstrap()),
        settings.KAFKA_TOPIC,
        read,
        log_source.wait,
        batch_size=settings.RELAY_BATCH_SIZE,
        flush_timeout=settings.RELAY_SEND_TIMEOUT,
        after_publish=_crash_after(int(crash_after)) if crash_after else None,
    )


def _crash_after(batches: int) -> Callable[[int], None]:
    """Fault injection: the relay dies after its Nth publish was acknowledged, before it stores
    its position (``DESKSTREAM_FAULT_RELAY_CRASH_AFTER``)."""
    published = 0

    def hook(_: int) -> None:
        nonlocal published
        published += 1
        if published >= batches:
            os._exit(87)

    return hook


def store(name: str) -> VersionedProjectionStore:
    if name not in KAFKA_PROJECTORS:
        raise KeyError(
            f"{name!r} cannot run on Kafka (it needs the global order); "
            f"these can: {', '.join(KAFKA_PROJECTORS)}"
        )
    recorder = get_application().recorder
    return VersionedProjectionStore.like(projectors.store(name), log_table(recorder))  # type: ignore[arg-type]


def group_id(name: str) -> str:
    return f"{settings.KAFKA_GROUP_PREFIX}{name}"


def runner(name: str) -> StreamRunner:
    projection = store(name)
    crash_after = os.environ.get("DESKSTREAM_FAULT_CRASH_AFTER")
    if crash_after:
        projectors._crashing(projection, int(crash_after))  # wraps its handler in place
    consumer = kafka_source.consumer(
        bootstrap(),
        settings.KAFKA_TOPIC,
        group_id(name),
        session_timeout_ms=settings.KAFKA_SESSION_TIMEOUT_MS,
        heartbeat_interval_ms=settings.KAFKA_HEARTBEAT_MS,
        max_poll_records=settings.PROJECTION_BATCH_SIZE,
    )
    source = kafka_source.KafkaStreamSource(consumer, get_application().mapper)
    return StreamRunner(source, projection, batch_size=settings.PROJECTION_BATCH_SIZE)
