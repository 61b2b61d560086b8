"""``DATABASE_URL`` to Django's ``DATABASES`` entry and to the libpq connection string of the
event source and the message lane (``infra/postgres/connection.py``), and the settings built
from the environment (``config/settings.py``: DATABASES, ALLOWED_HOSTS)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest

from infra.postgres.connection import database_from_url, libpq_options
from infra.postgres.event_source import conninfo_from_django

ROOT = Path(__file__).resolve().parent.parent.parent


def core(database: dict[str, Any]) -> tuple[Any, ...]:
    keys = ("ENGINE", "NAME", "USER", "PASSWORD", "HOST", "PORT", "OPTIONS")
    return tuple(database[key] for key in keys)


def test_a_tcp_url_with_every_part() -> None:
    db = database_from_url("postgresql://desk:p%40ss%2Fw@db.example:6543/deskstream")
    assert core(db) == (
        "infra.postgres.backend",
        "deskstream",
        "desk",
        "p@ss/w",
        "db.example",
        "6543",
        {},
    )
    assert db["CONN_MAX_AGE"] == 0


def test_the_socket_form_of_the_embedded_server() -> None:
    db = database_from_url("postgresql://postgres@/deskstream?host=/work/var/pg")
    assert core(db) == (
        "infra.postgres.backend",
        "deskstream",
        "postgres",
        "",
        "/work/var/pg",
        "5432",
        {},
    )
    assert psycopg.conninfo.conninfo_to_dict(conninfo_from_django(db)) == {
        "dbname": "deskstream",
        "host": "/work/var/pg",
        "port": "5432",
        "user": "postgres",
        "password": "",
    }


def test_the_socket_form_with_a_port_in_the_query() -> None:
    db = database_from_url("postgres://me@/desk?host=%2Fsrv%2Fpg&port=5544")
    assert (db["HOST"], db["PORT"], db["USER"], db["NAME"]) == ("/srv/pg", "5544", "me", "desk")


def test_missing_parts_mean_postgres_on_the_local_server() -> None:
    db = database_from_url("postgresql:///")
    assert (db["HOST"], db["PORT"], db["USER"], db["NAME"]) == (
        "127.0.0.1",
        "5432",
        "postgres",
        "deskstream",
    )


def test_sslmode_and_other_libpq_options_reach_django_and_the_conninfo() -> None:
    db = database_from_url(
        "postgresql://desk:pw@db.example:5432/deskstream"
        "?sslmode=require&connect_timeout=5&application_name=desk-web"
    )
    assert db["OPTIONS"] == {
        "sslmode": "require",
        "connect_timeout": "5",
        "application_name": "desk-web",
    }
    assert psycopg.conninfo.conninfo_to_dict(conninfo_from_django(db)) == {
        "dbname": "deskstream",
        "host": "db.example",
        "port": "5432",
        "user": "desk",
        "password": "pw",
        "sslmode": "require",
        "connect_timeout": "5",
        "application_name": "desk-web",
    }


def test_django_only_options_stay_out_of_the_conninfo() -> None:
    db = database_from_url("postgresql://u@h/n?sslmode=verify-full")
    db["OPTIONS"] |= {"pool": {"max_size": 4}, "isolation_level": 1, "options": "-c jit=off"}
    assert libpq_options(db) == {"sslmode": "verify-full", "options": "-c jit=off"}


@pytest.mark.parametrize("url", ["mysql://u@h/n", "sqlite:///db.sqlite3", "h:5432/n"])
def test_other_schemes_are_refused(url: str) -> None:
    with pytest.raises(ValueError, match="must be a postgresql:// URL"):
        database_from_url(url)


def settings_with(env: dict[str, str]) -> dict[str, Any]:
    """Django settings built in a fresh interpreter from this environment."""
    code = (
        "import json; from django.conf import settings; "
        "print(json.dumps({'db': settings.DATABASES['default'], "
        "'hosts': settings.ALLOWED_HOSTS}, default=str))"
    )
    base = {k: v for k, v in os.environ.items() if not k.startswith("DESKSTREAM_")}
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**base, "DJANGO_SETTINGS_MODULE": "config.settings", "DESKSTREAM_DEBUG": "1", **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def test_settings_keep_the_url_options_beside_their_own() -> None:
    got = settings_with(
        {
            "DATABASE_URL": "postgresql://desk@db.example/deskstream"
            "?sslmode=require&options=-c%20statement_timeout%3D5000",
            "DESKSTREAM_DB_POOL_SIZE": "7",
        }
    )
    db = got["db"]
    assert db["ENGINE"] == "infra.postgres.backend"
    assert db["CONN_MAX_AGE"] == 0
    assert db["OPTIONS"] == {
        "sslmode": "require",
        "options": "-c statement_timeout=5000 -c jit=off -c max_parallel_workers_per_gather=0",
        "pool": {"min_size": 0, "max_size": 7, "timeout": 10},  # opened on demand
    }


def test_allowed_hosts_are_stripped_and_empty_items_dropped() -> None:
    got = settings_with({"DESKSTREAM_ALLOWED_HOSTS": " desk.example.com , ,api.example.com ,"})
    assert got["hosts"] == ["desk.example.com", "api.example.com"]
    assert settings_with({})["hosts"] == ["127.0.0.1", "localhost", "testserver"]
