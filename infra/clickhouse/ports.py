"""The analytics port: one ClickHouse database, spoken to in the SQL subset that ClickHouse
18.16 (Debian's server, the tests') and chDB 26.9 both accept (docs/analytics.md).

Values going in (``insert`` rows) are ``str``, ``int``, ``bool``, ``float``, ``None``, aware
``datetime`` (stored in UTC, to the second), ``UUID`` and lists or tuples of ``str``, ``int``
and aware ``datetime``. Values coming out
(``query``) are ``int``, ``float``, ``str``, ``None`` and lists of those: dates and UUIDs come
out as strings (``toString`` in the SQL), so both adapters answer alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol


class AnalyticsUnavailableError(RuntimeError):
    """The analytics database cannot be reached: the server is down or unreachable, or the
    chDB directory belongs to another process."""


class AnalyticsDatabase(Protocol):
    name: str  # the database's name (a server) or its directory (chDB)

    def command(self, sql: str) -> None:
        """DDL or any statement without rows (CREATE, DROP, RENAME ...)."""

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """Insert ``rows`` as data, never as SQL text."""

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        """The rows of a SELECT."""

    def query_all(self, sqls: Sequence[str]) -> list[list[tuple[Any, ...]]]:
        """The rows of each of several independent SELECTs, in order: at once where the
        adapter can (a server: a connection each), else one after another."""

    def close(self) -> None: ...
