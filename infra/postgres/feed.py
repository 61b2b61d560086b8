"""One source feeds a projection: the notification log or Kafka, never both at once.

A projection built from the log (``projector run NAME``, ``run-all``) keeps a contiguous
position; one built from Kafka (``projector run NAME --source kafka``) drops repeats by
(aggregate id, version). Fed from both, each applies what the other applied: message counts
grow twice, the SLA projector meets a pause that ends before it starts. Two writers to one
projection are refused, never merged (ADR 0025):

- **Recorded.** ``projection_position.source`` names the source the tables were built from.
  A feeder of the other source refuses to start while the position is past 0. A rebuild for
  the other source (``projector rebuild NAME [--source kafka]``) is the way across; its swap
  records the new source (``PostgresProjectionStore.swap_in``).
- **Leased.** A running feeder holds a shared advisory lock on (projection, source) on a
  connection of its own for as long as it runs; PostgreSQL drops the lock when that
  connection ends, however the process ends. A feeder first takes its own lock, then looks
  for holders of the other source's lock (``pg_locks``): of two feeders of different sources
  starting together, at least one refuses. Feeders of the same source share the lock (Kafka
  group members, a hot standby waiting on the position lock) and never see each other.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import zlib
from typing import Any

import psycopg

LOG = "log"
KAFKA = "kafka"
SOURCES = (LOG, KAFKA)
# The first key of the two-key advisory locks; the second is the projection's name's CRC.
_NAMESPACE = {LOG: 0x5EED0001, KAFKA: 0x5EED0002}


class FeedConflictError(RuntimeError):
    """Starting this feeder would make a second writer of a projection."""


def _key(name: str) -> int:
    crc = zlib.crc32(name.encode())
    return crc - (1 << 32) if crc >= 1 << 31 else crc  # a signed int4, as PostgreSQL wants


def _label(source: str) -> str:
    return "the notification log" if source == LOG else "Kafka"


def _switch_hint(name: str, source: str) -> str:
    """What an operator does to feed ``name`` from ``source`` instead."""
    if source == KAFKA:
        return (
            f"To feed {name} from Kafka: stop every log feeder of it (`projector run {name}`, "
            "`projector run-all`, and a launcher that starts run-all: run the web server "
            f"with `--projectors none`), run `manage.py projector rebuild {name} --source "
            "kafka` once, then start its Kafka consumers."
        )
    return (
        f"To feed {name} from the log: stop its Kafka consumers (`projector run {name} "
        f"--source kafka`), run `manage.py projector rebuild {name}` once, then start this "
        f"again. To leave {name} to Kafka, do not start a log feeder of it (the web server "
        "runs with `--projectors none` in distributed mode)."
    )


_RECORDED = (
    "SELECT position, source, EXISTS (SELECT 1 FROM projection_applied WHERE name = %s) "
    "FROM projection_position WHERE name = %s"
)
_RECORDED_FOR_UPDATE = _RECORDED + " FOR UPDATE"


def recorded_source(cursor: Any, name: str, *, lock: bool = False) -> tuple[int, str] | None:
    """The position of ``name`` and the source its tables were built from, read on
    ``cursor`` (psycopg's or Django's); None before its first feeder. The one rule for what
    a projection was built from."""
    cursor.execute(_RECORDED_FOR_UPDATE if lock else _RECORDED, [name, name])
    row = cursor.fetchone()
    if row is None:
        return None
    position, recorded, has_versions = int(row[0]), row[1], bool(row[2])
    # Rows from before sources were recorded: Kafka's store records versions.
    return position, recorded or (KAFKA if has_versions else LOG)


class FeedLeases:
    """The feed leases of one process, on one connection of its own (opened at the first
    claim). ``label`` says what the process is; its pid and host are added, and the whole
    is the connection's ``application_name``, which a refused feeder names."""

    def __init__(self, conninfo: str, label: str) -> None:
        self._conninfo = conninfo
        self._name = f"deskstream {label} pid {os.getpid()}@{socket.gethostname()}"[:63]
        self._conn: psycopg.Connection[Any] | None = None
        self._held: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def claim(self, name: str, source: str, *, switching: bool = False) -> None:
        """Hold the lease of ``name`` fed from ``source`` until ``close``, or
        raise ``FeedConflictError``: a live feeder of the other source holds its lease, or
        (unless ``switching``: a rebuild for ``source``) the tables were built from the other
        source."""
        if source not in SOURCES:
            raise ValueError(f"unknown source {source!r}")
        other = KAFKA if source == LOG else LOG
        with self._lock:
            if (name, source) in self._held:
                return
            conn = self._connection()
            conn.execute("SELECT pg_advisory_lock_shared(%s, %s)", [_NAMESPACE[source], _key(name)])
            try:
                self._check_live(conn, name, source, other)
                self._check_recorded(conn, name, source, other, switching)
            except BaseException:
                # A session that ended holds nothing to release: the original error is raised.
                with contextlib.suppress(psycopg.OperationalError, psycopg.InterfaceError):
                    conn.execute(
                        "SELECT pg_advisory_unlock_shared(%s, %s)",
                        [_NAMESPACE[source], _key(name)],
                    )
                raise
            self._held.add((name, source))

    def close(self) -> None:
        with self._lock:
            self._held.clear()
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(
                self._conninfo, autocommit=True, application_name=self._name
            )
            self._held.clear()  # a new session holds nothing
        return self._conn

    def _check_live(
        self, conn: psycopg.Connection[Any], name: str, source: str, other: str
    ) -> None:
        # Read the lock table rather than try the other lock: a try would take it for a
        # moment, and a feeder of the other source starting then would see a writer that is
        # not there. This feeder's own lock is already held, so of two feeders of different
        # sources checking at once, the later check sees the earlier lock.
        holders = conn.execute(
            "SELECT l.pid, a.application_name, a.client_addr, a.backend_start "
            "FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 "
            "AND l.classid = %s::bigint::oid AND l.objid = (%s::bigint & 4294967295)::oid "
            "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "ORDER BY a.backend_start",
            [_NAMESPACE[other], _key(name)],
        ).fetchall()
        if not holders:
            return
        who = "; ".join(
            f"{app or 'a process'} (PostgreSQL backend {pid}, "
            f"{'from ' + str(addr) if addr else 'local socket'}"
            f"{f', since {start:%H:%M:%S %Z}' if start else ''})"
            for pid, app, addr, start in holders
        )
        raise FeedConflictError(
            f"projector {name} is being fed from {_label(other)} by {who}; a second writer "
            f"from {_label(source)} is refused. {_switch_hint(name, source)}"
        )

    def _check_recorded(
        self, conn: psycopg.Connection[Any], name: str, source: str, other: str, switching: bool
    ) -> None:
        with conn.transaction():
            conn.execute(
                "INSERT INTO projection_position (name, position, updated_at, source) "
                "VALUES (%s, 0, now(), %s) ON CONFLICT (name) DO NOTHING",
                [name, source],
            )
            found = recorded_source(conn.cursor(), name, lock=True)
            assert found is not None  # inserted above if it was missing
            position, recorded = found
            if position > 0 and recorded != source and not switching:
                raise FeedConflictError(
                    f"projector {name} was built from {_label(recorded)} (projection_position "
                    f"{name!r}: source {recorded!r}, position {position}); feeding it from "
                    f"{_label(source)} would apply its events twice. {_switch_hint(name, source)}"
                )
            if position == 0 or recorded == source:
                conn.execute(
                    "UPDATE projection_position SET source = %s WHERE name = %s", [source, name]
                )
