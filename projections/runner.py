"""Runs a projector: read a batch after its position, apply it, commit, repeat; then wait.

The read happens inside the batch, after the store has locked the projector's position, so
a second instance, a crash or a rebuild swap can never make this runner apply an event
twice or skip one: it always continues from the committed position.
"""

from __future__ import annotations

import bisect
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from projections.ports import (
    BulkProjectionStore,
    Envelope,
    EventSource,
    ProjectionStore,
    StreamProjectionStore,
    StreamSource,
)

DEFAULT_BATCH = 1000

# At DEBUG, one line per event a projector applied, with the event's correlation id
# (docs/operations.md#following-one-command): one command followed through every projector.
trace = logging.getLogger("deskstream.projector")


def log_applied(projector: str, envelopes: Sequence[Envelope]) -> None:
    if not trace.isEnabledFor(logging.DEBUG):
        return
    for e in envelopes:
        trace.debug(
            "event applied",
            extra={
                "projector": projector,
                "position": e.position,
                "event_type": type(e.event).__qualname__,
                "correlation_id": e.metadata.get("correlation_id"),
                "request_id": e.metadata.get("request_id"),
            },
        )


@dataclass
class Progress:
    done: int
    total: int
    position: int
    head: int
    elapsed: float

    @property
    def rate(self) -> float:
        return self.done / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def eta(self) -> float:
        remaining = max(self.total - self.done, 0)
        return remaining / self.rate if self.rate > 0 else 0.0


class ProjectionRunner:
    def __init__(
        self,
        source: EventSource,
        store: ProjectionStore,
        *,
        batch_size: int = DEFAULT_BATCH,
        interval: float = 0.0,
        name: str = "",
    ) -> None:
        self.source = source
        self.store = store
        self.batch_size = batch_size
        self.name = name  # the projector's, for its log lines
        # ``run``: seconds from the start of one batch to the start of the next, at least
        # (unless the last one was full). Under a stream of small appends a batch then takes
        # what came in that time, instead of each paying a transaction, a position lock and
        # its statements for a few events; an event after a quiet spell goes at once.
        self.interval = interval
        # Catching up, the next batch is read (and decoded) while this one is applied: the
        # log only grows, and a read-ahead is used only if it starts at the locked position.
        self._ahead: tuple[int, Future[Sequence[Envelope]]] | None = None
        self.seen = 0  # the position the last batch left (as far as this runner knows)

    def step(self, read_ahead: Callable[[int], None] | None = None) -> int:
        """Apply at most one batch; return how many events it applied. ``read_ahead`` is
        told the batch's last position before the batch is applied."""
        with self.store.batch() as batch:
            envelopes = self._read(batch.position)
            if not envelopes:
                self.seen = batch.position
                return 0
            if read_ahead is not None:
                read_ahead(envelopes[-1].position)
            before = batch.position
            batch.apply(envelopes)
            self.seen = batch.position
        log_applied(self.name, envelopes)
        return sum(1 for e in envelopes if e.position > before)

    def _read(self, after: int) -> Sequence[Envelope]:
        ahead, self._ahead = self._ahead, None
        if ahead is not None:
            if ahead[0] == after:
                return ahead[1].result()
            ahead[1].exception()  # wait: reads never overlap, whatever the source
        return self.source.read(after, self.batch_size)

    def catch_up(
        self,
        *,
        until: int | None = None,
        on_progress: Callable[[Progress], None] | None = None,
        bulk: bool = False,
    ) -> int:
        """Apply batches until the position reaches ``until`` (default: the head now).

        ``bulk``: when the store can (``BulkProjectionStore``), the whole catch-up is one
        unit of work instead of one per batch (a rebuild loading its private copy)."""
        target = self.source.head() if until is None else until
        start_position = self.store.position()
        total = max(target - start_position, 0)
        started = time.monotonic()
        done = 0
        with ThreadPoolExecutor(1, thread_name_prefix="read-ahead") as reader:

            def read_ahead(last: int) -> None:
                if last < target:
                    self._ahead = (last, reader.submit(self.source.read, last, self.batch_size))

            def progressed(position: int) -> None:
                nonlocal done
                done = position - start_position
                if on_progress is not None:
                    elapsed = time.monotonic() - started
                    on_progress(Progress(done, total, position, target, elapsed))

            try:
                if bulk and isinstance(self.store, BulkProjectionStore):
                    with self.store.bulk() as batch:
                        while batch.position < target:
                            envelopes = self._read(batch.position)
                            if not envelopes:
                                break
                            read_ahead(envelopes[-1].position)
                            batch.apply(envelopes)
                            progressed(batch.position)
                    return done
                # ``step`` leaves in ``seen`` the position its batch locked and advanced (an
                # other instance's progress included): no query of the position per batch.
                position = start_position
                while position < target:
                    self.step(read_ahead)
                    if self.seen == position:
                        break  # nothing more to read (the head moved back?) - never spin
                    position = self.seen
                    progressed(position)
            finally:
                self._ahead = None
        return done

    def run(self, stop: threading.Event, *, idle_timeout: float = 1.0) -> None:
        """Follow the log until ``stop`` is set: catch up, then apply new events as they come.

        A batch is opened only once the source says there may be events after the position
        the last batch left (``wait`` returns at once then), not to find out that there are
        none: an empty batch is a transaction and a position lock for nothing. On a shared
        log reader, a ``wait`` that ran out is asked again (``ready``) rather than followed
        by a batch: idle projectors open no batch at all. The position
        it waits from can be stale (another instance, a rebuild's swap) only by being
        behind, and then ``wait`` returns at once and the next batch reads from the locked
        position as always. Batches start at least ``interval`` apart (unless the last one
        was full): what happens in a batch, and so exactly-once, is the same either way."""
        self.seen = self.store.position()
        next_batch = 0.0  # time.monotonic() before which no batch starts (``interval``)
        while not stop.is_set():
            self.source.wait(self.seen, idle_timeout)
            if stop.is_set():
                break
            if isinstance(self.source, _SharedSource) and not self.source.ready(self.seen):
                continue  # the wait ran out with nothing after ``seen``: no empty batch
            delay = next_batch - time.monotonic()
            if delay > 0 and stop.wait(delay):
                break
            next_batch = time.monotonic() + self.interval
            if self.step() >= self.batch_size:
                next_batch = 0.0  # catching up: the next batch at once


def rebuild(
    source: EventSource,
    live: ProjectionStore,
    make_shadow: Callable[[], ProjectionStore],
    swap_in: Callable[[ProjectionStore], int],
    *,
    batch_size: int = DEFAULT_BATCH,
    on_progress: Callable[[Progress], None] | None = None,
) -> int:
    """Rebuild beside the live copy, then swap it in. Returns the position of the swap."""
    shadow = make_shadow()
    runner = ProjectionRunner(source, shadow, batch_size=batch_size)
    runner.catch_up(on_progress=on_progress, bulk=True)
    # Events stored during the rebuild: catch up again, then swap (the swap itself waits
    # for the live projector's current batch; the live runner resumes from the swap point).
    runner.catch_up()
    return swap_in(shadow)


class StreamRunner:
    """Runs a projector on a ``StreamSource`` (a Kafka consumer group): poll, apply, commit.

    The store must drop events it has already applied by (aggregate id, version), because a
    stream delivers at least once: after a crash between the store's commit and the source's
    commit, or when a rebalance hands a partition to another instance, events come again.
    The source's commit happens only after the store's commit, so nothing is ever skipped.
    """

    def __init__(
        self,
        source: StreamSource,
        store: StreamProjectionStore,
        *,
        batch_size: int = DEFAULT_BATCH,
        name: str = "",
    ) -> None:
        self.source = source
        self.store = store
        self.batch_size = batch_size
        self.name = name

    def step(self, timeout: float = 1.0) -> int:
        """Apply what one poll returns; return how many events were new to the store."""
        return self._step(timeout)[1]

    def catch_up(self, *, idle: float = 2.0) -> int:
        """Apply until a poll waits ``idle`` seconds and gets nothing; return events applied."""
        done = 0
        while True:
            polled, applied = self._step(idle)
            if polled == 0:
                return done
            done += applied

    def _step(self, timeout: float) -> tuple[int, int]:
        envelopes = self.source.poll(self.batch_size, timeout)
        if not envelopes:
            return 0, 0
        try:
            with self.store.batch() as batch:
                batch.apply(envelopes)
                applied = batch.applied
        except BaseException:
            self.source.rewind()  # rolled back: those events must come again
            raise
        self.source.commit()
        log_applied(self.name, envelopes)
        return len(envelopes), applied

    def run(self, stop: threading.Event, *, idle_timeout: float = 0.25) -> None:
        """Poll and apply until ``stop`` is set. A poll with nothing new returns after
        ``idle_timeout``: the longest a stop waits before the member can leave its group."""
        while not stop.is_set():
            self.step(idle_timeout)


class SharedLog:
    """One reader of an ``EventSource`` for several runners of one process.

    Run as projectors of one process, every runner read and decoded every event itself.
    Here one thread (``follow``) reads the log once, keeps the newest decoded envelopes in
    memory, and wakes the runners; each runner still takes its own position lock and reads
    "after my position" from ``source()``, so nothing about exactly-once changes: a read
    the memory window covers is answered from it, any other from the source itself. The
    window is contiguous: it holds every event after ``start`` up to the reader's position
    (the log becomes visible in position order, so a read never skips one).
    """

    def __init__(
        self,
        source: EventSource,
        *,
        batch_size: int = DEFAULT_BATCH,
        keep: int = 20_000,
        interval: float = 0.0,
    ) -> None:
        self.upstream = source
        self.batch_size = batch_size
        self.keep = keep
        # Seconds the reader lets new events gather after a read that was not full (as a
        # runner's ``interval``): one read per interval under load, not one per append.
        self.interval = interval
        self._cond = threading.Condition()
        self._envelopes: list[Envelope] = []
        self._positions: list[int] = []
        self._start: int | None = None  # the window holds every event after this position
        self._end = 0  # ... up to and including this one (the reader's position)

    def follow(self, stop: threading.Event, *, idle_timeout: float = 1.0) -> None:
        """The reader: from the head now, read each new event once; until ``stop`` is set."""
        if self._start is None:
            head = self.upstream.head()
            with self._cond:
                self._start = self._end = head
                self._cond.notify_all()
        while not stop.is_set():
            envelopes = self.upstream.read(self._end, self.batch_size)
            if not envelopes:
                self.upstream.wait(self._end, idle_timeout)
                continue
            with self._cond:
                self._envelopes.extend(envelopes)
                self._positions.extend(e.position for e in envelopes)
                self._end = envelopes[-1].position
                excess = len(self._envelopes) - self.keep
                if excess > 0:
                    self._start = self._positions[excess - 1]
                    del self._envelopes[:excess], self._positions[:excess]
                self._cond.notify_all()
            if self.interval > 0 and len(envelopes) < self.batch_size:
                stop.wait(self.interval)

    def source(self) -> EventSource:
        return _SharedSource(self)

    def _read(self, after: int, limit: int) -> Sequence[Envelope] | None:
        """From the window, or None when the window does not cover ``after``."""
        with self._cond:
            if self._start is None or after < self._start or after > self._end:
                return None
            i = bisect.bisect_right(self._positions, after)
            return self._envelopes[i : i + limit]

    def _wait(self, after: int, timeout: float) -> None:
        with self._cond:
            if self._start is not None and self._holds_after(after):
                return  # there is something after ``after`` to read already
            self._cond.wait(timeout)

    def _ready(self, after: int) -> bool:
        """Whether a batch from ``after`` may find events: False only when the reader has
        read the log up to ``after`` and found nothing after it (a runner's read would then
        be answered from the window, empty). Before the reader starts: True."""
        with self._cond:
            return self._start is None or self._holds_after(after)

    def _holds_after(self, after: int) -> bool:
        assert self._start is not None
        return after < self._start or after < self._end


class _SharedSource:
    """A runner's ``EventSource`` over a ``SharedLog``."""

    def __init__(self, log: SharedLog) -> None:
        self._log = log

    def head(self) -> int:
        return self._log.upstream.head()

    def read(self, after: int, limit: int) -> Sequence[Envelope]:
        envelopes = self._log._read(after, limit)
        if envelopes is None:  # behind the window (catching up): read it ourselves
            return self._log.upstream.read(after, limit)
        return envelopes

    def wait(self, after: int, timeout: float) -> None:
        self._log._wait(after, timeout)  # the reader alone listens for new events

    def ready(self, after: int) -> bool:
        return self._log._ready(after)

    def close(self) -> None:
        pass
