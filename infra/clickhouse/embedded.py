"""The chDB adapter: ClickHouse in this process (``chdb-core``), its data in a directory.

chDB allows one directory per process, and one process per directory (it locks the
directory's ``status`` file): the process that opens it owns it until it exits
(ADR 0030 says which process that is under ``make run``). All connections to it share one
lock here: the engine is in-process, and its Python connections are not thread-safe.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from infra.clickhouse.ports import AnalyticsUnavailableError
from infra.clickhouse.sql import identifier

# Integers as JSON numbers (not strings), and UTC whatever the machine's zone is.
SETTINGS = ("SET output_format_json_quote_64bit_integers = 0", "SET session_timezone = 'UTC'")
_lock = threading.Lock()
_connection: Any = None
_path: Path | None = None
_open: list[Any] = []  # every connection this process opened, the first one first


class DirectoryInUseError(AnalyticsUnavailableError):
    """Another process owns the chDB directory (or this one owns another directory)."""


def _chdb() -> Any:
    """The chDB module, imported by the first connection: importing it maps and relocates
    the engine (~350 MB resident), which a process that never opens chDB (the projector
    process, a web server on a ClickHouse server, every ``manage.py`` command) should not
    pay (ADR 0035)."""
    import chdb

    return chdb


def _connect(path: Path) -> Any:
    global _connection, _path
    with _lock:
        if _connection is not None:
            if path != _path:
                raise DirectoryInUseError(
                    f"this process has chDB open on {_path}; it cannot open {path} too"
                )
            return _connection
        path.mkdir(parents=True, exist_ok=True)
        try:
            connection = _chdb().connect(f"file:{path}")
        except Exception as error:
            raise DirectoryInUseError(
                f"chDB cannot open {path} (another process owns it?): {error}"
            ) from error
        for setting in SETTINGS:
            connection.query(setting)
        _connection, _path = connection, path
        _open.append(connection)
        return connection


def close_all() -> None:
    """Close every chDB connection of this process, the engine's last: left to interpreter
    teardown, the engine's shutdown races its own threads and can crash the process."""
    global _connection, _path
    with _lock:
        while _open:
            connection = _open.pop()
            with contextlib.suppress(Exception):  # closing at exit: nothing to report to
                connection.close()
        _connection, _path = None, None


def _in(value: Any) -> Any:
    """What orjson cannot write as ClickHouse reads it: a datetime goes as Unix seconds.
    (orjson writes UUIDs as strings, tuples as arrays and booleans as ``true``/``false``,
    which JSONCompactEachRow reads into UInt8, itself: no Python call per value.)"""
    if isinstance(value, datetime):
        return int(value.timestamp())
    raise TypeError(f"cannot write {type(value).__name__} to ClickHouse")


class ChdbDatabase:
    """A database of the chDB engine of this process, in ``path``: a connection of its own
    (chDB keeps the current database per connection), the engine's lock shared."""

    def __init__(self, path: str | Path, *, database: str = "default") -> None:
        self.path = Path(path).resolve()
        self.name = identifier(database)
        first = _connect(self.path)
        with _lock:
            first.query(f"CREATE DATABASE IF NOT EXISTS {self.name}")
            self._conn = _chdb().connect(f"file:{self.path}")
            _open.append(self._conn)
            for setting in SETTINGS:
                self._conn.query(setting)
            self._conn.query(f"USE {self.name}")

    def _run(self, sql: str, fmt: str = "CSV") -> Any:
        with _lock:
            return self._conn.query(sql, fmt)

    def command(self, sql: str) -> None:
        self._run(sql)

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        body = b"\n".join(
            orjson.dumps(row, default=_in, option=orjson.OPT_PASSTHROUGH_DATETIME) for row in rows
        ).decode()
        self._run(
            f"INSERT INTO {identifier(table)} ({', '.join(columns)}) "
            f"FORMAT JSONCompactEachRow\n{body}"
        )

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        text = self._run(sql, "JSONCompact").bytes().decode()
        if not text.strip():
            return []
        return [tuple(row) for row in orjson.loads(text)["data"]]

    def query_all(self, sqls: Sequence[str]) -> list[list[tuple[Any, ...]]]:
        """One after another: the engine's connections share one lock."""
        return [self.query(sql) for sql in sqls]

    def drop(self) -> None:
        """Drop the whole database (tests)."""
        with _lock:
            self._conn.query("USE default")
            self._conn.query(f"DROP DATABASE IF EXISTS {self.name}")

    def close(self) -> None:
        with _lock:
            if self._conn in _open:
                _open.remove(self._conn)
                self._conn.close()
