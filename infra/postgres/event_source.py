"""The embedded event source: the event store's own notification log, caught up then live.

Reads are plain range scans on ``notification_id`` (the event store's inserts hold a table
lock, so ids become visible in commit order and a reader never skips one). Waiting for new
events uses LISTEN on the channel the recorder NOTIFYs on every append.

A source given this process's ``OwnAppends`` (the push projector in the web server, ADR 0021)
answers a read that starts right at an event this process appended from memory instead of
the log, and knows the NOTIFYs of its own appends (``infra/postgres/recorder.py``) from
everyone else's; see ``PostgresEventSource`` for why that never skips an event.
"""

from __future__ import annotations

import os
import select
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any

import psycopg
from eventsourcing.persistence import Mapper, Notification
from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg import sql

from infra.event_metadata import decoder
from infra.postgres.connection import libpq_options
from projections.ports import Envelope


class OwnAppends:
    """The newest events one application appended (``keep`` of them), by log position, as
    the event store returned them after their commit; ``token`` is the payload of that
    application's NOTIFYs (``infra/postgres/recorder.py``).

    ``add`` is called with each committed append's notifications, possibly from several
    threads and so not always in position order; positions are unique, so a read never
    gets a wrong event from here, only maybe none. ``failed`` is called when an append
    raised: it may still have committed (a lost connection during COMMIT), so readers go
    back to the log. Both wake whoever ``arm``-ed.
    """

    def __init__(self, token: str, keep: int = 10_000) -> None:
        self.token = token
        self.keep = keep
        self._lock = threading.Lock()
        self._by_position: dict[int, Notification] = {}
        self.newest = 0
        self.failures = 0
        self._waiting = False
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        self._fds: tuple[int, ...] = (self._wake_r, self._wake_w)

    def add(self, notifications: Iterable[Notification]) -> None:
        with self._lock:
            by_position = self._by_position
            for n in notifications:
                by_position[n.id] = n
                if n.id > self.newest:
                    self.newest = n.id
            while len(by_position) > self.keep:
                del by_position[next(iter(by_position))]
            wake, self._waiting = self._waiting, False
        if wake:
            os.write(self._wake_w, b"x")

    def failed(self) -> None:
        with self._lock:
            self.failures += 1
            wake, self._waiting = self._waiting, False
        if wake:
            os.write(self._wake_w, b"x")

    def run(self, after: int, limit: int) -> list[Notification]:
        """The events at ``after + 1``, ``after + 2``, ... for as long as they are here."""
        found: list[Notification] = []
        with self._lock:
            get = self._by_position.get
            while len(found) < limit:
                n = get(after + 1 + len(found))
                if n is None:
                    break
                found.append(n)
        return found

    def arm(self, after: int, failures: int) -> bool:
        """Ask to be woken (``wake_fd`` becomes readable) by the next ``add`` or ``failed``;
        False, and no need to wait, if an event after ``after`` is here already or an
        append failed since ``failures``."""
        with self._lock:
            if self.newest > after or self.failures != failures:
                return False
            self._waiting = True
            return True

    @property
    def wake_fd(self) -> int:
        return self._wake_r

    def clear_wake(self) -> None:
        try:
            while os.read(self._wake_r, 4096):
                pass
        except BlockingIOError:
            pass

    def close(self) -> None:
        with self._lock:
            fds, self._fds = self._fds, ()
        for fd in fds:
            os.close(fd)


class PostgresEventSource:
    """The log, read by position. With ``own`` (the appends of this process's application,
    for the push projector in the web server), reads and waits that need not go to the log
    do not:

    - ``read(after)`` answers from memory when the event at ``after + 1`` is there (and
      those right after it): positions are unique, so that *is* the log from there.
      Otherwise it reads the log, first taking the NOTIFYs that have arrived (before the
      read, so the read covers each of them).
    - Once the reader has had everything the source handed out, and nothing after ``after``
      is in memory, a read returns nothing without going to the log unless a NOTIFY from
      another application arrived (or one of our appends failed) since the last read of
      the log, or that read was cut off at ``limit``. Anything appended before that read
      it returned; anything appended since by our application is added to memory after its
      commit, and by anyone else NOTIFYs: ``wait`` hears either.
    - ``wait`` returns at once when something after ``after`` is in memory or such a
      NOTIFY or failure is pending, and otherwise blocks on both the listening connection
      and ``own``'s wake-up pipe.

    Without ``own`` (the projector process, rebuilds) it reads the log every time and
    waits on the NOTIFYs alone, as before.
    """

    def __init__(
        self,
        recorder: PostgresApplicationRecorder,
        mapper: Mapper[Any],
        conninfo: str,
        own: OwnAppends | None = None,
    ) -> None:
        self._recorder = recorder
        self._mapper = mapper
        self._decode = decoder(mapper)  # (event, metadata)
        self._conninfo = conninfo
        self._listener: psycopg.Connection[Any] | None = None
        self._own = own
        self._log_read = False  # the log was read since the listener started listening
        self._delivered = 0  # the newest position read() has handed out
        self._stale = False  # the log may have more than the last read of it returned
        self._failures = 0  # own.failures as of the last read of the log

    def head(self) -> int:
        return self._recorder.max_notification_id() or 0

    def read(self, after: int, limit: int) -> Sequence[Envelope]:
        own = self._own
        decode = self._decode
        if own is not None:
            mine = own.run(after, limit)
            if mine:
                self._delivered = max(self._delivered, mine[-1].id)
                return [Envelope(n.id, *decode(n)) for n in mine]
            self._take_notifies()  # from here on, the read of the log covers these
            if (
                self._log_read
                and not self._stale
                and own.failures == self._failures
                and own.newest <= after
                and after >= self._delivered
            ):
                return []
            failures = own.failures
        notifications = self._recorder.select_notifications(
            start=after, limit=limit, inclusive_of_start=False
        )
        if own is not None:
            # Only a read that succeeded covers the NOTIFYs and failures taken before it.
            self._stale = len(notifications) >= limit
            self._failures = failures
            self._log_read = self._listener is not None
            self._delivered = max(self._delivered, notifications[-1].id if notifications else after)
        return [Envelope(n.id, *decode(n)) for n in notifications]

    def wait(self, after: int, timeout: float) -> None:
        if self._own is not None:
            self._wait_own(self._own, after, timeout)
            return
        listener = self._listen()
        # Events appended between the caller's read and LISTEN are caught by this check.
        if self.head() > after:
            return
        try:
            for _ in listener.notifies(timeout=timeout, stop_after=1):
                break
        except psycopg.OperationalError:
            self.close()

    def _wait_own(self, own: OwnAppends, after: int, timeout: float) -> None:
        # Listening again raises, as the plain wait does, while PostgreSQL refuses: the caller
        # retries later instead of reading the log in a loop.
        self._listen()
        if not self._log_read:
            return  # the next read goes to the log
        deadline = time.monotonic() + timeout
        while True:
            self._take_notifies()
            if self._listener is None or self._stale or not own.arm(after, self._failures):
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            try:
                ready, _, _ = select.select(
                    [self._listener.fileno(), own.wake_fd], [], [], remaining
                )
            except (OSError, ValueError):  # the connection broke: the next read listens again
                self.close()
                return
            if not ready:
                return
            if own.wake_fd in ready:
                own.clear_wake()
            # Woken by our own NOTIFY alone (its events are handed over in memory): wait on.

    def _take_notifies(self) -> None:
        """Take the NOTIFYs that have arrived (listening first if not yet); note whether
        another application sent one."""
        assert self._own is not None
        try:
            for notify in self._listen().notifies(timeout=0.0):
                if notify.payload != self._own.token:
                    self._stale = True
        except psycopg.OperationalError:
            self.close()

    def close(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        self._log_read = False

    def _listen(self) -> psycopg.Connection[Any]:
        if self._listener is None or self._listener.closed:
            conn = psycopg.connect(self._conninfo, autocommit=True)
            conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._recorder.channel_name)))
            self._listener = conn
        return self._listener


def conninfo_from_django(database: dict[str, Any]) -> str:
    """A libpq connection string for a ``DATABASES`` entry, its libpq ``OPTIONS`` (``sslmode``
    and the rest of ``DATABASE_URL``'s query) included."""
    return psycopg.conninfo.make_conninfo(
        **libpq_options(database),
        dbname=database["NAME"],
        host=database["HOST"] or "127.0.0.1",
        port=str(database["PORT"] or "5432"),
        user=database["USER"],
        password=database["PASSWORD"] or "",
    )
