"""The event store's recorder: ``eventsourcing``'s PostgreSQL application recorder, with an
append in one round trip, and a NOTIFY that says which application appended.

- ``PostgresApplicationRecorder.insert_events`` appends in a pipeline with three waits for
  the server (entering the pipeline, the insert's results, the COMMIT), each composed
  ``psycopg.sql`` statement rendered again every time. In the web server the group-commit
  thread then waits for the interpreter lock after each of those waits, behind the request
  threads, and every command waits for its batch (ADR 0021). Here the same statements, in
  the same order and under the same table lock, run in one function,
  ``<table>_append(events, token)`` (created with the table): one prepared statement, one
  round trip, committed when it returns (the pool's connections are in autocommit mode).
- Its NOTIFY (sent on every append, and what ``PostgresEventSource.wait`` listens for)
  carries ``notify_token``, a random string of this recorder, as its payload, so a
  listener can tell the appends of its own application (which the web server's push
  projector is handed directly, ``OwnAppends``) from everyone else's. Listeners that do
  not care still just wake up.

Selected with the event store's ``APPLICATION_RECORDER_TOPIC`` (``command_api/application.py:
eventstore_env``).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.utils import retry
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composable, Identifier, Literal


def as_text(query: Any) -> Any:
    """A composed statement as the text psycopg would render from it (no connection needed:
    identifiers and literals are quoted the standard way)."""
    return query.as_string(None) if isinstance(query, Composable) else query


class DeskstreamRecorder(PostgresApplicationRecorder):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.notify_token = uuid.uuid4().hex
        self.notify_statement = as_text(
            SQL("NOTIFY {}, {}").format(Identifier(self.channel_name), Literal(self.notify_token))
        )
        schema, table = Identifier(self.datastore.schema), Identifier(self.events_table_name)
        append = Identifier(f"{self.events_table_name}_append"[: self.MAX_IDENTIFIER_LEN])
        lock_timeout = int(self.datastore.lock_timeout)
        self.sql_create_statements.append(
            SQL(
                "CREATE OR REPLACE FUNCTION {schema}.{append}"
                "(events {schema}.{event}[], token text) "
                "RETURNS SETOF bigint LANGUAGE plpgsql AS $BODY$ "
                "BEGIN "
                "SET LOCAL lock_timeout = {lock_timeout}; "
                "LOCK TABLE {schema}.{table} IN EXCLUSIVE MODE; "
                "PERFORM pg_notify({channel}, token); "
                "RETURN QUERY INSERT INTO {schema}.{table} AS t "
                "(originator_id, originator_version, topic, state) "
                "SELECT originator_id, originator_version, topic, state FROM unnest(events) "
                "RETURNING notification_id; "
                "END; $BODY$"
            ).format(
                schema=schema,
                append=append,
                event=Identifier(self.stored_event_type_name),
                table=table,
                channel=Literal(self.channel_name),
                lock_timeout=Literal(f"{lock_timeout}s"),
            )
        )
        self.append_statement = as_text(
            SQL("SELECT notification_id FROM {}.{}(%s, %s) AS appended(notification_id)").format(
                schema, append
            )
        )

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """What ``PostgresApplicationRecorder.insert_events`` does (lock, NOTIFY, insert,
        commit; the same errors through the datastore's connection), in one statement."""
        if kwargs.get("tracking") is not None:
            tracked: Sequence[int] | None = super().insert_events(stored_events, **kwargs)
            return tracked
        if not stored_events:
            return None
        rows = [
            self.construct_pg_stored_event(e.originator_id, e.originator_version, e.topic, e.state)
            for e in stored_events
        ]
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            assert conn.autocommit
            curs.execute(self.append_statement, (rows, self.notify_token), prepare=True)
            ids: list[int] = [row["notification_id"] for row in curs.fetchall()]
            return ids

    def _notify_channel(self, curs: Cursor[DictRow]) -> None:
        curs.execute(self.notify_statement)
