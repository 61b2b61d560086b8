"""The projection runner against in-memory ports: catching up reads the next batch ahead,
applies every event exactly once and in order, and never lets two reads overlap."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from types import SimpleNamespace
from uuid import uuid4

from projections.ports import Envelope
from projections.runner import ProjectionRunner, SharedLog, StreamRunner
from tests.support.fake_log import FakeBatch, FakeEventLog, FakeProjectionStore
from tests.support.wait import wait_until


def events(n: int) -> list[SimpleNamespace]:
    ticket = uuid4()
    return [SimpleNamespace(originator_id=ticket, originator_version=i) for i in range(1, n + 1)]


class Log(FakeEventLog):
    """The log in memory, holding ``n`` events; notes who read what and whether reads overlapped."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.record(events(n))
        self.reads: list[int] = []
        self.threads: set[str] = set()
        self._inside = 0
        self.overlapped = False
        self._lock = threading.Lock()

    def read(self, after: int, limit: int) -> Sequence[Envelope]:
        with self._lock:
            self._inside += 1
            self.overlapped |= self._inside > 1
        try:
            time.sleep(0.002)  # long enough for a concurrent read to show up
            self.reads.append(after)
            self.threads.add(threading.current_thread().name)
            return super().read(after, limit)
        finally:
            with self._lock:
                self._inside -= 1


def test_catch_up_applies_everything_once_in_order_reading_ahead() -> None:
    log, store = Log(1000), FakeProjectionStore()
    runner = ProjectionRunner(log, store, batch_size=64)
    assert runner.catch_up() == 1000
    assert store.applied == list(range(1, 1001))
    assert not log.overlapped
    assert any(name.startswith("read-ahead") for name in log.threads)  # reads ran ahead
    assert log.reads == list(range(0, 1000, 64))  # each batch read once, none wasted


def test_a_read_ahead_from_a_stale_position_is_not_used() -> None:
    log, store = Log(300), FakeProjectionStore()
    runner = ProjectionRunner(log, store, batch_size=50)
    with ThreadPoolExecutor(1) as pool:
        runner.step(lambda last: setattr(runner, "_ahead", (last, pool.submit(log.read, last, 50))))
        # Another instance applies the next batch while this runner's read-ahead is pending.
        with store.batch() as other:
            other.apply(log.envelopes[50:100])
        runner.step()
    assert store.applied == list(range(1, 151))  # 51-100 once, by the other instance
    assert not log.overlapped


class GrowingLog(FakeEventLog):
    """A log that grows while runners follow it (``grow``); counts how often each event is
    read."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.pending = events(n)
        self.read_counts: dict[int, int] = {}
        self._lock = threading.Lock()

    @property
    def visible(self) -> int:
        return self.head()

    def grow(self, to: int) -> None:
        """Append the next events, up to position ``to``."""
        self.record(self.pending[self.head() : to])

    def read(self, after: int, limit: int) -> Sequence[Envelope]:
        with self._lock:
            out = super().read(after, limit)
            for e in out:
                self.read_counts[e.position] = self.read_counts.get(e.position, 0) + 1
            return out


def test_runners_sharing_one_log_reader_apply_every_event_once_in_order() -> None:
    log = GrowingLog(3000)
    log.grow(500)  # already stored when the reader starts: runners catch up on their own
    shared = SharedLog(log, batch_size=50, keep=400)
    stores = [FakeProjectionStore() for _ in range(4)]
    stop = threading.Event()
    threads = [threading.Thread(target=shared.follow, args=(stop,), kwargs={"idle_timeout": 0.01})]
    runners = [ProjectionRunner(shared.source(), s, batch_size=37) for s in stores]
    threads += [
        threading.Thread(target=r.run, args=(stop,), kwargs={"idle_timeout": 0.01}) for r in runners
    ]
    for t in threads:
        t.start()
    try:
        while log.visible < 3000:  # new events arrive while they follow
            log.grow(min(log.visible + 25, 3000))
            time.sleep(0.002)
        deadline = time.monotonic() + 10
        while any(s.position() < 3000 for s in stores) and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        stop.set()
        for t in threads:
            t.join(5)
    for s in stores:
        assert s.applied == list(range(1, 3001))
    # Once caught up, the runners read from the shared window: most events read once.
    live = [log.read_counts[p] for p in range(1001, 3001)]
    assert sum(live) < 1.5 * len(live)


def test_a_shared_log_window_answers_only_what_it_holds_in_full() -> None:
    log = GrowingLog(100)
    log.grow(40)
    shared = SharedLog(log, batch_size=10, keep=20)
    stop = threading.Event()
    reader = threading.Thread(target=shared.follow, args=(stop,), kwargs={"idle_timeout": 0.01})
    reader.start()
    try:
        log.grow(100)
        deadline = time.monotonic() + 5
        while shared._end < 100 and time.monotonic() < deadline:
            time.sleep(0.005)
    finally:
        stop.set()
        reader.join(5)
    source = shared.source()
    assert shared._start == 80  # the window keeps the newest 20
    assert shared._read(79, 5) is None  # behind the window: the source is read instead
    assert [e.position for e in source.read(10, 5)] == [11, 12, 13, 14, 15]
    assert [e.position for e in source.read(80, 5)] == [81, 82, 83, 84, 85]
    assert list(source.read(100, 5)) == []


class CountingStore(FakeProjectionStore):
    def __init__(self) -> None:
        super().__init__()
        self.batches: list[int] = []  # events per batch that applied any

    @contextmanager
    def batch(self) -> Iterator[FakeBatch]:
        with super().batch() as batch:
            yield batch
        if batch.applied:
            self.batches.append(batch.applied)


def test_batches_start_an_interval_apart_and_take_what_came_meanwhile() -> None:
    log = GrowingLog(300)
    shared = SharedLog(log, batch_size=1000, interval=0.02)
    store = CountingStore()
    runner = ProjectionRunner(shared.source(), store, interval=0.05)
    stop = threading.Event()
    threads = [
        threading.Thread(target=shared.follow, args=(stop,), kwargs={"idle_timeout": 0.01}),
        threading.Thread(target=runner.run, args=(stop,), kwargs={"idle_timeout": 0.01}),
    ]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: shared._start is not None)
        started = time.monotonic()
        while log.visible < 300:  # one event a millisecond, for about 0.3-0.6 s
            log.grow(log.visible + 1)
            time.sleep(0.001)
        deadline = time.monotonic() + 5
        while store.position() < 300 and time.monotonic() < deadline:
            time.sleep(0.005)
        # Until the last batch: on a loaded machine the batches after the log stopped
        # growing take intervals of their own (the bound holds however slow it runs).
        elapsed = time.monotonic() - started
    finally:
        stop.set()
        for t in threads:
            t.join(5)
    assert store.applied == list(range(1, 301))  # once each, in order
    # One batch per 50 ms at most (and the last), not one per event or per read.
    assert len(store.batches) <= elapsed / 0.05 + 2


class OpeningStore(FakeProjectionStore):
    def __init__(self) -> None:
        super().__init__()
        self.opened = 0  # batches opened, empty ones included

    @contextmanager
    def batch(self) -> Iterator[FakeBatch]:
        self.opened += 1
        with super().batch() as batch:
            yield batch


def test_an_idle_runner_on_a_shared_log_opens_no_batch_until_an_event_comes() -> None:
    log = GrowingLog(20)
    log.grow(10)
    shared = SharedLog(log, batch_size=100)
    store = OpeningStore()
    runner = ProjectionRunner(shared.source(), store)
    stop = threading.Event()
    threads = [
        threading.Thread(target=shared.follow, args=(stop,), kwargs={"idle_timeout": 0.01}),
        threading.Thread(target=runner.run, args=(stop,), kwargs={"idle_timeout": 0.01}),
    ]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: store.position() == 10)
        opened = store.opened
        time.sleep(0.3)  # thirty waits run out: no batch for nothing
        assert store.opened == opened
        log.grow(20)
        wait_until(lambda: store.position() == 20)
    finally:
        stop.set()
        for t in threads:
            t.join(5)
    assert store.applied == list(range(1, 21))
    assert store.opened <= opened + 2


def test_a_stream_runner_redelivered_after_a_crash_applies_each_event_once() -> None:
    """A crash between the store's commit and the source's: the events come again, and the
    store drops them by (aggregate id, version); nothing is skipped."""
    log = FakeEventLog()
    for _ in range(3):
        log.record(events(4))  # three aggregates of four events
    store = FakeProjectionStore(versioned=True)
    source = log.stream("projector")
    crashing = StreamRunner(source, store, batch_size=5)
    polled = source.poll(5, 0.1)
    with store.batch() as batch:  # applied and committed by the store ...
        batch.apply(polled)
    # ... and the process died before the source's commit.
    runner = StreamRunner(log.stream("projector"), store, batch_size=5)
    assert runner.catch_up(idle=0.05) == 12 - 5
    assert sorted(store.applied) == list(range(1, 13))
    assert crashing.catch_up(idle=0.05) == 0  # a late duplicate consumer changes nothing
    assert sorted(store.applied) == list(range(1, 13))
