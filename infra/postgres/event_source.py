"""The embedded event source: the event store's own notification log, caught up then live.

Reads are plain range scans on ``notification_id`` (the event store's inserts hold a table
lock, so ids become visible in commit order and a reader never skips one). Waiting for new
events uses LISTEN on the channel the recorder NOTIFYs on every append.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from eventsourcing.persistence import Mapper
from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg import sql

from projections.ports import Envelope


class PostgresEventSource:
    def __init__(
        self, recorder: PostgresApplicationRecorder, mapper: Mapper[Any], conninfo: str
    ) -> None:
        self._recorder = recorder
        self._mapper = mapper
        self._conninfo = conninfo
        self._listener: psycopg.Connection[Any] | None = None

    def head(self) -> int:
        return self._recorder.max_notification_id() or 0

    def read(self, after: int, limit: int) -> Sequence[Envelope]:
        notifications = self._recorder.select_notifications(
            start=after, limit=limit, inclusive_of_start=False
        )
        to_event = self._mapper.to_domain_event
        return [Envelope(n.id, to_event(n)) for n in notifications]

    def wait(self, after: int, timeout: float) -> None:
        listener = self._listen()
        # Events appended between the caller's read and LISTEN are caught by this check.
        if self.head() > after:
            return
        try:
            for _ in listener.notifies(timeout=timeout, stop_after=1):
                break
        except psycopg.OperationalError:
            self.close()

    def close(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def _listen(self) -> psycopg.Connection[Any]:
        if self._listener is None or self._listener.closed:
            conn = psycopg.connect(self._conninfo, autocommit=True)
            conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._recorder.channel_name)))
            self._listener = conn
        return self._listener


def conninfo_from_django(database: dict[str, Any]) -> str:
    return psycopg.conninfo.make_conninfo(
        dbname=database["NAME"],
        host=database["HOST"] or "127.0.0.1",
        port=str(database["PORT"] or "5432"),
        user=database["USER"],
        password=database["PASSWORD"] or "",
    )
