"""Django's PostgreSQL ``DatabaseWrapper``, minus building connection parameters per request,
and never handing out a pooled connection that ended while it sat in the pool.

With a connection pool (``OPTIONS['pool']``, config/settings.py), Django's ``connect()``
still builds the full connection parameters (a dict, the settings checks, the adapters
template) every time a request takes a connection, and ``get_new_connection`` then ignores
them and takes one from the pool, which was made with its own copy of those parameters.
That was about 3% of the web server's CPU per command (ADR 0020). Everything else is
Django's backend unchanged. It relies on Django's private ``_connection_pools``: see
docs/upstream-patches.md (3), pinned by tests/unit/test_upstream_pins.py.

A pooled connection can end while idle (PostgreSQL restarted or terminated it, a proxy or a
firewall reset it); Django's pool handed it out anyway and the request or WebSocket using it
failed (issue 22: the fault run's connection cuts closed a resuming WebSocket with 1011).
Django's own remedy (``CONN_HEALTH_CHECKS``: an empty query on every checkout) cost about
1.3 ms per checkout on a busy 2-core machine, twice per command. Here the checkout looks at
the socket first, without a round trip: an idle connection has nothing to read unless the
server or something between said goodbye (a FATAL message, end of file, a reset). Only then
is it checked for real, and closed and replaced if it is dead.
"""

from __future__ import annotations

import select
from typing import Any

from django.db.backends.postgresql import base
from psycopg import Connection
from psycopg_pool import ConnectionPool


class DatabaseWrapper(base.DatabaseWrapper):
    def get_connection_params(self) -> dict[str, Any]:
        # Django's class-wide dict of pools by alias (not in django-stubs).
        if self.alias in getattr(self, "_connection_pools", {}):
            # connect() hands these to get_new_connection, which takes a pooled connection
            # and does not read them; the pool was built with the full parameters.
            return {}
        params: dict[str, Any] = super().get_connection_params()
        return params

    def get_new_connection(self, conn_params: Any) -> Any:
        connection = super().get_new_connection(conn_params)
        pool: Any = getattr(self, "pool", None)  # Django's pool (not in django-stubs)
        if pool is None:
            return connection
        # Each dead one is discarded by the pool (it opens another); bounded, in case every
        # connection it has just opened is dead too (then the query fails, as it would).
        for _ in range(int(pool.max_size)):
            if not ended_while_idle(connection):
                break
            connection.close()
            pool.putconn(connection)
            connection = super().get_new_connection(conn_params)
        return connection


def ended_while_idle(connection: Connection[Any]) -> bool:
    """Whether an idle connection is dead: its socket has something to read (on an idle
    connection, the server's or a proxy's goodbye; rarely a notice, which the check then reads
    harmlessly) and an empty query fails."""
    try:
        readable, _, _ = select.select([connection.fileno()], [], [], 0)
    except (OSError, ValueError):  # no socket any more
        return True
    if not readable:
        return False
    try:
        ConnectionPool.check_connection(connection)
    except Exception:  # any failure: the connection is not usable
        return True
    return False
