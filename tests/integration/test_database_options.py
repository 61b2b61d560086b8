"""``DATABASE_URL``'s libpq options reach the server through the event source's and the message
lane's connection string (``conninfo_from_django``) and through the event store's own pool
(``eventstore_env``, ``infra/postgres/factory.py``): real connections, not parsed strings."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from infra.postgres.connection import database_from_url
from infra.postgres.event_source import conninfo_from_django
from tests.conftest import subprocess_database_url


@pytest.fixture
def url(django_db_setup: Any) -> str:
    """The test database's URL (the server's other databases may not exist on a fresh one)."""
    return subprocess_database_url()


def with_query(url: str, query: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}{query}"


def test_application_name_and_sslmode_disable_reach_the_server(url: str) -> None:
    db = database_from_url(with_query(url, "application_name=deskstream-probe&sslmode=disable"))
    with psycopg.connect(conninfo_from_django(db)) as conn:
        row = conn.execute(
            "SELECT current_setting('application_name'), ssl FROM pg_stat_ssl"
            " WHERE pid = pg_backend_pid()"
        ).fetchone()
    assert row == ("deskstream-probe", False)


def test_sslmode_require_is_not_dropped(url: str) -> None:
    """Against a server without TLS the connection is refused; with TLS it is encrypted.
    Either way libpq was told ``sslmode=require`` (dropped, it would connect in clear)."""
    db = database_from_url(with_query(url, "sslmode=require"))
    if db["HOST"].startswith("/"):
        pytest.skip("TLS does not apply to a Unix socket")
    try:
        conn = psycopg.connect(conninfo_from_django(db))
    except psycopg.OperationalError as error:
        refused = str(error)
        assert "SSL" in refused, refused
        return
    with conn:
        row = conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        assert row.fetchone() == (True,)


def test_the_event_store_pool_connects_with_the_url_options(url: str) -> None:
    from command_api.application import DeskstreamApplication, eventstore_env

    db = database_from_url(with_query(url, "application_name=deskstream-store&sslmode=disable"))
    app = DeskstreamApplication(eventstore_env(db, pool_size=1))
    try:
        with app.factory.datastore.get_connection() as conn:  # type: ignore[attr-defined]
            row = conn.execute(
                "SELECT current_setting('application_name') AS name, ssl FROM pg_stat_ssl"
                " WHERE pid = pg_backend_pid()"
            ).fetchone()
        assert row == {"name": "deskstream-store", "ssl": False}
    finally:
        app.close()
