"""The projection engine's stream source on Kafka: one consumer of a projector's group.

Each instance of a projector joins the group ``<prefix><projector>`` and gets some of the
topic's partitions. ``poll`` decodes the next messages (in order within each partition) into
envelopes with the domain event rebuilt by the application's mapper; ``commit`` stores the
offsets after the last polled message of each partition, and the runner calls it only after
the store committed. A commit refused because the group rebalanced is harmless: whoever owns
the partition now starts at the previous commit, and the store drops what it has applied.

Hand-over: ``close`` leaves the group (a LeaveGroup request), so a stopped member's
partitions move at the survivors' next heartbeat instead of after the session timeout.
``DESKSTREAM_KAFKA_ASSIGNOR`` chooses the rebalance protocol: ``range`` (eager: every member
gives up all its partitions at each rebalance, then gets its share back) or
``cooperative-sticky`` (KIP-429: only the partitions that change owner stop, in two rounds);
ADR 0014 and docs/operations.md have the measured timings of both.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import Any

from eventsourcing.persistence import Mapper
from kafka import ConsumerRebalanceListener, KafkaConsumer
from kafka.coordinator.assignors.cooperative_sticky import CooperativeStickyAssignor
from kafka.coordinator.assignors.range import RangePartitionAssignor
from kafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
from kafka.errors import CommitFailedError, RebalanceInProgressError
from kafka.structs import OffsetAndMetadata, TopicPartition

from infra.event_metadata import decoder
from infra.kafka.message import decode
from projections.ports import Envelope

log = logging.getLogger(__name__)

ASSIGNORS: dict[str, tuple[type[Any], ...]] = {
    "range": (RangePartitionAssignor, RoundRobinPartitionAssignor),  # kafka-python's default
    "cooperative-sticky": (CooperativeStickyAssignor,),
}


def consumer(
    bootstrap: str,
    topic: str,
    group_id: str,
    *,
    session_timeout_ms: int = 10_000,
    heartbeat_interval_ms: int = 3_000,
    assignor: str = "range",
    **config: Any,
) -> KafkaConsumer:
    """A member of ``group_id`` subscribed to ``topic``. Every member of a group must use the
    same ``assignor`` (change it with all of them stopped)."""
    if assignor not in ASSIGNORS:
        raise ValueError(f"unknown assignor {assignor!r}; one of {', '.join(ASSIGNORS)}")
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
        partition_assignment_strategy=ASSIGNORS[assignor],
        **config,
    )
    kafka_consumer.subscribe([topic], listener=_LogAssignments(group_id, kafka_consumer))
    return kafka_consumer


class _LogAssignments(ConsumerRebalanceListener):  # type: ignore[misc]
    """Says which partitions this member owns after every change (operations, tests): a line
    "partitions owned [...]" with what moved in brackets after it. (Eager rebalancing revokes
    everything and assigns the new set; cooperative names only the partitions that moved.)"""

    def __init__(self, group_id: str, consumer: KafkaConsumer) -> None:
        self.group_id = group_id
        self._consumer = consumer

    def _owned(self, change: str, partitions: Any) -> None:
        log.info(
            "%s: partitions owned %s (%s %s)",
            self.group_id,
            _numbers(self._consumer.assignment()),
            change,
            _numbers(partitions),
        )

    def on_partitions_revoked(self, revoked: Any) -> None:
        self._owned("revoked", revoked)

    def on_partitions_assigned(self, assigned: Any) -> None:
        self._owned("assigned", assigned)

    def on_partitions_lost(self, lost: Any) -> None:
        log.warning("%s: partitions lost %s (session expired)", self.group_id, _numbers(lost))


def _numbers(partitions: Any) -> list[int]:
    return sorted(tp.partition for tp in partitions)


class KafkaStreamSource:
    def __init__(self, consumer: KafkaConsumer, mapper: Mapper[Any]) -> None:
        self._consumer = consumer
        self._decode: Callable[[Any], Any] = decoder(mapper)  # (event, metadata)
        self._pending: dict[TopicPartition, int] = {}  # offset after the last one polled
        self._first: dict[TopicPartition, int] = {}  # first offset polled since the commit

    def poll(self, limit: int, timeout: float) -> Sequence[Envelope]:
        records = self._consumer.poll(timeout_ms=int(timeout * 1000), max_records=limit)
        envelopes: list[Envelope] = []
        for partition, messages in records.items():
            for message in messages:
                position, stored = decode(message.value)
                envelopes.append(Envelope(position, *self._decode(stored)))
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
        except (CommitFailedError, RebalanceInProgressError):
            log.warning("offset commit refused (the group rebalances); events will repeat")

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
