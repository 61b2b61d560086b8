"""Which analytics database a process uses, from two settings (the one rule for it):
``CLICKHOUSE_URL`` set: that ClickHouse server; else chDB in-process in ``ANALYTICS_PATH``,
or, for the reads of a process told to (``read_through``: ``make run``'s web server), the
process that owns chDB, through its socket (``infra.clickhouse.local``, ADR 0035).

``reader`` keeps one ``Metrics`` per (url, path) for the web process's reads, with the tables
created if they are not there yet (a dashboard before the first event shows zeros).
"""

from __future__ import annotations

import threading
from pathlib import Path

from infra.clickhouse.embedded import ChdbDatabase, close_all
from infra.clickhouse.local import ChdbSocketDatabase
from infra.clickhouse.metrics import Metrics
from infra.clickhouse.ports import AnalyticsDatabase
from infra.clickhouse.schema import create_statements

_readers: dict[tuple[str, str], Metrics] = {}
_lock = threading.Lock()
_socket: list[Path] = []  # set: this process reads chDB through the owner's socket


def read_through(socket_path: Path | None) -> None:
    """This process reads chDB through the socket of the process that owns it (None: from
    chDB itself again)."""
    with _lock:
        _socket[:] = [socket_path] if socket_path is not None else []
        _readers.clear()


def open_database(url: str, path: str) -> AnalyticsDatabase:
    if url:
        # Imported here: clickhouse-driver costs every process importing this ~25 MB of
        # memory, and ``make run``'s processes (chDB, no server) never use it.
        from infra.clickhouse.native import ClickHouseServerDatabase

        return ClickHouseServerDatabase(url)
    return ChdbDatabase(path)


def reader(url: str, path: str) -> Metrics:
    key = (url, path)
    with _lock:
        metrics = _readers.get(key)
        if metrics is None:
            if not url and _socket:
                metrics = _readers[key] = Metrics(ChdbSocketDatabase(_socket[0]))
                return metrics
            db = open_database(url, path)
            for statement in create_statements():
                db.command(statement)
            metrics = _readers[key] = Metrics(db)
        return metrics


def close() -> None:
    """At shutdown: forget the readers and close chDB's connections (the engine last)."""
    with _lock:
        _readers.clear()
        _socket.clear()
    close_all()
