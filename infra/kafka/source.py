"""The projection engine's stream source on Kafka: one consumer of a projector's group.

Each instance of a projector joins the group ``<prefix><projector>`` and gets some of the
topic's partitions. ``poll`` decodes the next messages (in order within each partition) into
envelopes with the domain event rebuilt by the application's mapper; ``commit`` stores the
offsets after the last polled message of each partition, and the runner calls it only after
the store committed. A commit refused because the group rebalanced is harmless: whoever owns
the partition now starts at the previous commit, and the store drops what it has applied.

Hand-over: ``close`` leaves the group (a LeaveGroup request), so a stopped member's
partitions move at the survivors' next heartbeat instead of after the session timeout; the
members use the cooperative sticky assignor (KIP-429), so a rebalance moves only the
partitions that change owner and the others keep being consumed (docs/operations.md has the
measured timings).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import Any

from eventsourcing.persistence import Mapper
from kafka import ConsumerRebalanceListener, KafkaConsumer
from kafka.coordinator.assignors.cooperative_sticky import CooperativeStickyAssignor
from kafka.errors import CommitFailedError
from kafka.structs import OffsetAndMetadata, TopicPartition

from infra.kafka.message import decode
from projections.ports import Envelope

log = logging.getLogger(__name__)


def consumer(
    bootstrap: str,
    topic: str,
    group_id: str,
    *,
    session_timeout_ms: int = 10_000,
    heartbeat_interval_ms: int = 3_000,
    **config: Any,
) -> KafkaConsumer:
    kafka_consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=group_id,
        client_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=session_timeout_ms,
        heartbeat_interval_ms=heartbeat_interval_ms,
        # A fetch returns after at most 100 ms when little is new (the default 500 ms would
        # be most of a live event's lag).
        fetch_max_wait_ms=config.pop("fetch_max_wait_ms", 100),
        partition_assignment_strategy=config.pop(
            "partition_assignment_strategy", (CooperativeStickyAssignor,)
        ),
        **config,
    )
    kafka_consumer.subscribe([topic], listener=_LogAssignments(group_id, kafka_consumer))
    return kafka_consumer


class _LogAssignments(ConsumerRebalanceListener):  # type: ignore[misc]
    """Says which partitions this member owns after every rebalance (operations, tests).

    With cooperative rebalancing the callbacks name only the partitions that moved; the line
    "partitions assigned" lists every partition the member owns afterwards."""

    def __init__(self, group_id: str, consumer: KafkaConsumer) -> None:
        self.group_id = group_id
        self._consumer = consumer

    def on_partitions_revoked(self, revoked: Any) -> None:
        log.info("%s: partitions revoked %s", self.group_id, _numbers(revoked))

    def on_partitions_assigned(self, assigned: Any) -> None:
        log.info("%s: partitions assigned %s", self.group_id, _numbers(self._consumer.assignment()))

    def on_partitions_lost(self, lost: Any) -> None:
        log.warning("%s: partitions lost %s (session expired)", self.group_id, _numbers(lost))


def _numbers(partitions: Any) -> list[int]:
    return sorted(tp.partition for tp in partitions)


class KafkaStreamSource:
    def __init__(self, consumer: KafkaConsumer, mapper: Mapper[Any]) -> None:
        self._consumer = consumer
        self._to_event: Callable[[Any], Any] = mapper.to_domain_event
        self._pending: dict[TopicPartition, int] = {}  # offset after the last one polled
        self._first: dict[TopicPartition, int] = {}  # first offset polled since the commit

    def poll(self, limit: int, timeout: float) -> Sequence[Envelope]:
        records = self._consumer.poll(timeout_ms=int(timeout * 1000), max_records=limit)
        envelopes: list[Envelope] = []
        for partition, messages in records.items():
            for message in messages:
                position, stored = decode(message.value)
                envelopes.append(Envelope(position, self._to_event(stored)))
            self._first.setdefault(partition, messages[0].offset)
            self._pending[partition] = messages[-1].offset + 1
        return envelopes

    def commit(self) -> None:
        if not self._pending:
            return
        offsets = {tp: OffsetAndMetadata(o, "", -1) for tp, o in self._pending.items()}
        self._pending = {}
        self._first = {}
        try:
            self._consumer.commit(offsets)
        except CommitFailedError:
            log.warning("offset commit refused (the group rebalanced); events will repeat")

    def rewind(self) -> None:
        """Poll again what was polled since the last commit (the store did not keep it: its
        batch failed). Skipping those events would leave a gap the store refuses later."""
        first, self._first, self._pending = self._first, {}, {}
        for partition, offset in first.items():
            # A partition no longer ours (ValueError): its owner starts at the committed offset.
            with contextlib.suppress(ValueError):
                self._consumer.seek(partition, offset)

    def close(self) -> None:
        self._consumer.close()
