"""The event store's recorder: ``eventsourcing``'s PostgreSQL application recorder with its
append statements rendered once, and a NOTIFY that says which application appended.

- ``PostgresApplicationRecorder`` keeps its statements as composed ``psycopg.sql`` objects,
  and psycopg renders a composed query (quoting every identifier through libpq) each time it
  runs one: the insert, the table lock and the NOTIFY of every append. Here they are the
  same statements as text, rendered once; psycopg caches what it derives from a text query.
- Its NOTIFY (sent on every append, and what ``PostgresEventSource.wait`` listens for)
  carries ``notify_token``, a random string of this recorder, as its payload, so a
  listener can tell the appends of its own application (which the web server's push
  projector is handed directly, ``OwnAppends``) from everyone else's. Listeners that do
  not care still just wake up.

The append itself is eventsourcing's, unchanged: the same transaction, table lock and
pipeline (ADR 0021 tried one round trip instead, and dropped it).

Selected with the event store's ``APPLICATION_RECORDER_TOPIC`` (``command_api/application.py:
eventstore_env``). It overrides eventsourcing's private ``_notify_channel``: see
docs/upstream-patches.md (5), pinned by tests/unit/test_upstream_pins.py.
"""

from __future__ import annotations

import uuid
from typing import Any

from eventsourcing.postgres import PostgresApplicationRecorder
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
        self.insert_events_statement = as_text(self.insert_events_statement)
        self.lock_table_statements = [as_text(s) for s in self.lock_table_statements]
        self.notify_token = uuid.uuid4().hex
        self.notify_statement = as_text(
            SQL("NOTIFY {}, {}").format(Identifier(self.channel_name), Literal(self.notify_token))
        )

    def _notify_channel(self, curs: Cursor[DictRow]) -> None:
        curs.execute(self.notify_statement)
