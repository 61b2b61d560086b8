"""What "the database is unavailable" is, in one place: a connection that dropped or was
refused, PostgreSQL restarting or shutting down, a pool that had no connection to hand out in
time (``psycopg_pool.PoolTimeout`` is a ``psycopg.OperationalError``), a statement cancelled
by the server: through Django (its wrappers), psycopg itself, and the event store
(``eventsourcing`` wraps psycopg's). The API answers them ``503`` with ``Retry-After``
(``command_api/errors.py``); the relay and the projectors retry them
(``infra/kafka/resilience.py``).
"""

from __future__ import annotations

import psycopg
from django import db
from eventsourcing import persistence

DATABASE_UNAVAILABLE: tuple[type[BaseException], ...] = (
    db.OperationalError,  # Django's: a dropped connection, PostgreSQL restarting or full
    db.InterfaceError,  # Django's: a connection already closed under it
    psycopg.OperationalError,  # a LISTEN connection, a pool's timeout
    psycopg.InterfaceError,
    persistence.OperationalError,  # the event store's (its own pool)
    persistence.InterfaceError,
)

# Seconds a client is asked to wait: an immediate-mode restart of PostgreSQL takes about
# this long, and a dropped connection is replaced on the next request.
RETRY_AFTER_SECONDS = 2


def database_unavailable(error: BaseException) -> bool:
    return isinstance(error, DATABASE_UNAVAILABLE)
