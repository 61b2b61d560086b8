"""Issue 22: after the event store's append was cancelled by PostgreSQL (here
``statement_timeout`` while the test holds the lock every append takes), the next append on
that pooled connection failed with "prepared statement _pg3_N does not exist" and the command
answered 500: psycopg's pipeline kept the name of a statement whose ``Parse`` the server had
skipped (``infra/postgres/prepared.py``). Found by ``tests/e2e/test_database_unavailable.py``;
``tests/integration/test_event_store.py`` holds the same case on one pooled connection.
"""

from __future__ import annotations

import httpx
import psycopg
import pytest

from tests.e2e.test_database_unavailable import assert_unavailable, command
from tests.faults.test_faults import System

pytestmark = pytest.mark.slow


def test_the_append_after_a_cancelled_one_succeeds(system: System) -> None:
    users = system.set_up(clients=1)
    agent = users["agent"]
    with psycopg.connect(system.admin, autocommit=True) as admin:
        admin.execute("ALTER DATABASE faults SET statement_timeout = '500ms'")
    system.start("web")
    system.wait_web()
    with httpx.Client(base_url=system.url, timeout=60) as http:
        opened = command(http, users["customers"][0], "/api/tickets", {"subject": "Stuck"})
        assert opened.status_code == 201, opened.text
        path = f"/api/tickets/{opened.json()['id']}/messages"
        with psycopg.connect(system.database) as holder:
            holder.execute("LOCK TABLE deskstream_events IN EXCLUSIVE MODE")
            assert_unavailable(command(http, agent, path, {"body": "Cancelled"}))
            holder.rollback()
        after = command(http, agent, path, {"body": "After"})
        assert after.status_code == 201, (after.status_code, after.text)
