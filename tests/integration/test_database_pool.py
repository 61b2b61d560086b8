"""Django's connection pool checks a connection as it leaves the pool (issue 22): one that
ended while idle (PostgreSQL restarted, a proxy or a firewall cut it) is replaced rather than
handed to the next request or WebSocket, which failed on it (the fault run's connection cuts
closed a resuming WebSocket with 1011)."""

from __future__ import annotations

import time
from typing import Any

import psycopg
import pytest
from django.db import DEFAULT_DB_ALIAS, connections

from tests.conftest import subprocess_database_url


@pytest.mark.django_db(transaction=True)
def test_a_connection_that_ended_while_idle_in_the_pool_is_replaced(
    django_db_setup: Any,
) -> None:
    connection = connections[DEFAULT_DB_ALIAS]
    connection.ensure_connection()
    connection.close()  # back to the pool
    pool = connection.pool
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
