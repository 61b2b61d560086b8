"""The ClickHouse server adapter: ``clickhouse-driver`` over the native protocol.

Rows always go as data (``execute("INSERT ... VALUES", rows)``): with 18.16 an inline
``VALUES ('x')`` hangs the driver. One client per adapter, used by one thread at a time;
``query_all`` reads on more connections at once (a pool of clients, one per read in flight).
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

from clickhouse_driver import Client
from clickhouse_driver.errors import NetworkError, SocketTimeoutError

from infra.clickhouse.ports import AnalyticsUnavailableError
from infra.clickhouse.sql import identifier

# The threads that run ``query_all``'s reads after the first (shared by every adapter of
# the process; a read holds its thread only while the server answers).
_READERS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="clickhouse-read")


def _new_readers() -> None:
    """A forked child has none of its parent's threads, but the pool would still count
    them and never start its own: the child's reads would wait forever. A new pool."""
    global _READERS
    _READERS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="clickhouse-read")


os.register_at_fork(after_in_child=_new_readers)


def _out(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, list | tuple):
        return [_out(v) for v in value]
    return value


def _in(value: Any) -> Any:
    if isinstance(value, datetime):
        return int(value.timestamp())  # an aware datetime; DateTime holds whole seconds
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, tuple | list):
        return [_in(v) for v in value]
    return value


def _column(values: Sequence[Any]) -> list[Any]:
    """A column's values as the driver takes them: converted by the type of its first value
    that needs it (a column holds one type, or None), not value by value; ``_in`` for a
    column it cannot tell (every value None, or every array empty)."""
    sample = next((v for v in values if v is not None and v != () and v != []), None)
    if sample is None or isinstance(sample, str | float) or type(sample) is int:
        return [list(v) if isinstance(v, tuple) else v for v in values]
    if isinstance(sample, bool):
        return [None if v is None else int(v) for v in values]
    if isinstance(sample, datetime):
        return [None if v is None else int(v.timestamp()) for v in values]
    if isinstance(sample, UUID):
        return [None if v is None else str(v) for v in values]
    if isinstance(sample, tuple | list):
        inner = sample[0]
        if isinstance(inner, str) or type(inner) is int:
            return [list(v) for v in values]
        if isinstance(inner, datetime):
            return [[int(t.timestamp()) for t in v] for v in values]
    return [_in(v) for v in values]


class ClickHouseServerDatabase:
    """One database of a ClickHouse server (``clickhouse://host:port/database``)."""

    def __init__(self, url: str, *, database: str | None = None, create: bool = True) -> None:
        parts = urlsplit(url)
        self.name = identifier(database or parts.path.strip("/") or "default")
        self._client_args = {
            "host": parts.hostname or "127.0.0.1",
            "port": parts.port or 9000,
            "user": parts.username or "default",
            "password": parts.password or "",
            "connect_timeout": 5,
            "send_receive_timeout": 300,
        }
        self._server = Client(**self._client_args)
        # More connections for ``query_all``, made when first needed and kept.
        self._spares: queue.SimpleQueue[Client] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self.address = f"{parts.hostname}:{parts.port or 9000}"
        with self._reaching():
            if create:
                self._server.execute(f"CREATE DATABASE IF NOT EXISTS {self.name}")
            self._server.execute(f"USE {self.name}")

    @contextmanager
    def _reaching(self, client: Client | None = None) -> Iterator[None]:
        try:
            yield
        except (NetworkError, SocketTimeoutError, OSError, EOFError) as error:
            (client or self._server).disconnect()  # the next call connects again
            raise AnalyticsUnavailableError(
                f"ClickHouse at {self.address} cannot be reached: {error}"
            ) from error

    def command(self, sql: str) -> None:
        with self._lock, self._reaching():
            self._server.execute(sql)

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        statement = f"INSERT INTO {identifier(table)} ({', '.join(columns)}) VALUES"
        # Column by column: the driver encodes a column at once instead of row by row.
        data = [_column(column) for column in zip(*rows, strict=True)]
        with self._lock, self._reaching():
            self._server.execute(statement, data, columnar=True)

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        with self._lock, self._reaching():
            rows = self._server.execute(sql)
        return [tuple(_out(v) for v in row) for row in rows]

    def query_all(self, sqls: Sequence[str]) -> list[list[tuple[Any, ...]]]:
        """Each on a connection of its own, at once (the first on this adapter's own): the
        KPI cards wait for their slowest read, not for the sum of them."""
        if len(sqls) < 2:
            return [self.query(sql) for sql in sqls]
        others = [_READERS.submit(self._query_spare, sql) for sql in sqls[1:]]
        first = self.query(sqls[0])
        return [first, *(other.result() for other in others)]

    def _query_spare(self, sql: str) -> list[tuple[Any, ...]]:
        try:
            client = self._spares.get_nowait()
        except queue.Empty:
            client = Client(database=self.name, **self._client_args)
        try:
            with self._reaching(client):
                rows = client.execute(sql)
        finally:
            self._spares.put(client)
        return [tuple(_out(v) for v in row) for row in rows]

    def drop(self) -> None:
        """Drop the whole database (tests)."""
        with self._lock:
            self._server.execute(f"DROP DATABASE IF EXISTS {self.name}")

    def close(self) -> None:
        self._server.disconnect()
        while True:
            try:
                self._spares.get_nowait().disconnect()
            except queue.Empty:
                return
