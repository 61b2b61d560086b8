"""A pooled connection that ended while idle (PostgreSQL restarted or terminated it, a proxy
or a firewall cut it) is replaced as it leaves the pool, not handed to the next request or
WebSocket, which failed on it (issue 22: the fault run's connection cuts closed a resuming
WebSocket with 1011); a live one is handed out as it is (``infra/postgres/backend``)."""

from __future__ import annotations

import time
from typing import Any

import psycopg
import pytest
from django.db import DEFAULT_DB_ALIAS, connections

from infra.postgres.backend.base import ended_while_idle
from tests.conftest import subprocess_database_url


@pytest.mark.django_db(transaction=True)
def test_a_connection_that_ended_while_idle_in_the_pool_is_replaced(
    django_db_setup: Any,
) -> None:
    connection = connections[DEFAULT_DB_ALIAS]
    connection.ensure_connection()
    connection.close()  # back to the pool
    pool: Any = getattr(connection, "pool", None)  # Django's (not in django-stubs)
    assert pool is not None
    # Every idle connection of the pool, ended by the server while it sits there.
    idle = [pool.getconn() for _ in range(pool.get_stats().get("pool_available", 0))]
    pids = {conn.info.backend_pid for conn in idle}
    for conn in idle:
        pool.putconn(conn)
    assert pids
    with psycopg.connect(subprocess_database_url(), autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", [list(pids)]
        )
        deadline = time.monotonic() + 10
        while admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", [list(pids)]
        ).fetchone()[0]:  # type: ignore[index]
            assert time.monotonic() < deadline
            time.sleep(0.05)

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    assert pid not in pids
    connection.close()


def test_only_a_connection_the_server_ended_counts_as_ended(django_db_setup: Any) -> None:
    """A live idle connection passes without a round trip; one the server terminated does
    not; one that read a notice meanwhile is still live."""
    url = subprocess_database_url()
    with psycopg.connect(url, autocommit=True) as admin, psycopg.connect(url) as conn:
        conn.autocommit = True
        assert not ended_while_idle(conn)
        conn.execute("LISTEN deskstream_probe")
        admin.execute("NOTIFY deskstream_probe")  # something to read on an idle connection
        time.sleep(0.2)
        assert not ended_while_idle(conn)
        admin.execute("SELECT pg_terminate_backend(%s)", [conn.info.backend_pid])
        time.sleep(0.2)
        assert ended_while_idle(conn)
