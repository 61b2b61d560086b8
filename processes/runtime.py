"""Projectors at work in threads of one process: the embedded mode (``make run``'s projector
process, or the web server's threads with ``--projectors threads``), and the push projector
in the web server.

One reader decodes each new event once for all the projector threads (each still locks and
advances its own position; ``projections.runner.SharedLog``). A projector that fails is
retried after a second (its batch rolled back); stopping lets each finish its batch.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from typing import Protocol

from django.db import connection

from infra.postgres.aggregate_log import PostgresAggregateLog
from infra.postgres.event_source import PostgresEventSource
from projections import push
from projections.ports import EventSource
from projections.push import FramePublisher
from projections.runner import ProjectionRunner, SharedLog

log = logging.getLogger(__name__)


class InProcess:
    """The projector threads this process started, so that they stop before the event store
    closes."""

    def __init__(self) -> None:
        self._started: list[tuple[threading.Event, list[threading.Thread]]] = []

    def add(self, stop: threading.Event, threads: list[threading.Thread]) -> None:
        for thread in threads:
            thread.start()
        self._started.append((stop, threads))

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the threads (each finishes its current batch)."""
        while self._started:
            stop, threads = self._started.pop()
            stop.set()
            for thread in threads:
                thread.join(timeout)


def projector_threads(
    stop: threading.Event,
    *,
    upstream: PostgresEventSource,
    names: Iterable[str],
    runner: Callable[[str, EventSource], ProjectionRunner],
    batch_size: int,
    interval: float,
) -> list[threading.Thread]:
    """A log reader and one thread per projector, following ``upstream`` until ``stop``."""
    shared = SharedLog(upstream, batch_size=batch_size, interval=interval)

    def read_log() -> None:
        try:
            while not stop.is_set():
                try:
                    shared.follow(stop)
                except Exception:
                    if stop.is_set():
                        break
                    log.exception("the projectors' log reader failed; retrying in 1 s")
                    stop.wait(1.0)
        finally:
            upstream.close()

    def follow(name: str) -> None:
        r = runner(name, shared.source())
        try:
            while not stop.is_set():
                try:
                    r.run(stop)
                except Exception:  # keep the projector alive; the batch rolled back
                    if stop.is_set():
                        break
                    log.exception("projector %s failed; retrying in 1 s", name)
                    # Its connection may be the one that broke (PostgreSQL restarted, the
                    # connection terminated): Django never replaces a thread's broken
                    # connection by itself outside a request. Found by tests/faults.
                    connection.close()
                    stop.wait(1.0)
        finally:
            r.source.close()  # type: ignore[attr-defined]
            connection.close()

    threads = [threading.Thread(target=read_log, name="projector-log-reader", daemon=True)]
    threads += [
        threading.Thread(target=follow, args=(name,), name=f"projector-{name}", daemon=True)
        for name in names
    ]
    return threads


class Publisher(FramePublisher, Protocol):
    def close(self) -> None: ...


class LeaderLock(Protocol):
    """One leader among the processes sharing a lock (``infra/postgres/leader.py``)."""

    def try_acquire(self) -> bool: ...

    def held(self) -> bool: ...

    def release(self) -> None: ...


def push_thread(
    stop: threading.Event,
    *,
    source: Callable[[], PostgresEventSource],
    frames: Callable[[], Publisher],
    aggregate_log: Callable[[], PostgresAggregateLog],
    sync_interval: float,
    batch_size: int,
    leader: LeaderLock | None = None,
    failover_interval: float = 1.0,
    counters: push.PushCounters | None = None,
) -> threading.Thread:
    """The push projector (WebSocket frames): from the head of the log on, until ``stop``.

    With ``leader``, only while this process holds the lock (ADR 0044): it tries every
    ``failover_interval`` seconds, and once it leads checks as often that it still does,
    stepping down (and trying again) when it cannot tell. Each term starts at the head of
    the log, with a new epoch and that head as its floor: subscribers catch up from the log
    whatever fell between two terms."""

    def publish_until(term: threading.Event) -> None:
        src = source()  # this process's appends without reading them back
        publisher = frames()
        try:
            store = push.PushStore(publisher, aggregate_log(), start=src.head(), counters=counters)
            while not term.is_set():
                try:
                    push.follow(
                        src, store, term, sync_interval=sync_interval, batch_size=batch_size
                    )
                except Exception:  # Redis or PostgreSQL away: the batch was not advanced past
                    if term.is_set():
                        break
                    log.warning("push projector failed; retrying in 1 s", exc_info=True)
                    connection.close()  # a broken one is never replaced otherwise
                    term.wait(1.0)
        finally:
            publisher.close()
            src.close()
            connection.close()

    def watch(term: threading.Event) -> None:
        while not term.is_set():
            stop.wait(failover_interval)
            if stop.is_set() or (leader is not None and not leader.held()):
                if not stop.is_set():
                    log.warning("push publisher: lost the leader lock, stepping down")
                term.set()

    def follow() -> None:
        try:
            while not stop.is_set():
                if leader is not None and not leader.try_acquire():
                    stop.wait(failover_interval)
                    continue
                if leader is not None:
                    log.info("push publisher: this process leads")
                term = threading.Event()
                watcher = threading.Thread(target=watch, args=(term,), name="push-leader-watch")
                watcher.start()
                if counters is not None:
                    counters.publishing = True
                try:
                    publish_until(term)
                finally:
                    if counters is not None:
                        counters.publishing = False
                    term.set()
                    watcher.join()
                    if leader is not None:
                        leader.release()
        finally:
            connection.close()

    return threading.Thread(target=follow, name="projector-push", daemon=True)


def ticker_thread(
    stop: threading.Event, tick: Callable[[], None], interval: float, name: str
) -> threading.Thread:
    """``tick`` every ``interval`` seconds until ``stop`` (its failures logged, not fatal)."""

    def run() -> None:
        while not stop.wait(interval):
            try:
                tick()
            except Exception:
                log.warning("%s failed", name, exc_info=True)

    return threading.Thread(target=run, name=name, daemon=True)
