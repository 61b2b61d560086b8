"""One leader among server processes: a session-level PostgreSQL advisory lock.

The push publisher of a cluster is elected with it (ADR 0044): every web server process
tries ``pg_try_advisory_lock`` every ``DESKSTREAM_PUSH_FAILOVER`` seconds on a connection of
its own; the one that gets it publishes every frame once, the others only deliver. The lock
lives as long as that connection: when the leader's process dies (SIGKILL, a crash, a lost
machine), PostgreSQL ends the session and drops the lock, and the next try of another process
takes over. A leader that can no longer reach its connection stops publishing (it cannot
know whether it still holds the lock); a short overlap of two publishers only duplicates
frames, which subscribers drop by position.
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading

import psycopg


def application_name() -> str:
    """Names this process as the feed leases do (its pid and host): who holds the lock."""
    return f"deskstream push leader pid {os.getpid()}@{socket.gethostname()}"[:63]


# The first key of the two-key advisory lock (``infra/postgres/feed.py`` uses 0x5EED0001-2);
# the second is a hash of the name.
_NAMESPACE = 0x5EED0100


def lock_key(name: str) -> int:
    """A signed 32-bit key for ``name`` (the channel prefix: who shares frames shares it)."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=4).digest(), "big") - 2**31


class PostgresLeaderLock:
    """``try_acquire`` once leading is wanted, ``held`` to check it is still held (a round trip
    on the lock's connection), ``release`` to step down (closes the connection)."""

    def __init__(self, conninfo: str, name: str, *, timeout: float = 5.0) -> None:
        self._conninfo = conninfo
        self.name = name
        self.key = lock_key(name)
        self._timeout = timeout
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None
        self._lock = threading.Lock()

    def try_acquire(self) -> bool:
        with self._lock:
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = psycopg.connect(
                        self._conninfo,
                        autocommit=True,
                        connect_timeout=max(1, int(self._timeout)),
                        application_name=application_name(),
                        # A server that vanished without closing the connection (a lost
                        # machine) is noticed by ``held``'s query within the keepalives.
                        keepalives=1,
                        keepalives_idle=5,
                        keepalives_interval=2,
                        keepalives_count=2,
                    )
                row = self._conn.execute(
                    "SELECT pg_try_advisory_lock(%s, %s)", (_NAMESPACE, self.key)
                ).fetchone()
            except psycopg.Error:
                self._close()
                return False
            return bool(row is not None and row[0] is True)

    def held(self) -> bool:
        """Whether this session still holds the lock (False if the connection is gone)."""
        with self._lock:
            if self._conn is None or self._conn.closed:
                return False
            try:
                row = self._conn.execute(
                    "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory'"
                    " AND pid = pg_backend_pid() AND classid = %s::oid AND objid = %s::oid"
                    " AND granted)",
                    (_NAMESPACE, self.key % 2**32),
                ).fetchone()
            except psycopg.Error:
                self._close()
                return False
            return bool(row and row[0])

    def release(self) -> None:
        with self._lock:
            self._close()

    def _close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None
