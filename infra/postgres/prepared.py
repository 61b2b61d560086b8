"""The event store's connections: psycopg connections whose prepared-statement cache forgets
a statement the server never prepared because the pipeline it was sent in had failed.

The append (``eventsourcing``'s ``insert_events``) sends the table lock, the NOTIFY and the
insert in one psycopg pipeline. psycopg prepares a statement the sixth time a connection
runs it (``prepare_threshold``, 5): it sends a ``Parse`` naming it ``_pg3_N`` and records
the name in its cache straight away (``PrepareManager.maybe_add_to_cache``), and only a
statement prepared on its *first* run has its result checked afterwards (``validate``),
which drops the name again if that failed. When an earlier statement of the pipeline fails
(the lock's wait cancelled by ``statement_timeout``, ``QueryCanceled``), PostgreSQL skips
the rest of the pipeline, the ``Parse`` included, yet the name stays in the cache: the next
append on that pooled connection runs ``_pg3_N`` and fails with "prepared statement _pg3_N
does not exist" (a ``ProgrammingError``: the API answered 500, every time that connection
served an append, until it was closed). eventsourcing's retries of a cancelled append
(ten, on the same connection) make it likely: they take the NOTIFY and the insert past the
threshold while the lock is still held.

``PipelineSafePrepareManager`` has every statement psycopg decides to prepare checked, the
one that reaches the threshold too, so a failed or skipped ``Parse`` leaves no name behind
and the statement is prepared again later. The event store's pool makes its connections as
``EventStoreConnection`` (``infra/postgres/factory.py``); other connections are psycopg's
own. A patch on psycopg's private ``PrepareManager``: docs/upstream-patches.md (8), pinned
by tests/unit/test_upstream_pins.py.
"""

from __future__ import annotations

from typing import Any

from psycopg import Connection
from psycopg._preparing import Key, Prepare, PrepareManager
from psycopg._queries import PostgresQuery
from psycopg.rows import DictRow


class PipelineSafePrepareManager(PrepareManager):
    def maybe_add_to_cache(self, query: PostgresQuery, prep: Prepare, name: bytes) -> Key | None:
        key = super().maybe_add_to_cache(query, prep, name)
        if key is None and prep is Prepare.SHOULD and self.prepare_threshold is not None:
            # Moved from the counts to the names just now: have its result validated (in a
            # pipeline, where the Parse may have been skipped, and outside one alike).
            return self.key(query)
        return key


class EventStoreConnection(Connection[DictRow]):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        manager = PipelineSafePrepareManager()
        manager.prepare_threshold = self._prepared.prepare_threshold
        manager.prepared_max = self._prepared.prepared_max
        self._prepared = manager
