"""The event store's infrastructure factory: ``eventsourcing``'s PostgreSQL factory, whose
connections also get ``DATABASE_URL``'s libpq options (``sslmode``, ``sslrootcert``,
``connect_timeout``, ``options``, ...).

Its settings name the database, host, port, user and password only, and its pool was made
with those as keyword arguments. psycopg_pool joins a pool's ``conninfo`` string with them on
every connection, so the options go there (``POSTGRES_LIBPQ_OPTIONS``, a libpq connection
string); the keyword arguments win where both name a parameter.

Its connections are ``EventStoreConnection``s (``infra/postgres/prepared.py``): an append cancelled
in its pipeline leaves no prepared statement behind that the server never prepared.

Selected with the event store's ``PERSISTENCE_MODULE`` (``command_api/application.py:
eventstore_env``).
"""

from __future__ import annotations

from eventsourcing.postgres import PostgresFactory
from eventsourcing.utils import Environment, EnvType

from infra.postgres.prepared import EventStoreConnection


class DeskstreamPostgresFactory(PostgresFactory):
    POSTGRES_LIBPQ_OPTIONS = "POSTGRES_LIBPQ_OPTIONS"

    def __init__(self, env: Environment | EnvType | None):
        super().__init__(env)
        # The pool has not connected yet (eventsourcing makes it with open=False).
        self.datastore.pool.connection_class = EventStoreConnection
        options = self.env.get(self.POSTGRES_LIBPQ_OPTIONS) or ""
        if options:
            self.datastore.pool.conninfo = options
