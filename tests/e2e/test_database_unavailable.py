"""Commands answer ``503`` with ``Retry-After`` and a JSON body while PostgreSQL is unavailable,
never ``500``, on both of the web server's paths (Django's, and the message lane's for plain
replies), and nothing is stored; once it is back the same commands succeed.

The web server runs as a process on a PostgreSQL of the test's own (the fault suite's
``System``), which is really stopped (an immediate-mode stop) and started again. A second
case keeps PostgreSQL up but makes the event store's append itself fail: the test holds the
lock that every append takes, and the database's ``statement_timeout`` cancels the append's
wait (``QueryCanceled``, an ``OperationalError`` as PostgreSQL raises it): the session lookup
and the ticket's load succeed, only the write cannot be made.

Found here (issue 22, fixed): the first append after a cancelled one, on the same pooled
event-store connection, answered 500 (psycopg's pipeline left its prepared-statement cache
naming a statement the server never prepared: "prepared statement _pg3_N does not exist";
``infra/postgres/prepared.py``); ``tests/faults/test_cancelled_append.py`` holds it.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import psycopg
import pytest

from infra.unavailable import RETRY_AFTER_SECONDS
from tests.faults.test_faults import System, system
from tests.support.kafka import restartable_broker

__all__ = ["restartable_broker", "system"]  # fixtures

pytestmark = pytest.mark.slow


def command(http: httpx.Client, token: str, path: str, body: dict[str, Any]) -> httpx.Response:
    return http.post(path, json=body, headers={"Authorization": f"Bearer {token}"})


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, (response.status_code, response.text)
    assert response.headers["Retry-After"] == str(RETRY_AFTER_SECONDS)
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert body["error"] == "database_unavailable"
    assert "Retry-After" in body["detail"]


def events(database: str) -> int:
    """How many events the log holds."""
    with psycopg.connect(database) as conn:
        return int(conn.execute("SELECT count(*) FROM deskstream_events").fetchone()[0])  # type: ignore[index]


def test_commands_answer_503_while_postgresql_is_unavailable(system: System) -> None:
    users = system.set_up(clients=1)
    customer, agent = users["customers"][0], users["agent"]
    # New connections (all of them, after the restart below) give up a statement after 0.5 s.
    with psycopg.connect(system.admin, autocommit=True) as admin:
        admin.execute("ALTER DATABASE faults SET statement_timeout = '500ms'")
    system.start("web")
    system.wait_web()
    with httpx.Client(base_url=system.url, timeout=60) as http:
        opened = command(http, customer, "/api/tickets", {"subject": "Down"})
        assert opened.status_code == 201, opened.text
        tid = opened.json()["id"]
        before = events(system.database)
        reply = {"body": "Still there?"}  # plain: the message lane serves it

        system.stop_postgres()
        try:
            assert_unavailable(command(http, customer, "/api/tickets", {"subject": "Lost"}))
            assert_unavailable(command(http, customer, f"/api/tickets/{tid}/messages", reply))
            assert_unavailable(command(http, agent, f"/api/tickets/{tid}/messages", reply))
            assert_unavailable(
                command(http, agent, f"/api/tickets/{tid}/status", {"status": "in_progress"})
            )
            assert_unavailable(
                command(http, agent, f"/api/tickets/{tid}/assign", {"agent_id": users["agent_id"]})
            )
        finally:
            system.start_postgres()
        assert events(system.database) == before

        # Back: the pools replace their dead connections (a 503 while they do at most).
        deadline = time.monotonic() + 30
        while (r := command(http, agent, f"/api/tickets/{tid}/messages", reply)).status_code != 201:
            assert_unavailable(r)
            assert time.monotonic() < deadline, r.text
            time.sleep(0.5)
        stored = events(system.database)

        # Up, but the append cannot take the event store's lock (held here) in time.
        with psycopg.connect(system.database) as holder:
            holder.execute("LOCK TABLE deskstream_events IN EXCLUSIVE MODE")
            assert_unavailable(command(http, agent, f"/api/tickets/{tid}/messages", reply))
            assert_unavailable(command(http, customer, f"/api/tickets/{tid}/messages", reply))
            assert_unavailable(
                command(http, agent, f"/api/tickets/{tid}/status", {"status": "resolved"})
            )
            holder.rollback()
        assert events(system.database) == stored
