"""The projection runner against in-memory ports: catching up reads the next batch ahead,
applies every event exactly once and in order, and never lets two reads overlap."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import SimpleNamespace
from uuid import uuid4

from projections.ports import Envelope
from projections.runner import ProjectionRunner


class Log:
    def __init__(self, n: int) -> None:
        ticket = uuid4()
        self.events = [
            Envelope(i, SimpleNamespace(originator_id=ticket, originator_version=i))
            for i in range(1, n + 1)
        ]
        self.reads: list[int] = []
        self.threads: set[str] = set()
        self._inside = 0
        self.overlapped = False
        self._lock = threading.Lock()

    def head(self) -> int:
        return len(self.events)

    def read(self, after: int, limit: int) -> Sequence[Envelope]:
        with self._lock:
            self._inside += 1
            self.overlapped |= self._inside > 1
        try:
            time.sleep(0.002)  # long enough for a concurrent read to show up
            self.reads.append(after)
            self.threads.add(threading.current_thread().name)
            return self.events[after : after + limit]
        finally:
            with self._lock:
                self._inside -= 1

    def wait(self, after: int, timeout: float) -> None:
        pass


@dataclass
class Batch:
    position: int
    applied: list[int] = field(default_factory=list)

    def apply(self, envelopes: Sequence[Envelope]) -> None:
        fresh = [e for e in envelopes if e.position > self.position]
        self.applied.extend(e.position for e in fresh)
        if fresh:
            self.position = fresh[-1].position


class Store:
    name = "memory"

    def __init__(self) -> None:
        self.pos = 0
        self.applied: list[int] = []

    def position(self) -> int:
        return self.pos

    @contextmanager
    def batch(self) -> Iterator[Batch]:
        batch = Batch(self.pos)
        yield batch
        self.pos = batch.position
        self.applied.extend(batch.applied)


def test_catch_up_applies_everything_once_in_order_reading_ahead() -> None:
    log, store = Log(1000), Store()
    runner = ProjectionRunner(log, store, batch_size=64)
    assert runner.catch_up() == 1000
    assert store.applied == list(range(1, 1001))
    assert not log.overlapped
    assert any(name.startswith("read-ahead") for name in log.threads)  # reads ran ahead
    assert log.reads == list(range(0, 1000, 64))  # each batch read once, none wasted


def test_a_read_ahead_from_a_stale_position_is_not_used() -> None:
    log, store = Log(300), Store()
    runner = ProjectionRunner(log, store, batch_size=50)
    with ThreadPoolExecutor(1) as pool:
        runner.step(lambda last: setattr(runner, "_ahead", (last, pool.submit(log.read, last, 50))))
        # Another instance applies the next batch while this runner's read-ahead is pending.
        with store.batch() as other:
            other.apply(log.events[50:100])
        runner.step()
    assert store.applied == list(range(1, 151))  # 51-100 once, by the other instance
    assert not log.overlapped
