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

Fetch wait: a fetch asks the broker to wait at most ``FETCH_WAIT_MS`` (100 ms) for new
messages, so a live event is not held back. A broker whose storage takes longer than that to
read stored batches may answer every such fetch with nothing although the partition has more
(Tansu on S3 storage does, once a partition holds a few thousand batches: the 300 s fault run
saw a member stay behind for good). So when polls come back empty while the member's
partitions end beyond its positions, the wait doubles (up to ``MAX_FETCH_WAIT_MS``), and it
returns to the short one once the member is at the end again.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from eventsourcing.persistence import Mapper
from kafka import ConsumerRebalanceListener, KafkaConsumer
from kafka.coordinator.assignors.cooperative_sticky import CooperativeStickyAssignor
from kafka.coordinator.assignors.range import RangePartitionAssignor
from kafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
from kafka.errors import CommitFailedError, KafkaError, RebalanceInProgressError
from kafka.structs import OffsetAndMetadata, TopicPartition

from infra.event_metadata import decoder
from infra.kafka.message import decode
from projections.ports import Envelope

log = logging.getLogger(__name__)

ASSIGNORS: dict[str, tuple[type[Any], ...]] = {
    "range": (RangePartitionAssignor, RoundRobinPartitionAssignor),  # kafka-python's default
    "cooperative-sticky": (CooperativeStickyAssignor,),
}
# The broker waits at most this long for new messages before it answers a fetch (the default
# 500 ms would be most of a live event's lag); raised while the member is behind and its
# fetches come back empty (``KafkaStreamSource``), up to MAX_FETCH_WAIT_MS.
FETCH_WAIT_MS = 100
MAX_FETCH_WAIT_MS = 5_000
LAG_CHECK_INTERVAL = 1.0  # seconds of empty polls between two looks at the partitions' ends


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
        fetch_max_wait_ms=config.pop("fetch_max_wait_ms", FETCH_WAIT_MS),
        partition_assignment_strategy=ASSIGNORS[assignor],
        # The topic is created with its fixed partition count (``relay.ensure_topic``, which
        # a member runs first too), not by the broker on a member's metadata request with the
        # broker's default count. Apache Kafka honours this flag; Tansu creates the topic
        # anyway, hence the member's ``ensure_topic`` (tests/integration/test_kafka.py).
        allow_auto_create_topics=config.pop("allow_auto_create_topics", False),
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


def _set_fetch_wait(consumer: KafkaConsumer, wait_ms: int) -> None:
    """The wait the next fetch requests ask for. kafka-python (3.0.12, pinned) reads its
    fetcher's ``fetch_max_wait_ms`` for each request and has no public setter;
    tests/integration/test_kafka_slow_storage.py fails if this stops taking effect."""
    consumer.config["fetch_max_wait_ms"] = wait_ms
    consumer._fetcher.config["fetch_max_wait_ms"] = wait_ms


def _numbers(partitions: Any) -> list[int]:
    return sorted(tp.partition for tp in partitions)


class KafkaStreamSource:
    def __init__(
        self,
        consumer: KafkaConsumer,
        mapper: Mapper[Any],
        *,
        max_fetch_wait_ms: int = MAX_FETCH_WAIT_MS,
    ) -> None:
        self._consumer = consumer
        self._decode: Callable[[Any], Any] = decoder(mapper)  # (event, metadata)
        self._pending: dict[TopicPartition, int] = {}  # offset after the last one polled
        self._first: dict[TopicPartition, int] = {}  # first offset polled since the commit
        self.fetch_wait_ms = self._short_wait = int(consumer.config["fetch_max_wait_ms"])
        self._max_wait = max(max_fetch_wait_ms, self._short_wait)
        self._empty_since: float | None = None  # first of the empty polls in a row

    def poll(self, limit: int, timeout: float) -> Sequence[Envelope]:
        records = self._consumer.poll(timeout_ms=int(timeout * 1000), max_records=limit)
        self._adapt_fetch_wait(bool(records))
        envelopes: list[Envelope] = []
        for partition, messages in records.items():
            for message in messages:
                position, stored = decode(message.value)
                envelopes.append(Envelope(position, *self._decode(stored)))
            self._first.setdefault(partition, messages[0].offset)
            self._pending[partition] = messages[-1].offset + 1
        return envelopes

    def _adapt_fetch_wait(self, polled: bool) -> None:
        """After a second of empty polls: a member behind the end of its partitions waits
        twice as long per fetch (the broker may need longer to read stored batches than the
        short wait gives it); one at the end goes back to the short wait."""
        if polled:
            self._empty_since = None
            return
        now = time.monotonic()
        if self._empty_since is None:
            self._empty_since = now
            return
        if now - self._empty_since < LAG_CHECK_INTERVAL:
            return
        self._empty_since = now
        behind = self._behind()
        if behind is None:
            return
        wait = min(self.fetch_wait_ms * 2, self._max_wait) if behind else self._short_wait
        if wait != self.fetch_wait_ms:
            log.log(
                logging.WARNING if behind else logging.INFO,
                "fetches came back empty %s: the fetch wait is now %d ms",
                "while behind the end of the partitions" if behind else "at the end",
                wait,
            )
            self.fetch_wait_ms = wait
            _set_fetch_wait(self._consumer, wait)

    def _behind(self) -> bool | None:
        """Whether a partition of this member ends beyond its position (None: not known, as
        while the group rebalances or the broker is away)."""
        assigned = list(self._consumer.assignment())
        if not assigned:
            return None
        try:
            ends = self._consumer.end_offsets(assigned, timeout_ms=5_000)
            positions = {tp: self._consumer.position(tp, timeout_ms=0) for tp in assigned}
        except KafkaError:
            return None
        return any(positions[tp] is not None and end > positions[tp] for tp, end in ends.items())

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
